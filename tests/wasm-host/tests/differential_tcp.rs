//! tcp-guard's end-to-end cases in a real Envoy (network filter before `tcp_proxy`) and
//! in-process on both runtimes, connection by connection in the same order: closed or
//! forwarded, to which upstream (the SNI route the filter sets through
//! `set_envoy_filter_state`), with which bytes, and the same counters at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::tcp::{
    connect_from, network_wasm_typed_config, read_reply, tcp_proxy_listener, Seen,
};
use envoy_harness::{modules, Envoy, EnvoyConfig, TcpEchoServer};
use serde_json::json;
use std::io::Write;
use std::time::Duration;
use wasm_host::{Connection, Plugin, RuntimeKind, TcpVerdict, Vm};

/// A connection: source address, what the client writes (one write per chunk).
type Case = (&'static str, Vec<Vec<u8>>);

/// A real ClientHello offering h2 and http/1.1, as the e2e test sends.
fn client_hello(sni: &str) -> Vec<u8> {
    test_support::tls::client_hello(sni, &["h2", "http/1.1"])
}

/// The cluster a `set_envoy_filter_state` call routes to (the value field of
/// `SetEnvoyFilterStateArguments`), as the upstream's name.
fn routed_upstream(calls: &[(String, Vec<u8>)]) -> String {
    for (name, args) in calls {
        if name != "set_envoy_filter_state" {
            continue;
        }
        // Two length-delimited fields: 0x0a key, 0x12 value (lengths < 128 here).
        let (klen, rest) = (args[1] as usize, &args[2..]);
        let rest = &rest[klen..];
        assert_eq!(rest[0], 0x12);
        let value = String::from_utf8(rest[2..2 + rest[1] as usize].to_vec()).unwrap();
        return value.trim_start_matches("upstream_").to_string();
    }
    "default".into()
}

fn differential(config: &str, cases: &[Case]) {
    let module = modules::module("tcp-guard").unwrap();
    let wasm = std::fs::read(&module).unwrap();
    let (default, a, b) = (
        TcpEchoServer::start("default").unwrap(),
        TcpEchoServer::start("a").unwrap(),
        TcpEchoServer::start("b").unwrap(),
    );
    let mut cfg = EnvoyConfig::new(default.addr())
        .cluster("upstream_a", a.addr())
        .cluster("upstream_b", b.addr());
    cfg.http_listener = false;
    let filter = json!({"name": "tcp-guard", "typed_config": network_wasm_typed_config("tcp-guard", &module, config)});
    cfg.extra_listeners = vec![tcp_proxy_listener("tcp", 0, vec![filter], "upstream")];
    let envoy = Envoy::start(cfg).unwrap();
    let mut envoy_seen = Vec::new();
    for (from, chunks) in cases {
        let mut s = connect_from(from.parse().unwrap(), envoy.listener("tcp")).unwrap();
        let mut failed = false;
        for c in chunks {
            if s.write_all(c).is_err() {
                failed = true;
                break;
            }
            if chunks.len() > 1 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let total: usize = chunks.iter().map(Vec::len).sum();
        envoy_seen.push(if failed {
            Seen::Closed
        } else {
            read_reply(&mut s, total).unwrap()
        });
    }
    let stats = envoy.stats().unwrap();
    for rt in RuntimeKind::ALL {
        let mut vm = Vm::start(rt, &wasm, &Plugin::new("tcp-guard", config)).unwrap();
        for (i, ((from, chunks), want)) in cases.iter().zip(&envoy_seen).enumerate() {
            let mut conn = Connection::from_source(from, 40000 + i as u16);
            conn.chunks = chunks.clone();
            let out = vm.tcp(&conn).unwrap();
            let got = match out.verdict {
                TcpVerdict::Closed => Seen::Closed,
                TcpVerdict::Forwarded => Seen::Upstream {
                    name: routed_upstream(&out.foreign_calls),
                    echoed: out.upstream_bytes,
                },
                TcpVerdict::Paused => panic!("case {i}: paused in-process"),
            };
            assert_eq!(
                &got, want,
                "tcp-guard on {rt}, case {i} from {from}: in-process (left) vs Envoy (right)"
            );
        }
        assert_eq!(
            vm.state_ref().counter_differing_from(&stats),
            None,
            "tcp-guard on {rt}: a counter (name, in-process, Envoy)"
        );
    }
}

#[test]
fn source_cidrs() {
    differential(
        r#"{"source": {"allow": ["127.0.0.0/29"], "deny": ["127.0.0.2/32"]}}"#,
        &[
            ("127.0.0.1", vec![b"hi".to_vec()]),
            ("127.0.0.3", vec![b"hi".to_vec()]),
            ("127.0.0.2", vec![b"hi".to_vec()]),
            ("127.0.0.9", vec![b"hi".to_vec()]),
        ],
    );
}

#[test]
fn tls_sni_routing_and_protocols() {
    let config = r#"{
        "inspect": {"protocols": ["tls"], "timeout_ms": 10000},
        "sni": {
            "allow": ["*.example.com"],
            "routes": {"a.example.com": "upstream_a", "*.b.example.com": "upstream_b", "b.example.com": "upstream_b"}
        }
    }"#;
    let bytes = |h: Vec<u8>| h.into_iter().map(|b| vec![b]).collect::<Vec<_>>();
    let mut corrupt = client_hello("a.example.com");
    corrupt[9] = 0x09;
    differential(
        config,
        &[
            ("127.0.0.1", vec![client_hello("a.example.com")]),
            ("127.0.0.1", vec![client_hello("x.b.example.com")]),
            ("127.0.0.1", vec![client_hello("c.example.com")]),
            ("127.0.0.4", bytes(client_hello("b.example.com"))),
            ("127.0.0.1", vec![client_hello("evil.test")]),
            (
                "127.0.0.1",
                vec![b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n".to_vec()],
            ),
            ("127.0.0.1", vec![b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()]),
            (
                "127.0.0.1",
                vec![b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()],
            ),
            (
                "127.0.0.1",
                vec![vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]],
            ),
            ("127.0.0.1", vec![corrupt]),
        ],
    );
}
