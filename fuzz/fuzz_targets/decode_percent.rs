//! `cargo xtask fuzz decode_percent`: see [`threat_score_fuzz::decode_percent`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::decode_percent(data));
