//! Native tests of the policy logic: rule order, every action, API keys, shadow modes, metrics
//! and config errors. The real-Envoy counterparts are in `tests/tests/policy.rs`.

use super::*;
use sdk_ext::config::parse_json;
use sdk_ext::shared::MemoryStore;
use sdk_ext::testing::{
    configure_with_services, recording_metrics, FakeClock, RecordingSink, RequestBuilder,
};
use sdk_ext::Services;
use serde_json::{json, Value};
use std::rc::Rc;

/// Any well-formed SHA-256 hex digest (config validation only).
const SOME_SHA: &str = "bd2a1cc5a5b1ee1b0e4e4e7b1d2d36e4b0c8e4e0c7d8b9e52f0f25b0a0c8b6a2";

fn sha_hex(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Harness {
    filter: PolicyFilter,
    sink: Rc<RecordingSink>,
    clock: Rc<FakeClock>,
}

fn build(cfg: Value) -> Result<Harness, ConfigError> {
    let clock = Rc::new(FakeClock::at(1_000_000_000_000));
    let services = Services {
        shared: Rc::new(MemoryStore::default()),
        clock: clock.clone(),
    };
    let (filter, sink) = configure_with_services::<PolicyFilter>(&cfg.to_string(), services)?;
    Ok(Harness {
        filter,
        sink,
        clock,
    })
}

fn policy(cfg: Value) -> Harness {
    build(cfg).unwrap()
}

impl Harness {
    fn run(&self, req: RequestBuilder) -> (Decision, HeaderOps) {
        let mut ops = HeaderOps::default();
        let d = self
            .filter
            .on_request_headers(&req.build(), &mut Default::default(), &mut ops);
        (d, ops)
    }
    fn status(&self, req: RequestBuilder) -> u16 {
        match self.run(req).0 {
            Decision::Continue => 200,
            Decision::Respond(r) => r.status,
            Decision::InspectBody | Decision::Call(_) => 0,
        }
    }
    fn metric(&self, name: &str) -> i64 {
        self.sink.value(&format!("policy_{name}"))
    }
}

fn get(path: &str) -> RequestBuilder {
    RequestBuilder::get(path).source("10.0.0.1:5000")
}

fn b64(v: Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn first_matching_rule_wins_then_default() {
    let h = policy(json!({
        "default_action": "deny",
        "rules": [
            {"name": "block-admin", "match": {"paths": [{"prefix": "/admin"}]}, "action": "deny",
             "deny": {"status": 404, "message": "not here"}},
            {"name": "open", "match": {"paths": [{"prefix": "/"}], "methods": ["GET"]}, "action": "allow"}
        ]
    }));
    assert_eq!(h.status(get("/admin/x")), 404);
    assert_eq!(h.status(get("/public")), 200);
    assert_eq!(
        h.status(RequestBuilder::post("/public")),
        403,
        "default deny"
    );
    assert_eq!(h.metric("rule_block_admin_denied"), 1);
    assert_eq!(h.metric("rule_open_allowed"), 1);
    assert_eq!(h.metric("default_denied"), 1);
}

/// The method screen and the path lead (`Rule::methods`, `Rule::lead`) skip rules without
/// evaluating them; the decision is always the first rule whose matcher matches, found here by
/// asking every rule's matcher directly, over methods the rules name and do not, and paths the
/// leads tell apart, share a lead with, or reach only after normalization.
#[test]
fn method_screen_and_path_lead_decide_as_every_rule_would() {
    let h = policy(json!({
        "default_action": "allow",
        "rules": [
            {"name": "del", "match": {"methods": ["DELETE", "PURGE"], "paths": [{"prefix": "/api/orders/1"}]}, "action": "deny",
             "deny": {"status": 401}},
            {"name": "internal", "match": {"paths": [{"prefix": "/internal/"}, {"exact": "/admin"}]}, "action": "deny",
             "deny": {"status": 402}},
            {"name": "put", "match": {"methods": ["PUT"]}, "action": "deny", "deny": {"status": 404}},
            {"name": "ic", "match": {"paths": [{"prefix": "/SECRET", "ignore_case": true}]}, "action": "deny",
             "deny": {"status": 405}},
            {"name": "post-a", "match": {"methods": ["POST"], "paths": [{"prefix": "/a"}]}, "action": "deny",
             "deny": {"status": 406}}
        ]
    }));
    let statuses = [401, 402, 404, 405, 406];
    let mut seen = std::collections::BTreeSet::new();
    for method in ["GET", "DELETE", "PURGE", "PUT", "POST", "delete", "OPTIONS"] {
        for path in [
            "/",
            "/api/orders/1",
            "/api/orders/12",
            "/api/orders/2",
            "/internal/x",
            "//internal/x",
            "/%69nternal/x",
            "/x/../internal/y",
            "/admin",
            "/admin/x",
            "/secret/x",
            "/Secret",
            "/a",
            "/ab",
            "/b",
            "/i",
        ] {
            let req = RequestBuilder::new(method, path);
            let view = req.clone().build();
            let want = h
                .filter
                .rules
                .iter()
                .position(|r| r.matcher.matches(&view))
                .map_or(200, |i| statuses[i]);
            assert_eq!(h.status(req), want, "{method} {path}");
            seen.insert(want);
        }
    }
    assert_eq!(
        seen.len(),
        statuses.len() + 1,
        "every rule decides some request: {seen:?}"
    );
    let rule = |name: &str| h.filter.rules.iter().find(|r| r.name == name).unwrap();
    assert_ne!(rule("del").methods, 0);
    assert!(rule("internal").lead.is_some() && rule("del").lead.is_some());
    assert!(rule("ic").lead.is_none() && rule("put").lead.is_none());
}

/// Rules that need a header present are skipped by one pass over the request's header names
/// (`PolicyFilter::screen`); the decisions are those of evaluating every rule: a needed header
/// absent never matches, present it is evaluated (value, other conditions), an inverted one
/// matches when absent, and a rule with several headers needs its first non-inverted one.
#[test]
fn header_screen_decides_as_every_rule_would() {
    let h = policy(json!({
        "default_action": "allow",
        "rules": [
            {"name": "blocked", "match": {"headers": [{"name": "x-blocked", "value": {"exact": "1"}}]}, "action": "deny"},
            {"name": "present", "match": {"headers": [{"name": "x-any"}], "paths": [{"prefix": "/p"}]}, "action": "deny",
             "deny": {"status": 401}},
            {"name": "inverted", "match": {"headers": [{"name": "x-token", "invert": true}], "paths": [{"prefix": "/private"}]}, "action": "deny",
             "deny": {"status": 402}},
            {"name": "both", "match": {"headers": [{"name": "x-skip", "invert": true}, {"name": "x-blocked", "value": {"exact": "2"}}]}, "action": "deny",
             "deny": {"status": 404}}
        ]
    }));
    assert_eq!(h.status(get("/x")), 200);
    assert_eq!(h.status(get("/x").header("x-blocked", "1")), 403);
    assert_eq!(h.status(get("/x").header("x-blocked", "0")), 200);
    assert_eq!(h.status(get("/x").header("x-blocked", "2")), 404);
    assert_eq!(
        h.status(get("/x").header("x-blocked", "2").header("x-skip", "y")),
        200
    );
    assert_eq!(h.status(get("/p").header("x-any", "")), 401);
    assert_eq!(h.status(get("/q").header("x-any", "")), 200);
    assert_eq!(h.status(get("/private")), 402);
    assert_eq!(h.status(get("/private").header("x-token", "t")), 200);
}

#[test]
fn denial_body_is_json_with_request_id_and_no_request_data() {
    let h = policy(json!({"default_action": "deny"}));
    let (d, _) = h.run(
        get("/secret-path?token=hunter2")
            .header("x-request-id", "rid-1")
            .header("x-evil", "<script>"),
    );
    let Decision::Respond(r) = d else {
        panic!("expected a denial")
    };
    let body = String::from_utf8(r.body.clone()).unwrap();
    for leaked in ["secret-path", "hunter2", "script", "10.0.0.1"] {
        assert!(!body.contains(leaked), "{body}");
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["request_id"], "rid-1");
    assert_eq!(v["error"], "denied");
    assert_eq!(v["message"], "request denied by policy");
}

#[test]
fn every_match_kind() {
    let claims = |v: Value| b64(v);
    let rule = |m: Value| {
        policy(
            json!({"default_action": "allow", "jwt": {"payload_header": "x-jwt"},
            "rules": [{"name": "r", "match": m, "action": "deny"}]}),
        )
    };
    let cases: Vec<(Value, RequestBuilder, RequestBuilder)> = vec![
        (
            json!({"methods": ["delete"]}),
            RequestBuilder::new("DELETE", "/"),
            get("/"),
        ),
        (
            json!({"hosts": [{"suffix": ".internal"}]}),
            get("/").header(":authority", "DB.internal:80"),
            get("/"),
        ),
        (
            json!({"paths": [{"exact": "/a"}]}),
            get("/a?x"),
            get("/a/b"),
        ),
        (
            json!({"paths": [{"regex": "/u/[0-9]+"}]}),
            get("/u/12"),
            get("/u/12x"),
        ),
        (
            json!({"paths": [{"glob": "/s/*/x"}]}),
            get("/s/a/x"),
            get("/s/a/b/x"),
        ),
        (
            json!({"headers": [{"name": "x-role", "value": {"exact": "guest"}}]}),
            get("/").header("x-role", "guest"),
            get("/").header("x-role", "admin"),
        ),
        (
            json!({"query": [{"name": "debug"}]}),
            get("/?debug=1"),
            get("/?x=1"),
        ),
        (
            json!({"source_cidrs": ["10.0.0.0/8"]}),
            get("/"),
            RequestBuilder::get("/").source("192.168.1.1:1"),
        ),
        (
            json!({"source_cidrs": ["2001:db8::/32"]}),
            RequestBuilder::get("/").source("[2001:db8::1]:1"),
            get("/"),
        ),
        (
            json!({"claims": [{"claim": "iss", "value": {"exact": "https://idp"}}]}),
            get("/").header("x-jwt", &claims(json!({"iss": "https://idp"}))),
            get("/").header("x-jwt", &claims(json!({"iss": "other"}))),
        ),
        (
            json!({"claims": [{"claim": "sub", "value": {"exact": "bob"}}]}),
            get("/").header("x-jwt", &claims(json!({"sub": "bob"}))),
            get("/"),
        ),
        (
            json!({"claims": [{"claim": "aud", "value": {"exact": "api"}}]}),
            get("/").header("x-jwt", &claims(json!({"aud": ["web", "api"]}))),
            get("/").header("x-jwt", &claims(json!({"aud": "web"}))),
        ),
        (
            json!({"claims": [{"claim": "scope", "value": {"exact": "write"}}]}),
            get("/").header("x-jwt", &claims(json!({"scope": "read write"}))),
            get("/").header("x-jwt", &claims(json!({"scope": "read"}))),
        ),
        (
            json!({"claims": [{"claim": "scope", "value": {"exact": "write"}}]}),
            get("/").header("x-jwt", &claims(json!({"scope": ["write"]}))),
            get("/").header("x-jwt", "not-base64!"),
        ),
        (
            // sdk-ext's one match vocabulary: cookies too (router's before issue 15).
            json!({"cookies": [{"name": "beta", "value": {"exact": "yes"}}]}),
            get("/").header("cookie", "a=1; beta=yes"),
            get("/").header("cookie", "beta=no"),
        ),
    ];
    for (m, hit, miss) in cases {
        let h = rule(m.clone());
        assert_eq!(h.status(hit), 403, "{m} should match");
        assert_eq!(h.status(miss), 200, "{m} should not match");
    }
}

fn keys_config(extra: Value) -> Value {
    let mut api = json!({"header": "x-api-key", "query": "api_key", "consumer_header": "x-consumer",
        "keys": [{"consumer": "alice", "sha256": sha_hex("secret-alice")},
                 {"consumer": "bob", "sha256": sha_hex("secret-bob").to_uppercase()}]});
    if let (Some(a), Some(e)) = (api.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    json!({"api_keys": api, "rules": [
        {"name": "bob-only", "match": {"paths": [{"prefix": "/bob"}], "consumers": ["bob"]}, "action": "allow"},
        {"name": "no-bob-area", "match": {"paths": [{"prefix": "/bob"}]}, "action": "deny"},
        {"name": "members", "match": {"paths": [{"prefix": "/members"}], "consumers": ["*"]}, "action": "allow"},
        {"name": "members-only", "match": {"paths": [{"prefix": "/members"}]}, "action": "deny", "deny": {"status": 401}}
    ]})
}

#[test]
fn api_key_from_header_forwards_consumer_and_strips_key() {
    let h = policy(keys_config(json!({})));
    let (d, ops) = h.run(
        get("/members")
            .header("x-api-key", "secret-alice")
            .header("x-consumer", "admin"),
    );
    assert_eq!(d, Decision::Continue);
    assert!(
        ops.remove.contains(&"x-consumer".to_string()),
        "spoofed copy dropped"
    );
    assert!(
        ops.remove.contains(&"x-api-key".to_string()),
        "key stripped"
    );
    assert_eq!(ops.set, vec![("x-consumer".into(), "alice".into())]);
    assert_eq!(h.metric("api_key_valid"), 1);
    assert_eq!(
        h.status(get("/bob").header("x-api-key", "secret-alice")),
        403
    );
    assert_eq!(h.status(get("/bob").header("x-api-key", "secret-bob")), 200);
}

#[test]
fn api_key_from_query_is_cut_out_of_the_path() {
    let h = policy(keys_config(json!({})));
    let (d, ops) = h.run(get("/members/x?a=1&api_key=secret-bob&b=%20"));
    assert_eq!(d, Decision::Continue);
    assert!(ops
        .set
        .contains(&(":path".into(), "/members/x?a=1&b=%20".into())));
    assert!(ops.set.contains(&("x-consumer".into(), "bob".into())));
}

#[test]
fn invalid_and_missing_keys() {
    let h = policy(keys_config(json!({})));
    let (d, ops) = h.run(get("/members").header("x-api-key", "wrong"));
    let Decision::Respond(r) = d else {
        panic!("invalid key must be refused")
    };
    assert_eq!(r.status, 401);
    assert!(!String::from_utf8_lossy(&r.body).contains("wrong"));
    let challenge = |r: &LocalReply| {
        r.headers
            .iter()
            .find(|(n, _)| n == "www-authenticate")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        challenge(&r).as_deref(),
        Some(r#"ApiKey realm="api", header="x-api-key", query="api_key""#)
    );
    assert!(ops.set.iter().all(|(n, _)| n != "x-consumer"));
    // Missing key: anonymous, so consumer rules do not match.
    let (d, ops) = h.run(get("/public").header("x-consumer", "alice"));
    assert_eq!(d, Decision::Continue);
    assert!(ops.remove.contains(&"x-consumer".to_string()));
    assert!(ops.set.is_empty());
    assert_eq!(h.status(get("/members")), 401, "members-only rule");
    assert_eq!(h.metric("api_key_invalid"), 1);
    assert_eq!(h.metric("api_key_missing"), 2);

    let required = policy(keys_config(json!({"required": true})));
    assert_eq!(required.status(get("/public")), 401);
    assert_eq!(required.status(get("/public?api_key=secret-alice")), 200);
}

fn limited(extra: Value) -> Value {
    let mut rl = json!({"max_tokens": 2, "fill_interval": "10s"});
    if let (Some(a), Some(e)) = (rl.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    json!({"rules": [{"name": "api", "match": {"paths": [{"prefix": "/api"}]}, "action": "rate_limit",
                      "rate_limit": rl}]})
}

#[test]
fn rate_limit_answers_429_with_headers_and_refills() {
    let h = policy(limited(json!({})));
    assert_eq!(h.status(get("/api")), 200);
    assert_eq!(h.status(get("/api")), 200);
    let (d, _) = h.run(get("/api").header("x-request-id", "r9"));
    let Decision::Respond(r) = d else {
        panic!("third request must be limited")
    };
    assert_eq!(r.status, 429);
    for (n, v) in [
        ("retry-after", "10"),
        ("ratelimit-limit", "2"),
        ("ratelimit-remaining", "0"),
        ("ratelimit-reset", "10"),
    ] {
        assert!(
            r.headers.contains(&(n.into(), v.into())),
            "{n}: {:?}",
            r.headers
        );
    }
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (v["error"].as_str(), v["request_id"].as_str()),
        (Some("rate_limited"), Some("r9"))
    );
    assert_eq!(h.status(get("/other")), 200, "rule does not match");
    h.clock.advance(std::time::Duration::from_secs(10));
    assert_eq!(h.status(get("/api")), 200);
    assert_eq!(h.metric("rule_api_allowed"), 3);
    assert_eq!(h.metric("rule_api_rate_limited"), 1);
}

#[test]
fn rate_limit_keys_separate_buckets() {
    let h = policy(limited(
        json!({"max_tokens": 1, "key": ["source_ip", {"header": "X-User"}, {"path_segments": 2}]}),
    ));
    let from = |ip: &str, user: Option<&str>, path: &str| {
        let r = RequestBuilder::get(path).source(ip);
        match user {
            Some(u) => r.header("x-user", u),
            None => r,
        }
    };
    assert_eq!(h.status(from("10.0.0.1:1", Some("a"), "/api/v1/x")), 200);
    assert_eq!(
        h.status(from("10.0.0.1:2", Some("a"), "/api/v1/y")),
        429,
        "same ip, user, prefix"
    );
    assert_eq!(
        h.status(from("10.0.0.2:1", Some("a"), "/api/v1/x")),
        200,
        "other ip"
    );
    assert_eq!(
        h.status(from("10.0.0.1:1", Some("b"), "/api/v1/x")),
        200,
        "other user"
    );
    assert_eq!(
        h.status(from("10.0.0.1:1", Some("a"), "/api/v2/x")),
        200,
        "other prefix"
    );
    assert_eq!(
        h.status(from("10.0.0.1:1", None, "/api/v1/x")),
        200,
        "no header: its own bucket"
    );
    assert_eq!(h.status(from("10.0.0.1:1", None, "/api/v1/x")), 429);
    assert_eq!(
        h.status(from("[::ffff:10.0.0.2]:1", Some("a"), "/api/v1/x")),
        429,
        "mapped v6 = v4"
    );
}

#[test]
fn rate_limit_by_consumer() {
    let mut cfg = keys_config(json!({}));
    cfg["rules"] = json!([{"name": "per-consumer", "match": {"paths": [{"prefix": "/"}]}, "action": "rate_limit",
        "rate_limit": {"max_tokens": 1, "fill_interval": "1m", "key": ["consumer"]}}]);
    let h = policy(cfg);
    assert_eq!(h.status(get("/").header("x-api-key", "secret-alice")), 200);
    assert_eq!(h.status(get("/").header("x-api-key", "secret-alice")), 429);
    assert_eq!(h.status(get("/").header("x-api-key", "secret-bob")), 200);
    assert_eq!(h.status(get("/")), 200, "anonymous bucket");
    assert_eq!(h.status(get("/")), 429);
}

#[test]
fn shadow_rule_is_counted_and_evaluation_goes_on() {
    let h = policy(json!({"default_action": "deny", "rules": [
        {"name": "new-block", "shadow": true, "match": {"paths": [{"prefix": "/"}]}, "action": "deny"},
        {"name": "new-limit", "shadow": true, "match": {"paths": [{"prefix": "/"}]}, "action": "rate_limit",
         "rate_limit": {"max_tokens": 1, "fill_interval": "1h"}},
        {"name": "ok", "match": {"paths": [{"prefix": "/ok"}]}, "action": "allow"}
    ]}));
    assert_eq!(h.status(get("/ok")), 200);
    assert_eq!(h.status(get("/ok")), 200);
    assert_eq!(
        h.status(get("/no")),
        403,
        "the later rules and default still decide"
    );
    assert_eq!(h.metric("rule_new_block_shadow_denied"), 3);
    assert_eq!(h.metric("rule_new_block_denied"), 0);
    assert_eq!(h.metric("rule_new_limit_shadow_allowed"), 1);
    assert_eq!(h.metric("rule_new_limit_shadow_rate_limited"), 2);
    assert_eq!(h.metric("rule_ok_allowed"), 2);
    assert_eq!(h.metric("default_denied"), 1);
}

#[test]
fn global_shadow_never_enforces_but_counts() {
    let mut cfg = keys_config(json!({}));
    cfg["shadow"] = json!(true);
    cfg["default_action"] = json!("deny");
    cfg["rules"].as_array_mut().unwrap().push(
        json!({"name": "lim", "match": {"paths": [{"prefix": "/lim"}]}, "action": "rate_limit",
                     "rate_limit": {"max_tokens": 1, "fill_interval": "1h"}}),
    );
    let h = policy(cfg);
    for req in [
        get("/bob").header("x-api-key", "secret-alice"),
        get("/x").header("x-api-key", "bad"),
        get("/lim"),
        get("/lim"),
        get("/nothing"),
    ] {
        assert_eq!(h.status(req), 200);
    }
    let (_, ops) = h.run(get("/members").header("x-api-key", "secret-alice"));
    assert!(ops.set.contains(&("x-consumer".into(), "alice".into())));
    assert!(
        ops.remove.contains(&"x-api-key".to_string()),
        "key stripped in shadow mode too"
    );
    assert_eq!(h.metric("rule_no_bob_area_shadow_denied"), 1);
    assert_eq!(h.metric("api_key_shadow_rejected"), 1);
    assert_eq!(h.metric("rule_lim_allowed"), 1);
    assert_eq!(h.metric("rule_lim_shadow_rate_limited"), 1);
    assert_eq!(h.metric("default_shadow_denied"), 1);
    assert_eq!(h.metric("rule_members_allowed"), 1);
}

#[test]
fn broken_limiter_fails_open_and_is_counted() {
    let store = Rc::new(sdk_ext::testing::FakeSharedStore::default());
    let services = Services {
        shared: store.clone(),
        clock: Rc::new(FakeClock::at(1)),
    };
    let json = limited(json!({"max_tokens": 1})).to_string();
    let (f, sink) = configure_with_services::<PolicyFilter>(&json, services).unwrap();
    store.fail_with(Some(sdk_ext::shared::StoreError::Host("down".into())));
    for _ in 0..3 {
        let d = f.on_request_headers(
            &get("/api").build(),
            &mut Default::default(),
            &mut HeaderOps::default(),
        );
        assert_eq!(d, Decision::Continue);
    }
    assert_eq!(sink.value("policy_ratelimit_store_errors"), 3);
}

#[test]
fn metric_names_are_sanitized_and_documented_set_is_defined() {
    assert_eq!(metric_name("Admin-Only.v2"), "admin_only_v2");
    let (mut metrics, _) = recording_metrics("policy");
    let cfg = parse_json(
        json!({"rules": [{"name": "A-b", "match": {"methods": ["GET"]}, "action": "allow"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let setup = Setup {
        metrics: &mut metrics,
        services: Services::local(),
    };
    PolicyFilter::configure(cfg, setup).unwrap();
    let names: Vec<&str> = metrics.defined().iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "policy_rule_a_b_allowed",
        "policy_rule_a_b_denied",
        "policy_rule_a_b_rate_limited",
        "policy_rule_a_b_shadow_allowed",
        "policy_rule_a_b_shadow_denied",
        "policy_rule_a_b_shadow_rate_limited",
        "policy_default_allowed",
        "policy_default_denied",
        "policy_default_shadow_denied",
        "policy_api_key_valid",
        "policy_api_key_invalid",
        "policy_api_key_missing",
        "policy_api_key_shadow_rejected",
        "policy_ratelimit_store_errors",
        "policy_ratelimit_shared_slots",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    assert!(names.iter().all(|n| n
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')));
}

#[test]
fn empty_config_allows_everything() {
    let h = policy(json!({}));
    assert_eq!(h.status(get("/anything")), 200);
    assert_eq!(h.metric("default_allowed"), 1);
}

#[test]
fn config_errors_name_the_rule_and_the_field() {
    let r = |m: Value| json!({"rules": [{"name": "ok", "match": {"methods": ["GET"]}, "action": "allow"}, m]});
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            r(json!({"name": "bad-re", "match": {"paths": [{"regex": "("}]}, "action": "deny"})),
            "rules[1].match.paths[0].regex",
            "bad-re",
        ),
        (
            r(
                json!({"name": "bad-cidr", "match": {"source_cidrs": ["10.0.0.0/33"]}, "action": "deny"}),
            ),
            "rules[1].match.source_cidrs[0]",
            "bad-cidr",
        ),
        (
            r(json!({"name": "empty", "action": "deny"})),
            "rules[1].match",
            "empty",
        ),
        (
            r(json!({"name": "empty2", "match": {}, "action": "deny"})),
            "rules[1].match",
            "empty2",
        ),
        (
            r(json!({"name": "x", "match": {"methods": ["GET"]}, "action": "deny", "stauts": 1})),
            "rules[1].stauts",
            "unknown field",
        ),
        (
            r(json!({"name": "x", "match": {"pathz": []}, "action": "deny"})),
            "rules[1].match.pathz",
            "unknown field",
        ),
        (
            r(json!({"name": "x", "match": {"methods": ["GET"]}, "action": "block"})),
            "rules[1].action",
            "unknown variant",
        ),
        (
            r(json!({"name": "OK", "match": {"methods": ["GET"]}, "action": "allow"})),
            "rules[1].name",
            "same name",
        ),
        (
            r(json!({"name": "has space", "match": {"methods": ["GET"]}, "action": "allow"})),
            "rules[1].name",
            "has space",
        ),
        (
            json!({"jwt": {"payload_header": "x-jwt", "metadata_key": "k"}}),
            "jwt.metadata_key",
            "not both",
        ),
        (
            json!({"jwt": {"payload_header": "bad header"}}),
            "jwt.payload_header",
            "header",
        ),
        (
            json!({"path_matching": "loose"}),
            "path_matching",
            "unknown variant",
        ),
        (
            r(json!({"name": "k", "match": {"consumers": ["a"]}, "action": "allow"})),
            "rules[1].match.consumers",
            "api_keys",
        ),
        (
            r(json!({"name": "rl", "match": {"methods": ["GET"]}, "action": "rate_limit"})),
            "rules[1].rate_limit",
            "needs",
        ),
        (
            r(
                json!({"name": "rl", "match": {"methods": ["GET"]}, "action": "allow", "rate_limit": {"max_tokens": 1, "fill_interval": "1s"}}),
            ),
            "rules[1].rate_limit",
            "only",
        ),
        (
            r(
                json!({"name": "rl", "match": {"methods": ["GET"]}, "action": "rate_limit", "rate_limit": {"max_tokens": 1, "fill_interval": "1 sec"}}),
            ),
            "rules[1].rate_limit.fill_interval",
            "duration",
        ),
        (
            r(
                json!({"name": "rl", "match": {"methods": ["GET"]}, "action": "rate_limit", "rate_limit": {"max_tokens": 0, "fill_interval": "1s"}}),
            ),
            "rules[1].rate_limit.max_tokens",
            "between",
        ),
        (
            r(
                json!({"name": "rl", "match": {"methods": ["GET"]}, "action": "rate_limit", "rate_limit": {"max_tokens": 1, "fill_interval": "1s", "max_keys": 0}}),
            ),
            "rules[1].rate_limit.max_keys",
            "between",
        ),
        (
            r(
                json!({"name": "rl", "match": {"methods": ["GET"]}, "action": "rate_limit", "rate_limit": {"max_tokens": 1, "fill_interval": "1s", "key": [{"header": "bad header"}]}}),
            ),
            "rules[1].rate_limit.key[0]",
            "header",
        ),
        (
            r(
                json!({"name": "rl", "match": {"methods": ["GET"]}, "action": "rate_limit", "rate_limit": {"max_tokens": 1, "fill_interval": "1s", "key": ["ip"]}}),
            ),
            "rules[1].rate_limit.key[0]",
            "unknown variant",
        ),
        (
            r(
                json!({"name": "d", "match": {"methods": ["GET"]}, "action": "deny", "deny": {"status": 99}}),
            ),
            "rules[1].deny.status",
            "99",
        ),
        (
            json!({"deny": {"message": "x".repeat(600)}}),
            "deny.message",
            "at most",
        ),
        (json!({"api_keys": {"keys": []}}), "api_keys", "header"),
        (
            json!({"api_keys": {"header": "x-k", "keys": [{"consumer": "a", "sha256": "abc"}]}}),
            "api_keys.keys[0].sha256",
            "SHA-256",
        ),
        (
            json!({"api_keys": {"header": "x-k", "keys": [{"consumer": "a b", "sha256": SOME_SHA}]}}),
            "api_keys.keys[0].consumer",
            "visible",
        ),
        (
            json!({"api_keys": {"header": "x-k", "keys": [{"consumer": "a", "sha256": SOME_SHA}, {"consumer": "b", "sha256": SOME_SHA}]}}),
            "api_keys.keys[1].sha256",
            "twice",
        ),
        (
            json!({"api_keys": {"header": "x-k", "consumer_header": "x-k", "keys": []}}),
            "api_keys.consumer_header",
            "other",
        ),
        (
            json!({"default_action": "maybe"}),
            "default_action",
            "unknown variant",
        ),
        // One slot budget across rules: 60000 + 60000 is past it (each alone is fine).
        (
            json!({"rules": [
                {"name": "a", "match": {"methods": ["GET"]}, "action": "rate_limit", "rate_limit": {"max_tokens": 1, "fill_interval": "1s", "max_keys": 60000}},
                {"name": "b", "match": {"methods": ["GET"]}, "action": "rate_limit", "rate_limit": {"max_tokens": 1, "fill_interval": "1s", "max_keys": 60000}}
            ]}),
            "rules[1].rate_limit.max_keys",
            "120000 in all for `policy`, over the total budget of 100000",
        ),
    ];
    for (cfg, path, reason) in cases {
        let err = build(cfg.clone())
            .err()
            .unwrap_or_else(|| panic!("accepted {cfg}"));
        assert_eq!(err.path, path, "{cfg}: {err}");
        assert!(
            err.reason.contains(reason),
            "{cfg}: `{}` lacks `{reason}`",
            err.reason
        );
    }
}

#[test]
fn a_configured_401_without_api_keys_challenges_for_a_bearer_token() {
    let f = policy(
        json!({"rules": [{"name": "members", "match": {"paths": [{"prefix": "/m"}]},
        "action": "deny", "deny": {"status": 401}}]}),
    );
    let (d, _) = f.run(get("/m"));
    let Decision::Respond(r) = d else {
        panic!("must be refused")
    };
    assert_eq!(r.status, 401);
    assert!(r
        .headers
        .contains(&("www-authenticate".into(), r#"Bearer realm="api""#.into())));
    let (d, _) = f.run(get("/m").header("x-request-id", "<img src=x>"));
    let Decision::Respond(r) = d else {
        panic!("must be refused")
    };
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        body["request_id"].is_null(),
        "a non-id request id is not echoed"
    );
}

#[test]
fn claims_come_from_verified_metadata_by_default_never_from_a_client_header() {
    let f = policy(
        json!({"default_action": "deny", "rules": [{"name": "admins",
        "match": {"paths": [{"prefix": "/"}], "claims": [{"claim": "sub", "value": {"exact": "alice"}}]},
        "action": "allow"}]}),
    );
    let alice = json!({"sub": "alice"});
    assert_eq!(f.status(get("/x").jwt_metadata("payload", &alice)), 200);
    assert_eq!(
        f.status(get("/x").header("x-jwt-payload", &b64(alice.clone()))),
        403
    );
    assert_eq!(f.status(get("/x").jwt_metadata("other-key", &alice)), 403);
}

#[test]
fn path_rules_and_path_keys_see_the_normalized_path() {
    let f = policy(json!({"rules": [{"name": "admin-closed",
        "match": {"paths": [{"prefix": "/admin"}]}, "action": "deny"}]}));
    for p in ["/admin", "//admin", "/./admin", "/%61dmin", "/x/../admin"] {
        assert_eq!(f.status(get(p)), 403, "{p}");
    }
    let raw = policy(
        json!({"path_matching": "raw", "rules": [{"name": "admin-closed",
        "match": {"paths": [{"prefix": "/admin"}]}, "action": "deny"}]}),
    );
    assert_eq!(
        raw.status(get("//admin")),
        200,
        "raw matching is the opt-out"
    );
}

// Global rate limits: the rule asks the service through a call; the answer decides.

fn global_rule(global: Value, extra: Value) -> Value {
    let mut rl = json!({"scope": "global", "key": ["source_ip"], "global": global});
    if let (Some(a), Some(e)) = (rl.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    json!({"api_keys": {"header": "x-api-key", "keys": [{"consumer": "alice", "sha256": sha_hex("k")}]},
           "rules": [{"name": "api", "match": {"paths": [{"prefix": "/api"}]}, "action": "rate_limit",
                      "rate_limit": rl}]})
}

impl Harness {
    /// The request's call (if it makes one), then the decision once `answer` arrives.
    fn ask(
        &self,
        req: RequestBuilder,
        answer: CallOutcome<'_>,
    ) -> (Decision, HeaderOps, PolicyState) {
        let view = req.build();
        let mut state = PolicyState::default();
        let mut ops = HeaderOps::default();
        let d = self.filter.on_request_headers(&view, &mut state, &mut ops);
        let Decision::Call(call) = d else {
            return (d, ops, state);
        };
        assert_eq!(call.cluster, "rls");
        let mut ops = HeaderOps::default();
        let d = self
            .filter
            .on_call_response(&view, answer, &mut state, &mut ops);
        (d, ops, state)
    }
}

fn rls_answer(code: i32) -> Vec<u8> {
    use prost::Message;
    use test_support::rls as pb;
    pb::RateLimitResponse {
        overall_code: code,
        request_headers_to_add: vec![pb::HeaderValue {
            key: "x-quota".into(),
            value: "ok".into(),
            raw_value: Vec::new(),
        }],
        response_headers_to_add: vec![pb::HeaderValue {
            key: "ratelimit-remaining".into(),
            value: "3".into(),
            raw_value: Vec::new(),
        }],
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn a_global_rule_asks_the_service_and_follows_its_answer() {
    let h = policy(global_rule(
        json!({"cluster": "rls", "domain": "edge", "timeout": "1s"}),
        json!({}),
    ));
    assert!(h.filter.calls_out());
    let ok = rls_answer(global::proto::code::OK);
    let (d, ops, mut state) = h.ask(get("/api/x"), CallOutcome::Answer(&ok));
    assert_eq!(d, Decision::Continue);
    assert_eq!(ops.set, [("x-quota".to_string(), "ok".to_string())]);
    let mut resp = HeaderOps::default();
    h.filter.on_response_headers(&mut state, &mut resp);
    assert_eq!(
        resp.set,
        [("ratelimit-remaining".to_string(), "3".to_string())]
    );

    let over = rls_answer(global::proto::code::OVER_LIMIT);
    let (d, _, _) = h.ask(get("/api/x"), CallOutcome::Answer(&over));
    let Decision::Respond(r) = d else {
        panic!("{d:?}")
    };
    assert_eq!(r.status, 429);
    assert!(r
        .headers
        .iter()
        .any(|(n, v)| n == "ratelimit-remaining" && v == "3"));
    assert_eq!(h.metric("rule_api_allowed"), 1);
    assert_eq!(h.metric("rule_api_rate_limited"), 1);
    assert_eq!(h.metric("ratelimit_global_ok"), 1);
    assert_eq!(h.metric("ratelimit_global_over_limit"), 1);
    // Requests the rule does not match make no call.
    assert_eq!(h.run(get("/other")).0, Decision::Continue);
}

#[test]
fn the_consumer_header_goes_upstream_before_the_call() {
    let h = policy(global_rule(
        json!({"cluster": "rls", "domain": "edge"}),
        json!({"key": ["consumer"]}),
    ));
    let (d, ops) = h.run(get("/api").header("x-api-key", "k"));
    let Decision::Call(call) = d else {
        panic!("{d:?}")
    };
    assert!(ops
        .set
        .iter()
        .any(|(n, v)| n == "x-api-consumer" && v == "alice"));
    use prost::Message;
    let req = test_support::rls::RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(req.descriptors[0].entries[0].key, "consumer");
    assert_eq!(req.descriptors[0].entries[0].value, "alice");
}

#[test]
fn service_failures_follow_the_failure_mode_and_are_counted() {
    let timeout = CallOutcome::Failed {
        status: sdk_ext::callout::grpc_status::UNAVAILABLE,
        dispatched: true,
        timed_out: true,
    };
    let allow = policy(global_rule(
        json!({"cluster": "rls", "domain": "edge"}),
        json!({}),
    ));
    assert_eq!(allow.ask(get("/api"), timeout).0, Decision::Continue);
    assert_eq!(allow.metric("ratelimit_global_error"), 1);
    assert_eq!(allow.metric("ratelimit_global_timeout"), 1);
    assert_eq!(allow.metric("ratelimit_global_failure_mode_allowed"), 1);

    let deny = policy(global_rule(
        json!({"cluster": "rls", "domain": "edge", "failure_mode": "deny", "failure_status": 503}),
        json!({}),
    ));
    let garbage = CallOutcome::Answer(&[0xff, 0x01]);
    let (d, _, _) = deny.ask(get("/api"), garbage);
    let Decision::Respond(r) = d else {
        panic!("{d:?}")
    };
    assert_eq!(r.status, 503);
    assert_eq!(deny.metric("ratelimit_global_error"), 1);
    assert_eq!(deny.metric("ratelimit_global_timeout"), 0);
    assert_eq!(deny.metric("ratelimit_global_failure_mode_denied"), 1);
}

#[test]
fn global_shadow_mode_asks_but_never_enforces() {
    let mut cfg = global_rule(json!({"cluster": "rls", "domain": "edge"}), json!({}));
    cfg["shadow"] = json!(true);
    let h = policy(cfg);
    let over = rls_answer(global::proto::code::OVER_LIMIT);
    assert_eq!(
        h.ask(get("/api"), CallOutcome::Answer(&over)).0,
        Decision::Continue
    );
    assert_eq!(h.metric("rule_api_shadow_rate_limited"), 1);
    assert_eq!(h.metric("ratelimit_global_over_limit"), 1);
}

#[test]
fn a_local_first_bucket_sheds_load_before_the_call() {
    let h = policy(global_rule(
        json!({"cluster": "rls", "domain": "edge",
               "local_first": {"max_tokens": 2, "fill_interval": "1m"}}),
        json!({}),
    ));
    let ok = rls_answer(global::proto::code::OK);
    for _ in 0..2 {
        assert_eq!(
            h.ask(get("/api"), CallOutcome::Answer(&ok)).0,
            Decision::Continue
        );
    }
    // The third never reaches the service: 429 from the local bucket, with its headers.
    let (d, _) = h.run(get("/api"));
    let Decision::Respond(r) = d else {
        panic!("{d:?}")
    };
    assert_eq!(r.status, 429);
    assert!(r.headers.iter().any(|(n, _)| n == "retry-after"));
    assert_eq!(h.metric("ratelimit_global_local_first_limited"), 1);
    assert_eq!(h.metric("ratelimit_global_ok"), 2);
    // Another source has its own local bucket.
    assert!(matches!(
        h.run(get("/api").source("10.0.0.2:1")).0,
        Decision::Call(_)
    ));
}

#[test]
fn global_config_errors_name_the_field() {
    let err = |global: Value, extra: Value| {
        build(global_rule(global, extra))
            .err()
            .map(|e| e.path)
            .unwrap_or_default()
    };
    let g = json!({"cluster": "rls", "domain": "edge"});
    assert_eq!(
        err(g.clone(), json!({"max_tokens": 5})),
        "rules[0].rate_limit.max_tokens"
    );
    assert_eq!(
        err(g.clone(), json!({"fill_interval": "1s"})),
        "rules[0].rate_limit.fill_interval"
    );
    // A missing field is named at its object (as serde did).
    assert_eq!(
        err(json!({"cluster": "rls"}), json!({})),
        "rules[0].rate_limit.global"
    );
    assert_eq!(
        err(json!({"cluster": "has space", "domain": "d"}), json!({})),
        "rules[0].rate_limit.global.cluster"
    );
    assert_eq!(
        err(
            json!({"cluster": "rls", "domain": "d", "timeout": "0ms"}),
            json!({})
        ),
        "rules[0].rate_limit.global.timeout"
    );
    let mut shadow = global_rule(g.clone(), json!({}));
    shadow["rules"][0]["shadow"] = json!(true);
    assert_eq!(
        build(shadow).err().unwrap().path,
        "rules[0].rate_limit.scope"
    );
    let mut missing = global_rule(g.clone(), json!({}));
    missing["rules"][0]["rate_limit"]
        .as_object_mut()
        .unwrap()
        .remove("global");
    assert_eq!(
        build(missing).err().unwrap().path,
        "rules[0].rate_limit.global"
    );
    let local_with_global = json!({"rules": [{"name": "api", "match": {"paths": [{"prefix": "/"}]},
        "action": "rate_limit", "rate_limit": {"max_tokens": 1, "fill_interval": "1s", "global": g}}]});
    assert_eq!(
        build(local_with_global).err().unwrap().path,
        "rules[0].rate_limit.global"
    );
    let local_without_tokens = json!({"rules": [{"name": "api", "match": {"paths": [{"prefix": "/"}]},
        "action": "rate_limit", "rate_limit": {"fill_interval": "1s"}}]});
    let err = build(local_without_tokens).err().unwrap();
    assert_eq!(
        (err.path.as_str(), err.reason.as_str()),
        ("rules[0].rate_limit", "missing field `max_tokens`")
    );
    // A global limit refuses every member of a local bucket, `max_keys` included (it has its
    // own in `global.local_first`).
    let global_with_keys = global_rule(g.clone(), json!({"max_keys": 5}));
    let err = build(global_with_keys).err().unwrap();
    assert_eq!(err.path, "rules[0].rate_limit.max_keys");
    assert!(err.reason.contains("global.local_first"), "{err}");
}

#[test]
fn the_global_example_config_compiles() {
    let h = policy(serde_json::from_str(include_str!("../examples/global/policy.json")).unwrap());
    assert!(h.filter.calls_out());
}

#[test]
fn descriptor_borrows_what_it_can_and_keeps_its_bytes() {
    // The descriptor as it was built before: each part's owned value, tagged and separated.
    let reference = |parts: &[KeyPart], req: &RequestView, consumer: Option<&str>| {
        let mut out = Vec::new();
        for part in parts {
            match key_value(part, req, consumer, PathMatching::Normalized) {
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(v.as_bytes());
                }
                None => out.push(0),
            }
            out.push(0x1f);
        }
        out
    };
    let parts = [
        KeyPart::SourceIp,
        KeyPart::Consumer,
        KeyPart::Header("x-user-id".into()),
        KeyPart::PathSegments(2),
        KeyPart::Header("absent".into()),
    ];
    let requests = [
        RequestBuilder::get("/api/v1/x?y=1")
            .header("x-user-id", "u1")
            .source("10.0.0.1:5")
            .build(),
        RequestBuilder::get("//api/./v2").build(),
        RequestBuilder::get("/").header("x-user-id", "").build(),
    ];
    for req in &requests {
        for consumer in [None, Some("team-a")] {
            for n in 0..=parts.len() {
                assert_eq!(
                    descriptor(&parts[..n], req, consumer, PathMatching::Normalized),
                    reference(&parts[..n], req, consumer),
                    "{:?} {consumer:?} {n}",
                    req.raw_path()
                );
            }
        }
    }
}
