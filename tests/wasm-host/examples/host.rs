//! The in-process host as a command, for `cargo xtask` (which runs it with
//! `cargo run -p wasm-host --example host`, so xtask itself does not link Wasmtime):
//!
//! ```text
//! host corpus RUNTIME MODULE.wasm CONFIG_JSON OUT.json FILE.jsonl...   per-row results as JSON
//! host instructions MODULES_DIR OUT.json                              the instruction report
//! host calls MODULES_DIR FILTER...                                    fuel and host calls per request kind
//! ```

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("corpus") if args.len() >= 6 => {
            let rt: wasm_host::RuntimeKind = args[1].parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let wasm = std::fs::read(&args[2]).with_context(|| format!("reading {}", args[2]))?;
            let rows = envoy_harness::corpus::load(&args[5..])?;
            let started = std::time::Instant::now();
            let results = wasm_host::corpus::replay(rt, &wasm, "threat-score", &args[3], &rows, "threat_detected")?;
            let out: Vec<_> = results
                .iter()
                .map(|r| json!({"status": r.result.status, "outcome": r.result.outcome.as_str(), "fuel": r.fuel}))
                .collect();
            let doc = json!({"runtime": rt.name(), "seconds": started.elapsed().as_secs_f64(), "results": out});
            std::fs::write(&args[4], serde_json::to_vec(&doc)?).with_context(|| format!("writing {}", args[4]))?;
            Ok(())
        }
        Some("instructions") if args.len() == 3 => {
            let root = envoy_harness::workspace_root();
            let report = wasm_host::instructions::measure_all(&root, &PathBuf::from(&args[1]))?;
            std::fs::write(&args[2], serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", args[2]))?;
            Ok(())
        }
        Some("calls") if args.len() >= 3 => {
            let root = envoy_harness::workspace_root();
            for filter in &args[2..] {
                let cost = wasm_host::instructions::measure(wasm_host::RuntimeKind::Wasmtime, &root, &PathBuf::from(&args[1]), filter)?;
                println!("{filter}: mean {} Wasm instructions per request; per kind {:?}", cost.mean, cost.per_kind);
                let calls = wasm_host::instructions::host_calls(&root, &PathBuf::from(&args[1]), filter)?;
                for (kind, c) in calls {
                    let total: f64 = c.values().sum();
                    let list: Vec<String> = c.iter().map(|(n, v)| format!("{n} {v}")).collect();
                    println!("{filter} {kind}: {total} calls: {}", list.join(", "));
                }
            }
            Ok(())
        }
        _ => bail!("usage: host corpus RUNTIME MODULE.wasm CONFIG OUT.json FILE.jsonl... | host instructions MODULES_DIR OUT.json | host calls MODULES_DIR FILTER..."),
    }
}
