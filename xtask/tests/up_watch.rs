//! `cargo xtask up --plugins istio/overlays/dev --watch`: the dev overlay's WasmPlugin is what
//! Envoy runs (pluginConfig, failStrategy), an edit of the manifest is swapped into the running
//! Envoy, and a broken module dropped in is rejected while the previous one keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use envoy_harness::Client;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `xtask up` in its own process group (it starts Envoy), killed as a group on drop.
struct Up {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Up {
    fn wait_line(&self, needle: &str, from: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(l) = self.lines.lock().unwrap()[from..]
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in output:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn line_count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // The group is xtask and the Envoy it started; both were started by this test.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

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
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    let modules = tmp.path().join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    // Every filter the dev overlay runs (named by the label on each WasmPlugin).
    for plugin in kustomize(&istio.join("overlays/dev")) {
        let filter = plugin["metadata"]["labels"]["app.kubernetes.io/name"]
            .as_str()
            .unwrap()
            .to_string();
        let module = envoy_harness::modules::module(&filter).unwrap();
        std::fs::copy(&module, modules.join(format!("{filter}.wasm"))).unwrap();
    }

    // Temporary files of xtask and its Envoy stay inside this test's directory, even though
    // the process group is killed without a chance to clean up.
    let child_tmp = tmp.path().join("tmp");
    std::fs::create_dir_all(&child_tmp).unwrap();
    let mut child = xtask()
        .env("TMPDIR", &child_tmp)
        .arg("up")
        .arg("--plugins")
        .arg(istio.join("overlays/dev"))
        .arg("--modules")
        .arg(&modules)
        .args([
            "--port",
            "0",
            "--admin-port",
            "0",
            "--watch",
            "--poll-ms",
            "200",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            println!("up| {line}");
            sink.lock().unwrap().push(line);
        }
    });
    let up = Up { child, lines };

    let url = up.wait_line("URL:", 0);
    let url = url.split_whitespace().last().unwrap().to_string();
    let admin = up.wait_line("admin:", 0);
    let admin = admin
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    up.wait_line("Watching", 0);

    // The dev overlay's pluginConfig and failStrategy are what Envoy runs.
    let client = Client::new();
    let r = client.get(&format!("{url}hello")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-example-filter"), Some("dev-detect"));
    let r = client
        .request("GET", &format!("{url}hello"), &[("x-deny", "1")], b"")
        .unwrap();
    assert_eq!(r.status, 200, "dev is detect-only: no deny rule");
    let dump = client
        .get(&format!("{admin}/config_dump?resource=ecds_filters"))
        .unwrap()
        .body;
    assert!(dump.contains("\"failure_policy\": \"FAIL_OPEN\""), "{dump}");

    // The overlay's NETWORK plugin (tcp-guard) guards a TCP listener in front of a TCP echo.
    let tcp = up.wait_line("guard TCP", 0);
    let tcp_addr = tcp
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap()
        .to_string();
    let mut conn = std::net::TcpStream::connect(&tcp_addr).unwrap();
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
    let swapped = up.wait_line("watch: swapped `example`", from);
    assert!(swapped.contains("update_success"), "{swapped}");
    assert!(header_eventually(&format!("{url}hello"), "dev-edited"));

    // A broken module dropped into the modules directory is rejected; the previous one serves.
    let from = up.line_count();
    std::fs::write(modules.join("example.wasm"), b"not wasm").unwrap();
    let swapped = up.wait_line("watch: swapped `example`", from);
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
