//! Precision from context and what each paranoia level adds (issue 11, items 4 and 5): the
//! ordinary texts the issue lists pass at paranoia 1, the attack shapes each level adds are
//! blocked at that level and not below it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use threat_score::{Config, Request, Verdict};

fn verdict(paranoia: u8, uri: &str, headers: &[(&str, &str)], body: &str) -> Verdict {
    let engine = Config {
        paranoia_level: paranoia,
        ..Config::default()
    }
    .compile()
    .unwrap();
    let mut hs: Vec<(String, String)> = vec![("host".into(), "shop.example.com".into())];
    hs.extend(headers.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    let method = if body.is_empty() { "GET" } else { "POST" };
    if !body.is_empty() {
        hs.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    let req = Request::new(method, uri)
        .with_headers(&hs)
        .with_body(body.as_bytes());
    engine.inspect(&req).verdict
}

/// Form-encodes `v` the way a browser does.
fn form(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[test]
fn prose_from_the_issue_passes_at_paranoia_1() {
    for q in [
        "python 3.12 release notes",
        "java 17 download",
        "ssh port 22",
        "ping 8.8.8.8 slow",
        "Python binding to Typst, a new markup-based typesetting system",
        "Python SDK for communication with Hafnia platform.",
        "Click \"Update\" to save",
        "'grant' vs 'loan'",
        "7 or 8",
        "Zero-effort nanomodule to submit a <form> element via `fetch` and receive the response.",
        "Provide __proto__ with some limitations",
        "Cross-platform method to add a directory to your $PATH",
        // Technical prose.
        "Drop table tennis lessons on Friday",
        "Use `ls -la` to list hidden files",
        "Bash script to backup /home directory",
        "java.lang.NullPointerException at line 42",
        "eval() is evil in JavaScript",
    ] {
        let uri = format!("/search?q={}", form(q));
        assert_eq!(verdict(1, &uri, &[], ""), Verdict::Allow, "{q}");
    }
    // A field named like a command, a development Referer, Latin-1 form encoding.
    assert_eq!(verdict(1, "/login", &[], "uname=john+doe"), Verdict::Allow);
    assert_eq!(
        verdict(
            1,
            "/cart",
            &[("referer", "http://localhost:3000/products?id=1")],
            ""
        ),
        Verdict::Allow
    );
    assert_eq!(
        verdict(1, "/form", &[], "name=Pe%F1a&city=A%E7ores"),
        Verdict::Allow
    );
    assert_eq!(
        verdict(2, "/form", &[], "name=Pe%F1a&city=A%E7ores"),
        Verdict::Block,
        "invalid UTF-8 counts from paranoia 2"
    );
}

#[test]
fn attack_syntax_around_the_same_words_is_blocked_at_paranoia_1() {
    for q in [
        "x; python -c 'import os'",
        "ping -c 3 127.0.0.1",
        "`uname -a`",
        "$(whoami)",
        "1' OR '1'='1",
        "<svg onload=alert(1)>",
        "a.__proto__.isAdmin=true",
    ] {
        let uri = format!("/search?q={}", form(q));
        assert_eq!(verdict(1, &uri, &[], ""), Verdict::Block, "{q}");
    }
    assert_eq!(
        verdict(1, "/", &[("accept", "text/html; charset=CP1026")], ""),
        Verdict::Block
    );
    assert_eq!(
        verdict(1, "/", &[("accept", "text/html;q=0.9;charset=utf-8")], ""),
        Verdict::Allow
    );
}

/// (value, the lowest paranoia level that blocks it)
const LEVELS: &[(&str, u8)] = &[
    // sqli: fragments at 2
    ("Cm7 OR", 2),
    ("7 or 8", 2),
    ("; insert into", 2),
    ("ABS(x)", 2),
    ("'ALTER a", 2),
    ("Use 'SELECT 1' as a health check", 2),
    ("xp_dirtree", 2),
    ("sp_executesql", 2),
    // xss: attributes and comment close at 2, any element at 3, markup at 4
    ("<a href=\"x\"", 2),
    ("-->", 2),
    ("<b>bold</b>", 3),
    ("a <qq", 4),
    // rfi: server-side schemes at 2 (protocol-relative URLs at 4: see below)
    ("gopher://example.org/_x", 2),
    // lfi: one `..` outside file parameters at 2 (any absolute path at 4: see below)
    ("../images/photo.jpg", 2),
    // java: any lookup at 2, any fully qualified class name at 4
    ("${env:HOME}", 2),
    ("com.example.app.Main", 4),
    // generic: inert data URIs at 2, special object names at 4
    ("data:image/png;base64,iVBORw0KGgo=", 2),
    ("__init__", 4),
    // rce: function definitions past the value's start at 2, program names whatever
    // follows at 3, ordinary-word programs at 4
    ("fn main() { run(); }", 2),
    ("tell me wh'oami please", 2),
    ("files; tar -czf /tmp/b.tgz /srv/www", 2),
    ("npm install --save-dev eslint", 2),
    ("python script runner", 3),
    ("cat food", 4),
    // php: extension calls at 2, variables at 4
    ("array_diff (", 2),
    ("$_POST is empty in php 8", 2),
    ("cost $amount", 4),
    // generic: Perl interpolation at 2, any template expression at 3
    ("@{[ system 'id' ]}", 2),
    ("Hello {{name}}", 3),
];

#[test]
fn encoded_separators_count_from_paranoia_3() {
    assert_eq!(verdict(2, "/files?name=a%2fb.txt", &[], ""), Verdict::Allow);
    assert_eq!(verdict(3, "/files?name=a%2fb.txt", &[], ""), Verdict::Block);
}

#[test]
fn each_level_adds_shapes() {
    for (v, level) in LEVELS {
        let uri = format!("/search?q={}", form(v));
        if *level > 1 {
            assert_eq!(
                verdict(level - 1, &uri, &[], ""),
                Verdict::Allow,
                "{v} blocked below paranoia {level}"
            );
        }
        assert_eq!(
            verdict(*level, &uri, &[], ""),
            Verdict::Block,
            "{v} not blocked at paranoia {level}"
        );
    }
}

/// Values with a `/` arrive percent-encoded in a form (`%2F`), which paranoia 3 counts as an
/// encoded separator; in a JSON body they arrive as written, so the paranoia 4 path shapes
/// are checked there.
#[test]
fn path_shapes_at_paranoia_4() {
    for v in [
        "/opt/app/data",
        "//cdn.example.org/app.js",
        "C:\\data\\reports",
    ] {
        let engine = |paranoia: u8| {
            Config {
                paranoia_level: paranoia,
                ..Config::default()
            }
            .compile()
            .unwrap()
        };
        let hs: Vec<(String, String)> = vec![
            ("host".into(), "shop.example.com".into()),
            ("content-type".into(), "application/json".into()),
        ];
        let body = format!("{{\"target\":{}}}", serde_json::to_string(v).unwrap());
        let req = Request::new("POST", "/api/jobs")
            .with_headers(&hs)
            .with_body(body.as_bytes());
        assert_eq!(engine(3).inspect(&req).verdict, Verdict::Allow, "{v} at 3");
        assert_eq!(engine(4).inspect(&req).verdict, Verdict::Block, "{v} at 4");
    }
}
