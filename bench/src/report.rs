//! Results: per-scenario aggregation (medians, min/max, ratios) and the three output files:
//! `latest.json` (schema in `bench/README.md`), `latest.md` (table) and `cpu_per_request.svg`.

use crate::coldstart::ModuleResult;
use crate::scenario::Kind;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One measured run of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub round: usize,
    pub cpu_us_per_req: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Responses outside 2xx/3xx (the filters' own denials count here).
    pub non_2xx_3xx: u64,
    /// Connection, read, write and timeout errors (should be 0).
    pub socket_errors: u64,
    /// Downstream connections Envoy accepted during the run (keep-alive: the wrk connections).
    pub connections_opened: u64,
}

/// Lowest and highest value over the rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MinMax {
    pub min: f64,
    pub max: f64,
}

impl MinMax {
    fn of(values: &[f64]) -> Self {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values.is_empty() {
            Self { min: 0.0, max: 0.0 }
        } else {
            Self { min, max }
        }
    }
}

/// Spread of each headline number over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub cpu_us_per_req: MinMax,
    pub rps: MinMax,
    pub p50_ms: MinMax,
    pub p99_ms: MinMax,
}

/// One scenario's results (medians over the rounds).
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub kind: Kind,
    pub description: String,
    /// HTTP filters before the router, in order.
    pub filters: Vec<String>,
    pub cpu_us_per_req: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Envoy's resident memory after all rounds.
    pub rss_mib: f64,
    /// Wasm VMs alive in this Envoy (`wasm.envoy.wasm.runtime.v8.active`).
    pub wasm_vms: u64,
    /// (rss_mib - baseline rss_mib) / wasm_vms; null without Wasm VMs.
    pub mib_per_vm: Option<f64>,
    pub spread: Spread,
    /// cpu_us_per_req / baseline's.
    pub ratio_to_baseline: Option<f64>,
    /// cpu_us_per_req / noop-wasm's.
    pub ratio_to_noop: Option<f64>,
    /// cpu_us_per_req - baseline's: what the filters add.
    pub added_us_over_baseline: Option<f64>,
    /// cpu_us_per_req - noop-wasm's: the filter's own work above the floor.
    pub added_us_over_noop: Option<f64>,
    /// added_us_over_noop in units of the floor (noop-wasm - baseline).
    pub added_over_noop_in_floors: Option<f64>,
    /// Status of each workload request sent once before the runs (status -> count).
    pub probe_statuses: BTreeMap<String, u32>,
    pub samples: Vec<Sample>,
}

/// A scenario that could not run in this checkout.
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub name: String,
    pub reason: String,
}

/// A claim checked on this run's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub claim: String,
    pub holds: bool,
    pub detail: String,
}

/// Where and how it ran.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub envoy_version: String,
    pub envoy_source: String,
    pub load_generator: String,
    pub git_commit: String,
    pub git_dirty: bool,
    pub date_utc: String,
    /// 1-minute load average when the run started (other work on the machine).
    pub loadavg_at_start: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Method {
    pub mode: String,
    pub rounds: usize,
    pub seconds_per_run: f64,
    pub warmup_seconds: f64,
    pub connections: u32,
    pub envoy_workers: u32,
    pub envoy_cpu: Option<usize>,
    pub load_generator_cpu: Option<usize>,
    pub route: String,
    pub workload: String,
    pub cpu_time: String,
    pub memory: String,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub command: String,
    pub machine: Machine,
    pub method: Method,
    pub scenarios: Vec<ScenarioResult>,
    pub missing: Vec<Missing>,
    pub modules: Vec<ModuleResult>,
    pub comparisons: Vec<Comparison>,
}

/// Median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Raw per-scenario measurements, before aggregation.
pub struct Measured {
    pub name: String,
    pub kind: Kind,
    pub description: String,
    pub filters: Vec<String>,
    pub samples: Vec<Sample>,
    pub rss_kib: u64,
    pub wasm_vms: u64,
    pub probe_statuses: BTreeMap<String, u32>,
}

/// Medians, spreads and ratios to `baseline` and `noop-wasm` of this run.
pub fn aggregate(measured: Vec<Measured>) -> Vec<ScenarioResult> {
    let mut out: Vec<ScenarioResult> = measured
        .into_iter()
        .map(|m| {
            let col = |f: fn(&Sample) -> f64| m.samples.iter().map(f).collect::<Vec<f64>>();
            let (cpu, rps, p50, p99) = (
                col(|s| s.cpu_us_per_req),
                col(|s| s.rps),
                col(|s| s.p50_ms),
                col(|s| s.p99_ms),
            );
            ScenarioResult {
                name: m.name,
                kind: m.kind,
                description: m.description,
                filters: m.filters,
                cpu_us_per_req: median(&cpu),
                rps: median(&rps),
                p50_ms: median(&p50),
                p99_ms: median(&p99),
                rss_mib: m.rss_kib as f64 / 1024.0,
                wasm_vms: m.wasm_vms,
                mib_per_vm: None,
                spread: Spread {
                    cpu_us_per_req: MinMax::of(&cpu),
                    rps: MinMax::of(&rps),
                    p50_ms: MinMax::of(&p50),
                    p99_ms: MinMax::of(&p99),
                },
                ratio_to_baseline: None,
                ratio_to_noop: None,
                added_us_over_baseline: None,
                added_us_over_noop: None,
                added_over_noop_in_floors: None,
                probe_statuses: m.probe_statuses,
                samples: m.samples,
            }
        })
        .collect();
    let find = |name: &str| out.iter().find(|s| s.name == name).cloned();
    let base = find("baseline");
    let noop = find("noop-wasm");
    // nginx rows (the anchor) are compared with nginx alone, never with Envoy's rows.
    let nginx_base = find("nginx");
    let floor = match (&base, &noop) {
        (Some(b), Some(n)) => Some(n.cpu_us_per_req - b.cpu_us_per_req),
        _ => None,
    };
    for s in &mut out {
        if s.kind == Kind::Nginx {
            if let Some(b) = &nginx_base {
                s.ratio_to_baseline = ratio(s.cpu_us_per_req, b.cpu_us_per_req);
                s.added_us_over_baseline = Some(s.cpu_us_per_req - b.cpu_us_per_req);
            }
            continue;
        }
        if let Some(b) = &base {
            s.ratio_to_baseline = ratio(s.cpu_us_per_req, b.cpu_us_per_req);
            s.added_us_over_baseline = Some(s.cpu_us_per_req - b.cpu_us_per_req);
            if s.wasm_vms > 0 {
                s.mib_per_vm = Some((s.rss_mib - b.rss_mib) / s.wasm_vms as f64);
            }
        }
        if let Some(n) = &noop {
            s.ratio_to_noop = ratio(s.cpu_us_per_req, n.cpu_us_per_req);
            let added = s.cpu_us_per_req - n.cpu_us_per_req;
            s.added_us_over_noop = Some(added);
            s.added_over_noop_in_floors = floor.filter(|f| *f > 0.0).map(|f| added / f);
        }
    }
    out
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// The claims the issue asks to check, evaluated on this run.
pub fn comparisons(scenarios: &[ScenarioResult]) -> Vec<Comparison> {
    let get = |n: &str| scenarios.iter().find(|s| s.name == n);
    let mut out = Vec::new();
    if let (Some(suite), Some(chain)) = (get("suite"), get("chain")) {
        if let (Some(a), Some(b)) = (suite.added_us_over_baseline, chain.added_us_over_baseline) {
            out.push(Comparison {
                claim: "suite adds less CPU per request over baseline than chain".into(),
                holds: a < b,
                detail: format!("suite +{a:.1} us/req, chain +{b:.1} us/req (medians)"),
            });
        }
        // Rounds are interleaved, so round i of both ran under about the same machine load.
        let paired: Vec<(f64, f64)> = suite
            .samples
            .iter()
            .filter_map(|a| {
                chain
                    .samples
                    .iter()
                    .find(|b| b.round == a.round)
                    .map(|b| (a.cpu_us_per_req, b.cpu_us_per_req))
            })
            .collect();
        if !paired.is_empty() {
            let below = paired.iter().filter(|(a, b)| a < b).count();
            out.push(Comparison {
                claim: "suite below chain in every round (same round, same machine load)".into(),
                holds: below == paired.len(),
                detail: format!(
                    "suite below chain in {below} of {} rounds; per round suite/chain us/req: {}",
                    paired.len(),
                    paired
                        .iter()
                        .map(|(a, b)| format!("{a:.1}/{b:.1}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        out.push(Comparison {
            claim: "suite and chain answer the workload alike (probe statuses)".into(),
            holds: suite.probe_statuses == chain.probe_statuses,
            detail: format!(
                "suite {:?}, chain {:?}",
                suite.probe_statuses, chain.probe_statuses
            ),
        });
    }
    if let Some(a) = anchor(scenarios) {
        out.push(Comparison {
            claim: "threat-score adds less CPU per request than ModSecurity + CRS (each over its own server alone)".into(),
            holds: a.threat_added < a.crs_added,
            detail: format!(
                "nginx + ModSecurity + CRS +{:.1} us/req over nginx, Envoy + threat-score +{:.1} us/req over Envoy: {:.1}x; whole servers {:.1} vs {:.1} us/req: {:.1}x",
                a.crs_added, a.threat_added, a.added_ratio, a.crs_cpu, a.threat_cpu, a.cpu_ratio
            ),
        });
    }
    if let (Some(one), Some(three)) = (get("noop-wasm"), get("noop-wasm-x3")) {
        if let (Some(a), Some(b)) = (one.added_us_over_baseline, three.added_us_over_baseline) {
            out.push(Comparison {
                claim: "the per-filter floor is paid once per separate Wasm filter".into(),
                holds: b > 2.0 * a,
                detail: format!("one no-op +{a:.1} us/req, three no-ops +{b:.1} us/req"),
            });
        }
    }
    out
}

/// threat-score beside its anchor, nginx + ModSecurity + CRS, in one run.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    /// `modsecurity-crs` CPU per request, and over `nginx` alone.
    pub crs_cpu: f64,
    pub crs_added: f64,
    /// `threat-score` CPU per request, and over Envoy's `baseline`.
    pub threat_cpu: f64,
    pub threat_added: f64,
    /// crs_added / threat_added: how many times threat-score's own cost CRS's costs.
    pub added_ratio: f64,
    /// crs_cpu / threat_cpu: the whole servers.
    pub cpu_ratio: f64,
}

/// The anchor comparison, when `modsecurity-crs`, `nginx`, `threat-score` and `baseline` ran.
pub fn anchor(scenarios: &[ScenarioResult]) -> Option<Anchor> {
    let get = |n: &str| scenarios.iter().find(|s| s.name == n);
    let (crs, threat) = (get("modsecurity-crs")?, get("threat-score")?);
    let (crs_added, threat_added) = (crs.added_us_over_baseline?, threat.added_us_over_baseline?);
    Some(Anchor {
        crs_cpu: crs.cpu_us_per_req,
        crs_added,
        threat_cpu: threat.cpu_us_per_req,
        threat_added,
        added_ratio: ratio(crs_added, threat_added)?,
        cpu_ratio: ratio(crs.cpu_us_per_req, threat.cpu_us_per_req)?,
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// The Markdown table (and module table, missing list, machine line).
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(s, "<!-- generated by `{}`; do not edit -->", r.command);
    let _ = writeln!(
        s,
        "Machine: {} x {} (nproc {}), Linux {}; Envoy {} ({}); {}; commit {}{}; {} UTC; load average at start {}.\n",
        m.nproc, m.cpu_model, m.nproc, m.kernel, m.envoy_version, m.envoy_source, m.load_generator,
        m.git_commit, if m.git_dirty { " (dirty)" } else { "" }, m.date_utc, m.loadavg_at_start
    );
    let me = &r.method;
    let _ = writeln!(
        s,
        "Method ({} mode): {} rounds x {:.0} s per scenario, interleaved, after {:.0} s warm-up; wrk, {} keep-alive HTTP/1.1 connections, pinned to CPU {}; Envoy with {} worker pinned to CPU {}. Medians over rounds, [min-max] in brackets.\n",
        me.mode, me.rounds, me.seconds_per_run, me.warmup_seconds, me.connections,
        me.load_generator_cpu.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        me.envoy_workers,
        me.envoy_cpu.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
    );
    s.push_str("| scenario | Envoy CPU us/req | x baseline | x noop-wasm | added over baseline us | above noop, in floors | rps | p50 ms | p99 ms | RSS MiB | MiB/VM |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for x in &r.scenarios {
        let _ = writeln!(
            s,
            "| {} | {:.1} [{:.1}-{:.1}] | {} | {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {} |",
            x.name,
            x.cpu_us_per_req,
            x.spread.cpu_us_per_req.min,
            x.spread.cpu_us_per_req.max,
            opt(x.ratio_to_baseline, 2),
            opt(x.ratio_to_noop, 2),
            opt(x.added_us_over_baseline, 1),
            if x.kind == Kind::Wasm && x.name != "noop-wasm" {
                opt(x.added_over_noop_in_floors, 2)
            } else {
                "-".into()
            },
            x.rps,
            x.p50_ms,
            x.p99_ms,
            x.rss_mib,
            opt(x.mib_per_vm, 1),
        );
    }
    if r.scenarios.iter().any(|x| x.kind == Kind::Nginx) {
        s.push_str("\nRows `nginx` and `modsecurity-crs` are nginx, not Envoy (the anchor): their \"x baseline\" and \"added over baseline\" are relative to `nginx` alone.\n");
    }
    if let Some(a) = anchor(&r.scenarios) {
        s.push_str("\n| engine, same mix, same rounds | server CPU us/req | added over its server alone, us/req | added, x threat-score |\n| --- | ---: | ---: | ---: |\n");
        let _ = writeln!(
            s,
            "| Envoy + threat-score (PL1, block) | {:.1} | {:.1} | 1.00 |",
            a.threat_cpu, a.threat_added
        );
        let _ = writeln!(
            s,
            "| nginx + ModSecurity + CRS (PL1) | {:.1} | {:.1} | {:.2} |",
            a.crs_cpu, a.crs_added, a.added_ratio
        );
    }
    if !r.comparisons.is_empty() {
        s.push('\n');
        for c in &r.comparisons {
            let _ = writeln!(
                s,
                "* {}: **{}** ({})",
                c.claim,
                if c.holds { "yes" } else { "no" },
                c.detail
            );
        }
    }
    if !r.modules.is_empty() {
        s.push_str(&modules_table(&r.modules));
    }
    if !r.missing.is_empty() {
        s.push_str("\nNot measured in this run:\n");
        for x in &r.missing {
            let _ = writeln!(s, "* `{}`: {}", x.name, x.reason);
        }
    }
    s
}

/// A horizontal bar chart of Envoy CPU per request (median, with a min-max whisker), with the
/// baseline and noop-wasm levels as reference lines.
pub fn svg(r: &Report) -> String {
    let rows = &r.scenarios;
    let (left, right, top, row_h, bar_h) = (190.0, 110.0, 56.0, 26.0, 16.0);
    let plot_w = 560.0;
    let width = left + plot_w + right;
    let anchors = rows.iter().any(|x| x.kind == Kind::Nginx);
    let height = top + row_h * rows.len() as f64 + if anchors { 62.0 } else { 44.0 };
    // The anchor (nginx + ModSecurity) can cost many times every Envoy row: it is drawn off
    // scale (clipped, value printed) rather than squeezing the rest into a few pixels.
    let max = rows
        .iter()
        .filter(|x| x.kind != Kind::Nginx)
        .map(|x| x.spread.cpu_us_per_req.max.max(x.cpu_us_per_req))
        .fold(1.0_f64, f64::max);
    let scale = nice_ceiling(max);
    let x = |v: f64| left + v.min(scale * 1.04) / scale * plot_w;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{left:.0}" y="20" font-size="14" font-weight="bold">Envoy CPU time per request (us), median with min-max over rounds</text>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{left:.0}" y="38" fill="#555">Envoy {}, 1 worker, {}; {} mode, {} rounds; commit {}</text>"##,
        xml(&r.machine.envoy_version),
        xml(&r.machine.cpu_model),
        xml(&r.method.mode),
        r.method.rounds,
        xml(&r.machine.git_commit)
    );
    // Grid.
    for i in 0..=5 {
        let v = scale * f64::from(i) / 5.0;
        let gx = x(v);
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{top:.0}" x2="{gx:.1}" y2="{:.0}" stroke="#ddd"/><text x="{gx:.1}" y="{:.0}" text-anchor="middle" fill="#555">{v:.0}</text>"##,
            height - 36.0,
            height - 22.0
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + (row_h - bar_h) / 2.0;
        let color = match row.kind {
            Kind::Baseline => "#9e9e9e",
            Kind::Wasm => "#3b6fb6",
            Kind::Native => "#4c9a5b",
            Kind::Nginx => "#b5651d",
        };
        let w = (x(row.cpu_us_per_req) - left).max(1.0);
        let cy = y + bar_h / 2.0;
        let (lo, hi) = (
            x(row.spread.cpu_us_per_req.min),
            x(row.spread.cpu_us_per_req.max),
        );
        // An off-scale bar fills the plot: its value goes inside it, in white.
        let off_scale = row.cpu_us_per_req > scale;
        let (label_x, label_fill) = if off_scale {
            (left + 8.0, "white")
        } else {
            (hi.max(left + w) + 6.0, "black")
        };
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text><rect x="{left:.0}" y="{y:.1}" width="{w:.1}" height="{bar_h:.0}" fill="{color}"/><line x1="{lo:.1}" y1="{cy:.1}" x2="{hi:.1}" y2="{cy:.1}" stroke="#222"/><line x1="{lo:.1}" y1="{:.1}" x2="{lo:.1}" y2="{:.1}" stroke="#222"/><line x1="{hi:.1}" y1="{:.1}" x2="{hi:.1}" y2="{:.1}" stroke="#222"/><text x="{:.1}" y="{cy:.1}" dominant-baseline="middle" fill="{label_fill}">{:.1}{}</text>"##,
            left - 8.0,
            cy,
            xml(&row.name),
            cy - 4.0,
            cy + 4.0,
            cy - 4.0,
            cy + 4.0,
            label_x,
            row.cpu_us_per_req,
            row.ratio_to_baseline
                .map(|r| format!(" ({r:.2}x)"))
                .unwrap_or_default()
                + if off_scale { " off scale" } else { "" }
        );
    }
    let legend_y = if anchors { height - 24.0 } else { height - 6.0 };
    if anchors {
        let _ = writeln!(
            s,
            r##"<rect x="{left:.0}" y="{:.0}" width="10" height="10" fill="#b5651d"/><text x="{:.0}" y="{:.0}">nginx alone, and nginx + ModSecurity + CRS (the anchor; ratio to nginx alone)</text>"##,
            height - 15.0,
            left + 14.0,
            height - 6.0,
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left:.0}" y="{:.0}" width="10" height="10" fill="#9e9e9e"/><text x="{:.0}" y="{legend_y:.0}">no filter</text><rect x="{:.0}" y="{:.0}" width="10" height="10" fill="#3b6fb6"/><text x="{:.0}" y="{legend_y:.0}">our Wasm filters</text><rect x="{:.0}" y="{:.0}" width="10" height="10" fill="#4c9a5b"/><text x="{:.0}" y="{legend_y:.0}">Envoy native filters (ratio to baseline in brackets)</text>"##,
        legend_y - 9.0,
        left + 14.0,
        left + 90.0,
        legend_y - 9.0,
        left + 104.0,
        left + 220.0,
        legend_y - 9.0,
        left + 234.0,
    );
    s.push_str("</svg>\n");
    s
}

fn nice_ceiling(v: f64) -> f64 {
    let step = if v <= 50.0 {
        10.0
    } else if v <= 200.0 {
        25.0
    } else {
        100.0
    };
    (v / step).ceil() * step
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Write `latest.json`, `latest.md` and `cpu_per_request.svg` into `dir`.
pub fn write_all(r: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(r)? + "\n",
    )?;
    std::fs::write(dir.join("latest.md"), markdown(r))?;
    std::fs::write(dir.join("cpu_per_request.svg"), svg(r))?;
    Ok(())
}

/// The module size and cold-start table (Markdown).
pub fn modules_table(modules: &[crate::coldstart::ModuleResult]) -> String {
    let mut s = String::from("\n| module | .wasm bytes | ECDS push to first response, ms [min-max] | same module, new config, ms |\n| --- | ---: | ---: | ---: |\n");
    for x in modules {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} [{:.0}-{:.0}] | {:.0} |",
            x.name,
            x.bytes,
            x.cold_start_ms,
            x.cold_start_ms_min,
            x.cold_start_ms_max,
            x.reconfigure_ms
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: f64) -> Sample {
        Sample {
            round: 0,
            cpu_us_per_req: cpu,
            rps: 1000.0,
            p50_ms: 0.5,
            p99_ms: 2.0,
            requests: 1000,
            non_2xx_3xx: 0,
            socket_errors: 0,
            connections_opened: 8,
        }
    }

    fn measured(name: &str, kind: Kind, cpus: &[f64], vms: u64) -> Measured {
        Measured {
            name: name.into(),
            kind,
            description: String::new(),
            filters: vec![],
            samples: cpus.iter().map(|&c| sample(c)).collect(),
            rss_kib: 1024 * (40 + 2 * vms),
            wasm_vms: vms,
            probe_statuses: BTreeMap::new(),
        }
    }

    #[test]
    fn medians_ratios_and_floors() {
        let out = aggregate(vec![
            measured("baseline", Kind::Baseline, &[25.0, 24.0, 30.0], 0),
            measured("noop-wasm", Kind::Wasm, &[36.0, 35.0, 40.0], 2),
            measured("x", Kind::Wasm, &[58.0, 57.0, 59.0], 2),
        ]);
        let x = &out[2];
        assert_eq!(x.cpu_us_per_req, 58.0);
        assert_eq!(x.spread.cpu_us_per_req.min, 57.0);
        assert!((x.ratio_to_baseline.unwrap() - 58.0 / 25.0).abs() < 1e-9);
        assert!((x.added_us_over_noop.unwrap() - 22.0).abs() < 1e-9);
        assert!((x.added_over_noop_in_floors.unwrap() - 2.0).abs() < 1e-9);
        assert!((x.mib_per_vm.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(out[0].mib_per_vm, None);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn anchor_rows_are_relative_to_nginx_and_compared_with_threat_score() {
        let out = aggregate(vec![
            measured("baseline", Kind::Baseline, &[20.0], 0),
            measured("noop-wasm", Kind::Wasm, &[30.0], 2),
            measured("threat-score", Kind::Wasm, &[120.0], 2),
            measured("nginx", Kind::Nginx, &[40.0], 0),
            measured("modsecurity-crs", Kind::Nginx, &[1040.0], 0),
        ]);
        let crs = out.iter().find(|s| s.name == "modsecurity-crs").unwrap();
        assert!((crs.added_us_over_baseline.unwrap() - 1000.0).abs() < 1e-9);
        assert!((crs.ratio_to_baseline.unwrap() - 26.0).abs() < 1e-9);
        assert_eq!(crs.ratio_to_noop, None);
        assert_eq!(crs.mib_per_vm, None);
        let a = anchor(&out).unwrap();
        assert!((a.added_ratio - 10.0).abs() < 1e-9, "{a:?}");
        let c = comparisons(&out);
        assert!(
            c.iter().any(|c| c.claim.contains("ModSecurity") && c.holds),
            "{c:?}"
        );
        let r = Report {
            schema_version: 1,
            command: "t".into(),
            machine: Machine {
                nproc: 2,
                cpu_model: "c".into(),
                kernel: "k".into(),
                envoy_version: "1".into(),
                envoy_source: "s".into(),
                load_generator: "wrk".into(),
                git_commit: "g".into(),
                git_dirty: false,
                date_utc: "d".into(),
                loadavg_at_start: "1".into(),
            },
            method: Method {
                mode: "quick".into(),
                rounds: 1,
                seconds_per_run: 1.0,
                warmup_seconds: 1.0,
                connections: 1,
                envoy_workers: 1,
                envoy_cpu: None,
                load_generator_cpu: None,
                route: "r".into(),
                workload: "w".into(),
                cpu_time: "c".into(),
                memory: "m".into(),
            },
            scenarios: out,
            missing: vec![],
            modules: vec![],
            comparisons: c,
        };
        let md = markdown(&r);
        assert!(
            md.contains("| nginx + ModSecurity + CRS (PL1) | 1040.0 | 1000.0 | 10.00 |"),
            "{md}"
        );
        let svg = svg(&r);
        assert!(
            svg.contains(">modsecurity-crs<") && svg.contains("off scale"),
            "{svg}"
        );
    }

    #[test]
    fn suite_versus_chain_is_checked() {
        let out = aggregate(vec![
            measured("baseline", Kind::Baseline, &[25.0], 0),
            measured("chain", Kind::Wasm, &[70.0], 6),
            measured("suite", Kind::Wasm, &[45.0], 2),
        ]);
        let c = comparisons(&out);
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c.iter().all(|c| c.holds), "{c:?}");
        assert!(c[1].detail.contains("1 of 1 rounds"), "{c:?}");
    }
}
