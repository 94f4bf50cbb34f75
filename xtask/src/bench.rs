//! `cargo xtask bench`: build every filter, then run the benchmark harness (`bench/`).

use crate::build::build_and_report;
use anyhow::{bail, Context, Result};
use bench::Options;
use envoy_harness::workspace_root;
use std::path::Path;
use std::time::Duration;

pub fn bench(args: &[String]) -> Result<()> {
    let root = workspace_root();
    let quick = args.iter().any(|a| a == "--quick");
    // `--modules DIR`: measure prebuilt modules (e.g. an older build, for a before/after).
    let prebuilt = args
        .iter()
        .position(|a| a == "--modules")
        .and_then(|i| args.get(i + 1))
        .map(|d| root.join(d));
    let modules = match prebuilt {
        Some(dir) => dir,
        None => build_and_report(&[])?,
    };
    let out = root.join("bench/results");
    let mut opts = if quick {
        Options::quick(modules, out)
    } else {
        Options::full(modules, out)
    };
    let mut it = args.iter();
    let mut command = vec!["cargo xtask bench".to_string()];
    while let Some(a) = it.next() {
        let mut value = |flag: &str| -> Result<String> {
            let v = it.next().with_context(|| format!("{flag} needs a value"))?;
            command.push(format!("{flag} {v}"));
            Ok(v.clone())
        };
        match a.as_str() {
            "--quick" | "--cold-start" => command.push(a.clone()),
            "--pushes" => opts.cold_start_pushes = value(a)?.parse()?,
            "--rounds" => opts.rounds = value(a)?.parse()?,
            "--seconds" => opts.duration = Duration::from_secs(value(a)?.parse()?),
            "--connections" => opts.connections = value(a)?.parse()?,
            "--out" => opts.out_dir = root.join(value(a)?),
            "--modules" => {
                value(a)?;
            }
            flag if flag.starts_with("--") => bail!(
                "unknown option `{flag}` (options: --quick, --rounds N, --seconds S, --connections C, --out DIR, --cold-start, --pushes N, --modules DIR, SCENARIO...)"
            ),
            name => {
                command.push(name.to_string());
                opts.only.push(name.to_string());
            }
        }
    }
    opts.command = command.join(" ");
    if args.iter().any(|a| a == "--cold-start") {
        bench::run_cold_start_only(&opts)?;
        return Ok(());
    }
    bench::run(&opts)?;
    bench::check_outputs(&opts.out_dir)
}

/// The smoke run `cargo xtask test` does: quick mode into `out` (not the committed results),
/// then check the files are there with sane non-zero values.
pub fn quick_smoke(modules: &Path, out: &Path) -> Result<()> {
    let opts = Options::quick(modules.to_path_buf(), out.to_path_buf());
    let report = bench::run(&opts)?;
    bench::check_outputs(out)?;
    // The anchor runs in every quick run too (setup.sh installs it): it must not vanish silently.
    for name in ["nginx", "modsecurity-crs"] {
        if !report.scenarios.iter().any(|s| s.name == name) {
            bail!("the quick bench did not measure the `{name}` scenario");
        }
    }
    Ok(())
}
