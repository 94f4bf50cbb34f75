//! The suite's WasmPlugin (`istio/suite`, overlay `dev-suite`) renders and serves: `cargo xtask
//! up --plugins istio/overlays/dev-suite` runs the suite module with the overlay's pluginConfig
//! (policy in shadow mode, threat-score in detect mode, router tagging) and failStrategy, in one
//! filter. (`validate_cli.rs` checks the same overlay against the schema, the parser and its pin.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use envoy_harness::Client;

/// The value of header `name` the echo upstream reports it received.
fn upstream_header(body: &str, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|h| (h[0].as_str() == Some(name)).then(|| h[1].as_str().unwrap().to_string()))
}

#[test]
fn the_suite_overlay_renders_and_serves_as_one_filter() {
    let docs = kustomize(&workspace().join("istio/overlays/dev-suite"));
    let plugins: Vec<&serde_json::Value> =
        docs.iter().filter(|d| d["kind"] == "WasmPlugin").collect();
    assert_eq!(plugins.len(), 1, "dev-suite runs the suite alone");
    assert_eq!(
        plugins[0]["metadata"]["labels"]["app.kubernetes.io/name"],
        "suite"
    );
    let dirs = UpDirs::new();
    dirs.add_module("suite");
    let up = UpProcess::plugins(&dirs, &workspace().join("istio/overlays/dev-suite"), &[]);
    let (url, admin) = (up.url(), up.admin());
    let client = Client::new();

    // router (a member): the beta cookie tags the request `canary` for the upstream.
    let r = client
        .request(
            "GET",
            &format!("{url}hello"),
            &[("cookie", "beta=yes")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        upstream_header(&r.body, "x-route-tag").as_deref(),
        Some("canary")
    );
    // policy (a member, shadow in dev): `/admin` without a key would be denied, is let through.
    let r = client.get(&format!("{url}admin/users")).unwrap();
    assert_eq!(r.status, 200, "dev's policy is shadow-only: {r:?}");
    // threat-score (a member, detect in dev): an attack is scored, not blocked.
    let r = client
        .get(&format!("{url}q?id=1%27%20OR%20%271%27%3D%271"))
        .unwrap();
    assert_eq!(r.status, 200, "dev's threat-score only detects: {r:?}");

    // One Wasm filter, the suite, with the overlay's failStrategy.
    assert_ecds_fail_open(&admin);
    let stats = client.get(&format!("{admin}/stats")).unwrap().body;
    let updates: Vec<&str> = stats
        .lines()
        .filter(|l| {
            l.starts_with("extension_config_discovery.http_filter.")
                && l.contains(".update_success:")
        })
        .collect();
    assert_eq!(updates.len(), 1, "one ECDS filter expected:\n{stats}");
    assert!(updates[0].contains("suite"), "{updates:?}");
}
