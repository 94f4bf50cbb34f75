//! What `cargo xtask up` serves, and `--watch`: poll the sources, rebuild, and swap changed
//! modules and configs into the running Envoy through file-based ECDS (as istiod does for a
//! WasmPlugin update), reporting each swap as Envoy counts it (`update_success` or
//! `update_rejected`; a rejected swap leaves the previous filter serving).

use crate::build::build_and_report;
use crate::package::sha256_digest;
use crate::plugins::{self, PluginType};
use anyhow::{bail, Context, Result};
use envoy_harness::tcp::network_wasm_typed_config;
use envoy_harness::{workspace_root, Envoy, FilterEntry};
use serde_json::{json, Value};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

/// Where the served chain comes from.
pub struct Served {
    /// Filter crates in the workspace.
    pub filters: Vec<String>,
    /// The network filters among them (served on the TCP listener, not in the HTTP chain).
    pub network: Vec<String>,
    /// WasmPlugins (kustomization dir or YAML file); `None`: `filters/<name>/config.json`.
    pub plugins: Option<PathBuf>,
    /// Prebuilt modules (`DIR/<filter>.wasm`); `None`: `cargo xtask build` output.
    pub modules: Option<PathBuf>,
    /// With `plugins`: the proxy the local Envoy stands in for, and the gateway ports its HTTP
    /// and TCP listeners stand for (which plugins istiod would attach where).
    pub workload: plugins::Workload,
    pub http_listener: plugins::Listener,
    pub tcp_listener: plugins::Listener,
}

/// Tracks what Envoy runs and swaps what changed.
pub struct Watcher {
    served: Served,
    /// Module versions, content-addressed, so every swap points Envoy at a new file.
    staging: tempfile::TempDir,
    /// Filter name -> typed config Envoy accepted last.
    current: HashMap<String, Value>,
}

impl Watcher {
    pub fn new(served: Served) -> Result<Self> {
        Ok(Self {
            served,
            staging: tempfile::Builder::new().prefix("xtask-up-").tempdir()?,
            current: HashMap::new(),
        })
    }

    fn modules_dir(&self) -> PathBuf {
        self.served
            .modules
            .clone()
            .unwrap_or_else(|| workspace_root().join("target/modules"))
    }

    /// Copy `<modules>/<filter>.wasm` to a file named by its content; returns that path.
    fn stage(&self, filter: &str) -> Result<PathBuf> {
        let src = self.modules_dir().join(format!("{filter}.wasm"));
        let bytes = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let digest = sha256_digest(&bytes);
        let short = digest
            .trim_start_matches("sha256:")
            .get(..12)
            .unwrap_or_default();
        let dst = self.staging.path().join(format!("{filter}-{short}.wasm"));
        if !dst.exists() {
            std::fs::write(&dst, &bytes)?;
        }
        Ok(dst)
    }

    /// The filter chain as configured now.
    pub fn desired(&self) -> Result<Vec<FilterEntry>> {
        let mut chain = Vec::new();
        match &self.served.plugins {
            None => {
                for name in &self.served.filters {
                    if self.served.network.contains(name) {
                        continue;
                    }
                    chain.push(FilterEntry::wasm(
                        name,
                        self.stage(name)?,
                        local_config(name),
                    ));
                }
            }
            Some(path) => {
                let all = self.load_plugins(path)?;
                for p in plugins::chain_order(&all, PluginType::Http) {
                    if p.applies_to(&self.served.workload, &self.served.http_listener)
                        .is_err()
                    {
                        continue;
                    }
                    let module = self.stage(self.plugin_filter(p)?)?;
                    chain.push(FilterEntry::discovered(
                        p.name(),
                        p.envoy_typed_config(&module),
                    ));
                }
            }
        }
        Ok(chain)
    }

    /// Network filter entries (`{name, typed_config}`) for the TCP listener, in order. They are
    /// inline in the listener, so `--watch` does not swap them (restart to change them).
    pub fn network_filters(&self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        match &self.served.plugins {
            None => {
                for name in &self.served.network {
                    let module = self.stage(name)?;
                    out.push(json!({
                        "name": name,
                        "typed_config": network_wasm_typed_config(name, &module, &local_config(name))
                    }));
                }
            }
            Some(path) => {
                let all = self.load_plugins(path)?;
                for p in plugins::chain_order(&all, PluginType::Network) {
                    if p.applies_to(&self.served.workload, &self.served.tcp_listener)
                        .is_err()
                    {
                        continue;
                    }
                    let module = self.stage(self.plugin_filter(p)?)?;
                    out.push(
                        json!({ "name": p.name(), "typed_config": p.envoy_typed_config(&module) }),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Plugins istiod would not attach to the local proxy's listeners, with the reason, and
    /// EnvoyFilter patches not rendered locally (printed by `up`).
    pub fn not_rendered(&self) -> Result<Vec<String>> {
        let Some(path) = &self.served.plugins else {
            return Ok(Vec::new());
        };
        let docs = plugins::load_documents(path)?;
        let mut out = Vec::new();
        for p in plugins::wasm_plugins(&docs) {
            let listener = match p.plugin_type() {
                PluginType::Http => &self.served.http_listener,
                PluginType::Network => &self.served.tcp_listener,
            };
            if let Err(why) = p.applies_to(&self.served.workload, listener) {
                out.push(format!("WasmPlugin {}: {why}", p.name()));
            }
        }
        out.extend(crate::envoy_filter::tcp_proxy_patches(&docs).1);
        Ok(out)
    }

    /// The `tcp_proxy` patches of the manifests' EnvoyFilters that apply to the local TCP
    /// listener (none without `--plugins`).
    pub fn tcp_proxy_patches(&self) -> Result<Vec<crate::envoy_filter::TcpProxyPatch>> {
        let Some(path) = &self.served.plugins else {
            return Ok(Vec::new());
        };
        let docs = plugins::load_documents(path)?;
        Ok(crate::envoy_filter::tcp_proxy_patches(&docs)
            .0
            .into_iter()
            .filter(|p| p.applies_to(&self.served.workload, &self.served.tcp_listener))
            .collect())
    }

    fn load_plugins(&self, path: &Path) -> Result<Vec<plugins::WasmPlugin>> {
        let docs = plugins::load_documents(path)?;
        let all = plugins::wasm_plugins(&docs);
        if all.is_empty() {
            bail!("no WasmPlugin in {}", path.display());
        }
        Ok(all)
    }

    /// The filter crate a plugin runs, which must exist in `filters/`.
    fn plugin_filter<'p>(&self, p: &'p plugins::WasmPlugin) -> Result<&'p str> {
        let filter = p.filter().with_context(|| {
            format!(
                "WasmPlugin {} has no label `{}` naming its filter",
                p.name(),
                plugins::FILTER_LABEL
            )
        })?;
        if !self.served.filters.iter().any(|f| f == filter) {
            bail!(
                "WasmPlugin {} runs filter `{filter}`, which is not in filters/",
                p.name()
            );
        }
        Ok(filter)
    }

    /// Record what Envoy started with.
    pub fn started(&mut self, _envoy: &Envoy) {
        if let Ok(chain) = self.desired() {
            self.current = chain
                .into_iter()
                .map(|f| (f.name().to_string(), f.typed_config()))
                .collect();
        }
    }

    fn watched(&self) -> Vec<PathBuf> {
        let root = workspace_root();
        let mut paths = Vec::new();
        match &self.served.modules {
            Some(dir) => paths.push(dir.clone()),
            None => {
                paths.push(root.join("filters"));
                paths.push(root.join("sdk-ext"));
            }
        }
        match &self.served.plugins {
            // A kustomization may pull in siblings (`../../base`): watch the tree it lives in.
            Some(p) => paths.push(
                p.ancestors()
                    .find(|a| a.file_name().is_some_and(|n| n == "istio"))
                    .unwrap_or(p)
                    .to_path_buf(),
            ),
            None => paths.push(root.join("filters")),
        }
        paths.sort();
        paths.dedup();
        paths
    }

    pub fn watched_description(&self) -> String {
        self.watched()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Poll until Envoy exits.
    pub fn run(&mut self, envoy: &mut Envoy, poll: Duration) -> Result<ExitStatus> {
        let mut seen = fingerprint(&self.watched());
        loop {
            if let Some(status) = envoy.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(poll);
            let now = fingerprint(&self.watched());
            if now == seen {
                continue;
            }
            seen = now;
            if let Err(e) = self.apply(envoy) {
                println!("watch: {e:#}; still serving the previous filters");
            }
        }
    }

    /// Rebuild (unless modules are prebuilt) and swap whatever differs from what Envoy runs.
    pub fn apply(&mut self, envoy: &mut Envoy) -> Result<()> {
        if self.served.modules.is_none() {
            println!("watch: change detected, rebuilding");
            build_and_report(&[])?;
        }
        for filter in self.desired()? {
            let name = filter.name().to_string();
            let typed = filter.typed_config();
            match self.current.get(&name) {
                None => {
                    println!("watch: new filter `{name}` needs a restart of `cargo xtask up`");
                    continue;
                }
                Some(old) if *old == typed => continue,
                Some(_) => {}
            }
            let outcome = swap(envoy, filter)?;
            println!("watch: swapped `{name}`: {outcome}");
            if outcome == SwapOutcome::Applied {
                self.current.insert(name, typed);
            }
        }
        Ok(())
    }
}

/// `filters/<name>/config.json`, the filter's local configuration (`{}` when absent).
fn local_config(name: &str) -> String {
    let path = workspace_root()
        .join("filters")
        .join(name)
        .join("config.json");
    std::fs::read_to_string(path).unwrap_or_else(|_| "{}".into())
}

/// What Envoy made of an ECDS update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapOutcome {
    Applied,
    Rejected,
}

impl std::fmt::Display for SwapOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Applied => "update_success (new version serving)",
            Self::Rejected => "update_rejected (previous version keeps serving; see Envoy's log)",
        })
    }
}

/// Push one filter update and wait for Envoy to count it.
pub fn swap(envoy: &mut Envoy, filter: FilterEntry) -> Result<SwapOutcome> {
    let prefix = format!("extension_config_discovery.http_filter.{}", filter.name());
    let (ok, rejected) = (
        format!("{prefix}.update_success"),
        format!("{prefix}.update_rejected"),
    );
    let before = (envoy.stat_or_zero(&ok), envoy.stat_or_zero(&rejected));
    envoy.update_filter(filter)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let stats = envoy.stats()?;
        let get = |k: &str| stats.get(k).copied().unwrap_or(0);
        if get(&ok) > before.0 {
            return Ok(SwapOutcome::Applied);
        }
        if get(&rejected) > before.1 {
            return Ok(SwapOutcome::Rejected);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("Envoy did not count the update of {prefix} within 60s")
}

/// A hash of every file's path, size and mtime under `paths` (`target/` skipped).
fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut files = BTreeMap::new();
    for p in paths {
        collect(p, &mut files);
    }
    let mut h = DefaultHasher::new();
    files.hash(&mut h);
    h.finish()
}

fn collect(path: &Path, out: &mut BTreeMap<PathBuf, (u64, Option<SystemTime>)>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if path.file_name().is_some_and(|n| n == "target") {
            return;
        }
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                collect(&e.path(), out);
            }
        }
    } else {
        out.insert(path.to_path_buf(), (meta.len(), meta.modified().ok()));
    }
}
