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
        // SQL in dotted shapes (a number glued to a keyword, commas for spaces) and a
        // special-character count in a word.
        "1union,2",
        "select,a,from,b",
        "insert,into,t,values",
        "a-b-c-d-e-f-g-h-i-j-k-l-m",
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

/// Browser and OS `User-Agent`s as sent (desktop, mobile, legacy).
const BROWSER_UAS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; K; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
];

/// Runs every detector gated and ungated on a request whose only inspected value is the
/// `User-Agent` `ua`.
fn check_user_agent(engines: &[Engine], ua: &str) -> usize {
    let headers: Vec<(String, String)> = vec![
        ("host".into(), "shop.example.com".into()),
        ("user-agent".into(), ua.to_string()),
    ];
    let req = Request::new("GET", "/").with_headers(&headers);
    engines
        .iter()
        .map(|e| check(e, &req, &format!("User-Agent {ua:?}")))
        .sum()
}

/// The `Product` shape (`detect::gate::product_user_agent`) is skipped by every injection
/// detector: so none may find anything in any value of it. Tried: real browser strings (which
/// must have the shape, or the gate is useless), each product word alone and in every pair
/// joined by each separator of the grammar, and product-token strings drawn at random.
#[test]
fn product_user_agents_hold_nothing() {
    use threat_score::detect::gate::product_user_agent;
    let engines: Vec<Engine> = (1..=4u8)
        .map(|paranoia| {
            Config {
                paranoia_level: paranoia,
                ..Config::default()
            }
            .compile()
            .unwrap()
        })
        .collect();
    let mut differences = 0;
    for ua in BROWSER_UAS {
        assert!(product_user_agent(ua), "not a product User-Agent: {ua}");
        differences += check_user_agent(&engines, ua);
    }
    // The words, from the source of the gate itself.
    let src = include_str!("../src/detect/gate.rs");
    let list = src
        .split("const PRODUCT_WORDS: &[&str] = &[")
        .nth(1)
        .and_then(|r| r.split("];").next())
        .unwrap();
    let words: Vec<String> = literals(list);
    assert!(words.len() > 40, "{words:?}");
    let seps = [
        " ", "/", "; ", ";", " (", "(", ")", ") ", ",", ", ", "_", "-", ".", "/1.0 ", ":", ":/",
        "; rv:",
    ];
    let mut values = Vec::new();
    for a in &words {
        values.push(a.clone());
        values.push(a.to_uppercase());
        values.push(format!("{a}/5.0"));
        values.push(format!("({a})"));
        for b in &words {
            for s in seps {
                values.push(format!("{a}{s}{b}"));
            }
        }
    }
    // Random product-token strings (a fixed linear congruential generator: reproducible).
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    };
    for _ in 0..3000 {
        let mut v = String::new();
        for _ in 0..1 + next(10) {
            let w = &words[next(words.len())];
            match next(6) {
                0 => v.push_str(&format!("{w}/{}.{} ", next(200), next(10))),
                1 => v.push_str(&format!(
                    "({w}; {} {}) ",
                    words[next(words.len())],
                    next(100)
                )),
                2 => v.push_str(&format!(
                    "{w}{}_{} {w}/{}{}{} ",
                    next(20),
                    next(10),
                    next(30),
                    char::from(b'A' + next(26) as u8),
                    next(300)
                )),
                3 => v.push_str(&format!(
                    "{w}, {}:{}.0; ",
                    words[next(words.len())],
                    next(200)
                )),
                4 => v.push_str(&format!("{w}-{w} ")),
                _ => v.push_str(&format!("{w} ")),
            }
        }
        values.push(v.trim_end().to_string());
    }
    let mut tried = 0;
    for v in &values {
        if product_user_agent(v) {
            tried += 1;
            differences += check_user_agent(&engines, v);
        }
    }
    assert!(tried > values.len() * 9 / 10, "{tried} of {}", values.len());
    assert_eq!(
        differences, 0,
        "a detector finds something in a product User-Agent (see above)"
    );
    // Not the shape: a word outside the list, `..`, anything decoded, other bytes.
    for v in [
        "curl/8.5.0",
        "Mozilla/5.0 (X11; Linux x86_64) sqlmap/1.7",
        "Mozilla/5.0 (Linux..; x)",
        "Mozilla/5.0 (X11; Linux x86_64) <script>",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine)",
        "",
        "5.0",
    ] {
        assert!(!product_user_agent(v), "{v}");
    }
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
