//! `cargo xtask fuzz extract_multipart`: see [`threat_score_fuzz::extract_multipart`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::extract_multipart(data));
