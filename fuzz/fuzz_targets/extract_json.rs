//! `cargo xtask fuzz extract_json`: see [`threat_score_fuzz::extract_json`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::extract_json(data));
