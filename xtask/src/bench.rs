//! `cargo xtask bench`: build every filter, then run the benchmark harness (`bench/`).

use crate::build::build_and_report;
use anyhow::{bail, Context, Result};
use bench::Options;
use envoy_harness::workspace_root;
use std::path::Path;
use std::time::Duration;

pub fn bench(args: &[String]) -> Result<()> {
    let root = workspace_root();
    if args.iter().any(|a| a == "--instructions") {
        return instructions(&root);
    }
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

/// `cargo xtask bench --instructions`: the bench mix through every module in-process on
/// Wasmtime (`tests/wasm-host`, run as its `host` example so xtask does not link Wasmtime),
/// counting executed Wasm instructions (fuel); writes `bench/results/instructions.json` and
/// `instructions.md`. This is also the update step of the regression guard
/// (`tests/wasm-host/tests/instructions.rs`): run it after a deliberate cost change and commit.
fn instructions(root: &Path) -> Result<()> {
    let modules = build_and_report(&[])?;
    let out = root.join("bench/results");
    let json_path = out.join("instructions.json");
    let previous: Option<serde_json::Value> = std::fs::read(&json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut cmd = crate::wasm_host("instructions");
    cmd.arg(&modules).arg(&json_path);
    crate::run_cmd(&mut cmd)?;
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path)?)?;
    let filters = report["filters"]
        .as_object()
        .context("instructions.json: no filters")?;
    let mut kinds: Vec<String> = filters
        .values()
        .filter_map(|f| f["per_kind"].as_object())
        .flat_map(|k| k.keys().cloned())
        .collect();
    kinds.sort();
    kinds.dedup();
    let mut table = format!(
        "| filter | mean/request | instantiate | on_configure | {} |\n| --- | ---: | ---: | ---: |{}\n",
        kinds.join(" | "),
        " ---: |".repeat(kinds.len())
    );
    for (name, f) in filters {
        let cells: Vec<String> = kinds
            .iter()
            .map(|k| {
                f["per_kind"][k]
                    .as_u64()
                    .map_or("-".into(), |v| v.to_string())
            })
            .collect();
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            f["mean"],
            f["instantiate"],
            f["configure"],
            cells.join(" | ")
        ));
    }
    let md = format!(
        "# Instructions per request (in-process, Wasmtime fuel)\n\nWritten by `cargo xtask bench --instructions`: the bench's 40-request mix (`bench/src/workload.rs`) through each module in-process with its bench configuration; one unit per executed Wasm operator (Wasmtime fuel). Deterministic: `tests/wasm-host/tests/instructions.rs` (in `cargo xtask test`) fails when a filter's mean grows more than 10% over `instructions.json`. Update after a deliberate change: rerun this command and commit both files.\n\n{table}"
    );
    std::fs::write(out.join("instructions.md"), md)?;
    println!("{table}");
    if let Some(prev) = previous {
        for (name, f) in filters {
            if let (Some(old), Some(new)) =
                (prev["filters"][name]["mean"].as_u64(), f["mean"].as_u64())
            {
                println!(
                    "{name}: mean {old} -> {new} ({:+.1}%)",
                    100.0 * (new as f64 - old as f64) / old.max(1) as f64
                );
            }
        }
    }
    println!(
        "wrote {} and instructions.md: commit them",
        json_path.display()
    );
    Ok(())
}
