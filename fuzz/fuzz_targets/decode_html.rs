//! `cargo xtask fuzz decode_html`: see [`threat_score_fuzz::decode_html`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| threat_score_fuzz::decode_html(data));
