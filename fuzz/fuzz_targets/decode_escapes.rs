//! `cargo xtask fuzz decode_escapes`: see [`threat_score_fuzz::decode_escapes`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::decode_escapes(data));
