//! Each filter's end-to-end cases replayed in a real Envoy and in-process (Wasmtime and the
//! interpreter), request by request in the same order on one VM each: the same status, the
//! same headers and path seen upstream, the same reply body and filter-set response headers,
//! and the same counters at the end.
//!
//! Requests go to Envoy as exact bytes (`envoy_harness::corpus::send_raw`) and through
//! `wasm_host::front` in-process, so both sides start from the same request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::corpus::{raw_request, send_raw, Row};
use envoy_harness::{cases, modules, EchoServer, Envoy, EnvoyConfig, FilterEntry};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wasm_host::{front, Plugin, RuntimeKind, Verdict, Vm};

/// One request: method, path, headers (a `Host` is added when absent), body.
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// Headers Envoy itself adds or rewrites outside the filter (router and connection manager);
/// everything else the upstream sees must be identical.
fn envoy_owned(name: &str) -> bool {
    // x-forwarded-for: for a loopback client Envoy appends its own interface address.
    name.starts_with("x-envoy-")
        || name == "content-length"
        || name == "transfer-encoding"
        || name == "x-forwarded-for"
}

/// Method, path, sorted headers and body the upstream saw.
type Upstream = (String, String, Vec<(String, String)>, String);

/// What one request looked like from outside: status, upstream view, reply.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    /// Method, path and sorted headers seen upstream (None: the upstream was not reached).
    upstream: Option<Upstream>,
    /// Local reply body (None when the upstream answered).
    reply: Option<Value>,
    /// The rate-limit headers the client got (`ratelimit-limit`, `ratelimit-remaining`;
    /// `ratelimit-reset` and `retry-after` count seconds of the wall clock, which differs).
    limit_headers: Vec<(String, String)>,
}

const LIMIT_HEADERS: [&str; 2] = ["ratelimit-limit", "ratelimit-remaining"];

fn limit_headers<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> Vec<(String, String)> {
    LIMIT_HEADERS
        .iter()
        .filter_map(|n| Some((n.to_string(), String::from_utf8_lossy(get(n)?).into_owned())))
        .collect()
}

fn row(i: usize, case: &Case) -> Row {
    let (method, path, headers, body) = case;
    let mut hs: Vec<(&str, &str)> = headers.clone();
    if !hs.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        hs.insert(0, ("Host", "example.test"));
    }
    let rid = format!("diff-{i}");
    let mut row = Row::request(method, path, &hs, body);
    if !hs
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
    {
        row.headers.push(("x-request-id".into(), rid));
    }
    row
}

fn envoy_seen(envoy: &Envoy, row: &Row) -> Seen {
    let resp = send_raw(
        envoy.listener("http"),
        &raw_request(row),
        false,
        Duration::from_secs(20),
    )
    .unwrap()
    .unwrap_or_else(|| panic!("{}: no response from Envoy", row.id));
    let limit_headers = limit_headers(|n| resp.header(n).map(str::as_bytes));
    if resp.header("x-upstream").is_some() {
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        let mut headers: Vec<(String, String)> = v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_ascii_lowercase(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .filter(|(k, _)| !envoy_owned(k))
            .collect();
        headers.sort();
        Seen {
            status: resp.status,
            upstream: Some((
                v["method"].as_str().unwrap().into(),
                v["path"].as_str().unwrap().into(),
                headers,
                v["body"].as_str().unwrap_or_default().into(),
            )),
            reply: None,
            limit_headers,
        }
    } else {
        Seen {
            status: resp.status,
            upstream: None,
            reply: serde_json::from_slice(&resp.body).ok(),
            limit_headers,
        }
    }
}

fn in_process_seen(vm: &mut Vm, row: &Row, i: usize) -> Seen {
    let req = front::filter_input(
        &row.method,
        &row.uri,
        &row.version,
        &row.headers,
        row.body.as_bytes(),
        i,
    )
    .unwrap_or_else(|e| panic!("{}: the front end refused it: {e:?}", row.id));
    let out = vm.http(&req).unwrap();
    let limit_headers = limit_headers(|n| wasm_host::header(&out.response.headers, n));
    match &out.verdict {
        Verdict::Forwarded => {
            let h = &out.upstream_headers;
            let get = |n: &str| {
                wasm_host::header(h, n)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            let mut headers: Vec<(String, String)> = h
                .iter()
                .filter(|(k, _)| !k.starts_with(':') && !envoy_owned(k))
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            headers.push(("host".into(), get(":authority")));
            headers.sort();
            let body = out
                .upstream_body
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Seen {
                status: out.status() as u16,
                upstream: Some((get(":method"), get(":path"), headers, body)),
                reply: None,
                limit_headers,
            }
        }
        Verdict::LocalReply(r) => Seen {
            status: r.status as u16,
            upstream: None,
            reply: serde_json::from_slice(&r.body).ok(),
            limit_headers,
        },
        other => panic!("{}: in-process verdict {other:?}", row.id),
    }
}

/// Every counter the module defined in-process has the value Envoy reports.
fn same_counters(filter: &str, rt: RuntimeKind, vm: &Vm, stats: &HashMap<String, u64>) {
    assert_eq!(
        vm.state_ref().counter_differing_from(stats),
        None,
        "{filter} on {rt}: a counter (name, in-process, Envoy)"
    );
}

/// Run `cases` through `filter` with `config` in Envoy and in-process on both runtimes.
fn differential(filter: &str, config: &str, cases: &[Case]) {
    let module = modules::module(filter).unwrap();
    let wasm = std::fs::read(&module).unwrap();
    let echo = EchoServer::start("echo").unwrap();
    let t = Instant::now();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr()).filter(FilterEntry::wasm(filter, &module, config)),
    )
    .unwrap();
    let envoy_start = t.elapsed();
    let rows: Vec<Row> = cases.iter().enumerate().map(|(i, c)| row(i, c)).collect();
    let envoy_view: Vec<Seen> = rows.iter().map(|r| envoy_seen(&envoy, r)).collect();
    let stats = envoy.stats().unwrap();
    for rt in RuntimeKind::ALL {
        let t = Instant::now();
        let mut vm = Vm::start(rt, &wasm, &Plugin::new(filter, config)).unwrap();
        for (i, (r, want)) in rows.iter().zip(&envoy_view).enumerate() {
            let got = in_process_seen(&mut vm, r, i);
            assert_eq!(
                &got, want,
                "{filter} on {rt}, case {i} ({} {} {:?}): in-process (left) vs Envoy (right)",
                r.method, r.uri, r.headers
            );
        }
        same_counters(filter, rt, &vm, &stats);
        eprintln!(
            "{filter}: {} cases identical on {rt} in {:.0} ms (Envoy start alone {:.2} s)",
            rows.len(),
            t.elapsed().as_secs_f64() * 1000.0,
            envoy_start.as_secs_f64()
        );
    }
}

#[test]
fn example() {
    let config = r#"{
        "response_header": {"name": "x-example-filter", "value": "v1"},
        "deny": {"header": {"name": "x-deny"}, "status": 403, "message": "no"}
    }"#;
    differential(
        "example",
        config,
        &[
            ("POST", "/hello?x=1", vec![("x-custom", "abc")], "payload"),
            (
                "GET",
                "/secret",
                vec![("x-deny", "1"), ("x-request-id", "req-42")],
                "",
            ),
            ("GET", "/open", vec![], ""),
        ],
    );
}

/// A request of a shared e2e table (`envoy_harness::cases`), without a body.
fn from_table<W>(c: &cases::HttpCase<W>) -> Case {
    (c.method, c.path, c.headers.clone(), "")
}

/// The e2e test's table (tests/tests/policy.rs `every_match_kind_and_action`), then its two
/// detailed requests: the bucket's refusal and a default denial.
#[test]
fn policy() {
    let config = cases::policy_every_match_config().to_string();
    let mut table: Vec<Case> = cases::policy_every_match_cases()
        .iter()
        .map(from_table)
        .collect();
    table.extend([
        (
            "GET",
            "/limited?secret=hunter2",
            vec![("x-request-id", "rid-7")],
            "",
        ),
        (
            "GET",
            "/nothing-matches",
            vec![("x-request-id", "rid-8")],
            "",
        ),
    ]);
    differential("policy", &config, &table);
}

/// The e2e test's rule table (tests/tests/router.rs `each_rule_kind_...`), then the requests
/// of its rewrite, keyless-split and spoofed-header tests.
#[test]
fn router() {
    let mut table: Vec<Case> = cases::router_rule_cases()
        .iter()
        .map(|(_, c)| from_table(c))
        .collect();
    table.extend([
        ("GET", "/legacy/a?b=1", vec![("x-internal", "secret")], ""),
        ("GET", "/fixed/a", vec![("x-user-id", "u-1")], ""),
        ("GET", "/fixed/a", vec![("x-user-id", "u-2")], ""),
        ("GET", "/fixed/a", vec![], ""),
        ("GET", "/plain", vec![("x-route-tag", "canary")], ""),
        (
            "GET",
            "/plain",
            vec![("X-Route-Tag", "canary"), ("x-route-tag", "x")],
            "",
        ),
    ]);
    differential("router", cases::ROUTER_RULES, &table);
}

const THREAT_CASES: &[(&str, &str, &str)] = &[
    ("GET", "/items?id=1%27%20OR%20%271%27%3D%271", ""),
    (
        "GET",
        "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
        "",
    ),
    ("POST", "/login", "user=admin%27--&pass=x"),
    (
        "POST",
        "/api/comments",
        r#"{"text": "<img src=x onerror=alert(1)>"}"#,
    ),
    ("GET", "/home?file=../../../../etc/passwd", ""),
    ("GET", "/search?q=blue+shoes", ""),
    ("POST", "/form", "note=hello&qty=2"),
];

fn threat_cases() -> Vec<Case> {
    THREAT_CASES
        .iter()
        .map(|(m, p, b)| {
            let headers = if b.starts_with('{') {
                vec![("content-type", "application/json")]
            } else if b.is_empty() {
                vec![]
            } else {
                vec![("content-type", "application/x-www-form-urlencoded")]
            };
            (*m, *p, headers, *b)
        })
        .chain([(
            "GET",
            "/items?id=42",
            vec![("x-threat-score", "0"), ("x-threat-categories", "none")],
            "",
        )])
        .collect()
}

#[test]
fn threat_score_block() {
    differential("threat-score", r#"{"mode": "block"}"#, &threat_cases());
}

#[test]
fn threat_score_tag() {
    differential("threat-score", r#"{"mode": "tag"}"#, &threat_cases());
}

#[test]
fn suite() {
    let config = json!({
        "policy": {"rules": [
            {"name": "internal", "match": {"paths": [{"prefix": "/internal/"}]}, "action": "deny",
             "deny": {"status": 403, "message": "internal API"}},
            {"name": "per-user", "match": {"paths": [{"prefix": "/"}]}, "action": "rate_limit",
             "rate_limit": {"max_tokens": 1000, "fill_interval": "1s", "key": [{"header": "x-user-id"}]}}
        ]},
        "threat_score": {"mode": "block", "paranoia_level": 1},
        "router": {"route_header": "x-route-tag", "default_tag": "stable", "rules": [
            {"name": "beta", "match": {"cookies": [{"name": "beta", "value": {"exact": "yes"}}]}, "tag": "canary"},
            {"name": "split", "weights": [{"tag": "canary", "percent": 10}, {"tag": "stable", "percent": 90}],
             "hash_on": [{"header": "x-user-id"}], "fallback": {"tag": "stable"}}
        ]}
    })
    .to_string();
    let mut cases = threat_cases();
    cases.extend([
        ("GET", "/internal/admin", vec![], ""),
        (
            "GET",
            "/api/items",
            vec![("cookie", "beta=yes"), ("x-user-id", "u-7")],
            "",
        ),
        ("GET", "/api/items", vec![("x-user-id", "u-8")], ""),
        ("GET", "/api/items", vec![("x-route-tag", "canary")], ""),
    ]);
    differential("suite", &config, &cases);
}

/// What happens to the rate-limit service between requests of the global-limit scenario.
#[derive(Debug, Clone, Copy)]
enum ServiceChange {
    /// `response_headers_to_add` on (the service's own `ratelimit-*` headers) or off.
    ResponseHeaders(bool),
    /// Hold every answer this long (longer than the calls' deadline: a stalled service).
    Delay(Duration),
    /// Redis stops: the service answers UNAVAILABLE.
    RedisDown,
    /// The service stops: connections are refused.
    Stop,
}

enum Step {
    Send(Case),
    Change(ServiceChange),
}

/// Redis and the rate-limit service for one side of the comparison (each side counts from
/// zero in its own Redis).
struct Service {
    redis: envoy_harness::redis::RedisServer,
    rls: envoy_harness::ratelimit::RateLimitServer,
}

impl Service {
    fn start() -> Service {
        let domains: Vec<envoy_harness::ratelimit::DomainConfig> =
            serde_json::from_value(json!([{"domain": "edge", "descriptors": [
                {"key": "generic_key", "value": "api",
                 "rate_limit": {"unit": "minute", "requests_per_unit": 3}},
                {"key": "generic_key", "value": "first",
                 "rate_limit": {"unit": "minute", "requests_per_unit": 1}},
                {"key": "generic_key", "value": "users", "descriptors": [
                    {"key": "remote_address", "descriptors": [
                        {"key": "x-user", "rate_limit": {"unit": "minute", "requests_per_unit": 2}},
                        {"key": "x-user", "value": "vip",
                         "rate_limit": {"unit": "minute", "requests_per_unit": 3}}]}]},
                {"key": "generic_key",
                 "rate_limit": {"unit": "minute", "requests_per_unit": 1000}}]}]))
            .unwrap();
        let redis = envoy_harness::redis::RedisServer::start().unwrap();
        let rls = envoy_harness::ratelimit::RateLimitServer::start(domains, redis.addr()).unwrap();
        Service { redis, rls }
    }

    fn apply(&mut self, change: ServiceChange) {
        match change {
            ServiceChange::ResponseHeaders(on) => self.rls.set_response_headers(on),
            ServiceChange::Delay(d) => self.rls.set_delay(d),
            ServiceChange::RedisDown => self.redis.stop(),
            ServiceChange::Stop => self.rls.stop(),
        }
    }
}

/// The in-process side's gRPC service: the same real rate-limit service, called over HTTP/2
/// with the call's deadline; a refused connection is what Envoy reports for one.
fn responder(
    addr: std::net::SocketAddr,
) -> impl FnMut(&wasm_host::GrpcCall) -> wasm_host::GrpcReply {
    use envoy_harness::ratelimit::{grpc_unary, GrpcAnswer};
    use wasm_host::GrpcReply;
    move |call| {
        assert_eq!(call.cluster, "ratelimit");
        let path = format!("/{}/{}", call.service, call.method);
        let timeout = Duration::from_millis(u64::from(call.timeout_ms));
        match grpc_unary(addr, &path, &call.message, timeout) {
            GrpcAnswer::Message(m) => GrpcReply::Message(m),
            GrpcAnswer::Status { code, message } => GrpcReply::Status { code, message },
            GrpcAnswer::Timeout => GrpcReply::NoAnswer,
            // ENVOY: a connection failure before any answer is the router's 503 local reply,
            // which a gRPC client sees as UNAVAILABLE.
            GrpcAnswer::Unreachable(_) => GrpcReply::Status {
                code: 14,
                message: "upstream connect error or disconnect/reset before headers. reset \
                          reason: connection failure"
                    .into(),
            },
        }
    }
}

/// Policy's `scope: global` rules (tests/tests/global_ratelimit.rs) against the real
/// rate-limit service: in Envoy (its gRPC client) and in-process (the host's gRPC calls
/// answered by the same service), the same statuses, upstream views, reply bodies, limit
/// headers and counters, through a service that works, adds headers, stalls past the
/// deadline, loses its Redis, and stops.
#[test]
fn policy_global() {
    let config = json!({"rules": [
        // Deny on failure; the service admits 3 a minute.
        {"name": "api", "match": {"paths": [{"prefix": "/api"}]}, "action": "rate_limit",
         "rate_limit": {"scope": "global", "key": [], "global": {
             "cluster": "ratelimit", "domain": "edge", "timeout": "5s", "failure_mode": "deny",
             "entries": [{"key": "generic_key", "value": "api"}]}}},
        // Allow / deny on failure with a short deadline (the stalled service).
        {"name": "open", "match": {"paths": [{"prefix": "/open"}]}, "action": "rate_limit",
         "rate_limit": {"scope": "global", "global": {
             "cluster": "ratelimit", "domain": "edge", "timeout": "400ms",
             "failure_mode": "allow", "failure_status": 503,
             "entries": [{"key": "generic_key", "value": "open"}]}}},
        {"name": "closed", "match": {"paths": [{"prefix": "/closed"}]}, "action": "rate_limit",
         "rate_limit": {"scope": "global", "global": {
             "cluster": "ratelimit", "domain": "edge", "timeout": "400ms",
             "failure_mode": "deny", "failure_status": 503,
             "entries": [{"key": "generic_key", "value": "closed"}]}}},
        // A local bucket (2) before the service (1 a minute).
        {"name": "first", "match": {"paths": [{"prefix": "/first"}]}, "action": "rate_limit",
         "rate_limit": {"scope": "global", "key": [], "global": {
             "cluster": "ratelimit", "domain": "edge", "timeout": "5s", "failure_mode": "deny",
             "entries": [{"key": "generic_key", "value": "first"}],
             "local_first": {"max_tokens": 2, "fill_interval": "1h"}}}},
        // Descriptors from the request (the native filter's comparison in the e2e test).
        {"name": "users", "match": {"paths": [{"prefix": "/users"}]}, "action": "rate_limit",
         "rate_limit": {"scope": "global", "key": ["source_ip", {"header": "x-user"}], "global": {
             "cluster": "ratelimit", "domain": "edge", "timeout": "3s",
             "entries": [{"key": "generic_key", "value": "users"}]}}},
        // A cluster that does not exist: the call fails at once.
        {"name": "nowhere", "match": {"paths": [{"prefix": "/nowhere"}]}, "action": "rate_limit",
         "rate_limit": {"scope": "global", "global": {
             "cluster": "missing", "domain": "edge", "timeout": "1s",
             "failure_mode": "deny", "failure_status": 503,
             "entries": [{"key": "generic_key", "value": "nowhere"}]}}}
    ]})
    .to_string();
    let get = |path: &'static str| Step::Send(("GET", path, vec![], ""));
    let user = |u: &'static str| Step::Send(("GET", "/users/data", vec![("x-user", u)], ""));
    let body: &'static str = Box::leak("x".repeat(20_000).into_boxed_str());
    let mut steps = vec![
        get("/api/x"),
        get("/api/x"),
        get("/api/x"),
        get("/api/x"),
        get("/other"),
        get("/open"),
        get("/closed"),
        Step::Change(ServiceChange::ResponseHeaders(true)),
        // The body waits with the headers while the call is out, then goes upstream whole.
        Step::Send(("POST", "/open", vec![("content-type", "text/plain")], body)),
        get("/api/x"),
        Step::Change(ServiceChange::ResponseHeaders(false)),
        get("/first"),
        get("/first"),
        get("/first"),
        get("/first"),
    ];
    for u in [
        "alice", "bob", "alice", "vip", "alice", "vip", "vip", "vip", "bob", "carol",
    ] {
        steps.push(user(u));
    }
    steps.extend([
        Step::Change(ServiceChange::Delay(Duration::from_secs(60))),
        get("/open"),
        get("/closed"),
        get("/open"),
        get("/closed"),
        Step::Change(ServiceChange::Delay(Duration::ZERO)),
        Step::Change(ServiceChange::RedisDown),
        get("/open"),
        get("/closed"),
        get("/users/data"),
        Step::Change(ServiceChange::Stop),
        get("/open"),
        get("/closed"),
        get("/api/x"),
        get("/nowhere"),
    ]);
    let cases = steps.iter().filter(|s| matches!(s, Step::Send(_))).count();

    let module = modules::module("policy").unwrap();
    let wasm = std::fs::read(&module).unwrap();
    let echo = EchoServer::start("echo").unwrap();

    // Envoy, with the service's cluster.
    envoy_harness::ratelimit::wait_for_fresh_minute(Duration::from_secs(20));
    let mut service = Service::start();
    let mut cfg =
        EnvoyConfig::new(echo.addr()).filter(FilterEntry::wasm("policy", &module, &config));
    cfg.extra_clusters
        .push(envoy_harness::ratelimit::cluster_json(
            "ratelimit",
            service.rls.addr(),
        ));
    let envoy = Envoy::start(cfg).unwrap();
    let mut envoy_view = Vec::new();
    let mut i = 0;
    for step in &steps {
        match step {
            Step::Send(case) => {
                envoy_view.push(envoy_seen(&envoy, &row(i, case)));
                i += 1;
            }
            Step::Change(c) => service.apply(*c),
        }
    }
    let stats = envoy.stats().unwrap();
    drop(service);
    // The scenario does what it says in Envoy: limits, failure modes, deadlines.
    let statuses: Vec<u16> = envoy_view.iter().map(|s| s.status).collect();
    #[rustfmt::skip]
    assert_eq!(statuses, [
        200, 200, 200, 429, 200, 200, 200,  // api: 3 a minute; other: no call; open, closed
        200, 429,                           // the service's headers; api still over
        200, 429, 429, 429,                 // first: bucket 2, service 1
        200, 200, 200, 200, 429, 200, 200, 429, 200, 200, // users: 2 each, vip 3
        200, 503, 200, 503,                 // stalled: deadline, allow / deny
        200, 503, 200,                      // Redis down: UNAVAILABLE, allow / deny / allow
        200, 503, 500,                      // stopped: refused
        503,                                // a cluster Envoy does not know
    ], "Envoy");
    let stat = |n: &str| {
        stats
            .get(&format!("wasmcustom.policy_ratelimit_global_{n}"))
            .copied()
    };
    assert_eq!(stat("timeout"), Some(4));
    assert_eq!(stat("local_first_limited"), Some(2));

    for rt in RuntimeKind::ALL {
        envoy_harness::ratelimit::wait_for_fresh_minute(Duration::from_secs(20));
        let t = Instant::now();
        let mut service = Service::start();
        let mut vm = Vm::start(
            rt,
            &wasm,
            &Plugin::new("policy", config.as_str()).cluster("ratelimit"),
        )
        .unwrap();
        vm.set_grpc_responder(responder(service.rls.addr()));
        let mut i = 0;
        for step in &steps {
            match step {
                Step::Send(case) => {
                    let r = row(i, case);
                    let got = in_process_seen(&mut vm, &r, i);
                    assert_eq!(
                        got, envoy_view[i],
                        "policy (global) on {rt}, case {i} ({} {} {:?}): in-process (left) vs Envoy (right)",
                        r.method, r.uri, r.headers
                    );
                    i += 1;
                }
                Step::Change(c) => service.apply(*c),
            }
        }
        assert!(vm.grpc_in_flight().is_empty(), "every call was answered");
        same_counters("policy (global)", rt, &vm, &stats);
        eprintln!(
            "policy (global): {cases} cases identical on {rt} in {:.0} ms ({} gRPC calls)",
            t.elapsed().as_secs_f64() * 1000.0,
            vm.state_ref().grpc_sent.len()
        );
    }
}
