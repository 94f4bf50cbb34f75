//! The policy filter in a real Envoy: every match kind and action, API keys (success, failure,
//! stripping), shadow modes, config errors at startup and on live updates, a differential test
//! against Envoy's native RBAC filter, and a rate limit shared by two workers.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::{
    cases, modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry, Response,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// sha256("key-alice"), sha256("key-bob")
const SHA_ALICE: &str = "87844ec0b0d738e89628640588acaa48537b814a5c4f9697e3b352d11ffedaef";
const SHA_BOB: &str = "f031fc74d10cf0c1284dc15f679c18b1e8e05f9d1966adefba6c6463cdcef658";

/// Envoy flushes its log file every 10 s by default; log assertions wait that long at most.
const LOG_FLUSH: Duration = Duration::from_secs(15);

fn policy(config: &Value) -> FilterEntry {
    FilterEntry::wasm(
        "policy",
        modules::module("policy").unwrap(),
        config.to_string(),
    )
}

fn start(config: &Value) -> (EchoServer, Envoy) {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(policy(config))).unwrap();
    (echo, envoy)
}

fn send(envoy: &Envoy, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::new()
        .request(method, &envoy.url(path), headers, b"")
        .unwrap()
}

fn wasm_stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(&format!("wasmcustom.policy_{name}"))
}

#[test]
fn every_match_kind_and_action() {
    let config = cases::policy_every_match_config();
    // Debug level: decisions are logged there (and only there), naming the rule.
    let echo = EchoServer::start("echo").unwrap();
    let mut cfg = EnvoyConfig::new(echo.addr()).filter(policy(&config));
    cfg.log_level = "debug".into();
    let envoy = Envoy::start(cfg).unwrap();
    for c in cases::policy_every_match_cases() {
        let (method, path, headers, want) = (c.method, c.path, &c.headers, &c.want);
        let r = send(&envoy, method, path, headers);
        assert_eq!(r.status, *want, "{method} {path} {headers:?}: {}", r.body);
        if *want == 200 {
            assert_eq!(r.header("x-upstream"), Some("echo"));
        } else {
            assert_eq!(
                r.header("x-upstream"),
                None,
                "denied requests never reach the upstream"
            );
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
    }

    // The third request to the limited path is refused with the rate-limit headers.
    let r = send(
        &envoy,
        "GET",
        "/limited?secret=hunter2",
        &[("x-request-id", "rid-7")],
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("ratelimit-limit"), Some("2"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let reset: u64 = r.header("ratelimit-reset").unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&reset), "reset {reset}");
    assert_eq!(
        r.header("retry-after").map(String::from),
        Some(reset.to_string())
    );
    let body = r.json();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["message"], "slow down");
    assert_eq!(body["request_id"], "rid-7");
    assert!(
        !r.body.contains("hunter2") && !r.body.contains("/limited"),
        "{}",
        r.body
    );

    let denied = send(
        &envoy,
        "GET",
        "/nothing-matches",
        &[("x-request-id", "rid-8")],
    );
    assert_eq!(denied.json()["message"], "not allowed");
    assert_eq!(denied.json()["request_id"], "rid-8");

    assert_eq!(wasm_stat(&envoy, "rule_method_denied"), 1);
    assert_eq!(wasm_stat(&envoy, "rule_path_regex_allowed"), 1);
    assert_eq!(wasm_stat(&envoy, "rule_claims_allowed"), 1);
    assert_eq!(wasm_stat(&envoy, "rule_limited_allowed"), 2);
    assert_eq!(wasm_stat(&envoy, "rule_limited_rate_limited"), 1);
    assert_eq!(wasm_stat(&envoy, "default_denied"), 9);
    assert!(envoy
        .prometheus()
        .unwrap()
        .contains("policy_rule_limited_rate_limited{} 1"));
    assert!(
        envoy.wait_for_log("rule `method` denied the request with 405", LOG_FLUSH),
        "a denial is logged naming the rule"
    );
}

#[test]
fn api_keys_success_failure_and_stripping() {
    let config = json!({
        "api_keys": {"header": "x-api-key", "query": "api_key", "consumer_header": "x-consumer",
                     "keys": [{"consumer": "alice", "sha256": SHA_ALICE}, {"consumer": "bob", "sha256": SHA_BOB}]},
        "rules": [
            {"name": "alice-admin", "match": {"paths": [{"prefix": "/admin"}], "consumers": ["alice"]}, "action": "allow"},
            {"name": "admin", "match": {"paths": [{"prefix": "/admin"}]}, "action": "deny"},
            {"name": "per-consumer", "match": {"paths": [{"prefix": "/quota"}]}, "action": "rate_limit",
             "rate_limit": {"max_tokens": 1, "fill_interval": "1h", "key": ["consumer"]}}
        ]
    });
    let (_echo, envoy) = start(&config);

    // Key in a header: consumer forwarded, key and the spoofed consumer header gone.
    let r = send(
        &envoy,
        "GET",
        "/admin/x",
        &[("x-api-key", "key-alice"), ("x-consumer", "root")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-consumer").as_deref(), Some("alice"));
    assert_eq!(r.upstream_header("x-api-key"), None);
    let consumers = r.json()["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == "x-consumer")
        .count();
    assert_eq!(consumers, 1, "exactly one consumer header, ours");

    // Key in the query: cut out of the path the upstream sees, the rest kept verbatim.
    let r = send(&envoy, "GET", "/admin/y?a=1&api_key=key-alice&b=%2F", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/admin/y?a=1&b=%2F");
    assert_eq!(r.upstream_header("x-consumer").as_deref(), Some("alice"));

    // A valid key of the wrong consumer, an invalid key, no key.
    assert_eq!(
        send(&envoy, "GET", "/admin", &[("x-api-key", "key-bob")]).status,
        403
    );
    let bad = send(&envoy, "GET", "/open", &[("x-api-key", "guess")]);
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"], "unauthorized");
    assert!(!bad.body.contains("guess"));
    assert_eq!(
        bad.header("www-authenticate"),
        Some(r#"ApiKey realm="api", header="x-api-key", query="api_key""#),
        "a 401 says where the key goes"
    );
    let anon = send(&envoy, "GET", "/open", &[("x-consumer", "alice")]);
    assert_eq!(anon.status, 200);
    assert_eq!(
        anon.upstream_header("x-consumer"),
        None,
        "spoofed consumer stripped"
    );
    assert_eq!(
        send(&envoy, "GET", "/admin", &[("x-consumer", "alice")]).status,
        403
    );

    // Rate limit per consumer.
    assert_eq!(
        send(&envoy, "GET", "/quota", &[("x-api-key", "key-alice")]).status,
        200
    );
    assert_eq!(
        send(&envoy, "GET", "/quota", &[("x-api-key", "key-alice")]).status,
        429
    );
    assert_eq!(
        send(&envoy, "GET", "/quota?api_key=key-bob", &[]).status,
        200
    );

    assert_eq!(wasm_stat(&envoy, "api_key_valid"), 6);
    assert_eq!(wasm_stat(&envoy, "api_key_invalid"), 1);
    assert_eq!(wasm_stat(&envoy, "api_key_missing"), 2);

    // Required keys, through a live update.
    let mut required = config.clone();
    required["api_keys"]["required"] = json!(true);
    let mut envoy = envoy;
    envoy.update_filter(policy(&required)).unwrap();
    let ok = "extension_config_discovery.http_filter.policy.update_success";
    assert!(envoy.wait_for_stat(ok, 2, Duration::from_secs(20)));
    let mut seen = false;
    for _ in 0..100 {
        if send(&envoy, "GET", "/open", &[]).status == 401 {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen, "missing key not refused after the update");
    assert_eq!(
        send(&envoy, "GET", "/open", &[("x-api-key", "key-bob")]).status,
        200
    );
}

#[test]
fn shadow_rules_and_global_shadow_mode() {
    let config = json!({
        "default_action": "allow",
        "rules": [
            {"name": "trial-block", "shadow": true, "match": {"paths": [{"prefix": "/beta"}]}, "action": "deny"},
            {"name": "trial-limit", "shadow": true, "match": {"paths": [{"prefix": "/beta"}]}, "action": "rate_limit",
             "rate_limit": {"max_tokens": 1, "fill_interval": "1h"}},
            {"name": "block", "match": {"paths": [{"prefix": "/blocked"}]}, "action": "deny"}
        ]
    });
    let (_echo, mut envoy) = start(&config);
    for _ in 0..3 {
        assert_eq!(
            send(&envoy, "GET", "/beta", &[]).status,
            200,
            "shadow rules never enforce"
        );
    }
    assert_eq!(send(&envoy, "GET", "/blocked", &[]).status, 403);
    assert_eq!(wasm_stat(&envoy, "rule_trial_block_shadow_denied"), 3);
    assert_eq!(wasm_stat(&envoy, "rule_trial_limit_shadow_allowed"), 1);
    assert_eq!(wasm_stat(&envoy, "rule_trial_limit_shadow_rate_limited"), 2);
    assert_eq!(wasm_stat(&envoy, "default_allowed"), 3);

    // The whole policy in shadow mode: nothing is refused, every would-be denial is counted.
    let mut global = config.clone();
    global["shadow"] = json!(true);
    envoy.update_filter(policy(&global)).unwrap();
    let ok = "extension_config_discovery.http_filter.policy.update_success";
    assert!(envoy.wait_for_stat(ok, 2, Duration::from_secs(20)));
    let before = wasm_stat(&envoy, "rule_block_shadow_denied");
    let mut passed = 0;
    for _ in 0..100 {
        let r = send(&envoy, "GET", "/blocked", &[]);
        if r.status == 200 {
            passed += 1;
            if passed == 3 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(passed, 3, "global shadow mode must forward denied requests");
    assert_eq!(wasm_stat(&envoy, "rule_block_shadow_denied") - before, 3);
    // Decisions are logged at debug only: at Envoy's default (info) a flood of shadow verdicts
    // or denials is counted, not logged line by line.
    std::thread::sleep(Duration::from_secs(1)); // > --file-flush-interval-msec
    let log = envoy.log();
    assert!(
        log.contains("policy: configuration accepted"),
        "log is read"
    );
    for line in [
        "would deny the request (shadow mode",
        "shadow rule `trial-block` would deny",
        "denied the request with",
    ] {
        assert!(!log.contains(line), "`{line}` logged at info");
    }
}

#[test]
fn config_errors_name_rule_and_field_at_startup_and_on_live_update() {
    let echo = EchoServer::start("echo").unwrap();
    let bad_regex =
        json!({"rules": [{"name": "api", "match": {"paths": [{"regex": "("}]}, "action": "deny"}]});
    let log = Envoy::start_expecting_failure(
        EnvoyConfig::new(echo.addr())
            .filter(policy(&bad_regex))
            .inline_filters(),
    )
    .unwrap();
    assert!(
        log.contains(
            "invalid configuration at `rules[0].match.paths[0].regex`: rule `api`: invalid regex"
        ),
        "log does not name rule and field:\n{log}"
    );

    let good = json!({"rules": [{"name": "block", "match": {"paths": [{"prefix": "/blocked"}]}, "action": "deny"}]});
    let mut envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(policy(&good))).unwrap();
    let rejected = "extension_config_discovery.http_filter.policy.update_rejected";
    let bad: [(Value, &str); 3] = [
        (
            json!({"rules": [{"name": "net", "match": {"source_cidrs": ["10.0.0.0/40"]}, "action": "deny"}]}),
            "invalid configuration at `rules[0].match.source_cidrs[0]`: rule `net`:",
        ),
        (
            json!({"rules": [{"name": "typo", "match": {"paths": [{"prefix": "/"}]}, "acton": "deny"}]}),
            "invalid configuration at `rules[0].acton`: unknown field `acton`",
        ),
        (
            json!({"rules": [{"name": "nothing", "match": {}, "action": "deny"}]}),
            "invalid configuration at `rules[0].match`: rule `nothing`: an empty rule",
        ),
    ];
    for (i, (cfg, message)) in bad.iter().enumerate() {
        envoy.update_filter(policy(cfg)).unwrap();
        assert!(
            envoy.wait_for_stat(rejected, i as u64 + 1, Duration::from_secs(20)),
            "update {i} not rejected"
        );
        assert!(
            envoy.wait_for_log(message, LOG_FLUSH),
            "log lacks {message}"
        );
        assert_eq!(
            send(&envoy, "GET", "/blocked", &[]).status,
            403,
            "old policy keeps serving"
        );
        assert_eq!(send(&envoy, "GET", "/fine", &[]).status, 200);
    }
}

/// A deterministic generator (SplitMix64), so the differential test is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// The same access policy for both filters: deny `/admin/secret*` first, then five allow rules,
/// default deny. Requests carry random `X-Forwarded-For` values; the source rules compare with
/// RBAC's `direct_remote_ip` (admin) and `remote_ip` (internal). RBAC (action ALLOW: any policy allows, else 403) expresses "first rule denies"
/// by AND-ing `not_rule(/admin/secret)` into every policy.
fn differential_policies() -> (Value, Value) {
    let ours = json!({
        "default_action": "deny",
        "rules": [
            {"name": "secret", "match": {"paths": [{"prefix": "/admin/secret"}]}, "action": "deny"},
            {"name": "public-read", "match": {"methods": ["GET", "HEAD"], "paths": [{"prefix": "/public/"}]}, "action": "allow"},
            {"name": "admin", "match": {"paths": [{"prefix": "/admin"}], "source_cidrs": ["127.0.0.0/8"],
                                         "headers": [{"name": "x-role", "value": {"exact": "admin"}}]}, "action": "allow"},
            {"name": "api-write", "match": {"methods": ["POST", "PUT"], "paths": [{"regex": "/api/v[12]/items/[0-9]+"}],
                                             "headers": [{"name": "x-team", "value": {"prefix": "core"}}]}, "action": "allow"},
            {"name": "internal", "match": {"source_cidrs": ["10.0.0.0/8"]}, "action": "allow"},
            {"name": "health", "match": {"paths": [{"exact": "/healthz"}, {"suffix": "/status"}]}, "action": "allow"}
        ]
    });
    let method = |m: &str| json!({"header": {"name": ":method", "string_match": {"exact": m}}});
    let path = |m: Value| json!({"url_path": {"path": m}});
    let not_secret = json!({"not_rule": path(json!({"prefix": "/admin/secret"}))});
    let and = |mut rules: Vec<Value>| {
        rules.insert(0, not_secret.clone());
        json!({"and_rules": {"rules": rules}})
    };
    let any = json!([{"any": true}]);
    let rbac = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": {
            "public-read": {"permissions": [and(vec![
                json!({"or_rules": {"rules": [method("GET"), method("HEAD")]}}),
                path(json!({"prefix": "/public/"}))])], "principals": any},
            "admin": {"permissions": [and(vec![path(json!({"prefix": "/admin"}))])],
                      "principals": [{"and_ids": {"ids": [
                          {"direct_remote_ip": {"address_prefix": "127.0.0.0", "prefix_len": 8}},
                          {"header": {"name": "x-role", "string_match": {"exact": "admin"}}}]}}]},
            "api-write": {"permissions": [and(vec![
                json!({"or_rules": {"rules": [method("POST"), method("PUT")]}}),
                path(json!({"safe_regex": {"regex": "/api/v[12]/items/[0-9]+"}}))])],
                          "principals": [{"header": {"name": "x-team", "string_match": {"prefix": "core"}}}]},
            // `remote_ip` is the address Envoy derives from X-Forwarded-For when it trusts
            // hops; `direct_remote_ip` is the peer. With the rendered connection manager
            // (use_remote_address, 0 trusted hops) both are the peer, as is `source.address`.
            "internal": {"permissions": [and(vec![json!({"any": true})])],
                         "principals": [{"remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}]},
            "health": {"permissions": [and(vec![json!({"or_rules": {"rules": [
                path(json!({"exact": "/healthz"})), path(json!({"suffix": "/status"}))]}})])],
                       "principals": any}
        }}
    });
    (ours, rbac)
}

#[test]
fn differential_against_native_rbac() {
    let (ours, rbac) = differential_policies();
    let echo = EchoServer::start("echo").unwrap();
    let wasm = Envoy::start(EnvoyConfig::new(echo.addr()).filter(policy(&ours))).unwrap();
    let native = Envoy::start(
        EnvoyConfig::new(echo.addr()).filter(FilterEntry::native("envoy.filters.http.rbac", rbac)),
    )
    .unwrap();
    let client = Client::new();
    let mut rng = Rng(0x5eed_2026);
    // Weighted towards the rules' edges: near-miss paths, wrong case, wrong method or header.
    let prefixes = [
        "/public/",
        "/public/",
        "/public",
        "/Public/",
        "/admin",
        "/admin/",
        "/admin/",
        "/admin/secret",
        "/admin/secretary",
        "/admin/users",
        "/api/v1/items/",
        "/api/v2/items/",
        "/api/v1/items/",
        "/api/v3/items/",
        "/api/v1/items/x",
        "/healthz",
        "/healthz",
        "/healthz/",
        "/svc/status",
        "/svc/status2",
        "/other/",
        "/",
    ];
    let tails = [
        "",
        "",
        "1",
        "42",
        "42",
        "a/b",
        "7?q=1",
        "?x=/admin/secret",
        "index.html",
    ];
    let methods = [
        "GET", "GET", "GET", "HEAD", "POST", "POST", "PUT", "DELETE", "PATCH",
    ];
    let roles = ["", "admin", "admin", "Admin", "user", "admin2"];
    // Client-supplied X-Forwarded-For, which must move neither filter.
    let forwarded = [
        "",
        "",
        "10.1.2.3",
        "127.0.0.1",
        "10.0.0.1, 127.0.0.1",
        "192.0.2.9",
    ];
    let teams = ["", "core", "core", "core-infra", "edge", "Core"];
    let (mut agree, mut allowed, mut denied) = (0, 0, 0);
    let mut disagreements = Vec::new();
    const REQUESTS: usize = 400;
    for _ in 0..REQUESTS {
        let path = format!("{}{}", rng.pick(&prefixes), rng.pick(&tails));
        let method = rng.pick(&methods);
        let mut headers = Vec::new();
        for (name, values) in [
            ("x-role", &roles[..]),
            ("x-team", &teams[..]),
            ("x-forwarded-for", &forwarded[..]),
        ] {
            let v = rng.pick(values);
            if !v.is_empty() {
                headers.push((name, v));
            }
        }
        let a = client
            .request(method, &wasm.url(&path), &headers, b"")
            .unwrap()
            .status;
        let b = client
            .request(method, &native.url(&path), &headers, b"")
            .unwrap()
            .status;
        assert!(
            matches!(a, 200 | 403) && matches!(b, 200 | 403),
            "{method} {path}: {a} {b}"
        );
        if a == b {
            agree += 1;
            if a == 200 {
                allowed += 1
            } else {
                denied += 1
            }
        } else {
            disagreements.push(format!("{method} {path} {headers:?}: policy {a}, rbac {b}"));
        }
    }
    eprintln!(
        "differential: {REQUESTS} requests, {agree} agree ({allowed} allowed, {denied} denied), {} differ",
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // The sample must exercise both outcomes and several rules, or agreement means little.
    assert!(
        allowed >= 40 && denied >= 40,
        "allowed {allowed}, denied {denied}"
    );
    for rule in ["public_read", "admin", "api_write", "health"] {
        assert!(
            wasm_stat(&wasm, &format!("rule_{rule}_allowed")) > 0,
            "rule {rule} never allowed"
        );
    }
    assert!(wasm_stat(&wasm, "rule_secret_denied") > 0);
    assert_eq!(native.stat("http.ingress.rbac.allowed"), allowed);
    assert_eq!(native.stat("http.ingress.rbac.denied"), denied);
}

/// A global rate-limit rule of `max_tokens` per hour (no refill during a test) on an Envoy with
/// two workers, hammered by `clients` threads sending `per_client` requests each, a new
/// connection per request so the kernel spreads them over both workers. Admitted requests get
/// a direct response from Envoy's router: the tests measure the filter, not the echo upstream
/// (which, under 16 parallel connections from two workers, was seen to stall some requests into
/// 504s). Returns Envoy (for its stats), the admitted and the limited counts, and the
/// connections each worker served.
fn hammer_two_workers(
    max_tokens: u64,
    clients: usize,
    per_client: usize,
) -> (Arc<Envoy>, u64, u64, Vec<(String, u64)>) {
    let config = json!({"rules": [{"name": "global", "match": {"paths": [{"prefix": "/"}]}, "action": "rate_limit",
        "rate_limit": {"max_tokens": max_tokens, "fill_interval": "1h"}}]});
    let echo = EchoServer::start("echo").unwrap();
    let direct = json!([{"name": "direct", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]);
    let envoy = Arc::new(
        Envoy::start(
            EnvoyConfig::new(echo.addr())
                .concurrency(2)
                .virtual_hosts(direct)
                .filter(policy(&config)),
        )
        .unwrap(),
    );
    let ok = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (envoy, ok, limited) = (Arc::clone(&envoy), Arc::clone(&ok), Arc::clone(&limited));
            std::thread::spawn(move || {
                for _ in 0..per_client {
                    let r = Client::new().get(&envoy.url("/")).unwrap();
                    match r.status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => limited.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected status {other}"),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (ok, limited) = (ok.load(Ordering::Relaxed), limited.load(Ordering::Relaxed));
    let mut per_worker: Vec<(String, u64)> = envoy
        .stats()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("listener.127.0.0.1_")
                && k.ends_with(".downstream_cx_total")
                && k.contains(".worker_")
        })
        .collect();
    per_worker.sort();
    (envoy, ok, limited, per_worker)
}

#[test]
fn rate_limit_is_shared_by_two_workers() {
    const R: u64 = 40;
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 25;
    // A fill interval far longer than the test: no refill can happen, so exactly R must pass.
    let (envoy, ok, limited, per_worker) = hammer_two_workers(R, CLIENTS, PER_CLIENT);
    eprintln!("concurrency: {ok} admitted, {limited} limited of {} (R = {R}); connections per worker {per_worker:?}",
        CLIENTS * PER_CLIENT);
    assert_eq!(per_worker.len(), 2, "{per_worker:?}");
    assert!(
        per_worker.iter().all(|(_, v)| *v > 0),
        "both workers must serve: {per_worker:?}"
    );
    assert_eq!(ok + limited, (CLIENTS * PER_CLIENT) as u64);
    assert_eq!(ok, R, "a bucket of R admits exactly R across workers");
    assert_eq!(wasm_stat(&envoy, "rule_global_allowed"), R);
    assert_eq!(wasm_stat(&envoy, "rule_global_rate_limited"), limited);
    assert_eq!(wasm_stat(&envoy, "ratelimit_store_errors"), 0);
}

#[test]
fn a_leased_bucket_never_admits_more_across_two_workers_and_at_most_two_leases_fewer() {
    // A bucket large enough to be leased from (sdk_ext::ratelimit::take_leased): each worker
    // takes up to min(32, tokens / 64) tokens ahead and spends them without shared data. The
    // limit must still hold exactly as an upper bound across both workers, and the tokens lost
    // (leases unspent when the requests stop) are at most one lease per worker.
    const R: u64 = 1280;
    // The largest lease: 1/64 (`LEASE_FRACTION`) of the tokens left after the first request.
    const LEASE: u64 = (R - 1) / 64;
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 100;
    let (envoy, ok, limited, per_worker) = hammer_two_workers(R, CLIENTS, PER_CLIENT);
    let workers = per_worker.iter().filter(|(_, v)| *v > 0).count();
    eprintln!(
        "leased: {ok} admitted, {limited} limited of {} (R = {R}, lease {LEASE}); {workers} workers served",
        CLIENTS * PER_CLIENT
    );
    assert_eq!(workers, 2, "both workers must serve");
    assert_eq!(ok + limited, (CLIENTS * PER_CLIENT) as u64);
    assert!(ok <= R, "{ok} admitted: over the bucket's {R}");
    assert!(
        ok >= R - 2 * LEASE,
        "{ok} admitted: more than one lease ({LEASE}) per worker short of {R}"
    );
    assert_eq!(wasm_stat(&envoy, "rule_global_allowed"), ok);
    assert_eq!(wasm_stat(&envoy, "rule_global_rate_limited"), limited);
    assert_eq!(wasm_stat(&envoy, "ratelimit_store_errors"), 0);
}
