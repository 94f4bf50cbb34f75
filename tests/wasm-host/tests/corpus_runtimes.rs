//! The shared dev corpora through threat-score in Envoy (V8), in-process on Wasmtime and
//! in-process on the interpreter: every row must get the same verdict (blocked, passed,
//! rejected before the filter, other) in all three; the first row that differs is named.
//!
//! Every row by default (about a minute, most of it the interpreter); `WASM_HOST_CORPUS_SAMPLE=N`
//! replays a fixed-seed sample of N rows. `cargo xtask corpus --runtime ...` replays the rows
//! through one runtime and prints the same report as the Envoy replay.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::corpus::{self, Outcome, Row, RowResult};
use envoy_harness::{modules, EchoServer, Envoy, EnvoyConfig, FilterEntry};
use std::time::Instant;
use wasm_host::RuntimeKind;

const BLOCK_ERROR: &str = "threat_detected";
const CONFIG: &str = r#"{"mode": "block", "paranoia_level": 1}"#;

fn shared_rows() -> Vec<Row> {
    let root = envoy_harness::workspace_root();
    let dir = [
        root.join("../shared/corpora"),
        root.join("../../shared/corpora"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .expect("the shared corpora (../shared/corpora) are required");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("dev.jsonl"))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dev.jsonl under {}", dir.display());
    corpus::load(&files).unwrap()
}

/// A fixed-seed sample of `n` distinct rows, in corpus order.
fn sample(rows: &[Row], n: usize) -> Vec<Row> {
    if n >= rows.len() {
        return rows.to_vec();
    }
    let mut state: u64 = 0x14_c0de;
    let mut picked = std::collections::BTreeSet::new();
    while picked.len() < n {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        picked.insert((state >> 33) as usize % rows.len());
    }
    picked.into_iter().map(|i| rows[i].clone()).collect()
}

#[test]
fn dev_corpora_get_identical_verdicts_in_envoy_wasmtime_and_the_interpreter() {
    let all = shared_rows();
    let n = match std::env::var("WASM_HOST_CORPUS_SAMPLE").as_deref() {
        Ok("all") => usize::MAX,
        Ok(v) => v
            .parse()
            .expect("WASM_HOST_CORPUS_SAMPLE: a number or `all`"),
        Err(_) => usize::MAX,
    };
    let mut rows = sample(&all, n);
    // `WASM_HOST_CORPUS_IDS=id,id,...`: only those rows (to look at a few quickly).
    if let Ok(ids) = std::env::var("WASM_HOST_CORPUS_IDS") {
        let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
        rows.retain(|r| ids.contains(&r.id.as_str()));
        assert!(!rows.is_empty(), "WASM_HOST_CORPUS_IDS matched no row");
    }
    let module = modules::module("threat-score").unwrap();
    let wasm = std::fs::read(&module).unwrap();

    let mut runs: Vec<(String, Vec<RowResult>)> = Vec::new();
    for rt in RuntimeKind::ALL {
        let t = Instant::now();
        let results =
            wasm_host::corpus::replay(rt, &wasm, "threat-score", CONFIG, &rows, BLOCK_ERROR)
                .unwrap();
        eprintln!(
            "{rt}: {} rows in {:.2} s",
            rows.len(),
            t.elapsed().as_secs_f64()
        );
        runs.push((
            rt.name().into(),
            results.into_iter().map(|r| r.result).collect(),
        ));
    }

    let t = Instant::now();
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr())
            .concurrency(2)
            .filter(FilterEntry::wasm("threat-score", module, CONFIG)),
    )
    .unwrap();
    let started = t.elapsed();
    let envoy_results = corpus::replay(envoy.listener("http"), &rows, 4, BLOCK_ERROR);
    eprintln!(
        "envoy: start {:.2} s, {} rows in {:.2} s",
        started.as_secs_f64(),
        rows.len(),
        t.elapsed().as_secs_f64() - started.as_secs_f64()
    );
    runs.insert(0, ("envoy".into(), envoy_results));

    // Runtimes must agree on every row; Envoy must agree with them on every row too: where it
    // does not, `wasm_host::front` (what Envoy's connection manager hands the filter) or the
    // upstream model in `wasm_host::corpus` is wrong, and the row is named.
    let mut tally = std::collections::BTreeMap::<&str, usize>::new();
    let mut differing = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let verdicts: Vec<(&str, Outcome, u16)> = runs
            .iter()
            .map(|(name, r)| (name.as_str(), r[i].outcome, r[i].status))
            .collect();
        assert_eq!(
            verdicts[1].1, verdicts[2].1,
            "row {} ({} {}): Wasmtime and the interpreter differ: {verdicts:?}",
            row.id, row.method, row.uri
        );
        if verdicts.iter().all(|v| v.1 == verdicts[0].1) {
            *tally.entry(verdicts[0].1.as_str()).or_default() += 1;
        } else {
            differing.push(format!(
                "{} ({} {}): {verdicts:?}",
                row.id, row.method, row.uri
            ));
        }
    }
    assert!(
        differing.is_empty(),
        "{} of {} rows differ; first: {}\nall:\n{}",
        differing.len(),
        rows.len(),
        differing[0],
        differing.join("\n")
    );
    eprintln!(
        "{} rows, identical in envoy, wasmtime and interpreter: {tally:?}",
        rows.len()
    );
    assert!(
        std::env::var("WASM_HOST_CORPUS_IDS").is_ok()
            || (tally.get("blocked").copied().unwrap_or(0) > 0
                && tally.get("passed").copied().unwrap_or(0) > 0)
    );
}
