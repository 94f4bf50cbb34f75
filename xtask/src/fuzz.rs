//! `cargo xtask fuzz [TARGET...] [--seconds N] [--timeout S] [--max-len BYTES]`: run the
//! cargo-fuzz targets of `fuzz/` (threat-score's engine, decoders and extractors) one after the
//! other, each for N seconds, and print executions per second and what was found.
//! `cargo xtask fuzz --check`: replay the committed seeds through every target on the pinned
//! stable toolchain, without libFuzzer (part of `cargo xtask test`).
//!
//! libFuzzer needs a nightly toolchain (`rustup toolchain install nightly`); this runs
//! `rustup run nightly cargo fuzz run` and installs `cargo-fuzz` from crates.io when it is
//! missing. Each run: `-timeout` (default 2 s: a slower input is a finding, the engine must be
//! linear), `-rss_limit_mb=2048`, `-max_len` (default 16 KiB), the working corpus in
//! `fuzz/corpus/TARGET` (not committed) seeded from `fuzz/seeds/TARGET` (committed); findings
//! go to `fuzz/artifacts/TARGET/`. No sanitizer (`-s none`: the code under test is safe Rust;
//! panics and timeouts are what is looked for) and debug assertions on (integer overflow panics).

use crate::run_cmd;
use anyhow::{bail, Context, Result};
use envoy_harness::workspace_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask fuzz [TARGET...] [--seconds N] [--timeout S] [--max-len BYTES] | --check | --list";

/// The targets (`fuzz/Cargo.toml` `[[bin]]`s; `fuzz/src/lib.rs` `TARGETS`).
pub const TARGETS: &[&str] = &[
    "inspect",
    "decode_percent",
    "decode_html",
    "decode_escapes",
    "decode_path",
    "decode_deep",
    "extract_json",
    "extract_multipart",
    "extract_xml",
];

struct Opts {
    targets: Vec<String>,
    seconds: u64,
    timeout: u64,
    max_len: u64,
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let mut o = Opts {
        targets: Vec::new(),
        seconds: 60,
        timeout: 2,
        max_len: 16 * 1024,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |flag: &str| -> Result<u64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .with_context(|| format!("{flag} needs a positive number\n{USAGE}"))
        };
        match a.as_str() {
            "--check" => return check(),
            "--list" => {
                TARGETS.iter().for_each(|t| println!("{t}"));
                return Ok(());
            }
            "--seconds" => o.seconds = num(a)?,
            "--timeout" => o.timeout = num(a)?,
            "--max-len" => o.max_len = num(a)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            flag if flag.starts_with('-') => bail!("unknown option `{flag}`\n{USAGE}"),
            t if TARGETS.contains(&t) => o.targets.push(t.to_string()),
            t => bail!(
                "unknown fuzz target `{t}` (targets: {})",
                TARGETS.join(", ")
            ),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    run(&o)
}

/// The seeds (and committed findings) through every target, on the pinned stable toolchain.
pub fn check() -> Result<()> {
    let root = workspace_root();
    run_cmd(plain_cargo().current_dir(root.join("fuzz")).args([
        "test",
        "--quiet",
        "--lib",
        "--no-default-features",
    ]))
}

/// `cargo` of the toolchain running xtask, without the variables the outer cargo set.
fn plain_cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.env_remove("RUSTC").env_remove("RUSTDOC");
    c
}

/// `rustup run nightly cargo ...` in `fuzz/`, the outer cargo's variables removed so the inner
/// one is nightly's.
fn nightly_cargo(dir: &Path) -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo"])
        .current_dir(dir)
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTUP_TOOLCHAIN");
    c
}

fn ensure_tools(dir: &Path) -> Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        bail!("libFuzzer needs a nightly toolchain: rustup toolchain install nightly --profile minimal");
    }
    let has_fuzz = nightly_cargo(dir)
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_fuzz {
        println!("==> cargo install cargo-fuzz --locked (crates.io)");
        run_cmd(plain_cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// What one libFuzzer run reported.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub executions: u64,
    pub exec_per_sec: u64,
    pub new_units: u64,
    pub slowest_unit_s: u64,
    pub peak_rss_mb: u64,
    /// `crash`, `timeout`, `oom`, `leak` or `failed` (any other failure); None: clean.
    pub finding: Option<String>,
    /// The input libFuzzer saved for the finding.
    pub artifact: Option<String>,
}

/// Read libFuzzer's `-print_final_stats=1` lines and its failure reports.
pub fn parse_output(out: &str) -> RunStats {
    let mut s = RunStats::default();
    let num = |line: &str| -> u64 {
        line.split(':')
            .next_back()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    for line in out.lines() {
        let l = line.trim();
        if l.starts_with("stat::number_of_executed_units:") {
            s.executions = num(l);
        } else if l.starts_with("stat::average_exec_per_sec:") {
            s.exec_per_sec = num(l);
        } else if l.starts_with("stat::new_units_added:") {
            s.new_units = num(l);
        } else if l.starts_with("stat::slowest_unit_time_sec:") {
            s.slowest_unit_s = num(l);
        } else if l.starts_with("stat::peak_rss_mb:") {
            s.peak_rss_mb = num(l);
        } else if l.contains("ERROR: libFuzzer: timeout") {
            s.finding = Some("timeout".into());
        } else if l.contains("ERROR: libFuzzer: out-of-memory") {
            s.finding = Some("oom".into());
        } else if l.contains("ERROR: libFuzzer: deadly signal") || l.contains("panicked at") {
            s.finding.get_or_insert_with(|| "crash".into());
        } else if let Some(rest) = l.split("Test unit written to ").nth(1) {
            s.artifact = Some(rest.trim().to_string());
        }
    }
    s
}

fn run(o: &Opts) -> Result<()> {
    let root = workspace_root();
    let dir = root.join("fuzz");
    ensure_tools(&dir)?;
    let logs = root.join("target/fuzz-logs");
    std::fs::create_dir_all(&logs)?;
    println!("==> building the fuzz targets (nightly, release, debug assertions, no sanitizer)");
    run_cmd(nightly_cargo(&dir).args(["fuzz", "build", "-s", "none", "--debug-assertions"]))?;
    let mut results = Vec::new();
    for t in &o.targets {
        let corpus = dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let log: PathBuf = logs.join(format!("{t}.log"));
        println!(
            "==> fuzzing {t} for {} s (log: {})",
            o.seconds,
            log.display()
        );
        let started = Instant::now();
        let file = std::fs::File::create(&log)?;
        let status = nightly_cargo(&dir)
            .args(["fuzz", "run", "-s", "none", "--debug-assertions", t])
            .arg(&corpus)
            .arg(dir.join("seeds").join(t))
            .arg("--")
            .arg(format!("-timeout={}", o.timeout))
            .arg("-rss_limit_mb=2048")
            .arg(format!("-max_total_time={}", o.seconds))
            .arg(format!("-max_len={}", o.max_len))
            .arg("-print_final_stats=1")
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .with_context(|| format!("running cargo fuzz run {t}"))?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let mut stats = parse_output(&text);
        if !status.success() && stats.finding.is_none() {
            stats.finding = Some("failed".into());
        }
        let secs = started.elapsed().as_secs();
        println!(
            "    {t}: {} executions, {} exec/s, {} new units, slowest unit {} s, peak RSS {} MiB{}",
            stats.executions,
            stats.exec_per_sec,
            stats.new_units,
            stats.slowest_unit_s,
            stats.peak_rss_mb,
            match (&stats.finding, &stats.artifact) {
                (Some(f), Some(a)) => format!(" -- FOUND {f}: {a}"),
                (Some(f), None) => format!(" -- FOUND {f} (see the log)"),
                _ => String::new(),
            }
        );
        results.push((t.clone(), secs, stats));
    }
    println!("\n| target | seconds | executions | exec/s | new units | slowest unit s | result |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for (t, secs, s) in &results {
        println!(
            "| {t} | {secs} | {} | {} | {} | {} | {} |",
            s.executions,
            s.exec_per_sec,
            s.new_units,
            s.slowest_unit_s,
            s.finding.as_deref().unwrap_or("clean")
        );
    }
    let found: Vec<&str> = results
        .iter()
        .filter(|(_, _, s)| s.finding.is_some())
        .map(|(t, _, _)| t.as_str())
        .collect();
    if !found.is_empty() {
        bail!(
            "fuzzing found problems in {}; inputs under fuzz/artifacts/ (reproduce: cd fuzz && cargo +nightly fuzz run TARGET FILE)",
            found.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_final_stats_and_findings() {
        let clean = "Done 129291 runs in 601 second(s)\nstat::number_of_executed_units: 129291\nstat::average_exec_per_sec:     215\nstat::new_units_added:          6446\nstat::slowest_unit_time_sec:    0\nstat::peak_rss_mb:              39\n";
        let s = parse_output(clean);
        assert_eq!(
            (s.executions, s.exec_per_sec, s.new_units),
            (129291, 215, 6446)
        );
        assert_eq!(s.peak_rss_mb, 39);
        assert!(s.finding.is_none());
        let slow = "==12== ERROR: libFuzzer: timeout after 2 seconds\nartifact_prefix='/w/fuzz/artifacts/inspect/'; Test unit written to /w/fuzz/artifacts/inspect/timeout-abc\n";
        let s = parse_output(slow);
        assert_eq!(s.finding.as_deref(), Some("timeout"));
        assert_eq!(
            s.artifact.as_deref(),
            Some("/w/fuzz/artifacts/inspect/timeout-abc")
        );
        let crash = "thread '<unnamed>' panicked at src/decode/html.rs:9:5:\n==1== ERROR: libFuzzer: deadly signal\n";
        assert_eq!(parse_output(crash).finding.as_deref(), Some("crash"));
    }

    #[test]
    fn targets_match_the_fuzz_crate() {
        let manifest = std::fs::read_to_string(workspace_root().join("fuzz/Cargo.toml")).unwrap();
        for t in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{t}\"")),
                "fuzz/Cargo.toml has no [[bin]] {t}"
            );
            assert!(
                workspace_root().join("fuzz/seeds").join(t).is_dir(),
                "no seeds for {t}"
            );
        }
    }
}
