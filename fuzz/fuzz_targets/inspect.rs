//! `cargo xtask fuzz inspect`: see [`threat_score_fuzz::inspect`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::inspect(data));
