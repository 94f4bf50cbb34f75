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
