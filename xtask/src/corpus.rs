//! `cargo xtask corpus [--engine threat-score|modsecurity] [--paranoia N] [--report OUT.json]
//! [--parallel P] FILE.jsonl...`: replay corpus rows through a real Envoy running the
//! threat-score module in `block` mode (default settings, or the given paranoia level) in front
//! of the echo upstream, and print per category how many rows were blocked by the filter, passed
//! to the upstream, or rejected by Envoy before the filter, plus the acceptance figures of issue 4.
//!
//! `--engine modsecurity` replays the same rows, with the same classification and report, through
//! the anchor instead: Debian's nginx + ModSecurity + OWASP CRS 3.3.4 at the given paranoia level
//! (`envoy_harness::nginx`), answering from the echo module after reading the body. "Rejected"
//! then means rejected by nginx before ModSecurity decided. `--crs-force-urlencoded` sets CRS's
//! `tx.enforce_bodyproc_urlencoded` (off by default): bodies without `Content-Type` are parsed as
//! forms, as threat-score does.

use crate::build::build_and_report;
use anyhow::{bail, Context, Result};
use envoy_harness::corpus::{self, Outcome, Row, RowResult};
use envoy_harness::nginx::{self, Nginx, NginxOptions};
use envoy_harness::{EchoServer, Envoy, EnvoyConfig, FilterEntry};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

/// The `error` code of the filter's 403 (`threat_score::filter::BLOCK_ERROR`).
const BLOCK_ERROR: &str = "threat_detected";
/// Categories with a per-category acceptance target.
const TARGETS: [&str; 6] = ["sqli", "xss", "lfi", "rce", "php", "java"];

const USAGE: &str = "usage: cargo xtask corpus [--engine threat-score|modsecurity] [--runtime envoy|wasmtime|interpreter] [--crs-force-urlencoded] [--paranoia N] [--report OUT.json] [--parallel P] FILE.jsonl...";

/// Which engine the rows go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// Envoy + the threat-score module (block mode).
    ThreatScore,
    /// nginx + ModSecurity + CRS, the anchor.
    ModSecurity,
}

pub fn corpus(args: &[String]) -> Result<()> {
    let mut paranoia = 1u8;
    let mut report = None;
    let mut parallel = 8usize;
    let mut engine = Engine::ThreatScore;
    let mut force_urlencoded = false;
    // `--runtime wasmtime|interpreter`: in-process through `wasm-host` instead of Envoy.
    let mut runtime: Option<String> = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--paranoia" => {
                paranoia = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|p| (1..=4).contains(p))
                    .context("--paranoia needs 1..=4")?;
            }
            "--engine" => {
                engine = match it.next().map(String::as_str) {
                    Some("threat-score") => Engine::ThreatScore,
                    Some("modsecurity") => Engine::ModSecurity,
                    other => bail!(
                        "--engine needs `threat-score` or `modsecurity`, got {other:?}\n{USAGE}"
                    ),
                }
            }
            "--runtime" => {
                runtime = match it.next().map(String::as_str) {
                    Some("envoy") => None,
                    Some(rt @ ("wasmtime" | "interpreter")) => Some(rt.to_string()),
                    other => bail!(
                        "--runtime needs envoy, wasmtime or interpreter, got {other:?}\n{USAGE}"
                    ),
                }
            }
            "--crs-force-urlencoded" => force_urlencoded = true,
            "--report" => report = Some(it.next().context("--report needs a file")?.clone()),
            "--parallel" => {
                parallel = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|p| *p > 0)
                    .context("--parallel needs a positive number")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if other.starts_with("--") => bail!("unknown option `{other}`\n{USAGE}"),
            file => files.push(file.to_string()),
        }
    }
    if files.is_empty() {
        bail!("no corpus files given\n{USAGE}");
    }
    let rows = corpus::load(&files)?;
    if engine == Engine::ModSecurity && runtime.is_some() {
        bail!("--runtime applies to --engine threat-score only\n{USAGE}");
    }
    if engine == Engine::ModSecurity {
        let opts = NginxOptions {
            crs_paranoia: Some(paranoia),
            force_urlencoded,
        };
        return modsecurity(&rows, opts, parallel, report.as_deref());
    }
    if force_urlencoded {
        bail!("--crs-force-urlencoded applies to --engine modsecurity only");
    }
    let modules = build_and_report(&["threat-score".to_string()])?;
    if let Some(rt) = runtime {
        return in_process(&rt, &modules, &files, &rows, paranoia, report.as_deref());
    }
    let echo = EchoServer::start("echo")?;
    let config = json!({ "mode": "block", "paranoia_level": paranoia }).to_string();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).concurrency(2).filter(
        FilterEntry::wasm(
            "threat-score",
            modules.join("threat-score.wasm"),
            config.clone(),
        ),
    ))?;
    println!(
        "replaying {} rows through Envoy ({}) with threat-score {config}, {parallel} connections",
        rows.len(),
        envoy.url("/")
    );
    let started = Instant::now();
    let results = corpus::replay(envoy.listener("http"), &rows, parallel, BLOCK_ERROR);
    let elapsed = started.elapsed();
    print_tables(
        &rows,
        &results,
        paranoia,
        "mode block, through Envoy + threat-score",
        "Envoy",
    );
    println!(
        "\n{} rows in {:.1} s through Envoy",
        rows.len(),
        elapsed.as_secs_f64()
    );
    let crashes = envoy.stat_or_zero("wasm.envoy.wasm.runtime.v8.failed")
        + envoy
            .stats()
            .unwrap_or_default()
            .iter()
            .filter(|(k, _)| k.contains("wasm") && k.ends_with(".failed"))
            .map(|(_, v)| *v)
            .sum::<u64>();
    if envoy.log().contains("Wasm VM failed") || crashes > 0 {
        println!(
            "WARNING: Envoy reports a Wasm VM failure; see {}",
            envoy.dir().display()
        );
    }
    if let Some(path) = report {
        write_report(&path, &rows, &results, "threat-score")?;
    }
    Ok(())
}

/// The same rows through the same module in-process (`tests/wasm-host`, run as its `host`
/// example so xtask does not link Wasmtime): Envoy's connection manager modelled by
/// `wasm_host::front`, one VM, one stream per row; the same tables and report.
fn in_process(
    rt: &str,
    modules: &std::path::Path,
    files: &[String],
    rows: &[Row],
    paranoia: u8,
    report: Option<&str>,
) -> Result<()> {
    let config = json!({ "mode": "block", "paranoia_level": paranoia }).to_string();
    println!(
        "replaying {} rows in-process on {rt} with threat-score {config}",
        rows.len()
    );
    let out = tempfile::NamedTempFile::new()?;
    let module = modules.join("threat-score.wasm");
    let mut cmd = crate::wasm_host("corpus");
    cmd.arg(rt)
        .arg(&module)
        .arg(&config)
        .arg(out.path())
        .args(files);
    crate::run_cmd(&mut cmd)?;
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path())?)?;
    let list = doc["results"]
        .as_array()
        .context("host corpus: no results")?;
    if list.len() != rows.len() {
        bail!(
            "host corpus: {} results for {} rows",
            list.len(),
            rows.len()
        );
    }
    let mut fuel = 0u64;
    let mut reached = 0usize;
    let results: Vec<RowResult> = list
        .iter()
        .map(|r| {
            let f = r["fuel"].as_u64().unwrap_or(0);
            fuel += f;
            reached += usize::from(f > 0);
            RowResult {
                status: r["status"].as_u64().unwrap_or(0) as u16,
                outcome: match r["outcome"].as_str() {
                    Some("blocked") => Outcome::Blocked,
                    Some("passed") => Outcome::Passed,
                    Some("rejected_by_envoy") => Outcome::RejectedByEnvoy,
                    _ => Outcome::Other,
                },
            }
        })
        .collect();
    print_tables(
        rows,
        &results,
        paranoia,
        &format!("mode block, in-process on {rt} + threat-score"),
        "Envoy (modelled)",
    );
    println!(
        "\n{} rows in {:.1} s in-process on {rt}; {:.0} fuel units per row that reached the filter",
        rows.len(),
        doc["seconds"].as_f64().unwrap_or(0.0),
        fuel as f64 / reached.max(1) as f64
    );
    if let Some(path) = report {
        write_report(path, rows, &results, &format!("threat-score ({rt})"))?;
    }
    Ok(())
}

/// The same rows through nginx + ModSecurity + CRS at `paranoia`.
fn modsecurity(
    rows: &[Row],
    opts: NginxOptions,
    parallel: usize,
    report: Option<&str>,
) -> Result<()> {
    let paranoia = opts.crs_paranoia.unwrap_or(1);
    let nginx = Nginx::start(opts)?;
    let crs = format!(
        "{}{}",
        nginx::crs_version().unwrap_or_else(|| "?".into()),
        if opts.force_urlencoded {
            " (tx.enforce_bodyproc_urlencoded=1)"
        } else {
            ""
        }
    );
    println!(
        "replaying {} rows through nginx + ModSecurity + CRS {crs} at PL{paranoia} ({}), {parallel} connections",
        rows.len(),
        nginx.url("/")
    );
    let started = Instant::now();
    let results = corpus::replay(nginx.addr(), rows, parallel, nginx::BLOCK_ERROR);
    let elapsed = started.elapsed();
    print_tables(
        rows,
        &results,
        paranoia,
        &format!("through nginx + ModSecurity + CRS {crs}"),
        "nginx",
    );
    println!(
        "\n{} rows in {:.1} s through nginx + ModSecurity",
        rows.len(),
        elapsed.as_secs_f64()
    );
    if let Some(path) = report {
        write_report(path, rows, &results, "modsecurity")?;
    }
    Ok(())
}

fn write_report(path: &str, rows: &[Row], results: &[RowResult], engine: &str) -> Result<()> {
    let entries: Vec<_> = rows
        .iter()
        .zip(results)
        .map(|(row, r)| {
            json!({
                "id": row.id,
                "status": r.status,
                "blocked": r.outcome == Outcome::Blocked,
                // For `modsecurity`: rejected by nginx before ModSecurity decided.
                "rejected_by_envoy": r.outcome == Outcome::RejectedByEnvoy,
            })
        })
        .collect();
    std::fs::write(
        path,
        serde_json::to_vec_pretty(&json!({ "engine": engine, "results": entries }))?,
    )
    .with_context(|| format!("writing {path}"))?;
    println!("report: {path}");
    Ok(())
}

#[derive(Default)]
struct Tally {
    rows: usize,
    blocked: usize,
    passed: usize,
    rejected: usize,
    other: usize,
    /// `expect: attack` rows with paranoia <= the level run.
    attack: usize,
    attack_blocked: usize,
    /// `expect: attack` rows with `paranoia: 1`.
    attack_pl1: usize,
    attack_pl1_blocked: usize,
    benign: usize,
    benign_passed: usize,
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{a}/{b} ({:.1}%)", 100.0 * a as f64 / b as f64)
    }
}

/// `engine` describes the run; `server` names who rejects rows before the engine decides.
fn print_tables(rows: &[Row], results: &[RowResult], paranoia: u8, engine: &str, server: &str) {
    let mut by_cat: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for (row, r) in rows.iter().zip(results) {
        let t = by_cat.entry(row.category.as_str()).or_default();
        for t in [t, &mut total] {
            t.rows += 1;
            match r.outcome {
                Outcome::Blocked => t.blocked += 1,
                Outcome::Passed => t.passed += 1,
                Outcome::RejectedByEnvoy => t.rejected += 1,
                Outcome::Other => t.other += 1,
            }
            let blocked = usize::from(r.outcome == Outcome::Blocked);
            match row.expect.as_str() {
                "attack" if row.paranoia <= paranoia => {
                    t.attack += 1;
                    t.attack_blocked += blocked;
                    if row.paranoia == 1 {
                        t.attack_pl1 += 1;
                        t.attack_pl1_blocked += blocked;
                    }
                }
                "benign" => {
                    t.benign += 1;
                    t.benign_passed += usize::from(r.outcome == Outcome::Passed);
                }
                _ => {}
            }
        }
    }
    println!("\nparanoia {paranoia}, {engine}");
    println!(
        "| category | rows | blocked | passed | rejected by {server} | other | attack rows (PL <= {paranoia}) blocked | benign passed |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let total_name = "**total**";
    for (cat, t) in by_cat
        .iter()
        .map(|(c, t)| (*c, t))
        .chain(std::iter::once((total_name, &total)))
    {
        println!(
            "| {cat} | {} | {} | {} | {} | {} | {} | {} |",
            t.rows,
            t.blocked,
            t.passed,
            t.rejected,
            t.other,
            pct(t.attack_blocked, t.attack),
            pct(t.benign_passed, t.benign)
        );
    }
    println!("\nacceptance (`expect: attack` rows with `paranoia: 1`, blocked by the engine):");
    println!(
        "  overall: {}",
        pct(total.attack_pl1_blocked, total.attack_pl1)
    );
    for cat in TARGETS {
        let t = by_cat.get(cat);
        println!(
            "  {cat:<5}  {}",
            t.map_or("-".into(), |t| pct(t.attack_pl1_blocked, t.attack_pl1))
        );
    }
    println!(
        "  benign passed: {}",
        pct(total.benign_passed, total.benign)
    );
    let benign_rejected = rows
        .iter()
        .zip(results)
        .filter(|(r, x)| r.expect == "benign" && x.outcome == Outcome::RejectedByEnvoy)
        .count();
    println!(
        "  benign passed of those that reached the filter: {}",
        pct(total.benign_passed, total.benign - benign_rejected)
    );
}
