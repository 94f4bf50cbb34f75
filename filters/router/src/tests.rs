//! The router's logic, natively: each rule kind, ownership of the routing header, sticky
//! splits, fallbacks, rewrites, metrics and config errors.

use super::*;
use base64::Engine as _;
use sdk_ext::testing::{configure, RecordingSink, RequestBuilder};
use std::rc::Rc;

fn filter(json: &str) -> (RouterFilter, Rc<RecordingSink>) {
    configure::<RouterFilter>(json).unwrap()
}

fn config_error(json: &str) -> ConfigError {
    configure::<RouterFilter>(json)
        .err()
        .unwrap_or_else(|| panic!("accepted {json}"))
}

fn run(f: &RouterFilter, req: RequestBuilder) -> HeaderOps {
    let mut ops = HeaderOps::default();
    assert_eq!(
        f.on_request_headers(&req.build(), &mut (), &mut ops),
        Decision::Continue
    );
    ops
}

/// The tag the filter set, if any.
fn tag(f: &RouterFilter, req: RequestBuilder) -> Option<String> {
    run(f, req)
        .set
        .iter()
        .find(|(n, _)| n == "x-route-tag")
        .map(|(_, v)| v.clone())
}

fn claims_header(json: serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

const KINDS: &str = r#"{
  "default_tag": "stable",
  "jwt": {"payload_header": "x-jwt-payload"},
  "rules": [
    {"name": "hdr", "match": {"headers": [{"name": "x-beta", "value": {"exact": "1"}}]}, "tag": "t-header"},
    {"match": {"cookies": [{"name": "canary", "value": {"exact": "always"}}]}, "tag": "t-cookie"},
    {"match": {"query": [{"name": "canary", "value": {"exact": "1"}}]}, "tag": "t-query"},
    {"match": {"paths": [{"prefix": "/beta/"}]}, "tag": "t-path"},
    {"match": {"methods": ["PATCH"]}, "tag": "t-method"},
    {"match": {"source_cidrs": ["10.1.0.0/16", "2001:db8::/32"]}, "tag": "t-cidr"},
    {"match": {"claims": [{"claim": "groups", "value": {"exact": "beta"}}]}, "tag": "t-claim"}
  ]
}"#;

#[test]
fn each_rule_kind_routes_and_near_misses_do_not() {
    let (f, _) = filter(KINDS);
    let beta = claims_header(serde_json::json!({"sub": "a", "groups": ["staff", "beta"]}));
    let staff = claims_header(serde_json::json!({"sub": "a", "groups": ["staff"]}));
    let get = RequestBuilder::get;
    let cases: Vec<(&str, RequestBuilder, &str)> = vec![
        ("header", get("/").header("x-beta", "1"), "t-header"),
        ("header value", get("/").header("x-beta", "2"), "stable"),
        (
            "cookie",
            get("/").header("cookie", "a=b; canary=always"),
            "t-cookie",
        ),
        (
            "cookie value",
            get("/").header("cookie", "canary=never"),
            "stable",
        ),
        ("query", get("/x?a=2&canary=1"), "t-query"),
        ("query value", get("/x?canary=0"), "stable"),
        ("path", get("/beta/items"), "t-path"),
        ("path prefix only", get("/betaX"), "stable"),
        ("method", RequestBuilder::new("PATCH", "/"), "t-method"),
        ("other method", RequestBuilder::post("/"), "stable"),
        ("cidr v4", get("/").source("10.1.2.3:5000"), "t-cidr"),
        ("cidr v6", get("/").source("[2001:db8::1]:5000"), "t-cidr"),
        (
            "v4-mapped",
            get("/").source("[::ffff:10.1.0.9]:1"),
            "t-cidr",
        ),
        ("outside cidr", get("/").source("10.2.0.1:5000"), "stable"),
        ("claim", get("/").header("x-jwt-payload", &beta), "t-claim"),
        (
            "claim value",
            get("/").header("x-jwt-payload", &staff),
            "stable",
        ),
        (
            "garbage claims",
            get("/").header("x-jwt-payload", "%%%"),
            "stable",
        ),
        ("nothing", get("/"), "stable"),
        (
            "first match wins",
            get("/beta/x?canary=1").header("x-beta", "1"),
            "t-header",
        ),
    ];
    for (name, req, want) in cases {
        assert_eq!(tag(&f, req).as_deref(), Some(want), "case {name}");
    }
}

#[test]
fn client_copies_of_the_routing_header_are_removed_before_deciding() {
    let (f, sink) =
        filter(r#"{"rules": [{"match": {"paths": [{"prefix": "/c"}]}, "tag": "canary"}]}"#);
    // No rule matches and there is no default: the spoofed header is removed, nothing is set.
    let ops = run(
        &f,
        RequestBuilder::get("/")
            .header("X-Route-Tag", "canary")
            .header("x-route-tag", "canary2"),
    );
    assert_eq!(ops.remove, ["x-route-tag"]);
    assert!(ops.set.is_empty(), "{ops:?}");
    // A rule matches: removal first, then the filter's own value (the glue applies removals first).
    let ops = run(
        &f,
        RequestBuilder::get("/c").header("x-route-tag", "stable"),
    );
    assert_eq!(ops.remove, ["x-route-tag"]);
    assert_eq!(ops.set, [("x-route-tag".to_string(), "canary".to_string())]);
    assert_eq!(sink.value("router_client_header_removed_total"), 2);
    assert_eq!(sink.value("router_unrouted_total"), 1);
    assert_eq!(sink.value("router_routed_canary_total"), 1);
}

#[test]
fn a_custom_route_header_is_owned_too() {
    let (f, _) = filter(r#"{"route_header": "X-Version", "default_tag": "v1"}"#);
    let ops = run(&f, RequestBuilder::get("/").header("x-version", "v2"));
    assert_eq!(ops.remove, ["x-version"]);
    assert_eq!(ops.set, [("x-version".to_string(), "v1".to_string())]);
}

const SPLIT: &str = r#"{"jwt": {"payload_header": "x-jwt-payload"}, "rules": [{
  "weights": [{"tag": "canary", "percent": 10}, {"tag": "stable", "percent": 90}],
  "hash_on": [{"header": "x-user-id"}, {"cookie": "uid"}, {"query": "user"}, {"claim": "sub"}, "source_ip"],
  "fallback": {"tag": "stable"}
}]}"#;

#[test]
fn sticky_split_over_ten_thousand_keys_is_ten_percent_and_identical_across_instances() {
    // Two independently configured filters stand in for two workers (or a restart): nothing
    // but the key and the config decides.
    let (a, _) = filter(SPLIT);
    let (b, _) = filter(SPLIT);
    let mut canary = 0;
    for i in 0..10_000 {
        let key = format!("user-{i}");
        let ta = tag(&a, RequestBuilder::get("/").header("x-user-id", &key));
        let tb = tag(&b, RequestBuilder::get("/").header("x-user-id", &key));
        assert_eq!(ta, tb, "{key}");
        // Asking again on the same instance gives the same side (no per-instance state).
        assert_eq!(
            ta,
            tag(&a, RequestBuilder::get("/").header("x-user-id", &key))
        );
        if ta.as_deref() == Some("canary") {
            canary += 1;
        }
    }
    assert!(
        (850..=1150).contains(&canary),
        "{canary} of 10000 on canary"
    );
}

#[test]
fn every_key_source_hashes_the_same_value_to_the_same_side() {
    let (f, _) = filter(SPLIT);
    let sub = |s: &str| claims_header(serde_json::json!({ "sub": s }));
    for i in 0..200 {
        let v = format!("10.0.{}.{}", i / 100, i % 100);
        let want = tag(&f, RequestBuilder::get("/").header("x-user-id", &v));
        let got = [
            tag(
                &f,
                RequestBuilder::get("/").header("cookie", &format!("uid={v}")),
            ),
            tag(&f, RequestBuilder::get(&format!("/?user={v}"))),
            tag(
                &f,
                RequestBuilder::get("/").header("x-jwt-payload", &sub(&v)),
            ),
            tag(&f, RequestBuilder::get("/").source(&format!("{v}:1234"))),
        ];
        for g in got {
            assert_eq!(g, want, "{v}");
        }
    }
    // Earlier sources win: the header decides even when a cookie is present.
    let (key_a, key_b) = (0..)
        .map(|i| (format!("a{i}"), format!("b{i}")))
        .find(|(a, b)| {
            tag(&f, RequestBuilder::get("/").header("x-user-id", a))
                != tag(&f, RequestBuilder::get("/").header("x-user-id", b))
        })
        .unwrap();
    let both = RequestBuilder::get("/")
        .header("x-user-id", &key_a)
        .header("cookie", &format!("uid={key_b}"));
    assert_eq!(
        tag(&f, both),
        tag(&f, RequestBuilder::get("/").header("x-user-id", &key_a))
    );
}

#[test]
fn ramping_up_keeps_everyone_already_on_canary() {
    let cfg = |p: u32| {
        format!(
            r#"{{"rules": [{{"weights": [{{"tag": "canary", "percent": {p}}}, {{"tag": "stable", "percent": {}}}],
                "hash_on": [{{"header": "u"}}]}}]}}"#,
            100 - p
        )
    };
    let (ten, _) = filter(&cfg(10));
    let (twenty, _) = filter(&cfg(20));
    let (mut before, mut after) = (0, 0);
    for i in 0..5_000 {
        let req = || RequestBuilder::get("/").header("u", &i.to_string());
        let t10 = tag(&ten, req());
        let t20 = tag(&twenty, req());
        if t10.as_deref() == Some("canary") {
            before += 1;
            assert_eq!(t20, t10, "user {i} left canary when it grew");
        }
        if t20.as_deref() == Some("canary") {
            after += 1;
        }
    }
    assert!(after > before + 300, "{before} -> {after}");
}

#[test]
fn salt_decorrelates_experiments() {
    let cfg = |salt: &str| {
        format!(
            r#"{{"rules": [{{"weights": [{{"tag": "a", "percent": 50}}, {{"tag": "b", "percent": 50}}],
                "hash_on": [{{"header": "u"}}], "salt": "{salt}"}}]}}"#
        )
    };
    let (x, _) = filter(&cfg("exp-1"));
    let (y, _) = filter(&cfg("exp-2"));
    let same = (0..2_000)
        .filter(|i| {
            let req = || RequestBuilder::get("/").header("u", &i.to_string());
            tag(&x, req()) == tag(&y, req())
        })
        .count();
    // Independent 50/50 assignments agree about half the time; identical ones always.
    assert!((850..=1150).contains(&same), "{same} of 2000 agree");
}

#[test]
fn keyless_requests_fall_back_to_a_tag_or_to_random() {
    let (fixed, sink) = filter(SPLIT);
    for i in 0..500 {
        let req = RequestBuilder::get("/").header("x-request-id", &format!("rid-{i}"));
        assert_eq!(tag(&fixed, req).as_deref(), Some("stable"));
    }
    // An empty key counts as absent.
    assert_eq!(
        tag(&fixed, RequestBuilder::get("/").header("x-user-id", "")).as_deref(),
        Some("stable")
    );
    assert_eq!(sink.value("router_split_fallback_total"), 501);

    let random = SPLIT.replace(r#"{"tag": "stable"}"#, r#""random""#);
    let (f, sink) = filter(&random);
    let canary = (0..10_000)
        .filter(|i| {
            let req = RequestBuilder::get("/").header("x-request-id", &format!("rid-{i}"));
            tag(&f, req).as_deref() == Some("canary")
        })
        .count();
    assert!((850..=1150).contains(&canary), "{canary} of 10000");
    assert_eq!(sink.value("router_split_fallback_total"), 10_000);
}

#[test]
fn split_without_hash_on_is_random_per_request_and_not_a_fallback() {
    let (f, sink) = filter(
        r#"{"rules": [{"weights": [{"tag": "a", "percent": 50}, {"tag": "b", "percent": 50}]}]}"#,
    );
    let a = (0..1_000)
        .filter(|_| tag(&f, RequestBuilder::get("/")).as_deref() == Some("a"))
        .count();
    assert!((400..=600).contains(&a), "{a} of 1000");
    assert_eq!(sink.value("router_split_fallback_total"), 0);
}

#[test]
fn zero_percent_sides_get_nothing_and_hundred_percent_everything() {
    let (f, _) = filter(
        r#"{"rules": [{"weights": [{"tag": "off", "percent": 0}, {"tag": "on", "percent": 100}],
            "hash_on": [{"header": "u"}]}]}"#,
    );
    for i in 0..2_000 {
        let req = RequestBuilder::get("/").header("u", &i.to_string());
        assert_eq!(tag(&f, req).as_deref(), Some("on"));
    }
}

#[test]
fn rewrites_and_header_edits_apply_only_for_the_winning_rule() {
    let (f, _) = filter(
        r#"{"rules": [{
            "match": {"paths": [{"prefix": "/api/v1/"}]},
            "tag": "v2",
            "rewrite": {"path_prefix": {"from": "/api/v1/", "to": "/v2/"}, "host": "v2.internal:8080"},
            "request_headers": {"set": {"X-Api": "v2"}, "add": {"x-trace": "router"}, "remove": ["x-internal"]}
        }]}"#,
    );
    let ops = run(&f, RequestBuilder::get("/api/v1/users?id=7"));
    assert_eq!(ops.remove, ["x-internal"]);
    assert_eq!(
        ops.set,
        [
            ("x-api".to_string(), "v2".to_string()),
            (":path".to_string(), "/v2/users?id=7".to_string()),
            (":authority".to_string(), "v2.internal:8080".to_string()),
            ("x-route-tag".to_string(), "v2".to_string()),
        ]
    );
    assert_eq!(ops.add, [("x-trace".to_string(), "router".to_string())]);
    let untouched = run(&f, RequestBuilder::get("/api/v2/users"));
    assert!(untouched.is_empty(), "{untouched:?}");
}

#[test]
fn prefix_rewrite_needs_the_prefix_in_the_raw_path() {
    // The rule matches on a header, the path does not start with `from`: left alone.
    let (f, _) = filter(
        r#"{"rules": [{"match": {"headers": [{"name": "x-b"}]}, "tag": "b",
            "rewrite": {"path_prefix": {"from": "/old/", "to": "/new/"}}}]}"#,
    );
    let ops = run(&f, RequestBuilder::get("/other/old/").header("x-b", ""));
    assert!(!ops.set.iter().any(|(n, _)| n == ":path"), "{ops:?}");
    let ops = run(&f, RequestBuilder::get("/old/").header("x-b", ""));
    assert!(ops
        .set
        .contains(&(":path".to_string(), "/new/".to_string())));
}

#[test]
fn metrics_per_tag_with_sanitized_names() {
    let (f, sink) = filter(
        r#"{"default_tag": "Stable.V1", "rules": [{"match": {"paths": [{"prefix": "/c"}]}, "tag": "canary-v2"}]}"#,
    );
    run(&f, RequestBuilder::get("/c"));
    run(&f, RequestBuilder::get("/c"));
    run(&f, RequestBuilder::get("/"));
    assert_eq!(sink.value("router_routed_canary_v2_total"), 2);
    assert_eq!(sink.value("router_routed_stable_v1_total"), 1);
    assert_eq!(sink.value("router_requests_total"), 3);
    assert_eq!(metric_tag("A-b.C_9"), "a_b_c_9");
}

#[test]
fn config_errors_name_the_rule_and_field() {
    let w = |a: &str, b: &str| {
        format!(
            r#"{{"rules": [{{"tag": "x"}}, {{"weights": [{{"tag": "a", "percent": {a}}}, {{"tag": "b", "percent": {b}}}]}}]}}"#
        )
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (w("10.5", "89.4"), "rules[1].weights", "add up to"),
        (w("-1", "101"), "rules[1].weights[0].percent", "between 0 and 100"),
        (w("10.125", "89.875"), "rules[1].weights[0].percent", "two decimals"),
        (w("\"10\"", "90"), "rules[1].weights[0].percent", "invalid type"),
        (
            r#"{"rules": [{"weights": [{"tag": "a", "percent": 50}, {"tag": "a", "percent": 50}]}]}"#.into(),
            "rules[0].weights[1].tag",
            "twice",
        ),
        (r#"{"rules": [{"weights": []}]}"#.into(), "rules[0].weights", "at least one"),
        (r#"{"rules": [{}]}"#.into(), "rules[0]", "needs a destination"),
        (
            r#"{"rules": [{"tag": "a", "weights": [{"tag": "b", "percent": 100}]}]}"#.into(),
            "rules[0]",
            "not both",
        ),
        (
            r#"{"rules": [{"tag": "a", "hash_on": ["source_ip"]}]}"#.into(),
            "rules[0].hash_on",
            "only applies",
        ),
        (
            r#"{"rules": [{"weights": [{"tag": "b", "percent": 100}], "fallback": {"tag": "c"}}]}"#.into(),
            "rules[0].fallback",
            "needs `hash_on`",
        ),
        (
            r#"{"rules": [{"weights": [{"tag": "b", "percent": 100}], "hash_on": [{"head": "x"}]}]}"#.into(),
            "rules[0].hash_on[0]",
            "unknown variant",
        ),
        (
            r#"{"rules": [{"weights": [{"tag": "b", "percent": 100}], "hash_on": [{"header": "X-Route-Tag"}]}]}"#.into(),
            "rules[0].hash_on[0].header",
            "routing header",
        ),
        (
            r#"{"rules": [{"weights": [{"tag": "b", "percent": 100}], "hash_on": [{"cookie": ""}]}]}"#.into(),
            "rules[0].hash_on[0].cookie",
            "empty",
        ),
        (r#"{"rules": [{"tag": "has space"}]}"#.into(), "rules[0].tag", "must be 1 to 64"),
        (r#"{"default_tag": ""}"#.into(), "default_tag", "must be 1 to 64"),
        (
            r#"{"default_tag": "canary-v2", "rules": [{"tag": "canary_v2"}]}"#.into(),
            "rules[0].tag",
            "share the metric",
        ),
        (
            r#"{"rules": [{"match": {"headers": [{"name": "x-route-tag"}]}, "tag": "a"}]}"#.into(),
            "rules[0].match.headers[0].name",
            "routing header",
        ),
        (
            r#"{"rules": [{"match": {"paths": [{"regex": "("}]}, "tag": "a"}]}"#.into(),
            "rules[0].match.paths[0].regex",
            "invalid regex",
        ),
        (
            r#"{"rules": [{"match": {"cookies": [{"name": "a;b"}]}, "tag": "a"}]}"#.into(),
            "rules[0].match.cookies[0].name",
            "cookie name",
        ),
        (
            r#"{"rules": [{"match": {"claims": [{"claim": ""}]}, "tag": "a"}]}"#.into(),
            "rules[0].match.claims[0].claim",
            "empty",
        ),
        (
            r#"{"rules": [{"match": {"source_cidrs": ["10.0.0.0/33"]}, "tag": "a"}]}"#.into(),
            "rules[0].match.source_cidrs[0]",
            "not an IP",
        ),
        (
            r#"{"rules": [{"match": {"consumers": ["ci"]}, "tag": "a"}]}"#.into(),
            "rules[0].match.consumers",
            "API keys",
        ),
        (
            r#"{"rules": [{"match": {"pathz": []}, "tag": "a"}]}"#.into(),
            "rules[0].match.pathz",
            "unknown field",
        ),
        (
            r#"{"rules": [{"tag": "a", "rewrite": {"path_prefix": {"from": "v1", "to": "/v2"}}}]}"#.into(),
            "rules[0].rewrite.path_prefix.from",
            "start with `/`",
        ),
        (
            r#"{"rules": [{"tag": "a", "rewrite": {"host": "a b"}}]}"#.into(),
            "rules[0].rewrite.host",
            "not a host",
        ),
        (
            r#"{"rules": [{"tag": "a", "request_headers": {"set": {":path": "/x"}}}]}"#.into(),
            "rules[0].request_headers.set.:path",
            "use `rewrite`",
        ),
        (
            r#"{"rules": [{"tag": "a", "request_headers": {"remove": ["x-route-tag"]}}]}"#.into(),
            "rules[0].request_headers.remove[0]",
            "routing header",
        ),
        (
            r#"{"rules": [{"tag": "a", "request_headers": {"add": {"x-a": "1\n2"}}}]}"#.into(),
            "rules[0].request_headers.add.x-a",
            "CR, LF",
        ),
        (r#"{"route_header": ":path"}"#.into(), "route_header", "cannot be"),
        (r#"{"route_header": "bad header"}"#.into(), "route_header", "not a valid"),
        (
            r#"{"jwt": {"payload_header": "x-route-tag"}}"#.into(),
            "jwt.payload_header",
            "must differ",
        ),
    ];
    for (json, path, reason) in cases {
        let err = config_error(&json);
        assert_eq!(err.path, path, "{json}: {err}");
        assert!(err.reason.contains(reason), "{json}: {err}");
    }
}

#[test]
fn empty_config_only_strips_the_header() {
    let (f, _) = filter("");
    let ops = run(&f, RequestBuilder::get("/").header("x-route-tag", "canary"));
    assert_eq!(ops.remove, ["x-route-tag"]);
    assert!(ops.set.is_empty() && ops.add.is_empty());
    assert!(run(&f, RequestBuilder::get("/")).is_empty());
}

#[test]
fn shipped_local_config_is_valid() {
    let (f, _) = filter(include_str!("../config.json"));
    // The root README's curl examples must keep working: plain requests are not rewritten.
    let ops = run(&f, RequestBuilder::get("/hello"));
    assert!(!ops.set.iter().any(|(n, _)| n.starts_with(':')), "{ops:?}");
}

#[test]
fn claims_come_from_jwt_authn_metadata_unless_a_header_is_opted_in() {
    let cfg = r#"{"default_tag": "stable", "rules": [
        {"match": {"claims": [{"claim": "groups", "value": {"exact": "beta"}}]}, "tag": "beta"}]}"#;
    let (f, _) = filter(cfg);
    let beta = serde_json::json!({"sub": "a", "groups": ["staff", "beta"]});
    // Verified by jwt_authn (metadata): routed.
    assert_eq!(
        tag(&f, RequestBuilder::get("/").jwt_metadata("payload", &beta)),
        Some("beta".into())
    );
    // The same claims in a header a client can write: ignored without the opt-in.
    assert_eq!(
        tag(
            &f,
            RequestBuilder::get("/").header("x-jwt-payload", &claims_header(beta.clone()))
        ),
        Some("stable".into())
    );
    // With the opt-in, a compact JWT (unverified) in that header is still not claims.
    let (h, _) = filter(&cfg.replacen('{', r#"{"jwt": {"payload_header": "x-jwt-payload"}, "#, 1));
    let jwt = format!("eyJhbGciOiJub25lIn0.{}.", claims_header(beta.clone()));
    assert_eq!(
        tag(&h, RequestBuilder::get("/").header("x-jwt-payload", &jwt)),
        Some("stable".into())
    );
    assert_eq!(
        tag(
            &h,
            RequestBuilder::get("/").header("x-jwt-payload", &claims_header(beta))
        ),
        Some("beta".into())
    );
}

#[test]
fn path_rules_match_normalized_paths_by_default() {
    let cfg = r#"{"default_tag": "stable", "rules": [{"match": {"paths": [{"prefix": "/beta/"}]}, "tag": "beta"}]}"#;
    let (f, _) = filter(cfg);
    let (raw, _) = filter(&cfg.replacen('{', r#"{"path_matching": "raw", "#, 1));
    for p in [
        "/beta/x",
        "//beta/x",
        "/./beta/x",
        "/%62eta/x",
        "/x/../beta/x",
    ] {
        assert_eq!(tag(&f, RequestBuilder::get(p)), Some("beta".into()), "{p}");
        let want = if p == "/beta/x" { "beta" } else { "stable" };
        assert_eq!(
            tag(&raw, RequestBuilder::get(p)).as_deref(),
            Some(want),
            "{p} (raw)"
        );
    }
}

#[test]
fn a_prefix_rewrite_cuts_the_path_the_rule_matched() {
    let cfg = r#"{"rules": [{"match": {"paths": [{"prefix": "/old/"}]}, "tag": "a",
        "rewrite": {"path_prefix": {"from": "/old/", "to": "/new/"}}}]}"#;
    let path = |f: &RouterFilter, p: &str| {
        run(f, RequestBuilder::get(p))
            .set
            .iter()
            .find(|(n, _)| n == ":path")
            .map(|(_, v)| v.clone())
    };
    let (f, _) = filter(cfg);
    assert_eq!(
        path(&f, "/old/x?a=%2F&b").as_deref(),
        Some("/new/x?a=%2F&b")
    );
    assert_eq!(path(&f, "//old/./x?a=1").as_deref(), Some("/new/x?a=1"));
    let (raw, _) = filter(&cfg.replacen('{', r#"{"path_matching": "raw", "#, 1));
    assert_eq!(path(&raw, "/old/./x?a=1").as_deref(), Some("/new/./x?a=1"));
    assert_eq!(path(&raw, "//old/x"), None, "raw: no match, no rewrite");
}
