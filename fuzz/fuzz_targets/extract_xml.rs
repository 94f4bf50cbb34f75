//! `cargo xtask fuzz extract_xml`: see [`threat_score_fuzz::extract_xml`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::extract_xml(data));
