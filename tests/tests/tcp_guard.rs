//! tcp-guard in a real Envoy, before `tcp_proxy`, with raw TCP clients on loopback: CIDR
//! policy by source address, SNI routing from a real TLS client's ClientHello (whole and in
//! 1-byte writes), protocol allow list, inspection timeout, and per-source limits shared by
//! two workers. Upstreams are plain TCP echo servers that greet with their name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::tcp::{
    connect_from, network_wasm_typed_config, read_reply, tcp_proxy_listener, Seen,
};
use envoy_harness::{modules, Envoy, EnvoyConfig, TcpEchoServer};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

struct Upstreams {
    default: TcpEchoServer,
    a: TcpEchoServer,
    b: TcpEchoServer,
}

impl Upstreams {
    fn start() -> Self {
        Self {
            default: TcpEchoServer::start("default").unwrap(),
            a: TcpEchoServer::start("a").unwrap(),
            b: TcpEchoServer::start("b").unwrap(),
        }
    }

    fn accepted(&self) -> usize {
        self.default.accepted() + self.a.accepted() + self.b.accepted()
    }
}

/// The tcp-guard network filter entry for a listener, configured with `config`.
fn guard(config: &str) -> Value {
    let module = modules::module("tcp-guard").unwrap();
    json!({
        "name": "tcp-guard",
        "typed_config": network_wasm_typed_config("tcp-guard", &module, config)
    })
}

/// Envoy with one TCP listener `tcp`: tcp-guard, then tcp_proxy to cluster `upstream`
/// (clusters `upstream_a` and `upstream_b` exist for SNI routes).
fn start(up: &Upstreams, config: &str, workers: u32) -> Envoy {
    let mut cfg = EnvoyConfig::new(up.default.addr())
        .cluster("upstream_a", up.a.addr())
        .cluster("upstream_b", up.b.addr())
        .concurrency(workers)
        // Refusals are logged at debug only; the tests read them.
        .wasm_log_level("debug");
    cfg.http_listener = false;
    cfg.extra_listeners = vec![tcp_proxy_listener(
        "tcp",
        0,
        vec![guard(config)],
        "upstream",
    )];
    Envoy::start(cfg).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(&format!("wasmcustom.tcp_guard_{name}"))
}

/// Connect from `from`, send `bytes` in one write, report what came back.
fn exchange(envoy: &Envoy, from: &str, bytes: &[u8]) -> Seen {
    let mut s = connect_from(ip(from), envoy.listener("tcp")).unwrap();
    // A refused connection may already be closed: a failed write is part of the answer.
    if s.write_all(bytes).is_err() {
        return Seen::Closed;
    }
    read_reply(&mut s, bytes.len()).unwrap()
}

fn reached(name: &str, bytes: &[u8]) -> Seen {
    Seen::Upstream {
        name: name.into(),
        echoed: bytes.to_vec(),
    }
}

/// The first flight of a real TLS client (rustls) for `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const TLS_ONLY_ROUTING: &str = r#"{
    "inspect": {"protocols": ["tls"], "timeout_ms": 10000},
    "sni": {
        "allow": ["*.example.com"],
        "routes": {"a.example.com": "upstream_a", "*.b.example.com": "upstream_b", "b.example.com": "upstream_b"}
    }
}"#;

#[test]
fn source_cidrs_admit_and_refuse_by_loopback_address() {
    let up = Upstreams::start();
    let envoy = start(
        &up,
        r#"{"source": {"allow": ["127.0.0.0/29"], "deny": ["127.0.0.2/32"]}}"#,
        1,
    );
    assert_eq!(
        exchange(&envoy, "127.0.0.1", b"hi"),
        reached("default", b"hi")
    );
    assert_eq!(
        exchange(&envoy, "127.0.0.3", b"hi"),
        reached("default", b"hi")
    );
    assert_eq!(
        exchange(&envoy, "127.0.0.2", b"hi"),
        Seen::Closed,
        "in source.deny"
    );
    assert_eq!(
        exchange(&envoy, "127.0.0.9", b"hi"),
        Seen::Closed,
        "outside source.allow"
    );
    assert_eq!(stat(&envoy, "denied_cidr_total"), 2);
    assert_eq!(stat(&envoy, "allowed_total"), 2);
    assert_eq!(
        up.accepted(),
        2,
        "refused connections never reach an upstream"
    );
    assert!(
        envoy.wait_for_log("source matches source.deny[0] (127.0.0.2/32)", WAIT),
        "the log names the rule"
    );
}

#[test]
fn tls_client_hello_routes_by_sni_whole_or_byte_by_byte() {
    let up = Upstreams::start();
    let envoy = start(&up, TLS_ONLY_ROUTING, 1);

    let hello_a = client_hello("a.example.com");
    assert_eq!(
        exchange(&envoy, "127.0.0.1", &hello_a),
        reached("a", &hello_a)
    );
    let hello_b = client_hello("x.b.example.com");
    assert_eq!(
        exchange(&envoy, "127.0.0.1", &hello_b),
        reached("b", &hello_b)
    );
    // Allowed by sni.allow but no route: tcp_proxy's own cluster.
    let hello_c = client_hello("c.example.com");
    assert_eq!(
        exchange(&envoy, "127.0.0.1", &hello_c),
        reached("default", &hello_c)
    );

    // The same ClientHello in 1-byte writes. Until it is complete nothing is decided and no
    // upstream connection exists: tcp_proxy has not even started.
    let upstream_cx = |e: &Envoy| -> u64 {
        ["upstream", "upstream_a", "upstream_b"]
            .iter()
            .map(|c| e.stat(&format!("cluster.{c}.upstream_cx_total")))
            .sum()
    };
    let before = (up.accepted(), upstream_cx(&envoy));
    let hello = client_hello("b.example.com");
    let mut s = connect_from(ip("127.0.0.4"), envoy.listener("tcp")).unwrap();
    for byte in &hello[..hello.len() - 1] {
        s.write_all(std::slice::from_ref(byte)).unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        (up.accepted(), upstream_cx(&envoy)),
        before,
        "an upstream was connected before the ClientHello was complete"
    );
    s.write_all(&hello[hello.len() - 1..]).unwrap();
    assert_eq!(
        read_reply(&mut s, hello.len()).unwrap(),
        reached("b", &hello)
    );

    assert_eq!(stat(&envoy, "routed_upstream_a_total"), 1);
    assert_eq!(stat(&envoy, "routed_upstream_b_total"), 2);
    assert_eq!(stat(&envoy, "detected_tls_total"), 4);
    assert_eq!(envoy.stat("cluster.upstream_a.upstream_cx_total"), 1);
    assert_eq!(envoy.stat("cluster.upstream_b.upstream_cx_total"), 2);

    // SNI outside the allow list: closed, counted, upstream untouched.
    let accepted = up.accepted();
    assert_eq!(
        exchange(&envoy, "127.0.0.1", &client_hello("evil.test")),
        Seen::Closed
    );
    assert_eq!(stat(&envoy, "sni_denied_total"), 1);
    assert_eq!(up.accepted(), accepted);
}

#[test]
fn http_ssh_and_malformed_tls_to_a_tls_only_listener_are_closed_and_counted() {
    let up = Upstreams::start();
    let envoy = start(&up, TLS_ONLY_ROUTING, 1);
    let http = b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n";
    assert_eq!(exchange(&envoy, "127.0.0.1", http), Seen::Closed);
    assert_eq!(
        exchange(&envoy, "127.0.0.1", b"SSH-2.0-OpenSSH_9.6\r\n"),
        Seen::Closed
    );
    assert_eq!(
        exchange(&envoy, "127.0.0.1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Seen::Closed
    );
    // A handshake record whose message is not a ClientHello.
    let bogus = [0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00];
    assert_eq!(exchange(&envoy, "127.0.0.1", &bogus), Seen::Closed);
    // A real ClientHello with its version field corrupted (record header 5 bytes, handshake
    // header 4, then the version).
    let mut corrupt = client_hello("a.example.com");
    corrupt[9] = 0x09;
    assert_eq!(exchange(&envoy, "127.0.0.1", &corrupt), Seen::Closed);

    assert_eq!(stat(&envoy, "detected_http1_total"), 1);
    assert_eq!(stat(&envoy, "detected_ssh_total"), 1);
    assert_eq!(stat(&envoy, "detected_http2_total"), 1);
    assert_eq!(stat(&envoy, "protocol_denied_total"), 3);
    assert_eq!(
        stat(&envoy, "malformed_total"),
        2,
        "malformed ClientHellos are counted"
    );
    assert_eq!(stat(&envoy, "allowed_total"), 0);
    assert_eq!(up.accepted(), 0, "nothing reached an upstream");
    assert!(envoy.wait_for_log("protocol http1 is not in inspect.protocols", WAIT));
    // Still serving.
    let hello = client_hello("a.example.com");
    assert_eq!(exchange(&envoy, "127.0.0.1", &hello), reached("a", &hello));
}

#[test]
fn inspection_timeout_closes_silent_clients_or_admits_them_as_other() {
    let up = Upstreams::start();
    // TLS only: a client that sends nothing is closed when the timeout fires, counted as no
    // data (apart from `other`), as `other` is not admitted and `inspect.no_data` is absent.
    let envoy = start(
        &up,
        r#"{"inspect": {"protocols": ["tls"], "timeout_ms": 300}}"#,
        1,
    );
    let mut s = connect_from(ip("127.0.0.1"), envoy.listener("tcp")).unwrap();
    assert_eq!(read_reply(&mut s, 0).unwrap(), Seen::Closed);
    assert_eq!(stat(&envoy, "inspect_timeout_total"), 1);
    assert_eq!(stat(&envoy, "no_data_total"), 1);
    assert_eq!(stat(&envoy, "detected_other_total"), 0);
    assert_eq!(stat(&envoy, "allowed_total"), 0);
    assert_eq!(up.accepted(), 0);
    drop(envoy);

    // `other` allowed (server-first protocols): after the timeout the connection goes through,
    // resumed from the timer, and the upstream speaks first.
    let envoy = start(
        &up,
        r#"{"inspect": {"protocols": ["tls", "other"], "timeout_ms": 300}}"#,
        1,
    );
    let mut s = connect_from(ip("127.0.0.1"), envoy.listener("tcp")).unwrap();
    assert_eq!(read_reply(&mut s, 0).unwrap(), reached("default", b""));
    s.write_all(b"after").unwrap();
    let mut echoed = [0u8; 5];
    std::io::Read::read_exact(&mut s, &mut echoed).unwrap();
    assert_eq!(&echoed, b"after");
    assert_eq!(stat(&envoy, "inspect_timeout_total"), 1);
    assert_eq!(stat(&envoy, "no_data_total"), 1);
    assert_eq!(stat(&envoy, "allowed_total"), 1);
}

/// Per-worker accepted-connection counts of listener `tcp`.
fn per_worker_connections(envoy: &Envoy) -> Vec<u64> {
    // Listener stats are named by the configured address (`127.0.0.1_0`: port 0 in config).
    let stats = envoy.stats().unwrap();
    let mut v: Vec<(String, u64)> = stats
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("listener.127.0.0.1_")
                && k.contains(".worker_")
                && k.ends_with(".downstream_cx_total")
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

#[test]
fn connection_rate_limit_holds_across_two_workers() {
    let up = Upstreams::start();
    let max_tokens = 4u64;
    let envoy = start(
        &up,
        r#"{"connection_rate": {"max_tokens": 4, "tokens_per_fill": 1, "fill_interval": "1h", "max_keys": 64}}"#,
        2,
    );
    // Connect until both workers have had enough connections that per-worker buckets would
    // have admitted more than `max_tokens` in total.
    let (mut admitted, mut refused, mut tries) = (0u64, 0u64, 0);
    loop {
        match exchange(&envoy, "127.0.0.5", b"x") {
            Seen::Upstream { .. } => admitted += 1,
            Seen::Closed => refused += 1,
        }
        tries += 1;
        let per_worker = per_worker_connections(&envoy);
        let per_worker_limit: u64 = per_worker.iter().map(|n| (*n).min(max_tokens)).sum();
        if per_worker.len() == 2 && per_worker_limit >= max_tokens + 2 {
            eprintln!("per-worker connections: {per_worker:?} after {tries} connections");
            break;
        }
        assert!(
            tries < 80,
            "connections never spread over both workers: {per_worker:?}"
        );
    }
    assert_eq!(admitted, max_tokens, "one bucket for both workers");
    assert_eq!(stat(&envoy, "rate_limited_total"), refused);
    assert_eq!(up.accepted() as u64, max_tokens);
    // Another source has its own bucket.
    assert_eq!(
        exchange(&envoy, "127.0.0.6", b"y"),
        reached("default", b"y")
    );
}

#[test]
fn concurrent_connections_per_source_are_capped_and_slots_freed_on_close() {
    let up = Upstreams::start();
    let envoy = start(&up, r#"{"max_connections_per_source": 2}"#, 2);
    let open = |from: &str| -> (TcpStream, Seen) {
        let mut s = connect_from(ip(from), envoy.listener("tcp")).unwrap();
        let _ = s.write_all(b"k");
        let seen = read_reply(&mut s, 1).unwrap();
        (s, seen)
    };
    let (first, seen1) = open("127.0.0.7");
    let (_second, seen2) = open("127.0.0.7");
    let (_third, seen3) = open("127.0.0.7");
    assert_eq!(seen1, reached("default", b"k"));
    assert_eq!(seen2, reached("default", b"k"));
    assert_eq!(seen3, Seen::Closed);
    assert_eq!(
        open("127.0.0.8").1,
        reached("default", b"k"),
        "other source"
    );
    assert_eq!(stat(&envoy, "over_limit_total"), 1);

    // Open now: `_second` only (the other source's connection was dropped at once).
    drop(first);
    wait_until("the closed connection to release its slot", || {
        stat(&envoy, "active_connections") == 1
    });
    assert_eq!(open("127.0.0.7").1, reached("default", b"k"));
    assert_eq!(stat(&envoy, "over_limit_total"), 1);
}

#[test]
fn bad_config_is_refused_naming_the_field() {
    let up = Upstreams::start();
    let mut cfg = EnvoyConfig::new(up.default.addr());
    cfg.http_listener = false;
    cfg.extra_listeners = vec![tcp_proxy_listener(
        "tcp",
        0,
        vec![guard(r#"{"sni": {"routes": {"a.*.com": "upstream_a"}}}"#)],
        "upstream",
    )];
    let log = Envoy::start_expecting_failure(cfg).unwrap();
    assert!(
        log.contains("invalid configuration at `sni.routes.a.*.com`"),
        "log does not name the field:\n{log}"
    );
}
