//! Global rate limits in real Envoys: the policy filter asks a rate-limit service
//! (`envoy.service.ratelimit.v3`, gRPC) that counts in a real Redis (Debian's `redis-server`).
//!
//! * Two Envoy processes share one limit: R per window in total, where local limits admit 2R.
//! * The service stopped or stalled: requests follow the failure mode (allow / deny), never
//!   wait past the timeout, and are counted. Redis restarted: calls fail while it is down
//!   (failure mode), and the counts start again from zero when it is back.
//! * Differential: Envoy's native `envoy.filters.http.ratelimit` with the same descriptors
//!   against the same service limits exactly the same requests.
//! * `local_first`: a local bucket refuses before the call (no callout for what it refuses),
//!   and the service still limits what the bucket admits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::ratelimit::{
    cluster_json, wait_for_fresh_minute, DomainConfig, RateLimitServer,
};
use envoy_harness::redis::RedisServer;
use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry, Response};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn domain(json: Value) -> DomainConfig {
    serde_json::from_value(json).unwrap()
}

/// Redis and the service, with `domains`.
fn service(domains: Vec<Value>) -> (RedisServer, RateLimitServer) {
    let redis = RedisServer::start().unwrap();
    let rls =
        RateLimitServer::start(domains.into_iter().map(domain).collect(), redis.addr()).unwrap();
    (redis, rls)
}

/// Redis and the service, with `per_minute` requests a minute on descriptor
/// `generic_key=api` of domain `edge`.
fn api_service(per_minute: usize) -> (RedisServer, RateLimitServer) {
    service(vec![json!({"domain": "edge", "descriptors": [
        {"key": "generic_key", "value": "api",
         "rate_limit": {"unit": "minute", "requests_per_unit": per_minute}}]})])
}

/// An Envoy (`workers` threads) with the policy filter configured by `policy` in front of
/// `echo`, and the service's cluster `ratelimit`.
fn envoy_with_policy(
    echo: &EchoServer,
    rls: &RateLimitServer,
    policy: &Value,
    workers: u32,
) -> Envoy {
    let mut cfg = EnvoyConfig::new(echo.addr())
        .concurrency(workers)
        .filter(FilterEntry::wasm(
            "policy",
            modules::module("policy").unwrap(),
            policy.to_string(),
        ));
    cfg.extra_clusters
        .push(cluster_json("ratelimit", rls.addr()));
    Envoy::start(cfg).unwrap()
}

fn global_policy(global: Value, key: Value) -> Value {
    json!({"rules": [{"name": "api", "match": {"paths": [{"prefix": "/api"}]}, "action": "rate_limit",
        "rate_limit": {"scope": "global", "key": key, "global": global}}]})
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(&format!("wasmcustom.policy_{name}"))
}

/// `threads` clients per Envoy, each sending `per_thread` requests; the statuses.
fn flood(envoys: &[&Envoy], threads: usize, per_thread: usize, path: &str) -> Vec<u16> {
    std::thread::scope(|s| {
        let handles: Vec<_> = envoys
            .iter()
            .flat_map(|e| (0..threads).map(move |_| e.url(path)))
            .map(|url| {
                s.spawn(move || {
                    let client = Client::new();
                    (0..per_thread)
                        .map(|_| client.get(&url).unwrap().status)
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn two_envoys_share_one_global_limit_where_local_limits_admit_twice() {
    const R: usize = 40;
    let (_redis, rls) = api_service(R);
    let echo = EchoServer::start("echo").unwrap();
    // Deny on failure: a request the service did not count must not pass as admitted.
    let global = global_policy(
        json!({"cluster": "ratelimit", "domain": "edge", "timeout": "5s", "failure_mode": "deny",
               "entries": [{"key": "generic_key", "value": "api"}]}),
        json!([]),
    );
    let a = envoy_with_policy(&echo, &rls, &global, 2);
    let b = envoy_with_policy(&echo, &rls, &global, 2);
    // 4 clients on each Envoy, 15 requests each: 120 requests for a limit of 40.
    wait_for_fresh_minute(Duration::from_secs(40));
    let statuses = flood(&[&a, &b], 4, 15, "/api/x");
    assert_eq!(statuses.len(), 120);
    assert_eq!(count(&statuses, 200), R, "admitted in total: {statuses:?}");
    assert_eq!(count(&statuses, 429), 120 - R, "{statuses:?}");
    let ok = stat(&a, "ratelimit_global_ok") + stat(&b, "ratelimit_global_ok");
    let over = stat(&a, "ratelimit_global_over_limit") + stat(&b, "ratelimit_global_over_limit");
    assert_eq!((ok, over), (R as u64, 120 - R as u64));
    assert_eq!(
        stat(&a, "ratelimit_global_error") + stat(&b, "ratelimit_global_error"),
        0
    );
    // Both replicas did part of the admitting (each saw concurrent traffic).
    assert!(stat(&a, "rule_api_allowed") > 0 && stat(&b, "rule_api_allowed") > 0);
    assert_eq!(rls.stats().answered.load(Ordering::Relaxed), 120);

    // A refusal carries the service's window: retry-after and the draft's headers.
    let r = Client::new().get(&a.url("/api/x")).unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("ratelimit-limit"), Some("40"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(r.json()["error"], "rate_limited");
    // Paths the rule does not match make no call.
    let before = rls.stats().answered.load(Ordering::Relaxed);
    assert_eq!(Client::new().get(&a.url("/other")).unwrap().status, 200);
    assert_eq!(rls.stats().answered.load(Ordering::Relaxed), before);

    // The same limit as local buckets: each Envoy admits R of its own.
    let local = json!({"rules": [{"name": "api", "match": {"paths": [{"prefix": "/api"}]},
        "action": "rate_limit", "rate_limit": {"max_tokens": R, "fill_interval": "1h"}}]});
    let la = envoy_with_policy(&echo, &rls, &local, 2);
    let lb = envoy_with_policy(&echo, &rls, &local, 2);
    let statuses = flood(&[&la, &lb], 4, 15, "/api/x");
    assert_eq!(
        count(&statuses, 200),
        2 * R,
        "local limits admit R per Envoy"
    );
}

#[test]
fn service_stopped_or_stalled_follows_the_failure_mode_and_is_counted() {
    let (_redis, mut rls) = service(vec![json!({"domain": "edge", "descriptors": [
        {"key": "generic_key", "rate_limit": {"unit": "minute", "requests_per_unit": 1000}}]})]);
    let echo = EchoServer::start("echo").unwrap();
    let rule = |name: &str, prefix: &str, mode: &str| {
        json!({"name": name, "match": {"paths": [{"prefix": prefix}]}, "action": "rate_limit",
               "rate_limit": {"scope": "global", "global": {
                   "cluster": "ratelimit", "domain": "edge", "timeout": "400ms",
                   "failure_mode": mode, "failure_status": 503,
                   "entries": [{"key": "generic_key", "value": name}]}}})
    };
    let policy =
        json!({"rules": [rule("open", "/open", "allow"), rule("closed", "/closed", "deny")]});
    let envoy = envoy_with_policy(&echo, &rls, &policy, 1);
    let client = Client::new();
    let get = |path: &str| -> Response { client.get(&envoy.url(path)).unwrap() };
    assert_eq!(get("/open").status, 200);
    assert_eq!(get("/closed").status, 200);
    assert_eq!(stat(&envoy, "ratelimit_global_ok"), 2);
    // While the call is out, the body waits with the headers and then reaches the upstream
    // whole; the service's response_headers_to_add reach the client.
    rls.set_response_headers(true);
    let body = "x".repeat(100_000);
    let r = client
        .request("POST", &envoy.url("/open"), &[], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"].as_str().map(str::len), Some(body.len()));
    assert_eq!(r.header("ratelimit-limit"), Some("1000"));
    assert!(r.header("ratelimit-remaining").is_some());
    rls.set_response_headers(false);
    assert_eq!(stat(&envoy, "ratelimit_global_ok"), 3);

    // Stalled: the service answers after 60 s, longer than the client waits (30 s). Every
    // request still gets its answer, so none waited for the service: the 400 ms deadline
    // ended each call, as the timeout counter shows.
    rls.set_delay(Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(
            get("/open").status,
            200,
            "allow: admitted without an answer"
        );
        let r = get("/closed");
        assert_eq!(r.status, 503, "deny: refused without an answer");
        assert_eq!(r.json()["error"], "unavailable");
    }
    assert_eq!(stat(&envoy, "ratelimit_global_timeout"), 6);
    assert_eq!(stat(&envoy, "ratelimit_global_error"), 6);
    assert_eq!(stat(&envoy, "ratelimit_global_failure_mode_allowed"), 3);
    assert_eq!(stat(&envoy, "ratelimit_global_failure_mode_denied"), 3);
    assert_eq!(stat(&envoy, "rule_closed_denied"), 3);

    // Stopped: the connection is refused; a failure, not a timeout.
    rls.set_delay(Duration::ZERO);
    rls.stop();
    for _ in 0..3 {
        assert_eq!(get("/open").status, 200);
        assert_eq!(get("/closed").status, 503);
    }
    assert_eq!(stat(&envoy, "ratelimit_global_error"), 12);
    assert_eq!(stat(&envoy, "ratelimit_global_timeout"), 6);
    assert_eq!(stat(&envoy, "ratelimit_global_failure_mode_allowed"), 6);
    assert_eq!(stat(&envoy, "ratelimit_global_failure_mode_denied"), 6);
    assert_eq!(stat(&envoy, "ratelimit_global_ok"), 3);
}

#[test]
fn a_redis_restart_fails_calls_while_down_and_forgets_the_counts() {
    let (mut redis, rls) = service(vec![json!({"domain": "edge", "descriptors": [
        {"key": "generic_key", "value": "api",
         "rate_limit": {"unit": "minute", "requests_per_unit": 3}}]})]);
    let echo = EchoServer::start("echo").unwrap();
    let policy = global_policy(
        json!({"cluster": "ratelimit", "domain": "edge", "timeout": "3s",
               "entries": [{"key": "generic_key", "value": "api"}]}),
        json!([]),
    );
    let envoy = envoy_with_policy(&echo, &rls, &policy, 1);
    let client = Client::new();
    let status = || client.get(&envoy.url("/api")).unwrap().status;
    wait_for_fresh_minute(Duration::from_secs(30));
    let before: Vec<u16> = (0..4).map(|_| status()).collect();
    assert_eq!(before, [200, 200, 200, 429]);

    // Down: the service answers UNAVAILABLE; the filter's failure mode (allow) admits.
    redis.stop();
    assert_eq!(status(), 200);
    assert_eq!(status(), 200);
    assert_eq!(stat(&envoy, "ratelimit_global_error"), 2);
    assert_eq!(stat(&envoy, "ratelimit_global_failure_mode_allowed"), 2);
    assert_eq!(rls.stats().redis_errors.load(Ordering::Relaxed), 2);

    // Back, empty (no persistence): the window starts again from zero.
    redis.restart().unwrap();
    let after: Vec<u16> = (0..4).map(|_| status()).collect();
    assert_eq!(after, [200, 200, 200, 429]);
    assert_eq!(stat(&envoy, "ratelimit_global_error"), 2);
}

#[test]
fn native_ratelimit_filter_with_the_same_descriptors_limits_the_same_requests() {
    // Two domains with the same tree: each side counts on its own.
    let tree = json!([{"key": "generic_key", "value": "api", "descriptors": [
        {"key": "remote_address", "descriptors": [
            {"key": "x-user", "rate_limit": {"unit": "minute", "requests_per_unit": 3}},
            {"key": "x-user", "value": "vip", "rate_limit": {"unit": "minute", "requests_per_unit": 5}}]}]}]);
    let (_redis, rls) = service(vec![
        json!({"domain": "wasm", "descriptors": tree}),
        json!({"domain": "native", "descriptors": tree}),
    ]);
    let echo = EchoServer::start("echo").unwrap();
    let wasm = envoy_with_policy(
        &echo,
        &rls,
        &global_policy(
            json!({"cluster": "ratelimit", "domain": "wasm", "timeout": "3s",
                   "entries": [{"key": "generic_key", "value": "api"}]}),
            json!(["source_ip", {"header": "x-user"}]),
        ),
        1,
    );
    let mut cfg = EnvoyConfig::new(echo.addr())
        .filter(FilterEntry::native(
            "envoy.filters.http.ratelimit",
            json!({
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
                "domain": "native",
                "timeout": "3s",
                "failure_mode_deny": false,
                "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
                "rate_limit_service": {
                    "grpc_service": {"envoy_grpc": {"cluster_name": "ratelimit"}},
                    "transport_api_version": "V3"
                }
            }),
        ))
        .virtual_hosts(json!([{
            "name": "default", "domains": ["*"],
            "routes": [{"match": {"prefix": "/api"}, "route": {"cluster": "upstream",
                "rate_limits": [{"actions": [
                    {"generic_key": {"descriptor_value": "api"}},
                    {"remote_address": {}},
                    {"request_headers": {"header_name": "x-user", "descriptor_key": "x-user"}}]}]}},
                {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
        }]));
    cfg.extra_clusters
        .push(cluster_json("ratelimit", rls.addr()));
    let native = Envoy::start(cfg).unwrap();

    // The same sequence through both: users with the default limit (3), a value-specific one
    // (5), interleaved, and paths outside the rule.
    let users = [
        "alice", "bob", "alice", "vip", "alice", "alice", "vip", "bob", "vip", "carol", "vip",
        "vip", "vip", "bob", "bob", "alice", "vip",
    ];
    let run = |envoy: &Envoy| -> Vec<u16> {
        let client = Client::new();
        let mut out = Vec::new();
        for (i, u) in users.iter().enumerate() {
            let path = if i % 5 == 4 { "/public" } else { "/api/data" };
            let r = client
                .request("GET", &envoy.url(path), &[("x-user", u)], b"")
                .unwrap();
            out.push(r.status);
        }
        out
    };
    wait_for_fresh_minute(Duration::from_secs(30));
    let from_wasm = run(&wasm);
    let from_native = run(&native);
    assert_eq!(from_wasm, from_native, "same requests limited");
    assert!(
        count(&from_wasm, 429) >= 3,
        "the sequence exercises the limits: {from_wasm:?}"
    );
    assert!(count(&from_wasm, 200) >= 10, "{from_wasm:?}");
    assert_eq!(
        native.stat("cluster.upstream.ratelimit.over_limit"),
        count(&from_native, 429) as u64
    );
    assert_eq!(
        stat(&wasm, "ratelimit_global_over_limit"),
        count(&from_wasm, 429) as u64
    );
}

#[test]
fn bad_global_settings_are_refused_at_startup_naming_the_field() {
    let echo = EchoServer::start("echo").unwrap();
    let policy = global_policy(
        json!({"cluster": "rate limit", "domain": "edge",
               "entries": [{"key": "generic_key", "value": "api"}]}),
        json!([]),
    );
    let cfg = EnvoyConfig::new(echo.addr())
        .inline_filters()
        .filter(FilterEntry::wasm(
            "policy",
            modules::module("policy").unwrap(),
            policy.to_string(),
        ));
    let log = Envoy::start_expecting_failure(cfg).unwrap();
    assert!(
        log.contains("rules[0].rate_limit.global.cluster"),
        "the error names the field: {log}"
    );
}

#[test]
fn a_local_first_bucket_refuses_before_the_call_and_the_service_still_limits_what_it_admits() {
    // The service admits 3 a minute; the local bucket (shared by both workers) 5 an hour. Of 40
    // concurrent requests, 5 pass the bucket and reach the service, which admits 3 and refuses
    // 2; the other 35 are refused by the bucket without a call.
    const SERVICE: usize = 3;
    const LOCAL: usize = 5;
    let (_redis, rls) = api_service(SERVICE);
    let echo = EchoServer::start("echo").unwrap();
    let policy = global_policy(
        json!({"cluster": "ratelimit", "domain": "edge", "timeout": "5s", "failure_mode": "deny",
               "entries": [{"key": "generic_key", "value": "api"}],
               "local_first": {"max_tokens": LOCAL, "fill_interval": "1h"}}),
        json!([]),
    );
    let envoy = envoy_with_policy(&echo, &rls, &policy, 2);
    wait_for_fresh_minute(Duration::from_secs(30));
    let statuses = flood(&[&envoy], 4, 10, "/api/x");
    assert_eq!(statuses.len(), 40);
    assert_eq!(count(&statuses, 200), SERVICE, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 40 - SERVICE, "{statuses:?}");
    assert_eq!(
        rls.stats().answered.load(Ordering::Relaxed),
        LOCAL as u64,
        "only what the bucket admitted reached the service"
    );
    assert_eq!(stat(&envoy, "ratelimit_global_ok"), SERVICE as u64);
    assert_eq!(
        stat(&envoy, "ratelimit_global_over_limit"),
        (LOCAL - SERVICE) as u64
    );
    assert_eq!(
        stat(&envoy, "ratelimit_global_local_first_limited"),
        (40 - LOCAL) as u64
    );
    assert_eq!(stat(&envoy, "ratelimit_global_error"), 0);
    assert_eq!(
        stat(&envoy, "ratelimit_store_errors"),
        0,
        "every take was decided"
    );
    // A bucket refusal is the rule's 429, and still makes no call.
    let r = Client::new().get(&envoy.url("/api/x")).unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"], "rate_limited");
    assert_eq!(rls.stats().answered.load(Ordering::Relaxed), LOCAL as u64);
    assert_eq!(
        stat(&envoy, "ratelimit_global_local_first_limited"),
        (40 - LOCAL) as u64 + 1
    );
}
