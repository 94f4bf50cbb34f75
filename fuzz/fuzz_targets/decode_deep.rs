//! `cargo xtask fuzz decode_deep`: see [`threat_score_fuzz::decode_deep`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::decode_deep(data));
