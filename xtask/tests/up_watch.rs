//! `cargo xtask up --plugins istio/overlays/dev --watch`: the dev overlay's WasmPlugin is what
//! Envoy runs (pluginConfig, failStrategy), an edit of the manifest is swapped into the running
//! Envoy, and a broken module dropped in is rejected while the previous one keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use envoy_harness::Client;
use std::time::{Duration, Instant};

fn header_eventually(url: &str, want: &str) -> bool {
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url) {
            if r.status == 200 && r.header("x-example-filter") == Some(want) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn serves_the_dev_overlay_and_swaps_edits_live() {
    let dirs = UpDirs::new();
    let istio = copy_istio(dirs.root.path());
    // Every filter the dev overlay runs (named by the label on each WasmPlugin).
    for plugin in kustomize(&istio.join("overlays/dev")) {
        dirs.add_module(
            plugin["metadata"]["labels"]["app.kubernetes.io/name"]
                .as_str()
                .unwrap(),
        );
    }
    let up = UpProcess::plugins(
        &dirs,
        &istio.join("overlays/dev"),
        &["--watch", "--poll-ms", "200"],
    );
    let (url, admin) = (up.url(), up.admin());
    up.wait_line("Watching");

    // The dev overlay's pluginConfig and failStrategy are what Envoy runs.
    let client = Client::new();
    let r = client.get(&format!("{url}hello")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-example-filter"), Some("dev-detect"));
    let r = client
        .request("GET", &format!("{url}hello"), &[("x-deny", "1")], b"")
        .unwrap();
    assert_eq!(r.status, 200, "dev is detect-only: no deny rule");
    assert_ecds_fail_open(&admin);

    // The overlay's NETWORK plugin (tcp-guard) guards a TCP listener in front of a TCP echo.
    let mut conn = std::net::TcpStream::connect(up.tcp_addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    std::io::Write::write_all(&mut conn, b"hello through tcp-guard").unwrap();
    let mut echoed = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&echoed).contains("hello through tcp-guard") {
        let n = std::io::Read::read(&mut conn, &mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&echoed)
        );
        echoed.extend_from_slice(&buf[..n]);
    }
    drop(conn);

    // Edit the manifest: the watcher re-renders the overlay and swaps the config live.
    let from = up.line_count();
    edit(
        &istio.join("overlays/dev/example.yaml"),
        "value: dev-detect",
        "value: dev-edited",
    );
    let swapped = up.wait_line_from("watch: swapped `example`", from);
    assert!(swapped.contains("update_success"), "{swapped}");
    assert!(header_eventually(&format!("{url}hello"), "dev-edited"));

    // A broken module dropped into the modules directory is rejected; the previous one serves.
    let from = up.line_count();
    std::fs::write(dirs.modules.join("example.wasm"), b"not wasm").unwrap();
    let swapped = up.wait_line_from("watch: swapped `example`", from);
    assert!(swapped.contains("update_rejected"), "{swapped}");
    for _ in 0..20 {
        let r = client.get(&format!("{url}hello")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-example-filter"), Some("dev-edited"));
    }
    // One Envoy throughout: its counters hold the initial load, the applied and the rejected
    // update.
    let stats = client.get(&format!("{admin}/stats")).unwrap().body;
    let prefix = "extension_config_discovery.http_filter.example";
    assert!(
        stats.contains(&format!("{prefix}.update_success: 2")),
        "{stats}"
    );
    assert!(
        stats.contains(&format!("{prefix}.update_rejected: 1")),
        "{stats}"
    );
}
