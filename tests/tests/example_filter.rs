//! The example filter in a real Envoy: header added, deny works, bad configs refused with the
//! field named (at startup and on a live ECDS update), and Envoy keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry};
use std::time::Duration;

const DENY_CONFIG: &str = r#"{
    "response_header": {"name": "x-example-filter", "value": "v1"},
    "deny": {"header": {"name": "x-deny"}, "status": 403, "message": "no"}
}"#;

fn example(config: &str) -> FilterEntry {
    FilterEntry::wasm("example", modules::module("example").unwrap(), config)
}

#[test]
fn adds_response_header_and_forwards_request() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(example(DENY_CONFIG))).unwrap();
    let resp = Client::new()
        .request(
            "POST",
            &envoy.url("/hello?x=1"),
            &[("x-custom", "abc")],
            b"payload",
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("x-example-filter"), Some("v1"));
    let seen = resp.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/hello?x=1");
    assert_eq!(seen["body"], "payload");
    assert_eq!(resp.upstream_header("x-custom").as_deref(), Some("abc"));
    assert_eq!(envoy.stat("wasmcustom.example_requests_total"), 1);
}

/// The same module without Envoy: `wasm_host` loads the built `.wasm` in-process (Wasmtime
/// here; `RuntimeKind::Interpreter` for wasmi) and drives a request the way Envoy does, in
/// milliseconds. `tests/wasm-host/tests/differential.rs` proves both agree with Envoy.
#[test]
fn in_process_denies_by_header_and_counts() {
    use wasm_host::{Plugin, Request, RuntimeKind, Vm};
    let wasm = std::fs::read(modules::module("example").unwrap()).unwrap();
    let mut vm = Vm::start(
        RuntimeKind::Wasmtime,
        &wasm,
        &Plugin::new("example", DENY_CONFIG),
    )
    .unwrap();
    let denied = vm
        .http(
            &Request::new("GET", "/secret")
                .header("x-deny", "1")
                .header("x-request-id", "req-42"),
        )
        .unwrap();
    assert_eq!(denied.status(), 403);
    let body: serde_json::Value = serde_json::from_slice(denied.response_body()).unwrap();
    assert_eq!(body["request_id"], "req-42");
    let ok = vm.http(&Request::new("GET", "/open")).unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        wasm_host::header(&ok.response.headers, "x-example-filter"),
        Some(&b"v1"[..])
    );
    assert_eq!(vm.state_ref().metric("example_denied_total"), Some(1));
    assert_eq!(vm.state_ref().metric("example_requests_total"), Some(2));
}

#[test]
fn denies_by_header_without_reaching_upstream() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(example(DENY_CONFIG))).unwrap();
    let client = Client::new();
    let resp = client
        .request(
            "GET",
            &envoy.url("/secret"),
            &[("x-deny", "1"), ("x-request-id", "req-42")],
            b"",
        )
        .unwrap();
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.header("x-upstream"),
        None,
        "upstream must not be reached"
    );
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let body = resp.json();
    assert_eq!(body["request_id"], "req-42");
    assert_eq!(body["message"], "no");
    assert!(
        !resp.body.contains("secret"),
        "denial echoes request data: {}",
        resp.body
    );
    // Local replies pass through the response path too.
    assert_eq!(resp.header("x-example-filter"), Some("v1"));

    let ok = client.get(&envoy.url("/open")).unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(envoy.stat("wasmcustom.example_denied_total"), 1);
    assert_eq!(envoy.stat("wasmcustom.example_requests_total"), 2);
    let prom = envoy.prometheus().unwrap();
    assert!(
        prom.contains("example_denied_total{} 1"),
        "Prometheus name: {prom}"
    );
}

#[test]
fn bad_config_at_startup_is_refused_naming_the_field() {
    let echo = EchoServer::start("echo").unwrap();
    let bad = r#"{"deny": {"header": {"name": "x-deny"}, "stauts": 403}}"#;
    let log = Envoy::start_expecting_failure(
        EnvoyConfig::new(echo.addr())
            .filter(example(bad))
            .inline_filters(),
    )
    .unwrap();
    assert!(
        log.contains("invalid configuration at `deny.stauts`: unknown field `stauts`"),
        "log does not name the field:\n{log}"
    );
}

#[test]
fn bad_live_update_is_rejected_and_old_filter_keeps_serving() {
    let echo = EchoServer::start("echo").unwrap();
    let mut envoy =
        Envoy::start(EnvoyConfig::new(echo.addr()).filter(example(DENY_CONFIG))).unwrap();
    let client = Client::new();
    let pid = envoy.pid();
    let before = client.get(&envoy.url("/")).unwrap();
    assert_eq!(before.header("x-example-filter"), Some("v1"));

    // A config the filter rejects: the update is refused, the old filter stays.
    let bad = r#"{"deny": {"header": {"name": "x-deny", "value": {"regex": "("}}}}"#;
    envoy.update_filter(example(bad)).unwrap();
    let rejected = "extension_config_discovery.http_filter.example.update_rejected";
    assert!(
        envoy.wait_for_stat(rejected, 1, Duration::from_secs(20)),
        "update not rejected"
    );
    assert!(
        envoy.wait_for_log(
            "invalid configuration at `deny.header.value.regex`",
            Duration::from_secs(5)
        ),
        "log does not name the field"
    );
    for _ in 0..20 {
        let r = client.get(&envoy.url("/")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("x-example-filter"),
            Some("v1"),
            "old filter must keep serving"
        );
    }
    assert_eq!(
        client
            .request("GET", &envoy.url("/"), &[("x-deny", "1")], b"")
            .unwrap()
            .status,
        403
    );

    // A good update afterwards is applied: the rejection above was not a dead update path.
    let good = DENY_CONFIG.replace("\"v1\"", "\"v2\"");
    envoy.update_filter(example(&good)).unwrap();
    let success = "extension_config_discovery.http_filter.example.update_success";
    assert!(
        envoy.wait_for_stat(success, 2, Duration::from_secs(20)),
        "good update not applied"
    );
    let mut seen_v2 = false;
    for _ in 0..100 {
        if client
            .get(&envoy.url("/"))
            .unwrap()
            .header("x-example-filter")
            == Some("v2")
        {
            seen_v2 = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen_v2, "new config not observed");
    assert_eq!(envoy.pid(), pid);
}
