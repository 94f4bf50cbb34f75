//! A running Envoy process for tests and the local runner.

use crate::locate::{envoy, EnvoyBinary};
use crate::render::{ecds_resource, EnvoyConfig, FilterEntry};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How long Envoy gets to become ready (V8 compiles each module on first load).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Envoy. Stopped (SIGKILL) on drop; if the current thread is panicking (a failed
/// test), the tail of Envoy's log is printed first.
pub struct Envoy {
    child: Child,
    dir: tempfile::TempDir,
    admin: SocketAddr,
    listeners: HashMap<String, SocketAddr>,
    /// Boxed: a test's `Envoy` is often one variant of an enum beside smaller servers.
    config: Box<EnvoyConfig>,
    ecds_version: u64,
}

/// Envoy exited instead of becoming ready; carries its log.
#[derive(Debug)]
pub struct StartFailure {
    pub log: String,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envoy did not start; log tail:\n{}", tail(&self.log, 40))
    }
}

impl std::error::Error for StartFailure {}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Envoy {
    /// Render `config`, start Envoy on free loopback ports and wait until `/ready` says LIVE.
    pub fn start(config: EnvoyConfig) -> Result<Self> {
        Self::start_with(envoy()?, config)
    }

    /// As [`Envoy::start`] with an explicit binary.
    pub fn start_with(bin: &EnvoyBinary, config: EnvoyConfig) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("envoy-harness-")
            .tempdir()?;
        std::fs::create_dir_all(dir.path().join("ecds"))?;
        let (bootstrap, ecds_files) = config.render(dir.path());
        for (path, content) in &ecds_files {
            write_atomically(path, &serde_json::to_vec_pretty(content)?)?;
        }
        let bootstrap_path = dir.path().join("envoy.json");
        std::fs::write(&bootstrap_path, serde_json::to_vec_pretty(&bootstrap)?)?;
        let admin_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");
        let mut command = bin.command();
        if let Some(level) = &config.wasm_log_level {
            command
                .arg("--component-log-level")
                .arg(format!("wasm:{level}"));
        }
        let child = command
            .arg("-c")
            .arg(&bootstrap_path)
            .args(["--disable-hot-restart", "--concurrency"])
            .arg(config.concurrency.to_string())
            .arg("-l")
            .arg(&config.log_level)
            .arg("--log-path")
            .arg(&log_path)
            // The log file is flushed every 10 s by default; tests read it while Envoy runs.
            .args(["--file-flush-interval-msec", "100"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.describe()))?;
        let mut envoy = Self {
            child,
            dir,
            admin: "127.0.0.1:0".parse()?,
            listeners: HashMap::new(),
            config: Box::new(config),
            ecds_version: 1,
        };
        envoy.wait_ready(&admin_path)?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, admin_path: &Path) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(anyhow!(StartFailure { log: self.log() })
                    .context(format!("Envoy exited with {status}")));
            }
            if Instant::now() > deadline {
                bail!(
                    "Envoy not ready after {READY_TIMEOUT:?}; log tail:\n{}",
                    tail(&self.log(), 40)
                );
            }
            if let Some(addr) = std::fs::read_to_string(admin_path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                self.admin = addr;
                let ready = crate::client::Client::new()
                    .get(&self.admin_url("/ready"))
                    .map(|r| r.status == 200)
                    .unwrap_or(false);
                if ready {
                    self.listeners = self.read_listeners()?;
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn read_listeners(&self) -> Result<HashMap<String, SocketAddr>> {
        let body = crate::client::Client::new().get(&self.admin_url("/listeners?format=json"))?;
        let v: Value = serde_json::from_str(&body.body)?;
        let mut out = HashMap::new();
        for l in v["listener_statuses"].as_array().into_iter().flatten() {
            let sa = &l["local_address"]["socket_address"];
            if let (Some(name), Some(ip), Some(port)) = (
                l["name"].as_str(),
                sa["address"].as_str(),
                sa["port_value"].as_u64(),
            ) {
                out.insert(name.to_string(), format!("{ip}:{port}").parse()?);
            }
        }
        Ok(out)
    }

    /// Start and expect Envoy to refuse the configuration; returns its log.
    pub fn start_expecting_failure(config: EnvoyConfig) -> Result<String> {
        match Self::start(config) {
            Ok(_) => bail!("Envoy started, but the configuration should have been refused"),
            Err(e) => match e.downcast_ref::<StartFailure>() {
                Some(f) => Ok(f.log.clone()),
                None => Err(e),
            },
        }
    }

    /// `http://127.0.0.1:PORT{path}` on the HTTP listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listener("http"))
    }

    /// Address of a listener by name (`http`, or an extra listener's name).
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.listeners
            .get(name)
            .copied()
            .unwrap_or_else(|| "127.0.0.1:9".parse().unwrap_or(self.admin))
    }

    /// `http://127.0.0.1:ADMIN{path}`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The working directory (bootstrap, ECDS files, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }

    /// Wait until the log contains `needle`; returns whether it did within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log().contains(needle)
    }

    /// All counters and gauges from `/stats` (histograms skipped).
    pub fn stats(&self) -> Result<HashMap<String, u64>> {
        let body = crate::client::Client::new()
            .get(&self.admin_url("/stats"))?
            .body;
        Ok(body
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(": ")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect())
    }

    /// One stat's value, `None` when Envoy has no stat of that name (yet).
    pub fn try_stat(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.stats()?.get(name).copied())
    }

    /// One stat's value. Panics (failing the test) when Envoy has no such stat, naming the
    /// closest existing ones (longest common prefix): a misspelled name must not read as 0 and pass an `== 0` check.
    /// Use [`Envoy::try_stat`] for stats that may legitimately not exist yet.
    #[allow(clippy::panic)]
    pub fn stat(&self, name: &str) -> u64 {
        let stats = match self.stats() {
            Ok(s) => s,
            Err(e) => panic!("reading /stats for `{name}`: {e:#}"),
        };
        if let Some(v) = stats.get(name) {
            return *v;
        }
        // The stats sharing the longest prefix with `name`: a typo's intended stat is there.
        let common = |k: &str| {
            k.bytes()
                .zip(name.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let best = stats.keys().map(|k| common(k)).max().unwrap_or(0);
        let mut near: Vec<&String> = stats.keys().filter(|k| common(k) == best).collect();
        near.sort();
        near.truncate(20);
        panic!("Envoy has no stat `{name}`; the closest: {near:?}")
    }

    /// One stat's value, 0 when Envoy has no such stat (or `/stats` cannot be read). Only for
    /// callers where absence legitimately means "none yet" (tools, not assertions), e.g. a
    /// Wasm VM count in a scenario without Wasm.
    pub fn stat_or_zero(&self, name: &str) -> u64 {
        self.try_stat(name).ok().flatten().unwrap_or(0)
    }

    /// Wait until `name` exists and reaches at least `value`.
    pub fn wait_for_stat(&self, name: &str, value: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stat_or_zero(name) >= value {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `/stats/prometheus` text.
    pub fn prometheus(&self) -> Result<String> {
        Ok(crate::client::Client::new()
            .get(&self.admin_url("/stats/prometheus"))?
            .body)
    }

    /// Replace a Wasm filter's module and configuration through ECDS (atomic rename), as
    /// istiod does for a WasmPlugin update. Returns once the file is in place; watch
    /// `extension_config_discovery.http_filter.<name>.update_success` / `update_rejected`.
    pub fn update_filter(&mut self, filter: FilterEntry) -> Result<()> {
        if !self.config.ecds {
            bail!("filters are inline; start with ECDS to update them live");
        }
        self.ecds_version += 1;
        let path = EnvoyConfig::ecds_path(self.dir.path(), filter.name());
        let content = ecds_resource(filter.name(), filter.typed_config(), self.ecds_version);
        write_atomically(&path, &serde_json::to_vec_pretty(&content)?)
    }

    /// Whether Envoy has exited (without blocking).
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Block until Envoy exits (the local runner uses this).
    pub fn wait(&mut self) -> Result<std::process::ExitStatus> {
        Ok(self.child.wait()?)
    }
}

/// Write via a temporary file in the same directory and rename over `path`, so a watcher never
/// sees a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- Envoy log (tail) ----\n{}\n---- end of Envoy log ----",
                tail(&self.log(), 80)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
