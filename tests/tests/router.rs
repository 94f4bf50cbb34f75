//! The router filter in a real Envoy with two real upstreams (`stable`, `canary`) and routes
//! that match the tag header: every rule kind reaches the right upstream, a 10 % sticky split
//! over 10,000 keys is 10 % +/- 1.5 % and identical on both workers and after a restart, a
//! spoofed routing header changes nothing, rewrites reach the upstream, and config pushes steer
//! traffic live.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::cases::{self, ROUTER_RULES as RULES};
use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

fn router(config: &str) -> FilterEntry {
    FilterEntry::wasm("router", modules::module("router").unwrap(), config)
}

/// Routes: tag `canary` -> cluster `canary`; path `/rewritten/` -> `canary` (proves Envoy
/// re-picks the route after the filter rewrites `:path`); everything else -> `upstream`
/// (the `stable` echo server).
fn routes() -> Value {
    json!([{
        "name": "split",
        "domains": ["*"],
        "routes": [
            {"name": "tag-canary",
             "match": {"prefix": "/", "headers": [{"name": "x-route-tag", "string_match": {"exact": "canary"}}]},
             "route": {"cluster": "canary", "timeout": "30s"}},
            {"name": "rewritten", "match": {"prefix": "/rewritten/"},
             "route": {"cluster": "canary", "timeout": "30s"}},
            {"name": "default", "match": {"prefix": "/"},
             "route": {"cluster": "upstream", "timeout": "30s"}}
        ]
    }])
}

/// Two echo upstreams and an Envoy routing between them with the router filter.
struct Setup {
    envoy: Envoy,
    // Kept alive for the Envoy's lifetime.
    _stable: EchoServer,
    _canary: EchoServer,
}

fn start(config: &str, workers: u32) -> Setup {
    let stable = EchoServer::start("stable").unwrap();
    let canary = EchoServer::start("canary").unwrap();
    let envoy = Envoy::start(envoy_config(&stable, &canary, config, workers)).unwrap();
    Setup {
        envoy,
        _stable: stable,
        _canary: canary,
    }
}

fn envoy_config(
    stable: &EchoServer,
    canary: &EchoServer,
    config: &str,
    workers: u32,
) -> EnvoyConfig {
    EnvoyConfig::new(stable.addr())
        .cluster("canary", canary.addr())
        .virtual_hosts(routes())
        .concurrency(workers)
        .filter(router(config))
}

/// Every value of `name` the upstream received.
fn upstream_values(resp: &Response, name: &str) -> Vec<String> {
    resp.json()["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h[0] == name)
        .filter_map(|h| h[1].as_str().map(String::from))
        .collect()
}

#[test]
fn each_rule_kind_sends_requests_to_the_right_upstream() {
    let s = start(RULES, 1);
    let client = Client::new();
    let cases = cases::router_rule_cases();
    let mut canary = 0;
    for (case, c) in &cases {
        let (method, path, want) = (c.method, c.path, &c.want);
        let resp = client
            .request(method, &s.envoy.url(path), &c.headers, b"")
            .unwrap();
        assert_eq!(resp.status, 200, "{case}: {resp:?}");
        assert_eq!(resp.header("x-upstream"), Some(*want), "{case}");
        assert_eq!(upstream_values(&resp, "x-route-tag"), [*want], "{case}");
        canary += usize::from(*want == "canary");
    }
    let stats = s.envoy.stats().unwrap();
    assert_eq!(
        stats["wasmcustom.router_routed_canary_total"],
        canary as u64
    );
    assert_eq!(
        stats["wasmcustom.router_routed_stable_total"],
        (cases.len() - canary) as u64
    );
    assert_eq!(
        stats["wasmcustom.router_requests_total"],
        cases.len() as u64
    );
}

#[test]
fn spoofed_routing_header_has_no_effect() {
    let s = start(RULES, 1);
    let client = Client::new();
    let spoofs: &[&[(&str, &str)]] = &[
        &[("x-route-tag", "canary")],
        &[("X-Route-Tag", "canary")],
        &[("x-route-tag", "canary"), ("x-route-tag", "canary")],
        &[("x-route-tag", "stable, canary")],
    ];
    for headers in spoofs {
        let resp = client
            .request("GET", &s.envoy.url("/plain"), headers, b"")
            .unwrap();
        assert_eq!(resp.header("x-upstream"), Some("stable"), "{headers:?}");
        assert_eq!(
            upstream_values(&resp, "x-route-tag"),
            ["stable"],
            "{headers:?}"
        );
    }
    // A split rule: the key decides, not the client's header (fixed fallback: stable).
    let resp = client
        .request(
            "GET",
            &s.envoy.url("/fixed/"),
            &[("x-route-tag", "canary")],
            b"",
        )
        .unwrap();
    assert_eq!(resp.header("x-upstream"), Some("stable"));
    assert_eq!(
        s.envoy
            .stat("wasmcustom.router_client_header_removed_total"),
        spoofs.len() as u64 + 1
    );

    // Without a default tag, a spoofed header is removed and nothing is set: the default route.
    let bare = start(
        r#"{"rules": [{"match": {"paths": [{"prefix": "/c/"}]}, "tag": "canary"}]}"#,
        1,
    );
    let resp = client
        .request(
            "GET",
            &bare.envoy.url("/x"),
            &[("x-route-tag", "canary")],
            b"",
        )
        .unwrap();
    assert_eq!(resp.header("x-upstream"), Some("stable"));
    assert!(upstream_values(&resp, "x-route-tag").is_empty(), "{resp:?}");
    let resp = client.get(&bare.envoy.url("/c/x")).unwrap();
    assert_eq!(resp.header("x-upstream"), Some("canary"));
}

#[test]
fn rewrites_reach_the_upstream_and_reroute() {
    let s = start(RULES, 1);
    let resp = Client::new()
        .request(
            "GET",
            &s.envoy.url("/legacy/users?id=7"),
            &[("x-internal", "secret"), ("x-router-rule", "client")],
            b"",
        )
        .unwrap();
    // The rewritten path matches the `/rewritten/` route: Envoy picked the route again.
    assert_eq!(resp.header("x-upstream"), Some("canary"), "{resp:?}");
    let seen = resp.json();
    assert_eq!(seen["path"], "/rewritten/users?id=7");
    assert_eq!(upstream_values(&resp, "host"), ["v2.internal"]);
    assert_eq!(upstream_values(&resp, "x-router-rule"), ["rewrite"]);
    assert!(upstream_values(&resp, "x-internal").is_empty());
}

#[test]
fn keyless_split_requests_fall_back_randomly_or_to_the_fixed_tag() {
    let s = start(RULES, 1);
    let client = Client::new();
    let mut random: HashMap<String, usize> = HashMap::new();
    for _ in 0..200 {
        let side = client.get(&s.envoy.url("/random/")).unwrap();
        *random
            .entry(side.header("x-upstream").unwrap().to_string())
            .or_default() += 1;
        let fixed = client.get(&s.envoy.url("/fixed/")).unwrap();
        assert_eq!(fixed.header("x-upstream"), Some("stable"));
    }
    // 50/50 per request: both sides appear (the chance that 200 draws all land on one side is
    // 2^-199).
    eprintln!("random fallback, 200 keyless requests: {random:?}");
    assert_eq!(random.len(), 2, "{random:?}");
    assert_eq!(s.envoy.stat("wasmcustom.router_split_fallback_total"), 400);
}

const SPLIT: &str = r#"{
  "default_tag": "stable",
  "rules": [{"name": "canary-10",
             "weights": [{"tag": "canary", "percent": 10}, {"tag": "stable", "percent": 90}],
             "hash_on": [{"header": "x-user-id"}], "fallback": {"tag": "stable"}}]
}"#;

const KEYS: usize = 10_000;

/// Per-worker downstream connection counters of the HTTP listener
/// (`listener.<configured address>.worker_<n>.downstream_cx_total`; the admin listener is
/// `listener.admin.*`).
fn worker_connections(envoy: &Envoy) -> [u64; 2] {
    let stats = envoy.stats().unwrap();
    let get = |w: usize| {
        let suffix = format!(".worker_{w}.downstream_cx_total");
        let found: Vec<u64> = stats
            .iter()
            .filter(|(k, _)| {
                k.starts_with("listener.")
                    && !k.starts_with("listener.admin.")
                    && k.ends_with(&suffix)
            })
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one listener stat ending in {suffix}"
        );
        found[0]
    };
    [get(0), get(1)]
}

/// Open keep-alive connections until `per_worker` are known to be served by each of the two
/// workers (a new connection goes to the worker whose per-worker counter moves).
fn connections_per_worker(envoy: &Envoy, per_worker: usize) -> [Vec<Client>; 2] {
    let mut pinned: [Vec<Client>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..200 {
        if pinned.iter().all(|p| p.len() >= per_worker) {
            return pinned;
        }
        let before = worker_connections(envoy);
        let client = Client::new();
        assert_eq!(client.get(&envoy.url("/")).unwrap().status, 200);
        let after = worker_connections(envoy);
        let worker = match (after[0] - before[0], after[1] - before[1]) {
            (1, 0) => 0,
            (0, 1) => 1,
            other => panic!("one new connection moved the counters by {other:?}"),
        };
        if pinned[worker].len() < per_worker {
            pinned[worker].push(client);
        }
    }
    panic!(
        "the kernel did not spread 200 connections over both workers: {:?}",
        pinned.each_ref().map(Vec::len)
    );
}

/// Send every key once over `clients` (one thread per client) and return each key's upstream.
fn sides(envoy: &Envoy, clients: Vec<Client>) -> Vec<String> {
    let url = envoy.url("/split");
    let n = clients.len();
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(t, client)| {
            let url = url.clone();
            std::thread::spawn(move || {
                (t..KEYS)
                    .step_by(n)
                    .map(|i| {
                        let key = format!("user-{i}");
                        let resp = client
                            .request("GET", &url, &[("x-user-id", &key)], b"")
                            .unwrap();
                        assert_eq!(resp.status, 200, "{key}: {resp:?}");
                        (i, resp.header("x-upstream").unwrap().to_string())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut out = vec![String::new(); KEYS];
    for h in handles {
        for (i, side) in h.join().unwrap() {
            out[i] = side;
        }
    }
    out
}

fn canary_share(sides: &[String]) -> f64 {
    sides.iter().filter(|s| *s == "canary").count() as f64 / sides.len() as f64
}

#[test]
fn ten_percent_split_is_sticky_across_workers_and_restarts() {
    let stable = EchoServer::start("stable").unwrap();
    let canary = EchoServer::start("canary").unwrap();
    let envoy = Envoy::start(envoy_config(&stable, &canary, SPLIT, 2)).unwrap();

    // Every key goes once through worker 0 and once through worker 1.
    let [w0, w1] = connections_per_worker(&envoy, 3);
    let opened = worker_connections(&envoy);
    let on_w0 = sides(&envoy, w0);
    let on_w1 = sides(&envoy, w1);
    assert_eq!(
        worker_connections(&envoy),
        opened,
        "a client opened a new connection, so its worker is unknown"
    );
    let share = canary_share(&on_w0);
    let moved_between_workers = on_w0.iter().zip(&on_w1).filter(|(a, b)| a != b).count();
    let routed = envoy.stat("wasmcustom.router_routed_canary_total");
    drop(envoy);

    // A new Envoy process (fresh VMs, new ports): every key again.
    let envoy = Envoy::start(envoy_config(&stable, &canary, SPLIT, 2)).unwrap();
    let after_restart = sides(&envoy, (0..6).map(|_| Client::new()).collect());
    let moved_by_restart = on_w0
        .iter()
        .zip(&after_restart)
        .filter(|(a, b)| a != b)
        .count();

    eprintln!(
        "split over {KEYS} distinct keys: canary {:.2} % (worker 0), {:.2} % (worker 1), {:.2} % (after restart); \
         keys that changed side between workers: {moved_between_workers}, after restart: {moved_by_restart}",
        share * 100.0,
        canary_share(&on_w1) * 100.0,
        canary_share(&after_restart) * 100.0
    );
    assert!(
        (0.085..=0.115).contains(&share),
        "canary share {share} outside 10 % +/- 1.5 %"
    );
    assert_eq!(moved_between_workers, 0);
    assert_eq!(moved_by_restart, 0);
    // The per-tag counter saw both passes' canary requests (the probes were keyless: stable).
    assert_eq!(
        routed,
        on_w0
            .iter()
            .chain(&on_w1)
            .filter(|s| *s == "canary")
            .count() as u64
    );
}

#[test]
fn a_config_push_moves_traffic_live() {
    let mut s = start(SPLIT, 1);
    let client = Client::new();
    let url = s.envoy.url("/");
    let side = |key: &str| {
        client
            .request("GET", &url, &[("x-user-id", key)], b"")
            .unwrap()
            .header("x-upstream")
            .unwrap()
            .to_string()
    };
    let stable_key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| side(k) == "stable")
        .unwrap();
    let all_canary = SPLIT
        .replace("\"percent\": 10}", "\"percent\": 100}")
        .replace("\"percent\": 90}", "\"percent\": 0}");
    s.envoy.update_filter(router(&all_canary)).unwrap();
    assert!(s.envoy.wait_for_stat(
        "extension_config_discovery.http_filter.router.update_success",
        2,
        Duration::from_secs(20)
    ));
    let mut moved = false;
    for _ in 0..100 {
        if side(&stable_key) == "canary" {
            moved = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(moved, "{stable_key} still on stable after the push");
}

#[test]
fn bad_config_is_refused_naming_the_rule_and_field() {
    let echo = EchoServer::start("stable").unwrap();
    let bad = r#"{"rules": [{"tag": "a"}, {"weights": [{"tag": "canary", "percent": 120}, {"tag": "stable", "percent": 90}]}]}"#;
    let log = Envoy::start_expecting_failure(
        EnvoyConfig::new(echo.addr())
            .filter(router(bad))
            .inline_filters(),
    )
    .unwrap();
    assert!(
        log.contains(
            "invalid configuration at `rules[1].weights[0].percent`: 120 is not between 0 and 100"
        ),
        "log does not name the field:\n{log}"
    );
}
