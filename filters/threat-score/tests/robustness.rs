//! Hostile and arbitrary input never panics and stays bounded: property tests over the
//! decoders and the whole engine, plus hand-made worst cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use proptest::prelude::*;
use threat_score::decode::{deep_decode, escapes, html, path, percent};
use threat_score::{Config, Request};

fn engine() -> threat_score::Engine {
    Config::default().compile().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_accept_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), rounds in 0u32..8) {
        let d = deep_decode(&bytes, true, rounds);
        prop_assert!(d.rounds <= rounds);
        let mut out = Vec::new();
        percent::decode_into(&bytes, true, &mut out);
        percent::fold_overlong(&mut out);
        let s = String::from_utf8_lossy(&bytes);
        let _ = html::decode(&s);
        let _ = escapes::decode(&s);
        let _ = path::normalize(&s);
    }

    #[test]
    fn inspect_accepts_any_request(
        method in "[A-Z|]{0,12}",
        uri in proptest::collection::vec(any::<u8>(), 0..256),
        names in proptest::collection::vec("[a-z:-]{0,12}", 0..6),
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..128), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        ct in prop_oneof![
            Just("application/json"), Just("application/x-www-form-urlencoded"),
            Just("multipart/form-data; boundary=XX"), Just("text/xml"), Just("text/plain"), Just("")
        ],
    ) {
        let uri = String::from_utf8_lossy(&uri).into_owned();
        let mut headers: Vec<(String, String)> = names
            .iter()
            .zip(values.iter())
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        headers.push(("content-type".into(), ct.into()));
        let req = Request::new(&method, &uri).with_headers(&headers).with_body(&body);
        let a = engine().inspect(&req);
        prop_assert!(a.detections.len() <= threat_score::Assessment::MAX_DETECTIONS);
    }

    #[test]
    fn inspect_accepts_attack_alphabet(s in "[<>'\"();|&$`{}\\[\\]%/\\\\.a-z0-9 =:#*!?@^~+-]{0,300}") {
        let uri = format!("/x?a={s}");
        let headers = vec![("cookie".to_string(), format!("c={s}")), ("user-agent".to_string(), s.clone())];
        let req = Request::new("POST", &uri).with_headers(&headers).with_body(s.as_bytes());
        let _ = engine().inspect(&req);
    }
}

#[test]
fn deep_json_is_bounded_and_blocked_by_policy() {
    let body = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let headers = vec![
        ("host".to_string(), "x".to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let req = Request::new("POST", "/")
        .with_headers(&headers)
        .with_body(body.as_bytes());
    let a = engine().inspect(&req);
    assert!(a.limit_hits.contains(&threat_score::LimitKind::JsonDepth));
    // Deeper than serde_json accepts: parsed as text, still no panic.
    let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let req = Request::new("POST", "/")
        .with_headers(&headers)
        .with_body(body.as_bytes());
    let _ = engine().inspect(&req);
}

#[test]
fn endless_encodings_stop_at_the_round_limit() {
    let mut s = "<script>".to_string();
    for _ in 0..12 {
        s = s
            .replace('%', "%25")
            .replace('<', "%3C")
            .replace('>', "%3E");
    }
    let uri = format!("/?q={s}");
    let headers = vec![("host".to_string(), "x".to_string())];
    let a = engine().inspect(&Request::new("GET", &uri).with_headers(&headers));
    assert!(a
        .limit_hits
        .contains(&threat_score::LimitKind::DecodeRounds));
    assert_eq!(a.verdict, threat_score::Verdict::Block);
}

#[test]
fn huge_headers_and_bodies_are_cut() {
    let big = "a".repeat(1 << 20);
    let headers = vec![
        ("host".to_string(), "x".to_string()),
        ("user-agent".to_string(), big.clone()),
        ("cookie".to_string(), format!("k={big}")),
    ];
    let body = "x=".to_string() + &"%41".repeat(200_000);
    let req = Request::new("POST", "/")
        .with_headers(&headers)
        .with_body(body.as_bytes());
    let a = engine().inspect(&req);
    assert!(a.limit_hits.contains(&threat_score::LimitKind::HeaderSize));
    assert!(a.limit_hits.contains(&threat_score::LimitKind::BodySize));
}

#[test]
fn invalid_utf8_everywhere() {
    let body = [0xff, 0xfe, b'=', 0xc0, 0xaf, b'&', 0x80];
    let headers = vec![("host".to_string(), "x".to_string())];
    let req = Request::new("POST", "/%ff%c0%af?%80=%ff")
        .with_headers(&headers)
        .with_body(&body);
    let _ = engine().inspect(&req);
}
