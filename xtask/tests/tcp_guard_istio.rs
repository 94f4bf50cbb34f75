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
use std::ffi::OsStr;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The first flight of a real TLS client (rustls) for `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

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

fn up(tmp: &Path, plugins: &Path, modules: &Path) -> UpProcess {
    let args: Vec<&OsStr> = vec![
        OsStr::new("--plugins"),
        plugins.as_os_str(),
        OsStr::new("--modules"),
        modules.as_os_str(),
        OsStr::new("--port"),
        OsStr::new("0"),
        OsStr::new("--admin-port"),
        OsStr::new("0"),
        OsStr::new("--tcp-port"),
        OsStr::new("0"),
    ];
    UpProcess::spawn(tmp, &args)
}

fn addresses(up: &UpProcess) -> (SocketAddr, String) {
    let tcp = up.wait_line("guard TCP");
    let tcp = tcp
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap()
        .parse()
        .unwrap();
    let admin = up.wait_line("admin:");
    let admin = admin.split_whitespace().last().unwrap();
    (tcp, admin.trim_end_matches('/').to_string())
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
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    let modules = tmp.path().join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    let module = envoy_harness::modules::module("tcp-guard").unwrap();
    std::fs::copy(&module, modules.join("tcp-guard.wasm")).unwrap();
    let child_tmp = tmp.path().join("tmp");
    std::fs::create_dir_all(&child_tmp).unwrap();

    // Istio's listener plus the shipped EnvoyFilter: SNI routes reach their clusters.
    let with = up(&child_tmp, &manifests(&istio, tmp.path(), true), &modules);
    with.wait_line("applied EnvoyFilter tcp-guard-early-data configPatches[0]");
    let (tcp, admin) = addresses(&with);
    let hello_a = client_hello("a.example.com");
    let hello_b = client_hello("x.b.example.com");
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
    assert_eq!(send(tcp, &client_hello("evil.test")), Seen::Closed);
    assert_eq!(stat(&admin, "tcp_guard_routed_svc_a_total"), 1);
    assert_eq!(stat(&admin, "tcp_guard_routed_svc_b_total"), 1);
    assert_eq!(stat(&admin, "tcp_guard_sni_denied_total"), 1);
    assert_eq!(stat(&admin, "tcp_guard_no_data_total"), 0);
    drop(with);

    // The same WasmPlugin as istiod renders it alone: tcp-guard never sees the ClientHello,
    // and every connection is closed at the timeout and counted as no data.
    let without = up(&child_tmp, &manifests(&istio, tmp.path(), false), &modules);
    let (tcp, admin) = addresses(&without);
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
