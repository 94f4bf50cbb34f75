//! The host drives a real module through its lifecycle on both runtimes: configure, a forwarded
//! request, a local reply, a rejected config, metrics, and loud failure of unsupported calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use wasm_host::{Plugin, Request, RuntimeKind, Verdict, Vm};

const CONFIG: &str = r#"{
    "response_header": {"name": "x-example-filter", "value": "v1"},
    "deny": {"header": {"name": "x-deny"}, "status": 403, "message": "no"}
}"#;

#[test]
fn example_forwards_and_denies_on_both_runtimes() {
    for rt in RuntimeKind::ALL {
        let t = std::time::Instant::now();
        let mut vm = Vm::load(rt, "example", &Plugin::new("example", CONFIG)).unwrap();
        let ok = vm
            .http(
                &Request::new("POST", "/hello?x=1")
                    .header("x-custom", "abc")
                    .body("payload"),
            )
            .unwrap();
        assert_eq!(ok.verdict, Verdict::Forwarded, "{rt}");
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.upstream_header("x-custom"), Some("abc"));
        assert_eq!(ok.upstream_body.as_deref(), Some(&b"payload"[..]));
        assert_eq!(
            wasm_host::header(&ok.response.headers, "x-example-filter"),
            Some(&b"v1"[..])
        );

        let denied = vm
            .http(
                &Request::new("GET", "/secret")
                    .header("x-deny", "1")
                    .header("x-request-id", "req-42"),
            )
            .unwrap();
        assert!(
            matches!(denied.verdict, Verdict::LocalReply(_)),
            "{rt}: {:?}",
            denied.verdict
        );
        assert_eq!(denied.status(), 403);
        let body: serde_json::Value = serde_json::from_slice(denied.response_body()).unwrap();
        assert_eq!(body["request_id"], "req-42");
        assert_eq!(body["message"], "no");
        // Local replies pass through the filter's response hook, as in Envoy.
        assert_eq!(
            wasm_host::header(&denied.response.headers, "x-example-filter"),
            Some(&b"v1"[..])
        );
        assert_eq!(
            vm.state_ref().metric("example_denied_total"),
            Some(1),
            "{rt}"
        );
        assert_eq!(
            vm.state_ref().metric("example_requests_total"),
            Some(2),
            "{rt}"
        );
        assert!(ok.fuel > 0 && denied.fuel > 0);
        eprintln!(
            "{rt}: load + 2 requests in {:?}; fuel start {} configure {} ok {} denied {}",
            t.elapsed(),
            vm.start_fuel,
            vm.configure_fuel,
            ok.fuel,
            denied.fuel
        );
    }
}

/// Policy's global limit makes unary gRPC calls: the host answers them as Envoy does, without
/// Envoy (the differential test compares with Envoy and the real service).
#[test]
fn grpc_calls_wait_for_their_answer_and_fail_as_in_envoy() {
    use wasm_host::{GrpcReply, GRPC_TIMEOUT};
    let config = |cluster: &str| {
        serde_json::json!({"rules": [{"name": "api", "match": {"paths": [{"prefix": "/api"}]},
            "action": "rate_limit", "rate_limit": {"scope": "global", "global": {
                "cluster": cluster, "domain": "edge", "timeout": "400ms",
                "failure_mode": "deny", "failure_status": 503,
                "entries": [{"key": "generic_key", "value": "api"}]}}}]})
        .to_string()
    };
    for rt in RuntimeKind::ALL {
        let plugin = Plugin::new("policy", config("ratelimit")).cluster("ratelimit");
        let mut vm = Vm::load(rt, "policy", &plugin).unwrap();
        // No responder: the request waits, its call in flight (tokens are odd, from 1).
        let out = vm.http(&Request::new("GET", "/api/x")).unwrap();
        assert_eq!(out.verdict, Verdict::Stalled, "{rt}");
        let calls = vm.grpc_in_flight();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].token, 1);
        assert_eq!(calls[0].cluster, "ratelimit");
        assert_eq!(
            (calls[0].service.as_str(), calls[0].method.as_str()),
            (
                "envoy.service.ratelimit.v3.RateLimitService",
                "ShouldRateLimit"
            )
        );
        assert_eq!(calls[0].timeout_ms, 400);
        // A path without a rule makes no call.
        let out = vm.http(&Request::new("GET", "/other")).unwrap();
        assert_eq!(out.verdict, Verdict::Forwarded);
        assert_eq!(vm.grpc_in_flight().len(), 1);

        // A failed call: the failure mode answers.
        vm.set_grpc_responder(|_| GrpcReply::Status {
            code: 14,
            message: "no redis".into(),
        });
        let out = vm.http(&Request::new("GET", "/api/x")).unwrap();
        assert_eq!(out.status(), 503, "{rt}");
        assert_eq!(vm.state_ref().grpc_sent.last().map(|c| c.token), Some(3));
        assert_eq!(
            vm.state_ref().metric("policy_ratelimit_global_error"),
            Some(1)
        );

        // No answer: the deadline ends the call (the clock moves to it), a timeout.
        vm.set_grpc_responder(|_| GrpcReply::NoAnswer);
        let before = vm.state_ref().now_nanos;
        let out = vm.http(&Request::new("GET", "/api/x")).unwrap();
        assert_eq!(out.status(), 503);
        assert_eq!(vm.state_ref().now_nanos - before, 400_000_000);
        assert_eq!(
            vm.state_ref().metric("policy_ratelimit_global_timeout"),
            Some(1)
        );
        assert_eq!(vm.state_ref().status.0, GRPC_TIMEOUT.0, "the code stays");
        assert!(vm.state_ref().status.1.is_empty(), "the message is cleared");

        // A cluster Envoy does not know: the call fails at once (InternalFailure), no call
        // is in flight and the failure mode answers.
        let mut vm = Vm::load(rt, "policy", &Plugin::new("policy", config("missing"))).unwrap();
        let out = vm.http(&Request::new("GET", "/api/x")).unwrap();
        assert_eq!(out.status(), 503, "{rt}");
        assert!(vm.grpc_in_flight().is_empty() && vm.state_ref().grpc_sent.is_empty());
    }
}
