//! Which build is running: each module logs `NAME VERSION (COMMIT) started` at VM start and sets
//! the gauge `<filter>_build_<version>_<commit>` to 1, for HTTP and network filters alike. The
//! commit is the last one that changed the module's inputs (`envoy_harness::build_id`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::tcp::{network_wasm_typed_config, tcp_proxy_listener};
use envoy_harness::{
    build_id, modules, workspace_root, EchoServer, Envoy, EnvoyConfig, FilterEntry,
};
use serde_json::json;
use std::time::Duration;

fn metric_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[test]
fn an_http_module_logs_and_exposes_its_build() {
    let commit = build_id::commit(&workspace_root(), "example").unwrap();
    assert_ne!(commit, "unknown", "the checkout is a git repository");
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(FilterEntry::wasm(
        "example",
        modules::module("example").unwrap(),
        "",
    )))
    .unwrap();
    let line = format!("example 0.1.0 ({commit}) started");
    assert!(
        envoy.wait_for_log(&line, Duration::from_secs(30)),
        "no `{line}` in the log:\n{}",
        envoy.log()
    );
    let gauge = format!("wasmcustom.example_build_0_1_0_{}", metric_safe(&commit));
    assert!(
        envoy.wait_for_stat(&gauge, 1, Duration::from_secs(10)),
        "{gauge} != 1"
    );
}

#[test]
fn a_network_module_logs_and_exposes_its_build() {
    let commit = build_id::commit(&workspace_root(), "tcp-guard").unwrap();
    let echo = EchoServer::start("echo").unwrap();
    let mut cfg = EnvoyConfig::new(echo.addr());
    cfg.http_listener = false;
    let module = modules::module("tcp-guard").unwrap();
    cfg.extra_listeners = vec![tcp_proxy_listener(
        "tcp",
        0,
        vec![json!({
            "name": "tcp-guard",
            "typed_config": network_wasm_typed_config("tcp-guard", &module, "{}")
        })],
        "upstream",
    )];
    let envoy = Envoy::start(cfg).unwrap();
    let line = format!("tcp-guard 0.1.0 ({commit}) started");
    assert!(
        envoy.wait_for_log(&line, Duration::from_secs(30)),
        "no `{line}` in the log:\n{}",
        envoy.log()
    );
    let gauge = format!("wasmcustom.tcp_guard_build_0_1_0_{}", metric_safe(&commit));
    assert!(
        envoy.wait_for_stat(&gauge, 1, Duration::from_secs(10)),
        "{gauge} != 1"
    );
}
