//! Hot swap through file-based ECDS (how istiod pushes a WasmPlugin update) while clients keep
//! sending traffic: every swap is applied without a failed request or an Envoy restart, and a
//! broken module or a bad config is rejected while the previous filter keeps serving.
//!
//! Two module versions with different behaviour, without a second compile: v2 is the `example`
//! module with the default response-header value `active` rewritten to `swap-2` in its data
//! segment (same length, so the module stays valid). A response's `x-example-filter` header
//! says which module answered; each swap also changes the config (the deny message), which a
//! probe request with `x-probe` reads back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
const HEADER: &str = "x-example-filter";
const V1: &str = "active";
const V2: &str = "swap-2";
/// Liveness bound for one swap to show up (not a performance threshold).
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(60);
const SUCCESS: &str = "extension_config_discovery.http_filter.example.update_success";
const REJECTED: &str = "extension_config_discovery.http_filter.example.update_rejected";

/// The two module versions, in a temporary directory.
struct Modules {
    _dir: tempfile::TempDir,
    v1: PathBuf,
    v2: PathBuf,
}

fn modules() -> Modules {
    let v1_bytes = std::fs::read(modules::module("example").unwrap()).unwrap();
    let at: Vec<usize> = v1_bytes
        .windows(V1.len())
        .enumerate()
        .filter(|(_, w)| *w == V1.as_bytes())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "the example module must contain `{V1}` exactly once"
    );
    let mut v2_bytes = v1_bytes.clone();
    v2_bytes[at[0]..at[0] + V2.len()].copy_from_slice(V2.as_bytes());
    assert_ne!(v1_bytes, v2_bytes);
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (dir.path().join("v1.wasm"), dir.path().join("v2.wasm"));
    std::fs::write(&v1, v1_bytes).unwrap();
    std::fs::write(&v2, v2_bytes).unwrap();
    Modules { _dir: dir, v1, v2 }
}

/// Config generation `gen`: the module's default response header, and a deny rule only the
/// probe triggers, whose message names the generation.
fn config(gen: usize) -> String {
    format!(
        r#"{{"deny": {{"header": {{"name": "x-probe"}}, "status": 403, "message": "gen-{gen}"}}}}"#
    )
}

fn example(module: &Path, config: &str) -> FilterEntry {
    FilterEntry::wasm("example", module, config)
}

/// Steady traffic from several threads; every response is checked and tallied by its header.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<String, u64>>>,
    threads: Vec<JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let threads = (0..CLIENTS)
            .map(|i| {
                let (stop, seen, url) = (Arc::clone(&stop), Arc::clone(&seen), url.clone());
                std::thread::spawn(move || {
                    let client = Client::new();
                    let (mut ok, mut failed) = (0u64, Vec::new());
                    // Bounded in count and time, whatever happens to the test thread.
                    let deadline = Instant::now() + Duration::from_secs(240);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed)
                        && Instant::now() < deadline
                        && n < 1_000_000
                    {
                        n += 1;
                        match client.request("GET", &url, &[("x-client", &i.to_string())], b"") {
                            Ok(r) if r.status == 200 && r.header("x-upstream") == Some("echo") => {
                                match r.header(HEADER) {
                                    Some(v) => {
                                        ok += 1;
                                        *seen.lock().unwrap().entry(v.to_string()).or_default() +=
                                            1;
                                    }
                                    None => failed.push(format!("no {HEADER}: {r:?}")),
                                }
                            }
                            Ok(r) => failed.push(format!("status {}: {}", r.status, r.body)),
                            Err(e) => failed.push(format!("transport: {e:#}")),
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        Self {
            stop,
            seen,
            threads,
        }
    }

    fn count(&self, value: &str) -> u64 {
        self.seen.lock().unwrap().get(value).copied().unwrap_or(0)
    }

    /// Stop the clients and require that every request succeeded; `during` ends the
    /// `N requests ...` line printed first.
    fn finish_without_failures(self, during: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let mut ok = 0;
        let mut failed = Vec::new();
        for t in self.threads {
            let (o, f) = t.join().unwrap();
            ok += o;
            failed.extend(f);
        }
        println!("{ok} requests {during}; {} failed", failed.len());
        assert!(
            failed.is_empty(),
            "{} failed requests, first: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
    }
}

/// An Envoy (2 workers) serving v1 with config gen-0 in front of an echo upstream, under load.
struct Serving {
    _echo: EchoServer,
    envoy: Envoy,
    pid: u32,
    started: Instant,
    load: Load,
}

impl Serving {
    fn start(m: &Modules) -> Self {
        let echo = EchoServer::start("echo").unwrap();
        let envoy = Envoy::start(
            EnvoyConfig::new(echo.addr())
                .concurrency(2)
                .filter(example(&m.v1, &config(0))),
        )
        .unwrap();
        let started = Instant::now();
        let pid = envoy.pid();
        let load = Load::start(envoy.url("/load"));
        observe(&envoy, &load, 0, V1, 0);
        Self {
            _echo: echo,
            envoy,
            pid,
            started,
            load,
        }
    }
}

/// Wait until the probe shows config generation `gen` and the load has seen `value` at least
/// `min` more times than `before`.
fn observe(envoy: &Envoy, load: &Load, gen: usize, value: &str, before: u64) {
    let client = Client::new();
    let deadline = Instant::now() + OBSERVE_TIMEOUT;
    let want = format!("gen-{gen}");
    loop {
        let probe = client
            .request("GET", &envoy.url("/probe"), &[("x-probe", "1")], b"")
            .unwrap();
        let config_seen = probe.status == 403 && probe.json()["message"] == want.as_str();
        let module_seen = probe.header(HEADER) == Some(value);
        if config_seen && module_seen && load.count(value) >= before + 20 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "swap to {value}/{want} not observed: probe {probe:?}, load saw {} (before {before})",
            load.count(value)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Envoy kept running as the same process the whole time (no restart, hot or cold).
fn assert_same_process(envoy: &mut Envoy, pid: u32, started: Instant) {
    assert_eq!(envoy.pid(), pid);
    assert!(
        envoy.try_wait().unwrap().is_none(),
        "Envoy exited during the test"
    );
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} is gone"
    );
    let info = Client::new()
        .get(&envoy.admin_url("/server_info"))
        .unwrap()
        .json();
    assert_eq!(info["state"], "LIVE");
    let uptime: u64 = info["uptime_current_epoch"]
        .as_str()
        .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
        .map(|s| s as u64)
        .unwrap();
    assert!(
        uptime >= started.elapsed().as_secs(),
        "uptime {uptime}s is shorter than the test: Envoy restarted"
    );
    assert_eq!(envoy.stat("server.hot_restart_epoch"), 0);
}

#[test]
fn hot_swap_under_load() {
    let m = modules();
    let Serving {
        _echo,
        mut envoy,
        pid,
        started,
        load,
    } = Serving::start(&m);
    assert_eq!(envoy.stat(SUCCESS), 1, "initial ECDS load");

    for swap in 1..=10 {
        let (module, value) = if swap % 2 == 1 {
            (&m.v2, V2)
        } else {
            (&m.v1, V1)
        };
        let before = load.count(value);
        envoy.update_filter(example(module, &config(swap))).unwrap();
        assert!(
            envoy.wait_for_stat(SUCCESS, 1 + swap as u64, OBSERVE_TIMEOUT),
            "swap {swap} not counted as update_success"
        );
        observe(&envoy, &load, swap, value, before);
        println!(
            "swap {swap}: {value} with config gen-{swap} serving (load saw {V1}: {}, {V2}: {})",
            load.count(V1),
            load.count(V2)
        );
    }
    let (v1_seen, v2_seen) = (load.count(V1), load.count(V2));
    load.finish_without_failures(&format!(
        "from {CLIENTS} clients during 10 swaps ({V1}: {v1_seen}, {V2}: {v2_seen})"
    ));
    assert_eq!(envoy.stat(SUCCESS), 11);
    assert_eq!(envoy.stat(REJECTED), 0);
    assert_same_process(&mut envoy, pid, started);
}

#[test]
fn broken_module_and_bad_config_are_rejected_while_the_old_filter_serves() {
    let m = modules();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"this is not a wasm module").unwrap();
    // A valid Wasm module without the proxy-wasm ABI (the 8-byte empty module).
    let no_abi = dir.path().join("no-abi.wasm");
    std::fs::write(&no_abi, b"\0asm\x01\0\0\0").unwrap();

    let Serving {
        _echo,
        mut envoy,
        pid,
        started,
        load,
    } = Serving::start(&m);

    let bad_config = r#"{"deny": {"header": {"name": "x-probe"}, "stauts": 403}}"#;
    let attempts: [(&str, &Path, &str, &str); 3] = [
        ("garbage bytes", &garbage, &config(1), "garbage"),
        (
            "module without proxy-wasm ABI",
            &no_abi,
            &config(2),
            "no-abi",
        ),
        (
            "config the filter rejects",
            &m.v2,
            bad_config,
            "invalid configuration at `deny.stauts`",
        ),
    ];
    for (i, (what, module, cfg, _)) in attempts.iter().enumerate() {
        let before = load.count(V1);
        envoy.update_filter(example(module, cfg)).unwrap();
        assert!(
            envoy.wait_for_stat(REJECTED, 1 + i as u64, OBSERVE_TIMEOUT),
            "{what}: update not rejected"
        );
        // The previous filter (v1, gen-0) keeps serving the load and the probe.
        observe(&envoy, &load, 0, V1, before);
        println!("{what}: rejected; v1/gen-0 still serving");
    }
    assert!(
        envoy.wait_for_log(attempts[2].3, Duration::from_secs(5)),
        "the log names the bad field"
    );
    assert_eq!(envoy.stat(SUCCESS), 1, "no bad update was applied");

    // The update path still works: a good swap afterwards is applied.
    let before = load.count(V2);
    envoy.update_filter(example(&m.v2, &config(4))).unwrap();
    assert!(envoy.wait_for_stat(SUCCESS, 2, OBSERVE_TIMEOUT));
    observe(&envoy, &load, 4, V2, before);

    load.finish_without_failures("during 3 rejected and 1 applied swap");
    assert_eq!(envoy.stat(REJECTED), 3);
    assert_same_process(&mut envoy, pid, started);
}
