//! The composition, with the example and noop filters and a body-inspecting test member.

use sdk_ext::testing::{configure, RequestBuilder};
use sdk_ext::{
    BodyChunk, ConfigError, Decision, FromJson, HeaderOps, HttpFilter, LocalReply, Node,
    RequestView, Setup,
};

/// Asks for up to `limit` body bytes; denies bodies containing `needle`; records what it saw.
pub struct BodyGuard {
    needle: String,
    limit: usize,
}

pub struct BodyGuardConfig {
    needle: String,
    limit: usize,
}

impl FromJson for BodyGuardConfig {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let o = node.object(&["needle", "limit"])?;
        Ok(Self {
            needle: o.req("needle")?,
            limit: o.req("limit")?,
        })
    }
}

#[derive(Default)]
pub struct Seen {
    body: Option<(usize, bool)>,
}

impl HttpFilter for BodyGuard {
    const NAME: &'static str = "body-guard";
    type Config = BodyGuardConfig;
    type State = Seen;

    fn configure(c: BodyGuardConfig, setup: Setup<'_>) -> Result<Self, ConfigError> {
        setup.metrics.counter("seen_total")?;
        Ok(Self {
            needle: c.needle,
            limit: c.limit,
        })
    }

    fn on_request_headers(&self, _: &RequestView, _: &mut Seen, ops: &mut HeaderOps) -> Decision {
        ops.set("x-guard", "headers");
        Decision::InspectBody
    }

    fn max_body_bytes(&self) -> usize {
        self.limit
    }

    fn on_request_body(
        &self,
        req: &RequestView,
        body: BodyChunk<'_>,
        st: &mut Seen,
        _: &mut HeaderOps,
    ) -> Decision {
        st.body = Some((body.bytes.len(), body.truncated));
        let hit = body
            .bytes
            .windows(self.needle.len().max(1))
            .any(|w| w == self.needle.as_bytes());
        if hit {
            Decision::Respond(LocalReply::json(403, "forbidden", "body", req.request_id()))
        } else {
            Decision::Continue
        }
    }
}

crate::compose! {
    /// example, then the body guard, then noop.
    pub filter TestSuite, config TestConfig, state TestState, name "test-suite";
    example: example::ExampleFilter,
    guard: BodyGuard,
    noop: noop::NoopFilter,
}

fn suite(json: &str) -> Result<TestSuite, ConfigError> {
    configure::<TestSuite>(json).map(|(f, _)| f)
}

const ALL: &str = r#"{
    "example": {"deny": {"header": {"name": "x-deny"}}},
    "guard": {"needle": "evil", "limit": 8},
    "noop": {}
}"#;

#[test]
fn members_keep_their_own_metric_names_and_config_paths() {
    let (f, sink) = configure::<TestSuite>(ALL).unwrap();
    let req = RequestBuilder::get("/").build();
    let _ = f.on_request_headers(&req, &mut TestState::default(), &mut HeaderOps::default());
    assert_eq!(sink.value("example_requests_total"), 1);
    let err = suite(r#"{"example": {"deny": {"header": {"name": "x", "value": {"regex": "("}}}}}"#)
        .err()
        .unwrap();
    assert_eq!(err.path, "example.deny.header.value.regex");
    assert_eq!(suite(r#"{"exampel": {}}"#).err().unwrap().path, "exampel");
}

#[test]
fn first_local_reply_wins_and_later_members_do_not_run() {
    let f = suite(ALL).unwrap();
    let req = RequestBuilder::get("/").header("x-deny", "1").build();
    let mut ops = HeaderOps::default();
    let d = f.on_request_headers(&req, &mut TestState::default(), &mut ops);
    assert!(matches!(d, Decision::Respond(r) if r.status == 403));
    assert!(
        ops.set.is_empty(),
        "the guard ran after the denial: {ops:?}"
    );
}

#[test]
fn members_after_a_body_waiter_run_on_the_headers_and_the_waiter_sees_its_own_limit() {
    let f = suite(ALL).unwrap();
    assert_eq!(f.max_body_bytes(), 8);
    let req = RequestBuilder::get("/").build();
    let mut st = TestState::default();
    let mut ops = HeaderOps::default();
    assert_eq!(
        f.on_request_headers(&req, &mut st, &mut ops),
        Decision::InspectBody
    );
    // The guard (member 1) waits; example (0) ran before it and noop (2) after it, now.
    assert_eq!(st.waiting, 0b010);
    assert_eq!(ops.set, vec![("x-guard".into(), "headers".into())]);
    let body = BodyChunk {
        bytes: b"0123456789",
        truncated: false,
    };
    let mut body_ops = HeaderOps::default();
    assert_eq!(
        f.on_request_body(&req, body, &mut st, &mut body_ops),
        Decision::Continue
    );
    assert_eq!(st.guard.body, Some((8, true)));
    assert!(body_ops.is_empty(), "{body_ops:?}");
    let evil = BodyChunk {
        bytes: b"an evil body",
        truncated: false,
    };
    let mut st = TestState::default();
    let _ = f.on_request_headers(&req, &mut st, &mut HeaderOps::default());
    assert!(matches!(
        f.on_request_body(&req, evil, &mut st, &mut HeaderOps::default()),
        Decision::Respond(_)
    ));
}

#[test]
fn a_reply_on_the_headers_comes_before_any_body_wait() {
    // example denies on the headers: the guard after it never asks for the body.
    let f = suite(ALL).unwrap();
    let req = RequestBuilder::get("/").header("x-deny", "1").build();
    let mut st = TestState::default();
    let d = f.on_request_headers(&req, &mut st, &mut HeaderOps::default());
    assert!(matches!(d, Decision::Respond(_)));
    assert_eq!(st.waiting, 0);
}

#[test]
fn absent_members_are_off_and_response_hooks_run() {
    let f = suite(r#"{"example": {}}"#).unwrap();
    assert!(f.guard.is_none() && f.noop.is_none());
    assert_eq!(f.max_body_bytes(), 0);
    let req = RequestBuilder::get("/").build();
    let mut st = TestState::default();
    assert_eq!(
        f.on_request_headers(&req, &mut st, &mut HeaderOps::default()),
        Decision::Continue
    );
    let mut ops = HeaderOps::default();
    f.on_response_headers(&mut st, &mut ops);
    assert_eq!(ops.set, vec![("x-example-filter".into(), "active".into())]);
}

/// The benchmark's member configurations (`bench/configs/`) make a valid suite, and an error in
/// a member is reported under its key.
#[test]
fn the_benchmark_configs_compose_and_member_errors_name_the_member() {
    let json = format!(
        r#"{{"policy": {}, "threat_score": {}, "router": {}}}"#,
        include_str!("../../../bench/configs/policy.json"),
        include_str!("../../../bench/configs/threat-score.json"),
        include_str!("../../../bench/configs/router.json"),
    );
    let (f, _) = configure::<crate::SuiteFilter>(&json).unwrap();
    assert!(f.policy.is_some() && f.threat_score.is_some() && f.router.is_some());
    let bad = r#"{"policy": {"rules": [{"name": "x", "match": {"paths": [{"regex": "("}]}, "action": "deny"}]}}"#;
    let err = configure::<crate::SuiteFilter>(bad).err().unwrap();
    assert_eq!(err.path, "policy.rules[0].match.paths[0].regex");
    let typo = r#"{"policy": {"rules": [{"name": "x", "match": {}, "acton": "deny"}]}}"#;
    let err = configure::<crate::SuiteFilter>(typo).err().unwrap();
    assert_eq!(err.path, "policy.rules[0].acton");
}

/// Sets and removes headers as configured; records the view it saw.
pub struct Editor {
    set: Vec<(String, String)>,
    remove: Vec<String>,
}

pub struct EditorConfig {
    /// `[["name", "value"], ...]`.
    set: Vec<(String, String)>,
    remove: Vec<String>,
}

impl FromJson for EditorConfig {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let o = node.object(&["set", "remove"])?;
        let pairs: Vec<Vec<String>> = o.or_default("set")?;
        let set = pairs
            .into_iter()
            .map(|p| match <[String; 2]>::try_from(p) {
                Ok([n, v]) => Ok((n, v)),
                Err(_) => Err(o.error("`set` takes [name, value] pairs")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            set,
            remove: o.or_default("remove")?,
        })
    }
}

/// What the member saw: `(name, value)` of every header.
#[derive(Default)]
pub struct SawHeaders(Vec<(String, String)>);

impl HttpFilter for Editor {
    const NAME: &'static str = "editor";
    type Config = EditorConfig;
    type State = SawHeaders;

    fn configure(c: EditorConfig, _: Setup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            set: c.set,
            remove: c.remove,
        })
    }

    fn on_request_headers(
        &self,
        req: &RequestView,
        st: &mut SawHeaders,
        ops: &mut HeaderOps,
    ) -> Decision {
        st.0 = req.headers().to_vec();
        for n in &self.remove {
            ops.remove(n.as_str());
        }
        for (n, v) in &self.set {
            ops.set(n.as_str(), v.as_str());
        }
        Decision::Continue
    }
}

crate::compose! {
    /// Two editors, then the body guard (which keeps the view it saw for its body hook).
    pub filter EditSuite, config EditConfig, state EditState, name "edit-suite";
    first: Editor,
    second: Editor,
    guard: BodyGuard,
}

/// The request as the upstream gets it: the glue applies the suite's ops to the headers.
fn forwarded(req: &RequestView, ops: &HeaderOps) -> Vec<(String, String)> {
    let mut headers = req.headers().to_vec();
    sdk_ext::view::apply_ops(&mut headers, ops);
    headers
}

#[test]
fn each_member_sees_the_previous_members_edits_and_the_net_change_is_forwarded() {
    let (f, _) = configure::<EditSuite>(
        r#"{
            "first": {"set": [["x-a", "1"], [":path", "/rewritten"]], "remove": ["x-client"]},
            "second": {"set": [["x-client", "from-second"]], "remove": ["x-a"]},
            "guard": {"needle": "evil", "limit": 8}
        }"#,
    )
    .unwrap();
    let req = RequestBuilder::get("/orig")
        .header("x-client", "forged")
        .build();
    let mut st = EditState::default();
    let mut ops = HeaderOps::default();
    assert_eq!(
        f.on_request_headers(&req, &mut st, &mut ops),
        Decision::InspectBody
    );
    let saw = |st: &SawHeaders, n: &str| {
        st.0.iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    // The second member reads what the first left: its path, its header, no client copy.
    assert_eq!(saw(&st.second, ":path"), ["/rewritten"]);
    assert_eq!(saw(&st.second, "x-a"), ["1"]);
    assert!(saw(&st.second, "x-client").is_empty());
    // The upstream gets the net effect in member order: the second's removal of `x-a` stands
    // (concatenated ops would remove first and then set it again), and so does its `x-client`.
    let out = forwarded(&req, &ops);
    let get = |n: &str| {
        out.iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get(":path"), ["/rewritten"]);
    assert!(get("x-a").is_empty(), "{out:?}");
    assert_eq!(get("x-client"), ["from-second"]);
    assert_eq!(get("x-guard"), ["headers"]);
    // The body hook sees the view the guard saw at its header hook.
    let body = BodyChunk {
        bytes: b"ok",
        truncated: false,
    };
    let mut body_ops = HeaderOps::default();
    assert_eq!(
        f.on_request_body(&req, body, &mut st, &mut body_ops),
        Decision::Continue
    );
    assert!(st.views.is_empty(), "the saved view was consumed");
}

const SHA256_OF_SECRET: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

fn policy_router_suite() -> crate::SuiteFilter {
    let json = format!(
        r#"{{
        "policy": {{
            "api_keys": {{"header": "x-api-key", "query": "api_key", "consumer_header": "x-api-consumer",
                          "keys": [{{"consumer": "partner", "sha256": "{SHA256_OF_SECRET}"}}]}}
        }},
        "router": {{
            "route_header": "x-route-tag", "default_tag": "stable",
            "rules": [{{"name": "partners", "match": {{"headers": [{{"name": "x-api-consumer", "value": {{"exact": "partner"}}}}]}},
                        "tag": "partner", "rewrite": {{"path_prefix": {{"from": "/api/", "to": "/v2/"}}}}}}]
        }}
    }}"#
    );
    configure::<crate::SuiteFilter>(&json).unwrap().0
}

#[test]
fn the_router_sees_policys_view_no_key_is_restored_and_a_forged_consumer_is_ignored() {
    let f = policy_router_suite();
    let run = |req: RequestView| {
        let mut ops = HeaderOps::default();
        let d = f.on_request_headers(&req, &mut crate::SuiteState::default(), &mut ops);
        assert_eq!(d, Decision::Continue);
        forwarded(&req, &ops)
    };
    let get = |out: &[(String, String)], n: &str| {
        out.iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    // Key in the query: policy strips it, the router rewrites the stripped path.
    let out = run(RequestBuilder::get("/api/items?api_key=secret&page=2").build());
    assert_eq!(get(&out, ":path"), ["/v2/items?page=2"], "{out:?}");
    assert_eq!(get(&out, "x-api-consumer"), ["partner"]);
    assert_eq!(get(&out, "x-route-tag"), ["partner"]);
    // Key in a header: removed, consumer routed.
    let out = run(RequestBuilder::get("/api/items")
        .header("x-api-key", "secret")
        .build());
    assert!(get(&out, "x-api-key").is_empty(), "{out:?}");
    assert_eq!(get(&out, ":path"), ["/v2/items"]);
    assert_eq!(get(&out, "x-route-tag"), ["partner"]);
    // A forged consumer header without a key: policy removes it, the router does not see it.
    let out = run(RequestBuilder::get("/api/items")
        .header("x-api-consumer", "partner")
        .build());
    assert!(get(&out, "x-api-consumer").is_empty(), "{out:?}");
    assert_eq!(get(&out, "x-route-tag"), ["stable"]);
    assert_eq!(get(&out, ":path"), ["/api/items"]);
}

#[test]
fn a_member_that_makes_grpc_calls_is_refused_naming_it() {
    // Policy's global rate limits wait for a gRPC answer; the suite cannot hold its other
    // members for it, so it refuses the configuration instead of skipping the limit.
    let cfg = r#"{"policy": {"rules": [{"name": "g", "match": {"paths": [{"prefix": "/"}]},
        "action": "rate_limit", "rate_limit": {"scope": "global",
        "global": {"cluster": "rls", "domain": "d", "entries": [{"key": "k", "value": "v"}]}}}]}}"#;
    let err = match configure::<crate::SuiteFilter>(cfg) {
        Err(e) => e,
        Ok(_) => panic!("a calling member was accepted"),
    };
    // The suite's own build (policy without `callouts`) names the rule's scope; where cargo
    // unifies policy's default features into this test (a workspace-wide `cargo test`),
    // policy compiles the limit and the suite's `calls_out` check names the member.
    assert!(
        ["policy.rules[0].rate_limit.scope", "policy"].contains(&err.path.as_str()),
        "{}",
        err.path
    );
    assert!(err.reason.contains("gRPC calls"), "{}", err.reason);
    // The `global` object is still read and checked first: a bad one is named.
    let bad = cfg.replace(r#""domain": "d", "#, "");
    let err = match configure::<crate::SuiteFilter>(&bad) {
        Err(e) => e,
        Ok(_) => panic!("a global limit without a domain was accepted"),
    };
    assert_eq!(err.path, "policy.rules[0].rate_limit.global");
    assert!(err.reason.contains("`domain`"), "{}", err.reason);
}
