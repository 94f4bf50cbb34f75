//! The suite module in a real Envoy, side by side with the same filters as separate Wasm
//! filters (the `chain`): on the same requests both answer the same (policy denial, threat
//! block, the router's tag reaching the upstream, a spoofed tag replaced) and count the same
//! metrics under the members' own names; an absent member is off; a bad member configuration
//! is refused naming the member's JSON path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn policy_config() -> Value {
    json!({
        "rules": [
            {"name": "internal", "match": {"paths": [{"prefix": "/internal/"}]}, "action": "deny",
             "deny": {"status": 403, "message": "internal API"}},
            {"name": "per-user", "match": {"paths": [{"prefix": "/"}]}, "action": "rate_limit",
             "rate_limit": {"max_tokens": 1000, "fill_interval": "1s", "key": [{"header": "x-user-id"}]}}
        ]
    })
}

fn router_config() -> Value {
    json!({
        "route_header": "x-route-tag",
        "default_tag": "stable",
        "rules": [
            {"name": "beta", "match": {"cookies": [{"name": "beta", "value": {"exact": "yes"}}]}, "tag": "canary"},
            {"name": "split", "weights": [{"tag": "canary", "percent": 10}, {"tag": "stable", "percent": 90}],
             "hash_on": [{"header": "x-user-id"}], "fallback": {"tag": "stable"}}
        ]
    })
}

fn wasm(name: &str, config: &Value) -> FilterEntry {
    FilterEntry::wasm(name, modules::module(name).unwrap(), config.to_string())
}

fn suite(config: &Value) -> FilterEntry {
    wasm("suite", config)
}

/// The chain's members in the suite's order, and the suite's combined configuration.
fn members() -> Vec<(&'static str, Value)> {
    vec![
        ("policy", policy_config()),
        (
            "threat-score",
            json!({"mode": "block", "paranoia_level": 1}),
        ),
        ("router", router_config()),
    ]
}

fn suite_config() -> Value {
    let mut doc = serde_json::Map::new();
    for (name, config) in members() {
        doc.insert(name.replace('-', "_"), config);
    }
    Value::Object(doc)
}

fn send(envoy: &Envoy, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    Client::new()
        .request(method, &envoy.url(path), headers, body.as_bytes())
        .unwrap()
}

type Outcome = (u16, Value, Value, Option<String>, Option<String>);

/// What a client and the upstream saw of one request: status, the local reply's `error` and
/// `message`, and the routing/threat headers the upstream received.
fn outcome(resp: &Response) -> Outcome {
    let upstream = resp.status == 200;
    let body = if upstream { Value::Null } else { resp.json() };
    (
        resp.status,
        body["error"].clone(),
        body["message"].clone(),
        upstream
            .then(|| resp.upstream_header("x-route-tag"))
            .flatten(),
        upstream
            .then(|| resp.upstream_header("x-threat-score"))
            .flatten(),
    )
}

/// The members' metrics, without what each module's glue defines for itself: the build gauges
/// (`<module>_build_<version>_<commit>`: three modules in the chain, one in the suite), which
/// [`build_gauges`] returns, and `<module>_host_errors_total` (checked to be 0 here).
fn member_metrics(envoy: &Envoy) -> BTreeMap<String, u64> {
    let stats = envoy.stats().unwrap();
    let glue: Vec<_> = stats
        .iter()
        .filter(|(k, _)| k.starts_with("wasmcustom.") && k.ends_with("_host_errors_total"))
        .collect();
    assert!(!glue.is_empty(), "the glue defines its host error counter");
    assert!(glue.iter().all(|(_, v)| **v == 0), "host errors: {glue:?}");
    stats
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("wasmcustom.")
                && !k.contains("_build_")
                && !k.ends_with("_host_errors_total")
        })
        .collect()
}

/// The modules' build gauges: which module names are loaded, each at 1.
fn build_gauges(envoy: &Envoy) -> Vec<String> {
    let mut out: Vec<String> = envoy
        .stats()
        .unwrap()
        .into_iter()
        .filter(|(k, v)| k.starts_with("wasmcustom.") && k.contains("_build_") && *v == 1)
        .filter_map(|(k, _)| {
            k.trim_start_matches("wasmcustom.")
                .split("_build_")
                .next()
                .map(String::from)
        })
        .collect();
    out.sort();
    out
}

/// One request: method, path, headers, body.
type Req = (&'static str, String, Vec<(&'static str, String)>, String);

/// The requests both Envoys get.
fn requests() -> Vec<Req> {
    let mut out = Vec::new();
    out.push((
        "GET",
        "/internal/admin".into(),
        vec![("x-user-id", "user-01".into())],
        String::new(),
    ));
    for i in 0..20 {
        out.push((
            "GET",
            format!("/api/items/{i}"),
            vec![("x-user-id", format!("user-{i:02}"))],
            String::new(),
        ));
    }
    out.push((
        "GET",
        "/api/items".into(),
        vec![
            ("x-user-id", "user-03".into()),
            ("cookie", "beta=yes".into()),
        ],
        String::new(),
    ));
    // A client cannot choose its route: the router owns the header.
    out.push((
        "GET",
        "/api/items".into(),
        vec![
            ("x-user-id", "user-04".into()),
            ("x-route-tag", "canary".into()),
        ],
        String::new(),
    ));
    out.push((
        "POST",
        "/api/orders".into(),
        vec![
            ("x-user-id", "user-05".into()),
            ("content-type", "application/json".into()),
        ],
        r#"{"sku": "SKU-1", "qty": 2, "note": "leave at the door"}"#.into(),
    ));
    // Hostile: blocked by threat-score, in the query and in a JSON body (the suite holds the
    // router until the body has been scored).
    out.push((
        "GET",
        "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
        vec![("x-user-id", "user-06".into())],
        String::new(),
    ));
    out.push((
        "POST",
        "/api/orders".into(),
        vec![
            ("x-user-id", "user-07".into()),
            ("content-type", "application/json".into()),
        ],
        r#"{"sku": "1' UNION SELECT password FROM users--", "qty": 1}"#.into(),
    ));
    out
}

#[test]
fn the_suite_answers_like_the_separate_filters_and_counts_the_same_metrics() {
    let echo = EchoServer::start("echo").unwrap();
    let mut chain_cfg = EnvoyConfig::new(echo.addr());
    for (name, config) in members() {
        chain_cfg = chain_cfg.filter(wasm(name, &config));
    }
    let chain = Envoy::start(chain_cfg).unwrap();
    let one = Envoy::start(EnvoyConfig::new(echo.addr()).filter(suite(&suite_config()))).unwrap();

    let mut tags = BTreeMap::new();
    for (method, path, headers, body) in requests() {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let a = outcome(&send(&chain, method, &path, &headers, &body));
        let b = outcome(&send(&one, method, &path, &headers, &body));
        assert_eq!(a, b, "{method} {path} {headers:?}: chain vs suite");
        *tags.entry(format!("{}/{:?}", a.0, a.3)).or_insert(0) += 1;
    }
    // The requests exercised a denial and both routes (so "the same" is not trivially "nothing").
    assert_eq!(tags.get("403/None"), Some(&3), "{tags:?}");
    assert!(tags.contains_key("200/Some(\"canary\")"), "{tags:?}");
    assert!(tags.contains_key("200/Some(\"stable\")"), "{tags:?}");

    // Same metric names and values, whether the members run separately or in the suite.
    let (a, b) = (member_metrics(&chain), member_metrics(&one));
    assert!(
        a.contains_key("wasmcustom.policy_rule_internal_denied"),
        "{a:?}"
    );
    assert_eq!(a, b, "chain vs suite metrics");
    assert_eq!(build_gauges(&chain), ["policy", "router", "threat_score"]);
    assert_eq!(build_gauges(&one), ["suite"]);
    assert_eq!(
        a.get("wasmcustom.threat_score_blocked_total"),
        Some(&2),
        "{a:?}"
    );
}

#[test]
fn an_absent_member_is_off() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr()).filter(suite(&json!({"router": router_config()}))),
    )
    .unwrap();
    let resp = send(
        &envoy,
        "GET",
        "/internal/admin",
        &[("x-user-id", "user-01")],
        "",
    );
    assert_eq!(resp.status, 200, "policy is off: {}", resp.body);
    assert!(resp.upstream_header("x-route-tag").is_some());
}

#[test]
fn a_bad_member_config_is_refused_naming_the_member_path() {
    let echo = EchoServer::start("echo").unwrap();
    let mut bad = suite_config();
    bad["policy"]["rules"][0]["match"]["paths"][0] = json!({"regex": "("});
    let log = Envoy::start_expecting_failure(
        EnvoyConfig::new(echo.addr())
            .filter(suite(&bad))
            .inline_filters(),
    )
    .unwrap();
    assert!(
        log.contains("invalid configuration at `policy.rules[0].match.paths[0].regex`: rule `internal`: invalid regex"),
        "log does not name the member path:\n{log}"
    );

    let log = Envoy::start_expecting_failure(
        EnvoyConfig::new(echo.addr())
            .filter(suite(&json!({"polcy": policy_config()})))
            .inline_filters(),
    )
    .unwrap();
    assert!(
        log.contains("invalid configuration at `polcy`: unknown field `polcy`"),
        "log does not name the unknown member:\n{log}"
    );
}

/// Policy with API keys (header or query) and a router that routes and rewrites by the consumer
/// policy established: the suite must forward what the two separate filters forward.
fn consumer_routing_members() -> Vec<(&'static str, Value)> {
    vec![
        (
            "policy",
            json!({
                "api_keys": {
                    "header": "x-api-key", "query": "api_key", "consumer_header": "x-api-consumer",
                    "keys": [
                        // sha256("secret"), sha256("other")
                        {"consumer": "partner", "sha256": "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"},
                        {"consumer": "basic", "sha256": "d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa"}
                    ]
                }
            }),
        ),
        (
            "router",
            json!({
                "route_header": "x-route-tag", "default_tag": "stable",
                "rules": [{
                    "name": "partners",
                    "match": {"headers": [{"name": "x-api-consumer", "value": {"exact": "partner"}}]},
                    "tag": "partner",
                    "rewrite": {"path_prefix": {"from": "/api/", "to": "/v2/"}}
                }]
            }),
        ),
    ]
}

/// What the upstream received of one request (path and the headers the two filters own), or
/// the local reply's status.
fn upstream_view(resp: &Response) -> (u16, Value, [Option<String>; 4]) {
    if resp.status != 200 {
        return (resp.status, Value::Null, Default::default());
    }
    (
        resp.status,
        resp.json()["path"].clone(),
        ["x-api-key", "x-api-consumer", "x-route-tag", "x-other"].map(|h| resp.upstream_header(h)),
    )
}

#[test]
fn the_suite_forwards_what_the_chain_forwards_keys_rewrites_and_consumers() {
    let echo = EchoServer::start("echo").unwrap();
    let mut chain_cfg = EnvoyConfig::new(echo.addr());
    let mut doc = serde_json::Map::new();
    for (name, config) in consumer_routing_members() {
        chain_cfg = chain_cfg.filter(wasm(name, &config));
        doc.insert(name.to_string(), config);
    }
    let chain = Envoy::start(chain_cfg).unwrap();
    let one =
        Envoy::start(EnvoyConfig::new(echo.addr()).filter(suite(&Value::Object(doc)))).unwrap();

    let s = |v: &str| Some(v.to_string());
    // (path, headers, what the upstream must receive: path, x-api-key, consumer, tag, x-other)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<(&str, &str)>, (u16, Value, [Option<String>; 4]))> = vec![
        // Key in the query: stripped by policy; the router rewrites the stripped path.
        (
            "/api/items?api_key=secret&page=2",
            vec![("x-other", "kept")],
            (
                200,
                json!("/v2/items?page=2"),
                [None, s("partner"), s("partner"), s("kept")],
            ),
        ),
        // Key in a header: removed before the upstream.
        (
            "/api/items",
            vec![("x-api-key", "secret")],
            (
                200,
                json!("/v2/items"),
                [None, s("partner"), s("partner"), None],
            ),
        ),
        // A forged consumer header without a key: removed, not routed on.
        (
            "/api/items",
            vec![("x-api-consumer", "partner")],
            (200, json!("/api/items"), [None, None, s("stable"), None]),
        ),
        // A forged consumer header next to another consumer's key: that consumer wins.
        (
            "/api/items?api_key=other",
            vec![("x-api-consumer", "partner")],
            (
                200,
                json!("/api/items"),
                [None, s("basic"), s("stable"), None],
            ),
        ),
        // A forged route tag with a partner's key: the router owns its header.
        (
            "/api/x",
            vec![("x-api-key", "secret"), ("x-route-tag", "canary")],
            (
                200,
                json!("/v2/x"),
                [None, s("partner"), s("partner"), None],
            ),
        ),
        // A wrong key: 401 from both.
        (
            "/api/items?api_key=wrong",
            vec![],
            (401, Value::Null, Default::default()),
        ),
    ];
    for (path, headers, want) in cases {
        let a = upstream_view(&send(&chain, "GET", path, &headers, ""));
        let b = upstream_view(&send(&one, "GET", path, &headers, ""));
        assert_eq!(a, want, "{path} {headers:?}: the chain forwarded");
        assert_eq!(b, a, "{path} {headers:?}: suite vs chain");
    }
}
