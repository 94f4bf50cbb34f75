//! Replay corpus rows (the shared JSON Lines format, `../shared/README.md`) through a running
//! Envoy over raw TCP, and classify what happened to each.
//!
//! A raw client, not an HTTP library: rows carry malformed request lines, odd header names and
//! values, missing `Host` and such on purpose, and must reach Envoy byte for byte (only the
//! framing is fixed: `Content-Length` is set to the body's real length unless the row brings
//! its own `Transfer-Encoding`, or declares fewer bytes than its body, which is sent as written,
//! as CRS's own runner sends it). Each row gets a fresh connection, so one row that makes Envoy
//! close the connection cannot affect the next; rows run in parallel over several threads.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// One corpus row. Unknown fields are ignored (the format may grow); only what replay and
/// classification need is required.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub id: String,
    #[serde(default)]
    pub category: String,
    /// Lowest CRS paranoia level at which the row's rule fires (absent: 0, "any").
    #[serde(default)]
    pub paranoia: u8,
    /// `attack`, `no-match` or `benign`.
    #[serde(default)]
    pub expect: String,
    pub method: String,
    pub uri: String,
    /// Request-line version; `HTTP/1.1` when absent or empty.
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
}

impl Row {
    /// A row built in code (tests, probes): no category or expectation, PL1, HTTP/1.1.
    pub fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Row {
        Row {
            id: format!("{method} {uri}"),
            category: String::new(),
            paranoia: 1,
            expect: String::new(),
            method: method.into(),
            uri: uri.into(),
            version: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }
}

/// Read rows from JSON Lines files, in order. Blank lines are skipped; any other line that is
/// not a row is an error naming the file and line.
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: Row = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a corpus row", path.display(), n + 1))?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The bytes sent for a row: request line and headers as given, body as given, with a correct
/// `Content-Length` (replacing the row's own values in place, or appended when the body is not
/// empty). A row with `Transfer-Encoding` is sent exactly as written (its body is already
/// chunked). A row whose first `Content-Length` declares fewer bytes than its body keeps that
/// length: the bytes after it are no part of this request but the next ones on the connection
/// (CRS's test 920170-4 sends `Content-Length: 0` with data after it, to check that a `GET`
/// is read without a body). A longer or unreadable declared length is replaced: sent as
/// written, the connection would wait for bytes that never come.
pub fn raw_request(row: &Row) -> Vec<u8> {
    let version = if row.version.is_empty() {
        "HTTP/1.1"
    } else {
        row.version.as_str()
    };
    let chunked = row
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
    let len = declared_length(&row.headers, row.body.len())
        .unwrap_or(row.body.len())
        .to_string();
    let mut out = Vec::with_capacity(row.uri.len() + row.body.len() + 512);
    out.extend_from_slice(format!("{} {} {}\r\n", row.method, row.uri, version).as_bytes());
    let mut has_length = false;
    for (name, value) in &row.headers {
        let value = if !chunked && name.eq_ignore_ascii_case("content-length") {
            if has_length {
                continue;
            }
            has_length = true;
            len.as_str()
        } else {
            value.as_str()
        };
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !chunked && !has_length && !row.body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(row.body.as_bytes());
    out
}

/// The first `Content-Length` of `headers`, when it is a number below `body_len`: where the
/// request ends on the wire ([`raw_request`]; the in-process model of Envoy reads it too).
pub fn declared_length(headers: &[(String, String)], body_len: usize) -> Option<usize> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .filter(|&n| n < body_len)
}

/// A response read off the wire.
#[derive(Debug, Clone, Default)]
pub struct RawResponse {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Send `request` on a fresh connection and read one response (interim `1xx` responses are
/// skipped; `head` means the response has no body whatever its headers say). `Ok(None)`: the
/// connection was closed (or reset) before a complete status line and headers arrived.
pub fn send_raw(
    addr: SocketAddr,
    request: &[u8],
    head: bool,
    timeout: Duration,
) -> Result<Option<RawResponse>> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let _ = stream.set_nodelay(true);
    // Envoy may answer and close before reading the whole request (a rejected request line, a
    // reply from the headers phase): a failed write is not an error, the response decides.
    let _ = stream.write_all(request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let header_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head_text = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let Some(status) = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
        else {
            bail!("malformed status line {status_line:?}");
        };
        let rest = buf.split_off(header_end + 4);
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut resp = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 {
            return Ok(Some(resp));
        }
        let mut body = rest;
        let length = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok());
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        loop {
            let done = match length {
                Some(n) => body.len() >= n,
                None if chunked => find(&body, b"0\r\n\r\n").is_some(),
                None => false,
            };
            if done {
                break;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        if let Some(n) = length {
            body.truncate(n);
        }
        resp.body = body;
        return Ok(Some(resp));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The filter answered with its own 403 (JSON body with the expected `error` code).
    Blocked,
    /// The upstream answered (the echo server's `x-upstream` header).
    Passed,
    /// Envoy refused the request itself (a 4xx that is not the filter's, or the connection
    /// closed without a response): malformed rows that never reach a filter.
    RejectedByEnvoy,
    /// Anything else (a 5xx from Envoy, a timeout): a problem, never a pass.
    Other,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Blocked => "blocked",
            Outcome::Passed => "passed",
            Outcome::RejectedByEnvoy => "rejected_by_envoy",
            Outcome::Other => "other",
        }
    }
}

/// Classify a response; `block_error` is the `error` field of the filter's 403 body.
pub fn classify(resp: Option<&RawResponse>, block_error: &str) -> Outcome {
    let Some(r) = resp else {
        return Outcome::RejectedByEnvoy;
    };
    if r.header("x-upstream").is_some() {
        return Outcome::Passed;
    }
    if r.status == 403 {
        let code = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from));
        if code.as_deref() == Some(block_error) {
            return Outcome::Blocked;
        }
    }
    if (400..500).contains(&r.status) {
        return Outcome::RejectedByEnvoy;
    }
    Outcome::Other
}

/// The result for one row.
#[derive(Debug, Clone)]
pub struct RowResult {
    /// 0 when no response arrived.
    pub status: u16,
    pub outcome: Outcome,
}

/// Replay `rows` against `addr` over `parallel` threads (one fresh connection per row) and
/// return the results in input order.
pub fn replay(
    addr: SocketAddr,
    rows: &[Row],
    parallel: usize,
    block_error: &str,
) -> Vec<RowResult> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RowResult>>> = Mutex::new(vec![None; rows.len()]);
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(row) = rows.get(i) else { break };
                let result = replay_one(addr, row, block_error);
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| {
            r.unwrap_or(RowResult {
                status: 0,
                outcome: Outcome::Other,
            })
        })
        .collect()
}

/// One row, with one retry when the connection itself could not be made (a transient local
/// error, not something the row caused).
pub fn replay_one(addr: SocketAddr, row: &Row, block_error: &str) -> RowResult {
    let request = raw_request(row);
    let timeout = Duration::from_secs(20);
    let head = row.method.eq_ignore_ascii_case("HEAD");
    let mut attempt = send_raw(addr, &request, head, timeout);
    if attempt.is_err() {
        std::thread::sleep(Duration::from_millis(100));
        attempt = send_raw(addr, &request, head, timeout);
    }
    match attempt {
        Ok(resp) => RowResult {
            status: resp.as_ref().map_or(0, |r| r.status),
            outcome: classify(resp.as_ref(), block_error),
        },
        Err(_) => RowResult {
            status: 0,
            outcome: Outcome::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(headers: &[(&str, &str)], body: &str) -> Row {
        Row::request("POST", "/a?b=%27", headers, body)
    }

    #[test]
    fn content_length_is_corrected_in_place_or_appended() {
        let r = row(
            &[("Host", "h"), ("Content-Length", "99"), ("X", "y")],
            "abc",
        );
        let text = String::from_utf8(raw_request(&r)).unwrap();
        assert_eq!(
            text,
            "POST /a?b=%27 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: y\r\n\r\nabc"
        );
        let r = row(&[("Host", "h")], "abcd");
        let text = String::from_utf8(raw_request(&r)).unwrap();
        assert!(
            text.ends_with("Host: h\r\nContent-Length: 4\r\n\r\nabcd"),
            "{text}"
        );
        let r = row(&[], "");
        assert_eq!(raw_request(&r), b"POST /a?b=%27 HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn a_shorter_declared_length_is_kept() {
        // `Content-Length: 0` and data: a request without a body, then other bytes.
        let r = row(&[("Content-Length", "0"), ("X", "y")], "hi=test");
        let text = String::from_utf8(raw_request(&r)).unwrap();
        assert!(
            text.ends_with("Content-Length: 0\r\nX: y\r\n\r\nhi=test"),
            "{text}"
        );
        assert_eq!(declared_length(&r.headers, r.body.len()), Some(0));
        // Longer than the body, or not a number: the body's length.
        for declared in ["64200", "abc", "7"] {
            let r = row(&[("Content-Length", declared)], "1234567");
            assert_eq!(
                declared_length(&r.headers, r.body.len()),
                None,
                "{declared}"
            );
            let text = String::from_utf8(raw_request(&r)).unwrap();
            assert!(text.contains("Content-Length: 7\r\n"), "{text}");
        }
    }

    #[test]
    fn chunked_rows_are_sent_as_written() {
        let r = row(
            &[("Content-Length", "7"), ("Transfer-Encoding", "chunked")],
            "3\r\nabc\r\n0\r\n\r\n",
        );
        let text = String::from_utf8(raw_request(&r)).unwrap();
        assert!(text.contains("Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n"));
    }

    #[test]
    fn classification() {
        let resp = |status: u16, headers: &[(&str, &str)], body: &str| RawResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        let ours = resp(403, &[], r#"{"error":"threat_detected","request_id":"x"}"#);
        assert_eq!(classify(Some(&ours), "threat_detected"), Outcome::Blocked);
        let other403 = resp(403, &[], r#"{"error":"denied"}"#);
        assert_eq!(
            classify(Some(&other403), "threat_detected"),
            Outcome::RejectedByEnvoy
        );
        let up = resp(200, &[("x-upstream", "echo")], "{}");
        assert_eq!(classify(Some(&up), "threat_detected"), Outcome::Passed);
        let bad = resp(400, &[], "Bad Request");
        assert_eq!(
            classify(Some(&bad), "threat_detected"),
            Outcome::RejectedByEnvoy
        );
        assert_eq!(classify(None, "threat_detected"), Outcome::RejectedByEnvoy);
        let crash = resp(503, &[], "");
        assert_eq!(classify(Some(&crash), "threat_detected"), Outcome::Other);
    }
}
