//! tcp-guard's decisions over plain data: a fake connection, a recording metric sink and an
//! in-memory shared store standing in for Envoy.

use super::*;
use sdk_ext::shared::{MemoryStore, Services};
use sdk_ext::testing::{configure_network, FakeClock, FakeProperties, RecordingSink};
use std::rc::Rc;

use crate::test_hello as hellos;

struct Harness {
    filter: TcpGuard,
    sink: Rc<RecordingSink>,
}

fn harness_with_services(config: &str, services: Services) -> Harness {
    let (filter, sink) = configure_network::<TcpGuard>(config, services).unwrap();
    Harness { filter, sink }
}

/// Two workers' services: one store, one clock.
fn shared_services() -> (Services, Rc<FakeClock>) {
    let clock = Rc::new(FakeClock::at(1_000_000_000));
    let services = Services {
        shared: Rc::new(MemoryStore::default()),
        clock: clock.clone(),
    };
    (services, clock)
}

fn harness(config: &str) -> Harness {
    harness_with_services(config, shared_services().0)
}

fn config_error(config: &str) -> ConfigError {
    configure_network::<TcpGuard>(config, shared_services().0)
        .err()
        .unwrap()
}

fn from(addr: &str, now_ms: u64) -> ConnectionView {
    let mut p = FakeProperties::default();
    p.0.insert("source.address".into(), addr.as_bytes().to_vec());
    ConnectionView::new(Box::new(p), now_ms)
}

/// One connection driven through the filter's hooks.
struct Conn<'a> {
    h: &'a Harness,
    view: ConnectionView,
    state: ConnState,
    ops: ConnOps,
}

impl<'a> Conn<'a> {
    fn open(h: &'a Harness, addr: &str) -> (Self, NetDecision) {
        let view = from(addr, 1_000);
        let mut state = ConnState::default();
        let mut ops = ConnOps::default();
        let d = h.filter.on_new_connection(&view, &mut state, &mut ops);
        (
            Self {
                h,
                view,
                state,
                ops,
            },
            d,
        )
    }

    fn send(&mut self, bytes: &[u8]) -> NetDecision {
        self.send_eos(bytes, false)
    }

    fn send_eos(&mut self, bytes: &[u8], eos: bool) -> NetDecision {
        let chunk = DataChunk {
            new_bytes: bytes,
            buffered: bytes.len(),
            end_of_stream: eos,
        };
        self.h
            .filter
            .on_downstream_data(&self.view, chunk, &mut self.state, &mut self.ops)
    }

    /// Send one byte per read until a decision.
    fn trickle(&mut self, bytes: &[u8]) -> NetDecision {
        for b in bytes {
            match self.send(std::slice::from_ref(b)) {
                NetDecision::Pause => {}
                d => return d,
            }
        }
        NetDecision::Pause
    }

    fn close(&mut self) {
        self.h
            .filter
            .on_downstream_close(&self.view, &mut self.state);
    }

    fn cluster(&self) -> Option<&str> {
        self.ops
            .filter_state
            .iter()
            .find(|(k, _)| k == "envoy.tcp_proxy.cluster")
            .map(|(_, v)| v.as_str())
    }
}

fn stat(h: &Harness, name: &str) -> i64 {
    h.sink.value(&format!("tcp_guard_{name}"))
}

const ROUTING: &str = r#"{
    "inspect": {"protocols": ["tls"]},
    "sni": {
        "allow": ["*.example.com"],
        "routes": {"a.example.com": "upstream_a", "*.b.example.com": "upstream_b", "b.example.com": "upstream_b"}
    },
    "default_cluster": "fallback"
}"#;

#[test]
fn empty_config_admits_everything_without_holding_bytes() {
    let h = harness("{}");
    let (mut c, d) = Conn::open(&h, "10.0.0.1:1000");
    assert_eq!(d, NetDecision::Continue);
    assert_eq!(c.send(b"anything"), NetDecision::Continue);
    assert_eq!(c.cluster(), None, "tcp_proxy's own cluster");
    assert_eq!(stat(&h, "allowed_total"), 1);
    assert_eq!(stat(&h, "active_connections"), 1);
    c.close();
    assert_eq!(stat(&h, "active_connections"), 0);
}

#[test]
fn cidr_deny_wins_over_allow_and_names_the_rule() {
    let h =
        harness(r#"{"source": {"allow": ["127.0.0.0/8", "::1/128"], "deny": ["127.0.0.2/32"]}}"#);
    assert_eq!(Conn::open(&h, "127.0.0.1:1").1, NetDecision::Continue);
    assert_eq!(Conn::open(&h, "[::1]:1").1, NetDecision::Continue);
    assert_eq!(
        Conn::open(&h, "[::ffff:127.0.0.3]:1").1,
        NetDecision::Continue
    );
    assert_eq!(Conn::open(&h, "127.0.0.2:1").1, NetDecision::Close);
    assert_eq!(Conn::open(&h, "10.1.1.1:1").1, NetDecision::Close);
    assert_eq!(Conn::open(&h, "[2001:db8::1]:1").1, NetDecision::Close);
    assert_eq!(stat(&h, "denied_cidr_total"), 3);
    assert_eq!(stat(&h, "allowed_total"), 3);
    assert_eq!(stat(&h, "connections_total"), 6);
    assert_eq!(stat(&h, "active_connections"), 3, "denied ones never count");
}

#[test]
fn unknown_source_fails_an_allow_list_closed() {
    let h = harness(r#"{"source": {"allow": ["127.0.0.0/8"]}}"#);
    let view = ConnectionView::new(Box::new(FakeProperties::default()), 0);
    let d = h
        .filter
        .on_new_connection(&view, &mut ConnState::default(), &mut ConnOps::default());
    assert_eq!(d, NetDecision::Close);
}

#[test]
fn rate_limit_is_per_source_and_refills() {
    let cfg = r#"{"connection_rate": {"max_tokens": 2, "tokens_per_fill": 1, "fill_interval": "1s", "max_keys": 64}}"#;
    // Two workers: two filter instances over one shared store and clock.
    let (services, clock) = shared_services();
    let w1 = harness_with_services(cfg, services.clone());
    let w2 = harness_with_services(cfg, services);
    let open = |h: &Harness, addr: &str| {
        h.filter.on_new_connection(
            &from(addr, 0),
            &mut ConnState::default(),
            &mut ConnOps::default(),
        )
    };
    assert_eq!(open(&w1, "10.0.0.1:1"), NetDecision::Continue);
    assert_eq!(open(&w2, "10.0.0.1:2"), NetDecision::Continue);
    clock.advance(Duration::from_millis(10));
    assert_eq!(open(&w1, "10.0.0.1:3"), NetDecision::Close);
    assert_eq!(open(&w2, "10.0.0.1:4"), NetDecision::Close);
    assert_eq!(
        open(&w2, "10.0.0.2:1"),
        NetDecision::Continue,
        "other source"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(open(&w1, "10.0.0.1:5"), NetDecision::Continue, "refilled");
    assert_eq!(
        stat(&w1, "rate_limited_total") + stat(&w2, "rate_limited_total"),
        2
    );
}

#[test]
fn concurrent_cap_counts_open_connections_across_workers() {
    let cfg = r#"{"max_connections_per_source": 2}"#;
    let (services, _) = shared_services();
    let w1 = harness_with_services(cfg, services.clone());
    let w2 = harness_with_services(cfg, services);
    let (mut a, d1) = Conn::open(&w1, "10.0.0.9:1");
    let (_b, d2) = Conn::open(&w2, "10.0.0.9:2");
    let (mut c, d3) = Conn::open(&w1, "10.0.0.9:3");
    assert_eq!(
        (d1, d2, d3),
        (
            NetDecision::Continue,
            NetDecision::Continue,
            NetDecision::Close
        )
    );
    c.close(); // a refused connection holds no slot: closing it frees nothing
    assert_eq!(Conn::open(&w2, "10.0.0.9:4").1, NetDecision::Close);
    a.close();
    assert_eq!(Conn::open(&w2, "10.0.0.9:5").1, NetDecision::Continue);
    assert_eq!(
        stat(&w1, "over_limit_total") + stat(&w2, "over_limit_total"),
        2
    );
}

#[test]
fn ten_thousand_sources_do_not_grow_shared_data() {
    // Bug: one shared-data key per source IP ever seen, never evicted.
    let store = Rc::new(MemoryStore::default());
    let clock = Rc::new(FakeClock::at(1_000_000_000));
    let services = Services {
        shared: store.clone(),
        clock: clock.clone(),
    };
    let cfg = r#"{"max_connections_per_source": 2, "max_sources": 256,
                  "connection_rate": {"max_tokens": 5, "fill_interval": "1s", "max_keys": 256}}"#;
    let h = harness_with_services(cfg, services);
    let keys = store.len();
    assert_eq!(
        keys,
        512 + 2,
        "two ranges of slots, the marker and the seed"
    );
    for i in 0..10_000u32 {
        let (mut c, d) = Conn::open(&h, &format!("127.1.{}.{}:9", i / 256, i % 256));
        assert_eq!(d, NetDecision::Continue, "source {i}");
        c.close();
        // 40 new sources a second: the rate buckets of sources gone quiet refill and are reused.
        if i % 40 == 39 {
            clock.advance(std::time::Duration::from_secs(1));
        }
    }
    assert_eq!(store.len(), keys, "no key per source");
    assert_eq!(stat(&h, "over_limit_total"), 0);
}

#[test]
fn tls_routes_by_most_specific_sni() {
    let h = harness(ROUTING);
    for (sni, cluster) in [
        ("a.example.com", "upstream_a"),
        ("b.example.com", "upstream_b"),
        ("x.b.example.com", "upstream_b"),
        ("c.example.com", "fallback"),
    ] {
        let (mut c, d) = Conn::open(&h, "127.0.0.1:5");
        assert_eq!(d, NetDecision::Pause, "held before any byte");
        assert_eq!(
            c.send(&hellos::rustls_hello(sni, &["h2"])),
            NetDecision::Continue
        );
        assert_eq!(c.cluster(), Some(cluster), "{sni}");
    }
    assert_eq!(stat(&h, "routed_upstream_a_total"), 1);
    assert_eq!(stat(&h, "routed_upstream_b_total"), 2);
    assert_eq!(stat(&h, "routed_fallback_total"), 1);
    assert_eq!(stat(&h, "detected_tls_total"), 4);
}

#[test]
fn hello_in_one_byte_reads_routes_the_same() {
    let h = harness(ROUTING);
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    let hello = hellos::rustls_hello("a.example.com", &[]);
    let mut decision = NetDecision::Pause;
    for (i, b) in hello.iter().enumerate() {
        decision = c.send(std::slice::from_ref(b));
        if i + 1 < hello.len() {
            assert_eq!(decision, NetDecision::Pause, "decided early at byte {i}");
        }
    }
    assert_eq!(decision, NetDecision::Continue);
    assert_eq!(c.cluster(), Some("upstream_a"));
}

#[test]
fn sni_outside_the_allow_list_or_missing_is_closed() {
    let h = harness(ROUTING);
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        c.send(&hellos::rustls_hello("evil.test", &[])),
        NetDecision::Close
    );
    // An IP-address "server name" makes rustls send no SNI at all.
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        c.send(&hellos::rustls_hello("192.0.2.1", &[])),
        NetDecision::Close
    );
    assert_eq!(stat(&h, "sni_denied_total"), 2);
    assert_eq!(stat(&h, "allowed_total"), 0);
}

#[test]
fn http_ssh_and_garbage_to_a_tls_only_listener_are_closed() {
    let h = harness(ROUTING);
    for (bytes, proto) in [
        (&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..], "http1"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http2"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "ssh"),
        (b"\x00\x01\x02\x03", "other"),
    ] {
        let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
        assert_eq!(c.trickle(bytes), NetDecision::Close, "{proto}");
        assert_eq!(stat(&h, &format!("detected_{proto}_total")), 1);
    }
    assert_eq!(stat(&h, "protocol_denied_total"), 4);
}

#[test]
fn protocol_allow_list_admits_listed_protocols_to_the_default_cluster() {
    let h = harness(r#"{"inspect": {"protocols": ["ssh", "http1"]}, "default_cluster": "d"}"#);
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(c.send(b"SSH-2.0-x\r\n"), NetDecision::Continue);
    assert_eq!(c.cluster(), Some("d"));
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        c.send(&hellos::rustls_hello("a.example.com", &[])),
        NetDecision::Close
    );
}

#[test]
fn malformed_and_oversized_hellos_are_counted_and_closed() {
    let h = harness(r#"{"inspect": {"protocols": ["tls"], "max_bytes": 128}}"#);
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        c.send(&[0x16, 0x03, 0x01, 0x00, 0x05, 2, 0, 0, 1, 0]),
        NetDecision::Close
    );
    assert_eq!(stat(&h, "malformed_total"), 1);
    // A real hello is bigger than 128 bytes: over the inspection limit.
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        c.trickle(&hellos::rustls_hello("a.example.com", &[])),
        NetDecision::Close
    );
    assert_eq!(stat(&h, "inspect_limit_total"), 1);
    // Half-closed in the middle of a hello.
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        c.send(&[0x16, 0x03, 0x01, 0x00, 0x40, 1]),
        NetDecision::Pause
    );
    assert_eq!(c.send_eos(&[], true), NetDecision::Close);
    assert_eq!(stat(&h, "malformed_total"), 2);
    assert_eq!(stat(&h, "detected_tls_total"), 3);
}

#[test]
fn timeout_classifies_silence_as_other_and_closes_a_partial_hello() {
    let h = harness(r#"{"inspect": {"protocols": ["tls", "other"], "timeout_ms": 200}}"#);
    assert_eq!(h.filter.pause_timeout(), Some(Duration::from_millis(200)));
    // A server-first protocol: nothing arrives; `other` is allowed, so it passes.
    let (mut silent, _) = Conn::open(&h, "127.0.0.1:5");
    let d = h
        .filter
        .on_timeout(&silent.view, &mut silent.state, &mut silent.ops);
    assert_eq!(d, NetDecision::Continue);
    // Half a ClientHello, then nothing: closed.
    let (mut partial, _) = Conn::open(&h, "127.0.0.1:5");
    let hello = hellos::rustls_hello("a.example.com", &[]);
    assert_eq!(partial.send(&hello[..20]), NetDecision::Pause);
    let d = h
        .filter
        .on_timeout(&partial.view, &mut partial.state, &mut partial.ops);
    assert_eq!(d, NetDecision::Close);
    assert_eq!(stat(&h, "inspect_timeout_total"), 2);
    // Silence is counted apart from `other`.
    assert_eq!(stat(&h, "no_data_total"), 1);
    assert_eq!(stat(&h, "detected_other_total"), 0);
    assert_eq!(stat(&h, "allowed_total"), 1);
    // A few bytes that match no signature are `other`.
    let (mut few, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(few.send(b"SS"), NetDecision::Pause);
    let d = h.filter.on_timeout(&few.view, &mut few.state, &mut few.ops);
    assert_eq!(d, NetDecision::Continue);
    assert_eq!(stat(&h, "detected_other_total"), 1);
    assert_eq!(stat(&h, "no_data_total"), 1);
    // Without an inspection rule there is no timer at all.
    assert_eq!(harness("{}").filter.pause_timeout(), None);
}

#[test]
fn silence_follows_other_unless_no_data_says_otherwise() {
    let silent = |config: &str| {
        let h = harness(config);
        let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
        let d = h.filter.on_timeout(&c.view, &mut c.state, &mut c.ops);
        (d, stat(&h, "no_data_total"), stat(&h, "allowed_total"))
    };
    // Absent: decided as `other` was.
    let tls_only = r#"{"inspect": {"protocols": ["tls"]}}"#;
    assert_eq!(silent(tls_only), (NetDecision::Close, 1, 0));
    // `deny` fails closed even where `other` is admitted (Istio without the EnvoyFilter).
    let deny = r#"{"inspect": {"protocols": ["tls", "other"], "no_data": "deny"}}"#;
    assert_eq!(silent(deny), (NetDecision::Close, 1, 0));
    // `allow` admits silence (server-first protocols) to the default cluster.
    let allow =
        r#"{"inspect": {"protocols": ["tls"], "no_data": "allow"}, "default_cluster": "d"}"#;
    let h = harness(allow);
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        h.filter.on_timeout(&c.view, &mut c.state, &mut c.ops),
        NetDecision::Continue
    );
    assert_eq!(c.cluster(), Some("d"));
    assert_eq!(stat(&h, "no_data_total"), 1);
    assert_eq!(stat(&h, "routed_d_total"), 1);
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (r#"{"source": {"deny": ["10.0.0.0/33"]}}"#, "source.deny[0]"),
        (r#"{"source": {"alow": []}}"#, "source.alow"),
        (
            r#"{"connection_rate": {"max_tokens": 0, "fill_interval": "1s"}}"#,
            "connection_rate.max_tokens",
        ),
        (
            r#"{"connection_rate": {"max_tokens": 1, "fill_interval": "1 year"}}"#,
            "connection_rate.fill_interval",
        ),
        (
            r#"{"connection_rate": {"max_tokens": 1, "fill_interval": "1s", "max_keys": 0}}"#,
            "connection_rate.max_keys",
        ),
        (
            r#"{"max_connections_per_source": 0}"#,
            "max_connections_per_source",
        ),
        (
            r#"{"max_connections_per_source": 1, "max_sources": 0}"#,
            "max_sources",
        ),
        // One slot budget (100000) for the rate buckets and the connection counters together.
        (
            r#"{"max_connections_per_source": 1, "max_sources": 50001,
                "connection_rate": {"max_tokens": 1, "fill_interval": "1s", "max_keys": 50000}}"#,
            "max_sources",
        ),
        (
            r#"{"inspect": {"protocols": ["tls", "ftp"]}}"#,
            "inspect.protocols[1]",
        ),
        (r#"{"inspect": {"protocols": []}}"#, "inspect.protocols"),
        (r#"{"inspect": {"max_bytes": 10}}"#, "inspect.max_bytes"),
        (r#"{"inspect": {"no_data": "maybe"}}"#, "inspect.no_data"),
        (r#"{"inspect": {"timeout_ms": 0}}"#, "inspect.timeout_ms"),
        (
            r#"{"sni": {"allow": ["ok.com", "a.*.com"]}}"#,
            "sni.allow[1]",
        ),
        (r#"{"sni": {"routes": {"a.com": ""}}}"#, "sni.routes.a.com"),
        (
            r#"{"sni": {"routes": {"*x.com": "c"}}}"#,
            "sni.routes.*x.com",
        ),
        (r#"{"default_cluster": ""}"#, "default_cluster"),
    ];
    for (cfg, path) in cases {
        assert_eq!(config_error(cfg).path, path, "{cfg}");
    }
}

#[test]
fn metric_names_are_safe_for_any_cluster_name() {
    assert_eq!(metric_safe("outbound|443||a.svc"), "outbound_443__a_svc");
    let h = harness(r#"{"sni": {"routes": {"a.com": "outbound|443||A.svc"}}}"#);
    let (mut c, _) = Conn::open(&h, "127.0.0.1:5");
    assert_eq!(
        c.send(&hellos::rustls_hello("a.com", &[])),
        NetDecision::Continue
    );
    assert_eq!(stat(&h, "routed_outbound_443__a_svc_total"), 1);
}
