//! The gates change no finding: every detector, at every paranoia level, finds exactly the
//! same with its gate as without it (`detect::gate`), on values of every gated shape built
//! from the detectors' own vocabulary.
//!
//! The vocabulary is every string literal in `src/detect/**.rs` (command names, SQL keywords,
//! function names, session names, scanner names, paths...), taken apart into its words and
//! also kept whole. Each piece is tried alone, glued to its neighbours (`a-b`, `a_b`, `a.b`,
//! `a,b`), in phrases (`a b`, `x a b`, `a 1`), as an argument value and name, a cookie, a
//! header, the User-Agent, the Referer, the path and a JSON body. So a rule added later that
//! matches a gated shape makes this test fail until its gate admits that shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use std::collections::BTreeSet;
use threat_score::detect::gate::Shape;
use threat_score::extract::ByteSet;
use threat_score::{Config, DetectorKind, Engine, Request};

const SOURCES: &[&str] = &[
    include_str!("../src/detect/generic.rs"),
    include_str!("../src/detect/java.rs"),
    include_str!("../src/detect/lfi.rs"),
    include_str!("../src/detect/mod.rs"),
    include_str!("../src/detect/php.rs"),
    include_str!("../src/detect/protocol.rs"),
    include_str!("../src/detect/rce.rs"),
    include_str!("../src/detect/rfi.rs"),
    include_str!("../src/detect/scanner.rs"),
    include_str!("../src/detect/session.rs"),
    include_str!("../src/detect/sqli/mod.rs"),
    include_str!("../src/detect/sqli/lexer.rs"),
    include_str!("../src/detect/xss.rs"),
];

/// The contents of every `"..."` literal (escapes kept as written; good enough for words).
fn literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match (&mut cur, c) {
            (None, '"') => cur = Some(String::new()),
            (None, '\'') => {
                // A char literal or a lifetime: skip a quoted char so `'"'` does not open a string.
                let mut ahead = chars.clone();
                if let (Some(x), Some('\'')) = (ahead.next(), ahead.next()) {
                    if x != '\\' {
                        chars.next();
                        chars.next();
                    }
                } else if ahead.clone().next().is_some() {
                    let mut a2 = chars.clone();
                    if a2.next() == Some('\\') {
                        // '\x'
                        a2.next();
                        if a2.next() == Some('\'') {
                            chars.next();
                            chars.next();
                            chars.next();
                        }
                    }
                }
            }
            (Some(s), '\\') => {
                if let Some(n) = chars.next() {
                    s.push('\\');
                    s.push(n);
                }
            }
            (Some(s), '"') => {
                out.push(std::mem::take(s));
                cur = None;
            }
            (Some(s), c) => s.push(c),
            (None, _) => {}
        }
    }
    out
}

/// Values of the gated shapes built from the detectors' vocabulary.
fn vocabulary() -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    let mut whole = BTreeSet::new();
    for src in SOURCES {
        for lit in literals(src) {
            if lit.len() > 80 {
                continue;
            }
            let lower = lit.to_ascii_lowercase();
            if Shape::of(&ByteSet::of(lower.as_bytes())) != Shape::Other {
                whole.insert(lit.clone());
            }
            for w in lit.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
                if !w.is_empty() && w.len() <= 40 {
                    words.insert(w.to_string());
                }
            }
        }
    }
    let list: Vec<&String> = words.iter().collect();
    let mut out: BTreeSet<String> = BTreeSet::new();
    out.extend(whole);
    for (i, w) in list.iter().enumerate() {
        let next = list.get(i + 1).map_or("x", |s| s.as_str());
        out.insert(w.to_string());
        out.insert(w.to_uppercase());
        out.insert(format!("{w} {next}"));
        out.insert(format!("{w}-{next}"));
        out.insert(format!("{w}_{next}"));
        out.insert(format!("{w}.{next}"));
        out.insert(format!("{w},{next}"));
        out.insert(format!("{w}.{next} x"));
        out.insert(format!("x {w}. {next}"));
        out.insert(format!("{w} 1"));
        out.insert(format!("{w} 127.0.0.1"));
        out.insert(format!("x {w}"));
        out.insert(format!("{w} -la"));
        out.insert(format!("1 {w} 1"));
    }
    for extra in [
        "",
        "1",
        "0",
        "-1",
        "1-1",
        "1.0",
        "1e5",
        "10.99",
        "a",
        "id",
        "1 or 1",
        "1 and 1",
        "7 or 8",
        "rO0AB",
        "ro0ab",
        "aced0005",
        "information_schema",
        "union select 1",
        "select 1 from dual",
        "1 union all select null",
        "sleep 5",
        "ping 127.0.0.1",
        "cat etc passwd",
        "etc.passwd",
        "web-inf",
        "..",
        "...",
        ",,",
        "a..b",
        "1..2",
        "localhost",
        "127.0.0.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "metadata.google.internal",
        "169.254.169.254",
        "169.254.169.254.nip.io",
        "jsessionid",
        "phpsessid",
        "aspsessionid",
        "session_id",
        "sid",
        "IF    EXIST data.xls     Echo The file was found.",
        "IF DEFINED variable CMD",
        "if not exist x del y",
        "for x in y do z",
    ] {
        out.insert(extra.to_string());
    }
    out.retain(|v| Shape::of(&ByteSet::of(v.to_ascii_lowercase().as_bytes())) != Shape::Other);
    out
}

/// Percent-encodes everything but ASCII alphanumerics.
fn enc(v: &str) -> String {
    let mut s = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn check(engine: &Engine, req: &Request<'_>, what: &str) -> usize {
    let p = engine.prepare(req);
    let mut differences = 0;
    for &kind in DetectorKind::ALL {
        let gated = engine.run_detector(kind, &p);
        let ungated = engine.run_detector_ungated(kind, &p);
        if gated != ungated {
            differences += 1;
            eprintln!(
                "gate of {} at paranoia {} changes findings for {what}: gated {:?}, ungated {:?}",
                kind.name(),
                engine.config().paranoia_level,
                gated
                    .iter()
                    .map(|d| (d.rule, d.location.source))
                    .collect::<Vec<_>>(),
                ungated
                    .iter()
                    .map(|d| (d.rule, d.location.source))
                    .collect::<Vec<_>>(),
            );
        }
    }
    differences
}

#[test]
fn gates_change_no_finding() {
    let vocabulary = vocabulary();
    assert!(
        vocabulary.len() > 5_000,
        "vocabulary too small: {}",
        vocabulary.len()
    );
    let mut differences = 0;
    for paranoia in 1..=4u8 {
        let engine = Config {
            paranoia_level: paranoia,
            ..Config::default()
        }
        .compile()
        .unwrap();
        for v in &vocabulary {
            let e = enc(v);
            let uri = format!("/{e}?{e}={e}&q={e}");
            let headers: Vec<(String, String)> = vec![
                ("host".into(), "shop.example.com".into()),
                ("user-agent".into(), v.clone()),
                ("referer".into(), v.clone()),
                ("x-test".into(), v.clone()),
                ("x-filename".into(), v.clone()),
                ("cookie".into(), format!("{v}={v}")),
                ("content-type".into(), "application/json".into()),
            ];
            let body = serde_json::json!({ v.as_str(): v, "n": [v] }).to_string();
            let req = Request::new("POST", &uri)
                .with_headers(&headers)
                .with_body(body.as_bytes());
            differences += check(&engine, &req, &format!("{v:?}"));
        }
    }
    assert_eq!(differences, 0, "gates changed findings (see above)");
}

#[test]
fn shapes() {
    let shape = |v: &str| Shape::of(&ByteSet::of(v.as_bytes()));
    assert_eq!(shape("sku-000-01"), Shape::Word);
    assert_eq!(shape(""), Shape::Word);
    assert_eq!(shape("10.99"), Shape::Dotted);
    assert_eq!(shape("leave at the door"), Shape::Phrase);
    assert_eq!(shape("a'b"), Shape::Other);
    assert_eq!(shape("caf\u{e9}"), Shape::Other);
}
