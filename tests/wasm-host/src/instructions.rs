//! Exact cost: the benchmark's 40-request mix (`bench::workload::mix`) through each module
//! in-process on Wasmtime, counting fuel (one unit per executed Wasm operator; `nop`, `drop`
//! and block markers are free). Deterministic for a given module and configuration, so a
//! committed figure guards regressions between runs on any machine (`bench/results/
//! instructions.json`; `cargo xtask bench --instructions` rewrites it).

use crate::host::{Plugin, Request, Vm};
use crate::runtime::RuntimeKind;
use anyhow::Context as _;
use bench::scenario::{suite_config, Inputs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The filters measured: every HTTP module the bench runs.
pub const FILTERS: &[&str] = &[
    "noop",
    "example",
    "policy",
    "router",
    "threat-score",
    "suite",
];

/// A regression is a mean more than this much above the committed figure.
pub const TOLERANCE: f64 = 0.10;

/// One filter's cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FilterCost {
    /// Mean instructions per request over the 40-request mix.
    pub mean: u64,
    /// Mean per request kind (`items-query`, `sqli`, ...).
    pub per_kind: BTreeMap<String, u64>,
    /// Module instantiation and `_initialize`.
    pub instantiate: u64,
    /// `on_vm_start` + `on_configure` with the benchmark configuration.
    pub configure: u64,
    /// Statuses the mix got (`{"200": 36, "403": 4}`), to show it ran as in Envoy.
    pub statuses: BTreeMap<String, u32>,
}

/// The committed report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub runtime: String,
    pub unit: String,
    pub filters: BTreeMap<String, FilterCost>,
}

/// The kind of a mix request, from its path (see `bench::workload`).
pub fn kind(method: &str, path: &str) -> &'static str {
    if path.contains("UNION") {
        "sqli"
    } else if path.contains("script") {
        "xss"
    } else if path == "/healthz" {
        "healthz"
    } else if path.starts_with("/static/") {
        "static"
    } else if path == "/api/orders" {
        "order-json"
    } else if path == "/api/search" {
        "search-form"
    } else if path.ends_with("/profile") {
        "profile"
    } else if path.starts_with("/api/items?") {
        "items-query"
    } else if path.starts_with("/api/items/") {
        "item"
    } else if method == "POST" {
        "other-post"
    } else {
        "other"
    }
}

/// The bench mix as in-process requests (what Envoy hands the filter: pseudo-headers, `host`
/// as `:authority`, `x-forwarded-proto`, a request id, `content-length`).
pub fn mix_requests() -> Vec<(String, Request)> {
    bench::workload::mix()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let mut req = Request::new(&r.method, &r.path);
            req.headers.retain(|(k, _)| k != ":authority");
            for (k, v) in &r.headers {
                if k.eq_ignore_ascii_case("host") {
                    req.headers
                        .insert(0, (":authority".into(), v.as_bytes().to_vec()));
                } else {
                    req = req.header(k, v);
                }
            }
            req = req.header("x-forwarded-proto", "http");
            req = req.header("x-request-id", format!("00000000-0000-4000-8000-{i:012x}"));
            if !r.body.is_empty() {
                req = req.header("content-length", r.body.len().to_string());
                req = req.body(r.body.clone());
            }
            (kind(&r.method, &r.path).to_string(), req)
        })
        .collect()
}

/// The benchmark configuration of `filter` (the suite's combined one for `suite`).
pub fn config(root: &Path, modules_dir: &Path, filter: &str) -> anyhow::Result<String> {
    // A measurement build (`threat-score-engine-off`, bench/README.md) runs its filter's config.
    let filter = filter.strip_suffix("-engine-off").unwrap_or(filter);
    let inputs = Inputs {
        modules_dir: modules_dir.to_path_buf(),
        root: root.to_path_buf(),
    };
    if filter == "suite" {
        suite_config(&inputs)
    } else {
        inputs.config(filter)
    }
}

/// Measure one filter on `runtime`.
pub fn measure(
    runtime: RuntimeKind,
    root: &Path,
    modules_dir: &Path,
    filter: &str,
) -> anyhow::Result<FilterCost> {
    let wasm = std::fs::read(modules_dir.join(format!("{filter}.wasm"))).with_context(|| {
        format!(
            "reading {filter}.wasm from {} (cargo xtask build)",
            modules_dir.display()
        )
    })?;
    let plugin = Plugin::new(filter, config(root, modules_dir, filter)?);
    let vm_result =
        Vm::start(runtime, &wasm, &plugin).with_context(|| format!("starting {filter}"));
    let mut vm = vm_result?;
    let mut per_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u32> = BTreeMap::new();
    let mut total = 0u64;
    let requests = mix_requests();
    for (kind, req) in &requests {
        // Time moves on between requests as it does under load (rate limits refill).
        vm.advance(std::time::Duration::from_millis(1));
        let out = vm
            .http(req)
            .with_context(|| format!("{filter}: {kind} request"))?;
        total += out.fuel;
        let e = per_kind.entry(kind.clone()).or_default();
        e.0 += out.fuel;
        e.1 += 1;
        *statuses.entry(out.status().to_string()).or_default() += 1;
    }
    Ok(FilterCost {
        mean: total / requests.len() as u64,
        per_kind: per_kind
            .into_iter()
            .map(|(k, (sum, n))| (k, sum / n.max(1)))
            .collect(),
        instantiate: vm.start_fuel,
        configure: vm.configure_fuel,
        statuses,
    })
}

/// Measure every filter in [`FILTERS`] whose module is built.
pub fn measure_all(root: &Path, modules_dir: &Path) -> anyhow::Result<Report> {
    let mut filters = BTreeMap::new();
    for f in FILTERS {
        if !modules_dir.join(format!("{f}.wasm")).is_file() {
            continue;
        }
        filters.insert(
            f.to_string(),
            measure(RuntimeKind::Wasmtime, root, modules_dir, f)?,
        );
    }
    Ok(Report {
        runtime: "wasmtime (fuel)".into(),
        unit: "Wasm operators executed".into(),
        filters,
    })
}

/// A Markdown table of a report.
pub fn table(report: &Report) -> String {
    let kinds: Vec<String> = {
        let mut k: Vec<String> = report
            .filters
            .values()
            .flat_map(|f| f.per_kind.keys().cloned())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    let mut out = String::new();
    out.push_str(&format!(
        "| filter | mean/request | instantiate | on_configure | {} |\n",
        kinds.join(" | ")
    ));
    out.push_str(&format!(
        "| --- | ---: | ---: | ---: |{}\n",
        " ---: |".repeat(kinds.len())
    ));
    for (name, f) in &report.filters {
        let cells: Vec<String> = kinds
            .iter()
            .map(|k| f.per_kind.get(k).map_or("-".into(), |v| v.to_string()))
            .collect();
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            f.mean,
            f.instantiate,
            f.configure,
            cells.join(" | ")
        ));
    }
    out
}

/// Filters whose mean grew more than [`TOLERANCE`] over `committed`: `(name, committed, now)`.
pub fn regressions(committed: &Report, now: &Report) -> Vec<(String, u64, u64)> {
    now.filters
        .iter()
        .filter_map(|(name, cost)| {
            let old = committed.filters.get(name)?.mean;
            (cost.mean as f64 > old as f64 * (1.0 + TOLERANCE))
                .then(|| (name.clone(), old, cost.mean))
        })
        .collect()
}

/// Host calls (imports, by name) per request of each kind of the mix, averaged over the
/// requests of that kind, for `filter` with its benchmark configuration: what the filter asks
/// of Envoy beyond its own instructions (header reads, properties, metrics, body reads,
/// edits). `host calls MODULES_DIR FILTER...` prints it (`cargo run -p wasm-host --example
/// host`).
pub fn host_calls(
    root: &Path,
    modules_dir: &Path,
    filter: &str,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, f64>>> {
    let wasm = std::fs::read(modules_dir.join(format!("{filter}.wasm")))
        .with_context(|| format!("reading {filter}.wasm from {}", modules_dir.display()))?;
    let plugin = Plugin::new(filter, config(root, modules_dir, filter)?);
    let mut vm = Vm::start(RuntimeKind::Wasmtime, &wasm, &plugin)?;
    let mut sums: BTreeMap<String, (BTreeMap<String, u64>, u64)> = BTreeMap::new();
    for (kind, req) in &mix_requests() {
        vm.advance(std::time::Duration::from_millis(1));
        let before = vm.state_ref().call_counts.clone();
        vm.http(req)
            .with_context(|| format!("{filter}: {kind} request"))?;
        let e = sums.entry(kind.clone()).or_default();
        e.1 += 1;
        for (name, n) in &vm.state_ref().call_counts {
            let d = n - before.get(name).copied().unwrap_or(0);
            if d > 0 {
                *e.0.entry(name.clone()).or_default() += d;
            }
        }
    }
    Ok(sums
        .into_iter()
        .map(|(kind, (calls, n))| {
            let avg = calls
                .into_iter()
                .map(|(c, v)| (c, v as f64 / n as f64))
                .collect();
            (kind, avg)
        })
        .collect())
}
