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
    let modules = build_and_report(&[])?;
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
            "--quick" => command.push(a.clone()),
            "--rounds" => opts.rounds = value(a)?.parse()?,
            "--seconds" => opts.duration = Duration::from_secs(value(a)?.parse()?),
            "--connections" => opts.connections = value(a)?.parse()?,
            "--out" => opts.out_dir = root.join(value(a)?),
            flag if flag.starts_with("--") => bail!(
                "unknown option `{flag}` (options: --quick, --rounds N, --seconds S, --connections C, --out DIR, SCENARIO...)"
            ),
            name => {
                command.push(name.to_string());
                opts.only.push(name.to_string());
            }
        }
    }
    opts.command = command.join(" ");
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
/// Wasmtime, counting executed Wasm instructions (fuel); writes `bench/results/instructions.json`
/// and `instructions.md`. This is also the update step of the regression guard
/// (`tests/wasm-host/tests/instructions.rs`): run it after a deliberate cost change and commit.
fn instructions(root: &Path) -> Result<()> {
    let modules = build_and_report(&[])?;
    let report = wasm_host::instructions::measure_all(root, &modules)?;
    let out = root.join("bench/results");
    let json_path = out.join("instructions.json");
    let previous: Option<wasm_host::instructions::Report> = std::fs::read(&json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let table = wasm_host::instructions::table(&report);
    let md = format!(
        "# Instructions per request (in-process, Wasmtime fuel)\n\nWritten by `cargo xtask bench --instructions`: the bench's 40-request mix through each module in-process; one unit per executed Wasm operator. Deterministic: the guard in `cargo xtask test` fails when a filter's mean grows more than {:.0}% over `instructions.json`.\n\n{table}",
        wasm_host::instructions::TOLERANCE * 100.0
    );
    std::fs::write(out.join("instructions.md"), md)?;
    println!("{table}");
    if let Some(prev) = previous {
        for (name, cost) in &report.filters {
            if let Some(old) = prev.filters.get(name) {
                println!(
                    "{name}: mean {} -> {} ({:+.1}%)",
                    old.mean,
                    cost.mean,
                    100.0 * (cost.mean as f64 - old.mean as f64) / old.mean.max(1) as f64
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
