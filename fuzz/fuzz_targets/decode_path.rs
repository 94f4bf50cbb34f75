//! `cargo xtask fuzz decode_path`: see [`threat_score_fuzz::decode_path`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::decode_path(data));
