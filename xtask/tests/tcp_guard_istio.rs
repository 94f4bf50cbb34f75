//! tcp-guard under Istio: `cargo xtask up --plugins` renders the TCP listener as istiod does
//! (`tcp_proxy` without `max_early_data_bytes`). With the shipped EnvoyFilter
//! (`istio/base/tcp-guard-early-data.yaml`) in the manifests, tcp-guard sees the ClientHello and
//! routes by SNI; without it, tcp-guard sees no byte and, as documented (`inspect.no_data:
//! deny` in the shipped manifest), closes every connection at the timeout, counted in
//! `tcp_guard_no_data_total`, with nothing reaching an upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use envoy_harness::tcp::{connect_from, read_reply, Seen};
use envoy_harness::Client;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use test_support::tls::client_hello;

/// The shipped dev overlay's tcp-guard WasmPlugin (SNI routes added) and, if `early_data`, the
/// shipped EnvoyFilter, as one YAML file.
fn manifests(istio: &Path, dir: &Path, early_data: bool) -> std::path::PathBuf {
    let docs = kustomize(&istio.join("overlays/dev"));
    let mut plugin = docs
        .iter()
        .find(|d| d["kind"] == "WasmPlugin" && d["metadata"]["name"] == "tcp-guard")
        .unwrap()
        .clone();
    let config = &mut plugin["spec"]["pluginConfig"];
    assert_eq!(
        config["inspect"]["no_data"], "deny",
        "the shipped manifest fails closed"
    );
    config["inspect"]["timeout_ms"] = json!(1000);
    config["sni"] = json!({
        "allow": ["a.example.com", "*.b.example.com"],
        "routes": {"a.example.com": "svc_a", "*.b.example.com": "svc_b"}
    });
    let mut out = vec![plugin];
    let filters: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == "EnvoyFilter")
        .collect();
    assert_eq!(filters.len(), 1, "the overlay ships one EnvoyFilter");
    assert_eq!(filters[0]["metadata"]["name"], "tcp-guard-early-data");
    if early_data {
        out.extend(filters);
    }
    // JSON documents are YAML documents.
    let text: Vec<String> = out.iter().map(Value::to_string).collect();
    let path = dir.join(if early_data {
        "with.yaml"
    } else {
        "without.yaml"
    });
    std::fs::write(&path, text.join("\n---\n")).unwrap();
    path
}

fn up(dirs: &UpDirs, early_data: bool, istio: &Path) -> UpProcess {
    let plugins = manifests(istio, dirs.root.path(), early_data);
    UpProcess::plugins(dirs, &plugins, &["--tcp-port", "0"])
}

fn send(to: SocketAddr, bytes: &[u8]) -> Seen {
    let mut conn = connect_from("127.0.0.1".parse().unwrap(), to).unwrap();
    conn.write_all(bytes).unwrap();
    read_reply(&mut conn, bytes.len()).unwrap()
}

fn stat(admin: &str, name: &str) -> u64 {
    let stats = Client::new().get(&format!("{admin}/stats")).unwrap().body;
    stats
        .lines()
        .find_map(|l| l.strip_suffix_value(name))
        .unwrap_or(0)
}

trait StatLine {
    fn strip_suffix_value(&self, name: &str) -> Option<u64>;
}

impl StatLine for str {
    /// `...NAME: VALUE` -> VALUE.
    fn strip_suffix_value(&self, name: &str) -> Option<u64> {
        let (k, v) = self.rsplit_once(": ")?;
        k.ends_with(name).then(|| v.trim().parse().ok())?
    }
}

#[test]
fn routes_by_sni_with_the_shipped_envoy_filter_and_fails_closed_without_it() {
    let dirs = UpDirs::new();
    let istio = copy_istio(dirs.root.path());
    dirs.add_module("tcp-guard");

    // Istio's listener plus the shipped EnvoyFilter: SNI routes reach their clusters.
    let with = up(&dirs, true, &istio);
    with.wait_line("applied EnvoyFilter tcp-guard-early-data configPatches[0]");
    let (tcp, admin) = (with.tcp_addr(), with.admin());
    let hello_a = client_hello("a.example.com", &[]);
    let hello_b = client_hello("x.b.example.com", &[]);
    assert_eq!(
        send(tcp, &hello_a),
        Seen::Upstream {
            name: "svc_a".into(),
            echoed: hello_a.clone()
        }
    );
    assert_eq!(
        send(tcp, &hello_b),
        Seen::Upstream {
            name: "svc_b".into(),
            echoed: hello_b.clone()
        }
    );
    assert_eq!(send(tcp, &client_hello("evil.test", &[])), Seen::Closed);
    assert_eq!(stat(&admin, "tcp_guard_routed_svc_a_total"), 1);
    assert_eq!(stat(&admin, "tcp_guard_routed_svc_b_total"), 1);
    assert_eq!(stat(&admin, "tcp_guard_sni_denied_total"), 1);
    assert_eq!(stat(&admin, "tcp_guard_no_data_total"), 0);
    drop(with);

    // The same WasmPlugin as istiod renders it alone: tcp-guard never sees the ClientHello,
    // and every connection is closed at the timeout and counted as no data.
    let without = up(&dirs, false, &istio);
    let (tcp, admin) = (without.tcp_addr(), without.admin());
    assert!(!without.output().contains("applied EnvoyFilter"));
    assert_eq!(send(tcp, &hello_a), Seen::Closed);
    assert_eq!(send(tcp, &hello_b), Seen::Closed);
    assert_eq!(stat(&admin, "tcp_guard_no_data_total"), 2);
    assert_eq!(stat(&admin, "tcp_guard_routed_svc_a_total"), 0);
    assert_eq!(stat(&admin, "tcp_guard_allowed_total"), 0);
    for cluster in ["svc_a", "svc_b", "tcp_upstream"] {
        let connects = stat(&admin, &format!("cluster.{cluster}.upstream_cx_total"));
        assert_eq!(connects, 0, "{cluster} was connected");
    }
}
