//! How a request body reaches a Wasm filter in a real Envoy under the bench's own load: the
//! suite module (bench configuration) behind one Envoy worker at trace level, `wrk` sending the
//! bench mix (`bench::workload::mix`, HTTP/1.1 keep-alive, each request written whole) for a
//! few seconds, then Envoy's own trace lines counted per request:
//!
//! ```text
//! cargo xtask build suite
//! cargo run --release -p bench --example body_phase -- [MODULE_DIR [SECONDS]]
//! ```
//!
//! Envoy's filter manager logs one `decode headers called`, `decode data called` and `encode
//! data called` line per call of each filter's callback (`proxy_on_request_headers`,
//! `proxy_on_request_body`, `proxy_on_response_body` for a Wasm filter), with the status the
//! filter answered; its HTTP/1 codec logs each read (`parsing N bytes`). The counts say how
//! many VM entries a body request costs, and whether Envoy splits a ~1 KB body into several
//! callbacks (it would, were the body read in several pieces). A measurement tool: trace level
//! costs Envoy far more than the filter, so no CPU figure is taken here.

use anyhow::{Context, Result};
use bench::load::{lua_script, run_wrk, LoadSpec};
use bench::scenario::{suite_config, Inputs};
use envoy_harness::{EchoServer, Envoy, EnvoyConfig, FilterEntry};
use std::path::PathBuf;
use std::time::Duration;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = envoy_harness::workspace_root();
    let modules_dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/modules"));
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let inputs = Inputs {
        modules_dir,
        root: root.clone(),
    };
    let echo = EchoServer::start("upstream")?;
    let mut config = EnvoyConfig::new(echo.addr());
    config.log_level = "trace".into();
    config.filters = vec![FilterEntry::wasm(
        "suite",
        inputs.module("suite"),
        suite_config(&inputs)?,
    )];
    let envoy = Envoy::start(config)?;
    let mix = bench::workload::mix();
    let bodies = mix.iter().filter(|r| !r.body.is_empty()).count();
    let sizes: Vec<usize> = mix
        .iter()
        .filter(|r| !r.body.is_empty())
        .map(|r| r.body.len())
        .collect();
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("mix.lua");
    std::fs::write(&script, lua_script(&mix))?;
    let spec = LoadSpec {
        connections: 1,
        duration: Duration::from_secs(seconds),
        cpu: None,
    };
    let load = run_wrk(&envoy.url("/"), &script, &spec).context("wrk")?;
    // Let the log file catch up (flushed every 100 ms by the harness's setting).
    std::thread::sleep(Duration::from_millis(500));
    let log = envoy.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    let requests = load.requests as f64;
    println!(
        "mix: {} requests, {bodies} with a body ({sizes:?} bytes); wrk sent {} in {seconds} s",
        mix.len(),
        load.requests
    );
    let body_requests = requests * bodies as f64 / mix.len() as f64;
    for needle in [
        "decode headers called",
        "decode data called",
        "decode trailers called",
        "encode headers called",
        "encode data called",
        "parsing ",
    ] {
        let n = count(needle);
        println!(
            "{needle:>24}: {n} lines, {:.3} per request, {:.3} per body request",
            n as f64 / requests,
            n as f64 / body_requests
        );
    }
    // Every VM entry, by export (Envoy's `wasm` trace: `[host->vm] proxy_on_request_body(..)`),
    // the `malloc` re-entries of host calls that hand data back included.
    let mut entries = std::collections::BTreeMap::<String, usize>::new();
    let mut body_calls = std::collections::BTreeMap::<String, usize>::new();
    for l in log.lines() {
        let Some(at) = l.find("[host->vm] ") else {
            continue;
        };
        let call = &l[at + "[host->vm] ".len()..];
        let name = call.split('(').next().unwrap_or(call).to_string();
        if name == "proxy_on_request_body" || name == "proxy_on_response_body" {
            // (context, size, end_of_stream): which frames carry data, which only end the stream.
            let args: Vec<&str> = call
                .trim_start_matches(|c| c != '(')
                .trim_matches(|c| c == '(' || c == ')')
                .split(", ")
                .collect();
            let size = if args.get(1).is_some_and(|s| *s != "0") {
                "data"
            } else {
                "empty"
            };
            let eos = if args.get(2) == Some(&"1") {
                "end"
            } else {
                "more"
            };
            *body_calls
                .entry(format!("{name} {size} {eos}"))
                .or_default() += 1;
        }
        *entries.entry(name).or_default() += 1;
    }
    let mut all = 0;
    for (name, n) in &entries {
        all += n;
        println!(
            "VM entries {name:>26}: {n}, {:.3} per request, {:.3} per body request",
            *n as f64 / requests,
            *n as f64 / body_requests
        );
    }
    println!("VM entries, all: {:.3} per request", all as f64 / requests);
    // Every host call from the first request on, by import (`[vm->host]
    // env.proxy_get_shared_data(..)`): the policy's shared-data reads and writes per request
    // say how many requests its leases served. Calls before the first request are the VMs'
    // configuration (the first VM creates every rate-limit slot: a read and a write each).
    let mut calls = std::collections::BTreeMap::<&str, usize>::new();
    let first = log
        .find("[host->vm] proxy_on_request_headers")
        .map_or(log.len(), |at| log[..at].rfind('\n').map_or(0, |n| n + 1));
    for l in log[first..].lines() {
        if let Some(at) = l.find("[vm->host] ") {
            let call = &l[at + "[vm->host] ".len()..];
            *calls
                .entry(call.split('(').next().unwrap_or(call))
                .or_default() += 1;
        }
    }
    for (name, n) in &calls {
        println!(
            "host calls {name:>40}: {n}, {:.3} per request",
            *n as f64 / requests
        );
    }
    for (kind, n) in &body_calls {
        println!("  {kind}: {n}, {:.3} per request", *n as f64 / requests);
    }
    // The status each body callback answered (0 Continue, 1 StopIterationAndBuffer, ...).
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for l in log.lines().filter(|l| l.contains("decode data called")) {
        let status = l.rsplit("status=").next().unwrap_or("?").trim().to_string();
        *statuses.entry(status).or_default() += 1;
    }
    println!("decode data statuses: {statuses:?}");
    std::fs::write(dir.path().join("envoy.log"), &log)?;
    let keep = root.join("target/body-phase-envoy.log");
    let _ = std::fs::write(&keep, &log);
    println!("Envoy log: {}", keep.display());
    Ok(())
}
