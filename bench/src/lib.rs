//! `bench`: what each filter costs in a real Envoy, side by side. Run with `cargo xtask bench`.
//!
//! Each scenario ([`scenario::all`]) is an Envoy (1 worker, pinned to one CPU) with a filter
//! chain in front of a `direct_response` route. All scenarios' Envoys run at once; `wrk`
//! (pinned to the other CPU) drives each in turn, closed loop over keep-alive HTTP/1.1 with
//! the same request mix ([`workload::mix`]), interleaved A B C A B C over several rounds.
//! Per run: Envoy's own CPU time (utime+stime from `/proc/<pid>/stat`) divided by the requests
//! completed, throughput, p50/p99 latency; per scenario: Envoy RSS and memory per Wasm VM. Then
//! per module: `.wasm` size and ECDS push-to-first-response time ([`coldstart`]).
//! The anchor ([`scenario::anchors`]): Debian's nginx alone and nginx + ModSecurity + CRS, one
//! process pinned like Envoy, driven by the same mix in the same rounds.
//! Results go to `bench/results/` ([`report`]).

pub mod coldstart;
pub mod load;
pub mod native;
pub mod procfs;
pub mod report;
pub mod scenario;
pub mod workload;

use anyhow::{bail, Context, Result};
use envoy_harness::nginx::{Nginx, NginxOptions};
use envoy_harness::{locate, Client, Envoy, EnvoyConfig};
use report::{Machine, Measured, Method, Missing, Report, Sample};
use scenario::{Inputs, Kind};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Smoke run: short runs, few rounds (what CI runs).
    pub quick: bool,
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: u32,
    /// ECDS pushes per module for the cold-start time.
    pub cold_start_pushes: usize,
    /// Run only these scenarios (baseline and noop-wasm are always included).
    pub only: Vec<String>,
    /// Built modules (`NAME.wasm`).
    pub modules_dir: PathBuf,
    /// Where the result files go.
    pub out_dir: PathBuf,
    /// The command line recorded in the results.
    pub command: String,
}

impl Options {
    /// The full run: 5 rounds of 8 s per scenario after 3 s warm-up, 16 connections.
    pub fn full(modules_dir: PathBuf, out_dir: PathBuf) -> Self {
        Self {
            quick: false,
            rounds: 5,
            duration: Duration::from_secs(8),
            warmup: Duration::from_secs(3),
            connections: 16,
            cold_start_pushes: 5,
            only: Vec::new(),
            modules_dir,
            out_dir,
            command: "cargo xtask bench".into(),
        }
    }

    /// The smoke run: 2 rounds of 1 s, 1 s warm-up, 1 push per module.
    pub fn quick(modules_dir: PathBuf, out_dir: PathBuf) -> Self {
        Self {
            quick: true,
            rounds: 2,
            duration: Duration::from_secs(1),
            warmup: Duration::from_secs(1),
            cold_start_pushes: 1,
            command: "cargo xtask bench --quick".into(),
            ..Self::full(modules_dir, out_dir)
        }
    }
}

/// Envoy stat: downstream connections accepted by the benchmark listener.
const CX_STAT: &str = "http.ingress.downstream_cx_total";
/// Envoy stat: live Wasm VMs (all plugins, all threads).
const VM_STAT: &str = "wasm.envoy.wasm.runtime.v8.active";

/// The process a scenario measures.
enum Server {
    Envoy(Envoy),
    Nginx(Nginx),
}

impl Server {
    fn pid(&self) -> u32 {
        match self {
            Server::Envoy(e) => e.pid(),
            Server::Nginx(n) => n.pid(),
        }
    }

    fn url(&self, path: &str) -> String {
        match self {
            Server::Envoy(e) => e.url(path),
            Server::Nginx(n) => n.url(path),
        }
    }

    /// Downstream connections accepted so far (nginx: `stub_status`, which counts the
    /// connection it is asked on).
    fn connections(&self) -> u64 {
        match self {
            Server::Envoy(e) => e.stat_or_zero(CX_STAT),
            Server::Nginx(n) => n.accepted_connections().unwrap_or(0),
        }
    }

    fn wasm_vms(&self) -> u64 {
        match self {
            Server::Envoy(e) => e.stat_or_zero(VM_STAT),
            Server::Nginx(_) => 0,
        }
    }

    fn log(&self) -> String {
        match self {
            Server::Envoy(e) => e.log(),
            Server::Nginx(n) => n.log(),
        }
    }
}

struct Running {
    name: &'static str,
    kind: Kind,
    description: &'static str,
    filters: Vec<String>,
    server: Server,
    samples: Vec<Sample>,
    probe_statuses: BTreeMap<String, u32>,
}

/// Run the benchmark and write the result files. Returns the report.
pub fn run(opts: &Options) -> Result<Report> {
    let started = Instant::now();
    for tool in ["wrk", "taskset"] {
        if Command::new(tool).arg("--version").output().is_err() {
            bail!("`{tool}` is not installed; run ./setup.sh (Debian packages wrk, util-linux)");
        }
    }
    let envoy_bin = locate::envoy()?;
    println!("bench: using {}", envoy_bin.describe());
    let cpus = procfs::allowed_cpus();
    let (envoy_cpu, load_cpu) = match cpus.as_slice() {
        [first, .., last] => (Some(*last), Some(*first)),
        _ => {
            println!("bench: fewer than 2 CPUs; Envoy and wrk are not pinned");
            (None, None)
        }
    };
    let machine = machine(envoy_bin);
    let inputs = Inputs {
        modules_dir: opts.modules_dir.clone(),
        root: envoy_harness::workspace_root(),
    };
    let workload = workload::mix();
    let script_dir = tempfile::Builder::new().prefix("bench-wrk-").tempdir()?;
    let script = script_dir.path().join("mix.lua");
    std::fs::write(&script, load::lua_script(&workload))?;

    let mut running = Vec::new();
    let mut missing = Vec::new();
    // Redis and the rate-limit service, once for the scenarios that call it (kept until the
    // run ends).
    let wants = |name: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == name);
    let rls = if scenario::USES_RATELIMIT_SERVICE.iter().any(|n| wants(n)) {
        let redis = envoy_harness::redis::RedisServer::start()?;
        let limits = serde_json::from_value(scenario::ratelimit_limits())?;
        let service = envoy_harness::ratelimit::RateLimitServer::start(vec![limits], redis.addr())?;
        Some((redis, service))
    } else {
        None
    };
    for s in scenario::all() {
        let wanted = (opts.only.is_empty() && !scenario::ON_REQUEST.contains(&s.name))
            || opts.only.iter().any(|o| o == s.name)
            || matches!(s.name, "baseline" | "noop-wasm");
        if !wanted {
            continue;
        }
        if let Some(reason) = inputs.missing(&s) {
            println!("bench: {:<24} missing: {reason}", s.name);
            missing.push(Missing {
                name: s.name.into(),
                reason,
            });
            continue;
        }
        let filters = scenario::http_filters(&s, &inputs)?;
        let names = filters.iter().map(|f| f.name().to_string()).collect();
        let mut cfg = EnvoyConfig::new("127.0.0.1:9".parse()?)
            .virtual_hosts(scenario::virtual_hosts())
            .concurrency(1);
        cfg.filters = filters;
        cfg.log_level = "warn".into();
        if let (true, Some((_, service))) =
            (scenario::USES_RATELIMIT_SERVICE.contains(&s.name), &rls)
        {
            let loop_port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            cfg = cfg
                .virtual_hosts(scenario::rate_limited_virtual_hosts())
                .cluster(
                    "loop",
                    std::net::SocketAddr::from(([127, 0, 0, 1], loop_port)),
                );
            cfg.extra_listeners.push(scenario::loop_listener(loop_port));
            cfg.extra_clusters
                .push(envoy_harness::ratelimit::cluster_json(
                    "ratelimit",
                    service.addr(),
                ));
        }
        let envoy = Envoy::start(cfg).with_context(|| format!("starting scenario {}", s.name))?;
        running.push(ready(
            s.name,
            s.kind,
            s.description,
            names,
            Server::Envoy(envoy),
            envoy_cpu,
            &workload,
        )?);
    }
    let anchor_wanted = |name: &str| {
        opts.only.is_empty()
            || opts.only.iter().any(|o| o == name)
            || (name == "nginx" && opts.only.iter().any(|o| o == "modsecurity-crs"))
    };
    for s in scenario::anchors() {
        if !anchor_wanted(s.name) {
            continue;
        }
        let nginx = Nginx::start(NginxOptions {
            crs_paranoia: s.crs_paranoia,
            force_urlencoded: false,
        })
        .with_context(|| format!("starting scenario {}", s.name))?;
        let filters = match s.crs_paranoia {
            Some(pl) => vec![format!(
                "modsecurity (CRS {} PL{pl})",
                envoy_harness::nginx::crs_version().unwrap_or_else(|| "?".into())
            )],
            None => Vec::new(),
        };
        running.push(ready(
            s.name,
            Kind::Nginx,
            s.description,
            filters,
            Server::Nginx(nginx),
            envoy_cpu,
            &workload,
        )?);
    }
    if running.is_empty() {
        bail!("no scenario can run");
    }

    let spec = |d: Duration| load::LoadSpec {
        connections: opts.connections,
        duration: d,
        cpu: load_cpu,
    };
    for r in &running {
        load::run_wrk(&r.server.url("/"), &script, &spec(opts.warmup))
            .with_context(|| format!("warming up {}", r.name))?;
    }
    for round in 0..opts.rounds {
        for r in &mut running {
            let sample = measure(r, round, &script, &spec(opts.duration))?;
            println!(
                "bench: round {}/{} {:<24} {:>7.1} us/req {:>8.0} rps  p50 {:.3} ms  p99 {:.3} ms",
                round + 1,
                opts.rounds,
                r.name,
                sample.cpu_us_per_req,
                sample.rps,
                sample.p50_ms,
                sample.p99_ms
            );
            r.samples.push(sample);
        }
    }

    let mut measured = Vec::new();
    for r in running {
        let rss_kib = procfs::rss_kib(r.server.pid())?;
        let wasm_vms = r.server.wasm_vms();
        measured.push(Measured {
            name: r.name.into(),
            kind: r.kind,
            description: r.description.into(),
            filters: r.filters,
            samples: r.samples,
            rss_kib,
            wasm_vms,
            probe_statuses: r.probe_statuses,
        });
        // Dropping the Envoy stops it before the cold-start measurements.
    }
    let scenarios = report::aggregate(measured);

    let modules = cold_start(&inputs, opts, envoy_cpu)?;
    let comparisons = report::comparisons(&scenarios);
    let report = Report {
        schema_version: 1,
        command: opts.command.clone(),
        machine,
        method: Method {
            mode: if opts.quick { "quick" } else { "full" }.into(),
            rounds: opts.rounds,
            seconds_per_run: opts.duration.as_secs_f64(),
            warmup_seconds: opts.warmup.as_secs_f64(),
            connections: opts.connections,
            envoy_workers: 1,
            envoy_cpu,
            load_generator_cpu: load_cpu,
            route: "direct_response 200 after envoy.filters.http.buffer (no upstream); nginx rows: the echo module's 200 after reading the body".into(),
            workload: format!(
                "{} requests rotated (bench/src/workload.rs): GET/POST API calls, ~1 KB JSON and form bodies, 4 hostile",
                workload.len()
            ),
            cpu_time: "Envoy utime+stime from /proc/<pid>/stat over the run / responses completed"
                .into(),
            memory: "VmRSS after all rounds; per VM = (RSS - baseline RSS) / wasm.envoy.wasm.runtime.v8.active"
                .into(),
        },
        scenarios,
        missing,
        modules,
        comparisons,
    };
    report::write_all(&report, &opts.out_dir)?;
    println!(
        "bench: wrote {} (latest.json, latest.md, cpu_per_request.svg) in {:.0?}",
        opts.out_dir.display(),
        started.elapsed()
    );
    Ok(report)
}

/// Only the module sizes and ECDS cold starts (`cargo xtask bench --cold-start`): writes
/// `coldstart.json` and `coldstart.md` in `opts.out_dir`.
pub fn run_cold_start_only(opts: &Options) -> Result<Vec<coldstart::ModuleResult>> {
    let envoy_bin = locate::envoy()?;
    println!("bench: using {}", envoy_bin.describe());
    let cpus = procfs::allowed_cpus();
    let envoy_cpu = if cpus.len() >= 2 {
        cpus.last().copied()
    } else {
        None
    };
    let inputs = Inputs {
        modules_dir: opts.modules_dir.clone(),
        root: envoy_harness::workspace_root(),
    };
    let modules = cold_start(&inputs, opts, envoy_cpu)?;
    if modules.is_empty() {
        bail!("no module measured (the noop and example modules are needed)");
    }
    std::fs::create_dir_all(&opts.out_dir)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let json = serde_json::json!({
        "command": opts.command,
        "pushes_per_module": opts.cold_start_pushes,
        "loadavg_at_end": load.trim(),
        "modules": modules,
    });
    std::fs::write(
        opts.out_dir.join("coldstart.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    std::fs::write(
        opts.out_dir.join("coldstart.md"),
        report::modules_table(&modules),
    )?;
    print!("{}", report::modules_table(&modules));
    Ok(modules)
}

/// Pin a started scenario's server to `cpu` and probe it with the workload.
fn ready(
    name: &'static str,
    kind: Kind,
    description: &'static str,
    filters: Vec<String>,
    server: Server,
    cpu: Option<usize>,
    workload: &[load::Request],
) -> Result<Running> {
    if let Some(cpu) = cpu {
        procfs::pin(server.pid(), cpu)?;
    }
    let probe_statuses = probe(&server, workload)
        .with_context(|| format!("scenario {name}: probing the workload"))?;
    println!(
        "bench: {:<24} ready (pid {}), statuses {:?}",
        name,
        server.pid(),
        probe_statuses
    );
    Ok(Running {
        name,
        kind,
        description,
        filters,
        server,
        samples: Vec::new(),
        probe_statuses,
    })
}

/// Send each workload request once; status -> count. Fails on 5xx (a broken filter chain).
fn probe(server: &Server, workload: &[load::Request]) -> Result<BTreeMap<String, u32>> {
    let client = Client::new();
    let mut statuses = BTreeMap::new();
    for r in workload {
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let resp = client.request(&r.method, &server.url(&r.path), &headers, r.body.as_bytes())?;
        if resp.status >= 500 {
            bail!(
                "{} {} answered {}: {}\nserver log:\n{}",
                r.method,
                r.path,
                resp.status,
                resp.body,
                server.log()
            );
        }
        *statuses.entry(resp.status.to_string()).or_insert(0) += 1;
    }
    Ok(statuses)
}

/// One measured wrk run against one scenario.
fn measure(
    r: &Running,
    round: usize,
    script: &std::path::Path,
    spec: &load::LoadSpec,
) -> Result<Sample> {
    let pid = r.server.pid();
    let cx_before = r.server.connections();
    let cpu_before = procfs::cpu_time_us(pid)?;
    let res = load::run_wrk(&r.server.url("/"), script, spec)
        .with_context(|| format!("load on {}", r.name))?;
    let cpu_after = procfs::cpu_time_us(pid)?;
    let connections_opened = r.server.connections().saturating_sub(cx_before);
    if res.requests == 0 {
        bail!("{}: wrk completed no requests", r.name);
    }
    if res.socket_errors() > 0 {
        println!(
            "bench: warning: {} had {} socket errors in round {}",
            r.name,
            res.socket_errors(),
            round + 1
        );
    }
    Ok(Sample {
        round,
        cpu_us_per_req: cpu_after.saturating_sub(cpu_before) as f64 / res.requests as f64,
        rps: res.rps(),
        p50_ms: res.p50_us / 1000.0,
        p99_ms: res.p99_us / 1000.0,
        requests: res.requests,
        non_2xx_3xx: res.non_2xx_3xx,
        socket_errors: res.socket_errors(),
        connections_opened,
    })
}

/// Size and ECDS cold start of every module a scenario uses that is present.
fn cold_start(
    inputs: &Inputs,
    opts: &Options,
    cpu: Option<usize>,
) -> Result<Vec<coldstart::ModuleResult>> {
    let mut modules = Vec::new();
    for name in scenario::needed_modules() {
        if !scenario::has_module(&opts.modules_dir, name) {
            continue;
        }
        let config = if name == "suite" {
            scenario::suite_config(inputs)?
        } else {
            inputs.config(name)?
        };
        modules.push(coldstart::Module {
            name: name.into(),
            path: inputs.module(name),
            config,
        });
    }
    let find = |n: &str| modules.iter().position(|m| m.name == n);
    let (Some(a), Some(b)) = (find("noop"), find("example")) else {
        println!("bench: cold start skipped (needs the noop and example modules)");
        return Ok(Vec::new());
    };
    let reset_a = coldstart::Module {
        name: modules[a].name.clone(),
        path: modules[a].path.clone(),
        config: modules[a].config.clone(),
    };
    let reset_b = coldstart::Module {
        name: modules[b].name.clone(),
        path: modules[b].path.clone(),
        config: modules[b].config.clone(),
    };
    let out = coldstart::measure(&modules, &reset_a, &reset_b, opts.cold_start_pushes, cpu)?;
    for m in &out {
        println!(
            "bench: module {:<14} {:>8} bytes, ECDS push to first response {:.0} ms (same module, new config {:.0} ms)",
            m.name, m.bytes, m.cold_start_ms, m.reconfigure_ms
        );
    }
    Ok(out)
}

fn machine(envoy: &locate::EnvoyBinary) -> Machine {
    let sh = |prog: &str, args: &[&str]| -> String {
        Command::new(prog)
            .args(args)
            .current_dir(envoy_harness::workspace_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let nproc = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    Machine {
        nproc,
        cpu_model: procfs::cpu_model(),
        kernel: sh("uname", &["-r"]),
        envoy_version: envoy.version.clone(),
        envoy_source: envoy.source.to_string(),
        load_generator: load::wrk_version(),
        git_commit: sh("git", &["rev-parse", "--short=12", "HEAD"]),
        git_dirty: !sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty(),
        date_utc: sh("date", &["-u", "+%Y-%m-%d %H:%M"]),
        loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string(),
    }
}

/// Check that a run left sane result files in `dir`: every scenario with non-zero CPU per
/// request, throughput, latency and RSS, and a table and chart naming every scenario. No timing
/// thresholds: the machine is shared and noisy; CI checks the harness, not the numbers.
pub fn check_outputs(dir: &std::path::Path) -> Result<()> {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("latest.json")).context("latest.json")?,
    )
    .context("latest.json is not JSON")?;
    let md = std::fs::read_to_string(dir.join("latest.md")).context("latest.md")?;
    let svg = std::fs::read_to_string(dir.join("cpu_per_request.svg")).context("svg")?;
    if !svg.starts_with("<svg") || !svg.trim_end().ends_with("</svg>") {
        bail!("cpu_per_request.svg is not an SVG document");
    }
    let scenarios = json["scenarios"]
        .as_array()
        .context("latest.json has no scenarios")?;
    for name in ["baseline", "noop-wasm"] {
        if !scenarios.iter().any(|s| s["name"] == name) {
            bail!("latest.json lacks the `{name}` scenario");
        }
    }
    for s in scenarios {
        let name = s["name"].as_str().unwrap_or("?");
        for field in ["cpu_us_per_req", "rps", "p50_ms", "p99_ms", "rss_mib"] {
            let v = s[field].as_f64().unwrap_or(0.0);
            if !(v.is_finite() && v > 0.0) {
                bail!("scenario `{name}`: {field} = {v} (expected a positive number)");
            }
        }
        if !md.contains(&format!("| {name} |")) || !svg.contains(&format!(">{name}<")) {
            bail!("scenario `{name}` is missing from latest.md or the chart");
        }
    }
    Ok(())
}
