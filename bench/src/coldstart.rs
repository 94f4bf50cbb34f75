//! Cold start: how long a new module pushed through ECDS takes to serve its first request.
//!
//! One Envoy runs a Wasm filter named `coldstart` delivered by file-based ECDS (the way istiod
//! pushes a WasmPlugin). For each module, the ECDS file is atomically replaced with that module
//! and its benchmark configuration; the clock runs from the rename until the first request
//! answered after Envoy counts the update (`extension_config_discovery.http_filter.coldstart.
//! update_success`, polled every 2 ms). That covers reading the file, compiling the module in V8,
//! `on_configure` and handing the new config to the worker. Between measurements a different
//! module is pushed, so every measured push is a module change.
//!
//! After each such push the same module is pushed again with its configuration changed only in
//! whitespace (`reconfigure`): Envoy keys a Wasm VM by `vm_id`, VM configuration and code, not by
//! the plugin configuration, so it reuses the compiled module and only creates the plugin and runs
//! `on_configure`. The difference between the two times is what compiling the module costs; the
//! reconfigure time is the rest (file watch, xDS processing, `on_configure`, hand-over).

use anyhow::{bail, Result};
use envoy_harness::{Client, Envoy, EnvoyConfig, FilterEntry};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const FILTER: &str = "coldstart";
const UPDATE_STAT: &str = "extension_config_discovery.http_filter.coldstart.update_success";

/// A module to measure.
pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub config: String,
}

/// What was measured for one module.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleResult {
    pub name: String,
    /// Size of the `.wasm` as served (after `wasm-opt` when binaryen is installed).
    pub bytes: u64,
    /// Median push-to-first-response time.
    pub cold_start_ms: f64,
    pub cold_start_ms_min: f64,
    pub cold_start_ms_max: f64,
    /// Median time of a push of the same module with a whitespace-changed configuration (no
    /// compilation: the VM is reused).
    pub reconfigure_ms: f64,
    pub pushes: usize,
}

/// Measure each module `repeats` times. `reset_a`/`reset_b` are two different modules pushed
/// between measurements (so the measured module is always new to the filter).
pub fn measure(
    modules: &[Module],
    reset_a: &Module,
    reset_b: &Module,
    repeats: usize,
    cpu: Option<usize>,
) -> Result<Vec<ModuleResult>> {
    let mut cfg = EnvoyConfig::new("127.0.0.1:9".parse()?)
        .virtual_hosts(crate::scenario::virtual_hosts())
        .filter(FilterEntry::wasm(
            FILTER,
            &reset_a.path,
            reset_a.config.clone(),
        ));
    cfg.log_level = "warn".into();
    let mut envoy = Envoy::start(cfg)?;
    if let Some(cpu) = cpu {
        crate::procfs::pin(envoy.pid(), cpu)?;
    }
    let client = Client::new();
    let mut out = Vec::new();
    for m in modules {
        let mut times = Vec::new();
        let mut reconfigure = Vec::new();
        for _ in 0..repeats {
            let reset = if m.path == reset_a.path {
                reset_b
            } else {
                reset_a
            };
            push(&mut envoy, reset, &client)?;
            times.push(push(&mut envoy, m, &client)?);
            let same_module = Module {
                name: m.name.clone(),
                path: m.path.clone(),
                config: format!("{} ", m.config),
            };
            reconfigure.push(push(&mut envoy, &same_module, &client)?);
        }
        let bytes = std::fs::metadata(&m.path)?.len();
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        out.push(ModuleResult {
            name: m.name.clone(),
            bytes,
            cold_start_ms: crate::report::median(&times),
            cold_start_ms_min: sorted.first().copied().unwrap_or(0.0),
            cold_start_ms_max: sorted.last().copied().unwrap_or(0.0),
            reconfigure_ms: crate::report::median(&reconfigure),
            pushes: times.len(),
        });
    }
    Ok(out)
}

/// Push `m` and return milliseconds until the first response after the update is accepted.
fn push(envoy: &mut Envoy, m: &Module, client: &Client) -> Result<f64> {
    let before = envoy.stat_or_zero(UPDATE_STAT);
    let started = Instant::now();
    envoy.update_filter(FilterEntry::wasm(FILTER, &m.path, m.config.clone()))?;
    let deadline = started + Duration::from_secs(60);
    while envoy.stat_or_zero(UPDATE_STAT) <= before {
        if Instant::now() > deadline {
            bail!(
                "ECDS push of module `{}` was not accepted within 60 s (rejected? see the Envoy log:\n{})",
                m.name,
                envoy.log()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let resp = client.get(&envoy.url("/healthz"))?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    if resp.status >= 500 {
        bail!(
            "first request after pushing `{}` failed with {}",
            m.name,
            resp.status
        );
    }
    Ok(elapsed)
}
