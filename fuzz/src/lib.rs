//! The fuzz targets of threat-score, as plain functions over bytes so that the same code runs
//! under libFuzzer (`fuzz_targets/*.rs`, nightly, `cargo xtask fuzz`) and, on the pinned stable
//! toolchain, over the committed seeds (`cargo xtask fuzz --check`, part of `cargo xtask test`).
//!
//! Each target is thin over a public entry point of `threat-score`, so the engine can change
//! underneath without the targets changing much. Besides "never panics" (libFuzzer reports a
//! panic as a crash) and "never slow" (libFuzzer's `-timeout`, set by `cargo xtask fuzz`), the
//! decoders' targets check the one property the engine's linear-time argument leans on: decoding
//! never makes a value longer, so repeated rounds cannot grow it.

use std::sync::OnceLock;
use threat_score::decode::{self, escapes, html, path, percent};
use threat_score::extract::{json, multipart, xml};
use threat_score::{Config, Engine, Request};

/// Every target, by the name `cargo xtask fuzz` and the seed directories use.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("inspect", inspect),
    ("decode_percent", decode_percent),
    ("decode_html", decode_html),
    ("decode_escapes", decode_escapes),
    ("decode_path", decode_path),
    ("decode_deep", decode_deep),
    ("extract_json", extract_json),
    ("extract_multipart", extract_multipart),
    ("extract_xml", extract_xml),
];

/// Engines for paranoia levels 1-4, each in `block` mode (stops where the engine may stop)
/// and in `detect` mode (full scoring), compiled once.
fn engines() -> &'static [Engine] {
    static ENGINES: OnceLock<Vec<Engine>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let mut v = Vec::new();
        for mode in ["block", "detect"] {
            for pl in 1..=4 {
                let json = format!(r#"{{"mode":"{mode}","paranoia_level":{pl}}}"#);
                match Config::from_json(json.as_bytes()).and_then(Config::compile) {
                    Ok(e) => v.push(e),
                    Err(e) => panic!("fuzz engine config {json}: {e}"),
                }
            }
        }
        v
    })
}

/// A request parsed from fuzz bytes: a raw HTTP/1 request, so seeds are readable and the
/// fuzzer mutates real request syntax.
#[derive(Debug, Default)]
pub struct RawRequest<'a> {
    pub method: String,
    pub uri: String,
    pub protocol: Option<String>,
    /// Lowercase names (as Envoy delivers them), values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Option<&'a [u8]>,
}

/// Parses `METHOD URI [VERSION]`, `name: value` lines and, after the first empty line, the body
/// (absent when there is no empty line). Lines end in `\n` or `\r\n`. Never fails: whatever the
/// bytes, some request comes out.
pub fn parse_request(data: &[u8]) -> RawRequest<'_> {
    let (head, body) = match find(data, b"\r\n\r\n") {
        Some(i) => (&data[..i], Some(&data[i + 4..])),
        None => match find(data, b"\n\n") {
            Some(i) => (&data[..i], Some(&data[i + 2..])),
            None => (data, None),
        },
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut req = RawRequest {
        body,
        ..RawRequest::default()
    };
    if let Some(first) = lines.next() {
        let mut parts = first.splitn(3, ' ');
        req.method = parts.next().unwrap_or_default().to_string();
        req.uri = parts.next().unwrap_or_default().to_string();
        req.protocol = parts.next().map(str::to_string);
    }
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        req.headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    req
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `Engine::inspect` over an arbitrary request. The first byte picks the engine (paranoia level
/// 1-4, block or detect mode) and whether the body counts as truncated by the glue; the rest is
/// a raw HTTP/1 request ([`parse_request`]).
pub fn inspect(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let engines = engines();
    let engine = &engines[usize::from(selector) % engines.len()];
    let raw = parse_request(rest);
    let req = Request {
        method: &raw.method,
        uri: &raw.uri,
        protocol: raw.protocol.as_deref(),
        headers: &raw.headers,
        body: raw.body,
        body_truncated: selector & 0x80 != 0,
    };
    std::hint::black_box(engine.inspect(&req));
}

/// `percent::decode_into` (with and without `+` as space) and `fold_overlong`.
pub fn decode_percent(data: &[u8]) {
    let mut out = Vec::new();
    for plus in [false, true] {
        let st = percent::decode_into(data, plus, &mut out);
        assert!(out.len() <= data.len(), "percent decoding grew the value");
        if !data.contains(&b'%') && !(plus && data.contains(&b'+')) {
            assert_eq!(out, data, "nothing to decode, yet the value changed");
            assert!(!st.invalid && !st.unicode);
        }
        let before = out.len();
        percent::fold_overlong(&mut out);
        assert!(out.len() <= before, "folding overlong UTF-8 grew the value");
    }
}

/// `html::decode` over arbitrary text.
pub fn decode_html(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    match html::decode(&s) {
        Some(d) => assert!(d.len() <= s.len(), "HTML decoding grew the value"),
        None => {}
    }
}

/// `escapes::decode` (`\x`, `\u`, `\u{}`) over arbitrary text.
pub fn decode_escapes(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Some(d) = escapes::decode(&s) {
        assert!(d.len() <= s.len(), "escape decoding grew the value");
    }
}

/// `path::normalize` over arbitrary text.
pub fn decode_path(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let n = path::normalize(&s);
    assert!(n.path.len() <= s.len(), "path normalisation grew the value");
    let separators = s.bytes().filter(|b| matches!(b, b'/' | b'\\')).count();
    assert!(
        n.parent_segments <= separators + 1,
        "more parent segments than segments"
    );
}

/// `decode::deep_decode` (all decoders in rounds). The first byte picks form encoding (`+`)
/// and the round budget (1-8).
pub fn decode_deep(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let rounds = u32::from(selector >> 1) % 8 + 1;
    let d = decode::deep_decode(rest, selector & 1 == 1, rounds);
    assert!(d.rounds <= rounds, "more rounds than the budget");
    // Lossy UTF-8 may turn one invalid byte into U+FFFD (3 bytes); nothing else grows.
    assert!(
        d.text.len() <= rest.len().saturating_mul(3),
        "deep decoding grew the value more than U+FFFD replacement can"
    );
}

/// The JSON extractor: check the body (as the engine does), then walk it to the default
/// depth straight from its bytes. Whatever `check` accepts, serde_json accepts too (and the
/// reverse), and the walk of a checked body never fails.
pub fn extract_json(data: &[u8]) {
    let ours = json::check(data);
    let serde = serde_json::from_slice::<serde_json::Value>(data);
    assert_eq!(
        ours.is_ok(),
        serde.is_ok(),
        "json::check and serde_json disagree: {ours:?} vs {serde:?}"
    );
    if ours.is_err() {
        return;
    }
    let depth = Config::default().limits.json_depth.max;
    let mut seen = 0usize;
    let walked = json::walk(data, depth, &mut |_| {
        seen += 1;
        true
    });
    assert!(walked.is_ok(), "walk failed on a checked body");
    // Stopping early must stop the walk.
    let mut calls = 0usize;
    let _ = json::walk(data, depth, &mut |_| {
        calls += 1;
        false
    });
    assert!(calls <= 1, "walk went on after the visitor said stop");
    assert!(calls <= seen);
}

/// The multipart extractor. The first line of the input is the `Content-Type` value (its
/// `boundary` parameter is extracted), the rest the body; at most 255 parts, the default
/// argument limit.
pub fn extract_multipart(data: &[u8]) {
    let (ct, body) = match find(data, b"\n") {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let ct = String::from_utf8_lossy(ct);
    let boundary = multipart::boundary(&ct).unwrap_or_default();
    let max = 255;
    let m = multipart::parse(body, &boundary, max);
    assert!(m.parts.len() <= max, "more parts than the cap");
}

/// The XML extractor, at most 255 values (the default argument limit).
pub fn extract_xml(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let max = 255;
    let v = xml::values(&s, max);
    assert!(v.len() <= max, "more values than the cap");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn seeds_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds")
    }

    /// Every committed seed (and every committed finding's reproducer) runs through its target
    /// without a panic: the targets compile against the engine of this checkout and the seeds
    /// still exercise them. libFuzzer is not needed (stable toolchain).
    #[test]
    fn every_seed_runs_through_its_target() {
        let mut ran = 0;
        for (name, target) in TARGETS {
            for dir in [
                seeds_dir().join(name),
                seeds_dir().join("../findings").join(name),
            ] {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let data = std::fs::read(entry.path()).unwrap();
                    target(&data);
                    ran += 1;
                }
            }
            assert!(
                seeds_dir()
                    .join(name)
                    .read_dir()
                    .is_ok_and(|mut d| d.next().is_some()),
                "no seeds for target {name}"
            );
        }
        assert!(ran >= TARGETS.len());
    }

    #[test]
    fn raw_requests_parse_into_method_uri_headers_and_body() {
        let r = parse_request(b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\n\r\nbody");
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/a?b=1");
        assert_eq!(r.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(
            r.headers[1],
            ("content-type".to_string(), "a/b".to_string())
        );
        assert_eq!(r.body, Some(&b"body"[..]));
        let r = parse_request(b"GET /\nx: 1");
        assert_eq!(r.headers, vec![("x".to_string(), "1".to_string())]);
        assert_eq!(r.body, None);
    }
}
