//! The suite's WasmPlugin (`istio/suite`, overlay `dev-suite`) renders and serves: `cargo xtask
//! up --plugins istio/overlays/dev-suite` runs the suite module with the overlay's pluginConfig
//! (policy in shadow mode, threat-score in detect mode, router tagging) and failStrategy, in one
//! filter. (`validate_cli.rs` checks the same overlay against the schema, the parser and its pin.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use envoy_harness::Client;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Kills the process group this test started (xtask up and its Envoy), on drop.
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

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
    let tmp = tempfile::tempdir().unwrap();
    let modules = tmp.path().join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    let docs = kustomize(&workspace().join("istio/overlays/dev-suite"));
    let plugins: Vec<&serde_json::Value> =
        docs.iter().filter(|d| d["kind"] == "WasmPlugin").collect();
    assert_eq!(plugins.len(), 1, "dev-suite runs the suite alone");
    assert_eq!(
        plugins[0]["metadata"]["labels"]["app.kubernetes.io/name"],
        "suite"
    );
    std::fs::copy(
        envoy_harness::modules::module("suite").unwrap(),
        modules.join("suite.wasm"),
    )
    .unwrap();

    let child_tmp = tmp.path().join("tmp");
    std::fs::create_dir_all(&child_tmp).unwrap();
    let mut child = xtask()
        .env("TMPDIR", &child_tmp)
        .args(["up", "--port", "0", "--admin-port", "0", "--plugins"])
        .arg(workspace().join("istio/overlays/dev-suite"))
        .arg("--modules")
        .arg(&modules)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap();
    let _kill = KillGroup(child.id());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            println!("up| {line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut url, mut admin) = (None, None);
    while url.is_none() || admin.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("up printed no URL/admin in time");
        if let Some(u) = line.trim().strip_prefix("URL:") {
            url = Some(u.trim().to_string());
        } else if let Some(a) = line.trim().strip_prefix("admin:") {
            admin = Some(a.trim().trim_end_matches('/').to_string());
        }
    }
    let (url, admin) = (url.unwrap(), admin.unwrap());
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
    let dump = client
        .get(&format!("{admin}/config_dump?resource=ecds_filters"))
        .unwrap()
        .body;
    assert!(dump.contains("\"failure_policy\": \"FAIL_OPEN\""), "{dump}");
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
    drop(_kill);
    let _ = child.wait();
}
