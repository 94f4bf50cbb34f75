//! The threat-score filter in a real Envoy: block, tag and detect modes; attacks in every place
//! the engine looks (query, urlencoded/JSON/multipart bodies, cookies); body limits both ways;
//! Envoy's failure policy with a failed VM; a bad config refused naming the field; hostile
//! inputs that must not crash the VM; and a seeded corpus sample that must agree with the
//! native engine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::corpus::{self, Outcome};
use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FailurePolicy, FilterEntry};
use std::time::Duration;

const NAME: &str = "threat-score";
const BLOCK_ERROR: &str = "threat_detected";
/// Envoy flushes its log file every 10 s by default; waits return as soon as the line is there.
const LOG_WAIT: Duration = Duration::from_secs(25);

fn threat(config: &str) -> FilterEntry {
    FilterEntry::wasm(NAME, modules::module(NAME).unwrap(), config)
}

/// Filters log decisions at debug only: the tests that read them raise the Wasm component.
fn start(config: &str) -> (EchoServer, Envoy) {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr())
            .wasm_log_level("debug")
            .filter(threat(config)),
    )
    .unwrap();
    (echo, envoy)
}

fn stat(envoy: &Envoy, metric: &str) -> u64 {
    envoy.stat(&format!("wasmcustom.threat_score_{metric}"))
}

/// What Envoy logs when a Wasm VM fails (a trap in a callback): checked absent after hostile
/// inputs, and present in the failure-policy test, so the absence check is known to work.
fn vm_failure_logged(log: &str) -> bool {
    log.contains("Uncaught RuntimeError") || log.contains("Wasm VM failed")
}

/// (what, path, headers, body).
type Attack = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    String,
);

/// An attack in each place the engine looks; each must be blocked.
fn attacks() -> Vec<Attack> {
    let boundary = "----x1234";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n1' UNION SELECT password FROM users--\r\n--{boundary}--\r\n"
    );
    vec![
        (
            "sqli in query",
            "/items?id=1%27%20OR%20%271%27%3D%271",
            vec![],
            String::new(),
        ),
        (
            "xss in query",
            "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
            vec![],
            String::new(),
        ),
        (
            "sqli in urlencoded body",
            "/login",
            vec![("content-type", "application/x-www-form-urlencoded")],
            "user=admin%27--&pass=x".to_string(),
        ),
        (
            "xss in JSON body",
            "/api/comments",
            vec![("content-type", "application/json")],
            r#"{"comment": {"text": "<img src=x onerror=alert(1)>"}}"#.to_string(),
        ),
        (
            "sqli in multipart body",
            "/upload",
            vec![("content-type", "multipart/form-data; boundary=----x1234")],
            multipart,
        ),
        (
            "xss in cookie",
            "/home",
            vec![("cookie", "theme=<script>alert(1)</script>")],
            String::new(),
        ),
        (
            "sqli in cookie",
            "/home",
            vec![("cookie", "session=1' or '1'='1")],
            String::new(),
        ),
    ]
}

#[test]
fn block_mode_blocks_attacks_everywhere_without_echoing_them() {
    let (_echo, envoy) = start(r#"{"mode": "block"}"#);
    let client = Client::new();
    let cases = attacks();
    for (i, (what, path, headers, body)) in cases.iter().enumerate() {
        let rid = format!("rid-{i}");
        let mut hs = headers.clone();
        hs.push(("x-request-id", &rid));
        let method = if body.is_empty() { "GET" } else { "POST" };
        let r = client
            .request(method, &envoy.url(path), &hs, body.as_bytes())
            .unwrap();
        assert_eq!(r.status, 403, "{what}: {r:?}");
        assert_eq!(r.header("x-upstream"), None, "{what}: reached the upstream");
        let json = r.json();
        assert_eq!(json["error"], BLOCK_ERROR, "{what}");
        assert_eq!(json["request_id"], rid.as_str(), "{what}");
        for needle in ["script", "alert", "UNION", "OR", "'", "admin", "onerror"] {
            assert!(
                !r.body.contains(needle),
                "{what}: 403 body echoes `{needle}`: {}",
                r.body
            );
        }
    }
    let ok = client.get(&envoy.url("/search?q=blue+shoes")).unwrap();
    assert_eq!(ok.status, 200);
    let form = client
        .request(
            "POST",
            &envoy.url("/login"),
            &[("content-type", "application/x-www-form-urlencoded")],
            b"user=alice&pass=correct+horse",
        )
        .unwrap();
    assert_eq!(form.status, 200, "{form:?}");
    assert_eq!(form.json()["body"], "user=alice&pass=correct+horse");

    let n = cases.len() as u64;
    assert_eq!(stat(&envoy, "blocked_total"), n);
    assert_eq!(stat(&envoy, "requests_total"), n + 2);
    assert!(stat(&envoy, "category_sqli_total") >= 4);
    assert!(stat(&envoy, "category_xss_total") >= 3);
    // One log line per blocked request, with score and categories and no payload.
    // Envoy flushes its log file every 100 ms: wait for the last blocked request's line, not
    // the first (on a loaded machine the first can be on disk before the others).
    let last = format!("threat-score: blocked request_id=rid-{} score=", n - 1);
    assert!(envoy.wait_for_log(&last, LOG_WAIT));
    let log = envoy.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("threat-score: blocked"))
        .collect();
    assert_eq!(lines.len(), cases.len(), "{lines:#?}");
    assert!(lines
        .iter()
        .all(|l| l.contains("categories=") && !l.contains("alert(")));
}

#[test]
fn tag_mode_forwards_with_headers_and_strips_client_copies() {
    let (_echo, envoy) = start(r#"{"mode": "tag"}"#);
    let client = Client::new();
    let r = client
        .request(
            "GET",
            &envoy.url("/items?id=1%27%20OR%20%271%27%3D%271"),
            &[("x-threat-score", "0"), ("x-threat-categories", "none")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let score: u32 = r
        .upstream_header("x-threat-score")
        .unwrap()
        .parse()
        .unwrap();
    assert!(score >= 5, "score {score}");
    let cats = r.upstream_header("x-threat-categories").unwrap();
    assert!(cats.split(',').any(|c| c == "sqli"), "{cats}");
    let seen = r.json()["headers"].as_array().unwrap().clone();
    let copies = seen.iter().filter(|h| h[0] == "x-threat-score").count();
    assert_eq!(copies, 1, "client copy not replaced: {seen:?}");

    // A clean request with forged headers: both removed, nothing added.
    let clean = client
        .request(
            "GET",
            &envoy.url("/items?id=42"),
            &[("x-threat-score", "99"), ("x-threat-categories", "sqli")],
            b"",
        )
        .unwrap();
    assert_eq!(clean.status, 200);
    assert_eq!(clean.upstream_header("x-threat-score"), None);
    assert_eq!(clean.upstream_header("x-threat-categories"), None);
    assert_eq!(stat(&envoy, "tagged_total"), 1);
    assert_eq!(stat(&envoy, "stripped_total"), 2);
}

#[test]
fn detect_mode_forwards_unchanged_logs_and_counts() {
    let (_echo, envoy) = start(r#"{"mode": "detect"}"#);
    let r = Client::new()
        .request(
            "GET",
            &envoy.url("/search?q=%3Cscript%3Ealert(1)%3C/script%3E"),
            &[("x-request-id", "det-1")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("x-threat-score"), None);
    assert_eq!(stat(&envoy, "detected_total"), 1);
    assert_eq!(stat(&envoy, "blocked_total"), 0);
    assert!(stat(&envoy, "category_xss_total") >= 1);
    assert!(envoy.wait_for_log("detected request_id=det-1", LOG_WAIT));
}

#[test]
fn body_limit_passes_or_blocks_as_configured() {
    // 4 KiB of filler, then an attack past the 1 KiB inspection limit.
    let mut body = format!("note={}", "a".repeat(4096));
    body.push_str("&q=%3Cscript%3Ealert(1)%3C/script%3E");
    let headers = [("content-type", "application/x-www-form-urlencoded")];

    let (_echo, pass) = start(r#"{"limits": {"body_bytes": {"max": 1024, "on_exceed": "pass"}}}"#);
    let r = Client::new()
        .request("POST", &pass.url("/form"), &headers, body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200, "pass: the uninspected rest goes through");
    assert_eq!(r.json()["body"].as_str().map(str::len), Some(body.len()));
    assert_eq!(stat(&pass, "limit_body_size_total"), 1);
    // An attack inside the inspected prefix is still blocked.
    let r = Client::new()
        .request(
            "POST",
            &pass.url("/form"),
            &headers,
            format!("q=%3Cscript%3Ealert(1)%3C/script%3E&{}", "a".repeat(4096)).as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 403);

    let (_echo2, block) =
        start(r#"{"limits": {"body_bytes": {"max": 1024, "on_exceed": "block"}}}"#);
    let big = format!("note={}", "a".repeat(4096));
    let r = Client::new()
        .request("POST", &block.url("/form"), &headers, big.as_bytes())
        .unwrap();
    assert_eq!(r.status, 403, "block: a body past the limit is refused");
    assert_eq!(stat(&block, "limit_body_size_total"), 1);
    let small = Client::new()
        .request("POST", &block.url("/form"), &headers, b"note=hello")
        .unwrap();
    assert_eq!(small.status, 200);
}

#[test]
fn failure_policy_decides_what_a_failed_vm_does() {
    let trap = envoy_harness::workspace_root().join("tests/fixtures/trap.wasm");
    let echo = EchoServer::start("echo").unwrap();
    let closed =
        Envoy::start(EnvoyConfig::new(echo.addr()).filter(FilterEntry::wasm("trap", &trap, "{}")))
            .unwrap();
    let r = Client::new().get(&closed.url("/")).unwrap();
    assert_eq!(r.status, 503, "fail closed: {r:?}");

    assert!(closed.wait_for_log("Uncaught RuntimeError", LOG_WAIT));
    assert!(vm_failure_logged(&closed.log()));

    let open = Envoy::start(
        EnvoyConfig::new(echo.addr())
            .filter(FilterEntry::wasm("trap", &trap, "{}").failure(FailurePolicy::FailOpen)),
    )
    .unwrap();
    let client = Client::new();
    let statuses: Vec<u16> = (0..3)
        .map(|_| client.get(&open.url("/")).unwrap().status)
        .collect();
    // The first request meets the trap; once the VM is marked failed, the filter is skipped.
    assert_eq!(statuses.last(), Some(&200), "fail open: {statuses:?}");
}

#[test]
fn bad_config_is_refused_naming_the_field() {
    let echo = EchoServer::start("echo").unwrap();
    let log = Envoy::start_expecting_failure(
        EnvoyConfig::new(echo.addr())
            .filter(threat(
                r#"{"limits": {"decode_rounds": {"max": 0, "on_exceed": "block"}}}"#,
            ))
            .inline_filters(),
    )
    .unwrap();
    assert!(
        log.contains("invalid configuration at `limits.decode_rounds.max`"),
        "{log}"
    );
    let log = Envoy::start_expecting_failure(
        EnvoyConfig::new(echo.addr())
            .filter(threat(r#"{"mode": "block", "paranoia": 2}"#))
            .inline_filters(),
    )
    .unwrap();
    assert!(
        log.contains("invalid configuration at `paranoia`: unknown field"),
        "{log}"
    );
}

#[test]
fn hostile_inputs_never_crash_the_vm() {
    let (_echo, envoy) = start(r#"{"mode": "block"}"#);
    let addr = envoy.listener("http");
    let send = |raw: Vec<u8>| corpus::send_raw(addr, &raw, false, Duration::from_secs(30)).unwrap();
    let get = |path: &[u8], extra: &[u8]| {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(path);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\n");
        raw.extend_from_slice(extra);
        raw.extend_from_slice(b"\r\n");
        raw
    };
    let post = |ctype: &str, body: &[u8]| {
        let mut raw = format!(
            "POST /p HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        raw
    };
    let mut statuses = Vec::new();
    // A header value near Envoy's 60 KiB header limit.
    let huge = format!("X-Big: {}\r\n", "a".repeat(58 * 1024));
    statuses.push(("huge header", send(get(b"/", huge.as_bytes()))));
    // Invalid UTF-8 in a header value (obs-text: Envoy's HTTP/1 codec accepts it).
    statuses.push((
        "invalid utf-8 header",
        send(get(b"/", b"X-Bin: \xff\xfe\xc3\x28\r\n")),
    ));
    // Invalid UTF-8 in the path and query.
    statuses.push((
        "invalid utf-8 path",
        send(get(b"/a\xff\xfe/b?q=\xc3\x28", b"")),
    ));
    // Invalid UTF-8 in bodies.
    statuses.push((
        "invalid utf-8 form",
        send(post(
            "application/x-www-form-urlencoded",
            b"a=\xff\xfe&b=\xc3\x28",
        )),
    ));
    statuses.push((
        "invalid utf-8 json",
        send(post("application/json", b"{\"a\": \"\xff\"}")),
    ));
    // Deeply nested JSON (far past serde_json's recursion limit and the depth limit).
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    statuses.push(("deep json", send(post("application/json", deep.as_bytes()))));
    let deep_obj = "{\"a\":".repeat(10_000);
    statuses.push((
        "unterminated json",
        send(post("application/json", deep_obj.as_bytes())),
    ));
    // Endless percent encodings: %25 repeated, then a payload.
    let layered = format!("/q?x={}3Cscript%3E", "%25".repeat(5000));
    statuses.push(("endless encodings", send(get(layered.as_bytes(), b""))));
    // Many arguments and many cookies.
    let args: String = (0..2000).map(|i| format!("a{i}=%27{i}&")).collect();
    statuses.push(("many args", send(get(format!("/m?{args}").as_bytes(), b""))));
    let cookies: String = (0..500).map(|i| format!("c{i}=v{i}; ")).collect();
    statuses.push((
        "many cookies",
        send(get(b"/", format!("Cookie: {cookies}\r\n").as_bytes())),
    ));

    for (what, resp) in &statuses {
        // Any status is acceptable (200, the filter's 403, Envoy's 400/431), a 5xx is not.
        let status = resp.as_ref().map_or(0, |r| r.status);
        assert!(
            resp.is_some() && status < 500,
            "{what}: status {status} (a 5xx or no answer means the filter failed)"
        );
    }
    let client = Client::new();
    for _ in 0..5 {
        assert_eq!(client.get(&envoy.url("/after")).unwrap().status, 200);
    }
    // A blocked request logs a line; once it is in the file, everything before it is too.
    let sentinel = client
        .request(
            "GET",
            &envoy.url("/?q=%3Cscript%3Ealert(1)%3C/script%3E"),
            &[("x-request-id", "sentinel")],
            b"",
        )
        .unwrap();
    assert_eq!(sentinel.status, 403);
    assert!(envoy.wait_for_log("request_id=sentinel", LOG_WAIT));
    let log = envoy.log();
    assert!(!vm_failure_logged(&log), "VM failure in the log:\n{log}");
}

/// The native engine's verdict for a row, with the request built as Envoy hands it to the
/// filter (lowercase header names, `Host` as `:authority`).
fn native_blocks(engine: &threat_score::Engine, row: &corpus::Row) -> bool {
    let headers: Vec<(String, String)> = row
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let req = threat_score::Request {
        method: &row.method,
        uri: &row.uri,
        protocol: Some("HTTP/1.1"),
        headers: &headers,
        body: Some(row.body.as_bytes()),
        body_truncated: false,
    };
    engine.inspect(&req).verdict == threat_score::Verdict::Block
}

#[test]
fn corpus_sample_through_envoy_agrees_with_the_native_engine() {
    let shared = envoy_harness::workspace_root().join("../shared/corpora");
    let files = [
        shared.join("crs-regression/dev.jsonl"),
        shared.join("benign/dev.jsonl"),
    ];
    let files: Vec<_> = if files.iter().all(|f| f.is_file()) {
        files.to_vec()
    } else {
        // Worktrees live one level deeper than the main checkout.
        let alt = envoy_harness::workspace_root().join("../../shared/corpora");
        vec![
            alt.join("crs-regression/dev.jsonl"),
            alt.join("benign/dev.jsonl"),
        ]
    };
    let rows = corpus::load(&files).expect("the shared corpus (../shared/corpora) is required");
    // 200 rows picked by a fixed-seed LCG, so the sample is the same on every run.
    let mut state: u64 = 0x5eed;
    let mut sample = Vec::new();
    while sample.len() < 200 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let i = (state >> 33) as usize % rows.len();
        if !sample.iter().any(|r: &corpus::Row| r.id == rows[i].id) {
            sample.push(rows[i].clone());
        }
    }
    let engine = threat_score::Config::default().compile().unwrap();
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr())
            .concurrency(2)
            .wasm_log_level("debug")
            .filter(threat(r#"{"mode": "block"}"#)),
    )
    .unwrap();
    let results = corpus::replay(envoy.listener("http"), &sample, 4, BLOCK_ERROR);
    let mut compared = 0;
    let mut disagree = Vec::new();
    for (row, r) in sample.iter().zip(&results) {
        assert_ne!(r.outcome, Outcome::Other, "{}: status {}", row.id, r.status);
        if row.expect == "benign" {
            // Envoy itself refuses a few benign rows (a `#fragment` in the path): never the filter.
            assert_ne!(r.outcome, Outcome::Blocked, "benign row {} blocked", row.id);
        }
        if r.outcome == Outcome::RejectedByEnvoy {
            continue;
        }
        compared += 1;
        if (r.outcome == Outcome::Blocked) != native_blocks(&engine, row) {
            disagree.push(row.id.clone());
        }
    }
    assert!(compared >= 180, "only {compared} rows reached the filter");
    // Envoy adds headers (x-request-id, x-forwarded-proto) and moves Host to :authority; the
    // verdict may differ on a few protocol rows, never on many.
    assert!(
        disagree.len() * 50 <= compared,
        "{} of {compared} rows disagree with the native engine: {disagree:?}",
        disagree.len()
    );
    let sentinel = Client::new()
        .request(
            "GET",
            &envoy.url("/?q=%27%20or%20%271%27%3D%271"),
            &[("x-request-id", "sentinel")],
            b"",
        )
        .unwrap();
    assert_eq!(sentinel.status, 403);
    assert!(envoy.wait_for_log("request_id=sentinel", LOG_WAIT));
    assert!(!vm_failure_logged(&envoy.log()));
}
