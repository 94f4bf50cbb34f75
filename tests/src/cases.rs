//! Filters' end-to-end request tables, written once for the e2e tests (`tests/tests/*.rs`,
//! which assert what Envoy answers) and the in-process differential
//! (`tests/wasm-host/tests/differential.rs`, which replays the same requests in Envoy and in
//! the in-process host and compares them): both replay the same requests.

use serde_json::{json, Value};

/// One request of a table and what Envoy does with it.
#[derive(Debug, Clone)]
pub struct HttpCase<W> {
    pub method: &'static str,
    /// Path and query, sent as they are (no client-side normalisation in the differential).
    pub path: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
    /// What the e2e test expects: a status (policy) or the upstream reached (router).
    pub want: W,
}

fn case<W>(
    method: &'static str,
    path: &'static str,
    headers: &[(&'static str, &'static str)],
    want: W,
) -> HttpCase<W> {
    HttpCase {
        method,
        path,
        headers: headers.to_vec(),
        want,
    }
}

/// base64url of {"iss":"https://idp.example","sub":"alice","aud":["web","api"],"scope":"read write"}
pub const JWT_ALICE: &str = "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOlsid2ViIiwiYXBpIl0sInNjb3BlIjoicmVhZCB3cml0ZSJ9";
/// base64url of {"iss":"https://evil.example","sub":"mallory","scope":"read"}
pub const JWT_MALLORY: &str =
    "eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSIsInN1YiI6Im1hbGxvcnkiLCJzY29wZSI6InJlYWQifQ";

/// Policy with every match kind and action (default deny, a 2-token bucket on `/limited`).
pub fn policy_every_match_config() -> Value {
    json!({
        "default_action": "deny",
        "deny": {"status": 403, "message": "not allowed"},
        "jwt": {"payload_header": "x-jwt-payload"},
        "rules": [
            {"name": "method", "match": {"methods": ["DELETE"]}, "action": "deny",
             "deny": {"status": 405, "message": "no deletes"}},
            {"name": "host", "match": {"hosts": [{"exact": "internal.example"}]}, "action": "allow"},
            {"name": "path-exact", "match": {"paths": [{"exact": "/exact"}]}, "action": "allow"},
            {"name": "path-prefix", "match": {"paths": [{"prefix": "/pub/"}]}, "action": "allow"},
            {"name": "path-regex", "match": {"paths": [{"regex": "/users/[0-9]+"}]}, "action": "allow"},
            {"name": "path-glob", "match": {"paths": [{"glob": "/static/**/*.css"}]}, "action": "allow"},
            {"name": "header", "match": {"headers": [{"name": "x-role", "value": {"exact": "ops"}}]}, "action": "allow"},
            {"name": "query", "match": {"query": [{"name": "preview", "value": {"exact": "yes"}}]}, "action": "allow"},
            {"name": "cidr-other", "match": {"paths": [{"prefix": "/net"}], "source_cidrs": ["10.0.0.0/8"]}, "action": "deny",
             "deny": {"status": 451, "message": "wrong network"}},
            {"name": "cidr-loopback", "match": {"paths": [{"prefix": "/net"}], "source_cidrs": ["127.0.0.0/8", "::1"]}, "action": "allow"},
            {"name": "claims", "match": {"paths": [{"prefix": "/claims"}], "claims": [
                {"claim": "iss", "value": {"exact": "https://idp.example"}},
                {"claim": "sub", "value": {"exact": "alice"}},
                {"claim": "aud", "value": {"exact": "api"}},
                {"claim": "scope", "value": {"exact": "write"}}]}, "action": "allow"},
            {"name": "limited", "match": {"paths": [{"prefix": "/limited"}]}, "action": "rate_limit",
             "rate_limit": {"max_tokens": 2, "fill_interval": "1h", "message": "slow down"}}
        ]
    })
}

/// Requests for [`policy_every_match_config`] and their statuses, in order (the last two take
/// the bucket's two tokens). Of them, 8 are denied by the default action.
pub fn policy_every_match_cases() -> Vec<HttpCase<u16>> {
    vec![
        case("DELETE", "/exact", &[], 405),
        case("GET", "/", &[("host", "internal.example")], 200),
        case("GET", "/", &[("host", "other.example")], 403),
        case("GET", "/exact", &[], 200),
        case("GET", "/exact/more", &[], 403),
        case("GET", "/pub/a/b", &[], 200),
        case("GET", "/users/42", &[], 200),
        case("GET", "/users/42x", &[], 403),
        case("GET", "/static/a/b/site.css", &[], 200),
        case("GET", "/static/site.js", &[], 403),
        case("GET", "/x", &[("x-role", "ops")], 200),
        case("GET", "/x", &[("x-role", "dev")], 403),
        case("GET", "/x?preview=yes", &[], 200),
        case("GET", "/x?preview=no", &[], 403),
        case("GET", "/net", &[], 200),
        case("GET", "/claims", &[("x-jwt-payload", JWT_ALICE)], 200),
        case("GET", "/claims", &[("x-jwt-payload", JWT_MALLORY)], 403),
        case("GET", "/claims", &[], 403),
        // Normalised by Envoy before the filter (`normalize_path`, `merge_slashes`).
        case("GET", "/pub/./../exact", &[], 200),
        case("GET", "//pub//a", &[], 200),
        case("GET", "/limited", &[], 200),
        case("GET", "/limited", &[], 200),
    ]
}

/// base64url of `{"sub":"alice","groups":["beta"]}` and `{"sub":"bob","groups":["staff"]}`, as
/// Istio's `outputPayloadToHeader` writes a verified token's payload.
pub const CLAIMS_BETA: &str = "eyJzdWIiOiJhbGljZSIsImdyb3VwcyI6WyJiZXRhIl19";
pub const CLAIMS_STAFF: &str = "eyJzdWIiOiJib2IiLCJncm91cHMiOlsic3RhZmYiXX0";

/// Router rules of every kind (tag `canary` or `stable`), a rewrite and two splits.
pub const ROUTER_RULES: &str = r#"{
  "default_tag": "stable",
  "jwt": {"payload_header": "x-jwt-payload"},
  "rules": [
    {"name": "header", "match": {"headers": [{"name": "x-beta", "value": {"exact": "1"}}]}, "tag": "canary"},
    {"name": "cookie", "match": {"cookies": [{"name": "canary", "value": {"exact": "always"}}]}, "tag": "canary"},
    {"name": "query", "match": {"query": [{"name": "canary", "value": {"exact": "1"}}]}, "tag": "canary"},
    {"name": "path", "match": {"paths": [{"prefix": "/beta/"}]}, "tag": "canary"},
    {"name": "method", "match": {"methods": ["PATCH"]}, "tag": "canary"},
    {"name": "cidr-local", "match": {"paths": [{"prefix": "/cidr/"}], "source_cidrs": ["127.0.0.0/8", "::1/128"]}, "tag": "canary"},
    {"name": "cidr-elsewhere", "match": {"paths": [{"prefix": "/cidr-10/"}], "source_cidrs": ["10.0.0.0/8"]}, "tag": "canary"},
    {"name": "claim", "match": {"claims": [{"claim": "groups", "value": {"exact": "beta"}}]}, "tag": "canary"},
    {"name": "rewrite", "match": {"paths": [{"prefix": "/legacy/"}]}, "tag": "stable",
     "rewrite": {"path_prefix": {"from": "/legacy/", "to": "/rewritten/"}, "host": "v2.internal"},
     "request_headers": {"set": {"x-router-rule": "rewrite"}, "remove": ["x-internal"]}},
    {"name": "random", "match": {"paths": [{"prefix": "/random/"}]},
     "weights": [{"tag": "canary", "percent": 50}, {"tag": "stable", "percent": 50}],
     "hash_on": [{"header": "x-user-id"}], "fallback": "random"},
    {"name": "fixed", "match": {"paths": [{"prefix": "/fixed/"}]},
     "weights": [{"tag": "canary", "percent": 50}, {"tag": "stable", "percent": 50}],
     "hash_on": [{"header": "x-user-id"}], "fallback": {"tag": "stable"}}
  ]
}"#;

/// Requests for [`ROUTER_RULES`], each named, and the upstream (tag) each must reach.
pub fn router_rule_cases() -> Vec<(&'static str, HttpCase<&'static str>)> {
    vec![
        ("header", case("GET", "/", &[("x-beta", "1")], "canary")),
        (
            "header, other value",
            case("GET", "/", &[("x-beta", "0")], "stable"),
        ),
        (
            "cookie",
            case("GET", "/", &[("cookie", "a=1; canary=always")], "canary"),
        ),
        (
            "cookie, other value",
            case("GET", "/", &[("cookie", "canary=never")], "stable"),
        ),
        ("query", case("GET", "/items?x=1&canary=1", &[], "canary")),
        (
            "query, other value",
            case("GET", "/items?canary=2", &[], "stable"),
        ),
        ("path", case("GET", "/beta/items", &[], "canary")),
        ("path, no prefix", case("GET", "/betamax", &[], "stable")),
        ("method", case("PATCH", "/", &[], "canary")),
        ("other method", case("PUT", "/", &[], "stable")),
        (
            "source CIDR (loopback)",
            case("GET", "/cidr/x", &[], "canary"),
        ),
        (
            "source CIDR (10/8)",
            case("GET", "/cidr-10/x", &[], "stable"),
        ),
        (
            "JWT claim",
            case("GET", "/", &[("x-jwt-payload", CLAIMS_BETA)], "canary"),
        ),
        (
            "JWT claim, other group",
            case("GET", "/", &[("x-jwt-payload", CLAIMS_STAFF)], "stable"),
        ),
        ("no rule", case("GET", "/plain", &[], "stable")),
    ]
}
