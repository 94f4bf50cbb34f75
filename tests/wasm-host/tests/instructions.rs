//! The regression guard on exact cost: the bench mix through every module in-process (Wasmtime
//! fuel, deterministic) must not cost more than 10% over `bench/results/instructions.json`.
//!
//! After a deliberate change of cost, update the committed figures with
//! `cargo xtask bench --instructions` and commit `bench/results/instructions.{json,md}`
//! (the commit message says why the cost moved).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use wasm_host::instructions::{measure_all, regressions, Report, TOLERANCE};

#[test]
fn no_filter_costs_more_than_the_committed_figure_plus_ten_percent() {
    let root = envoy_harness::workspace_root();
    let committed_path = root.join("bench/results/instructions.json");
    let committed: Report =
        serde_json::from_slice(&std::fs::read(&committed_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; create it with `cargo xtask bench --instructions`",
                committed_path.display()
            )
        }))
        .unwrap();
    let now = measure_all(&root, &wasm_host::modules_dir()).unwrap();
    for name in committed.filters.keys() {
        assert!(
            now.filters.contains_key(name),
            "module {name} has a committed figure but was not measured (not built?)"
        );
    }
    for (name, cost) in &now.filters {
        let old = committed.filters.get(name).map(|c| c.mean);
        eprintln!(
            "{name}: mean {} instructions/request (committed {old:?})",
            cost.mean
        );
        // The mix must behave as in Envoy's bench: the same statuses.
        if let Some(c) = committed.filters.get(name) {
            assert_eq!(
                cost.statuses, c.statuses,
                "{name}: the mix's statuses changed"
            );
        }
    }
    let bad = regressions(&committed, &now);
    assert!(
        bad.is_empty(),
        "instructions per request grew more than {:.0}% (filter, committed, now): {bad:?}\n\
         if this is intended, run `cargo xtask bench --instructions` and commit bench/results/instructions.*",
        TOLERANCE * 100.0
    );
}

#[test]
fn the_guard_flags_growth_beyond_the_tolerance_only() {
    let mut committed: Report = serde_json::from_value(serde_json::json!({
        "runtime": "wasmtime (fuel)", "unit": "Wasm operators executed",
        "filters": {"a": {"mean": 1000, "per_kind": {}, "instantiate": 0, "configure": 0, "statuses": {}}}
    }))
    .unwrap();
    let mut now = committed.clone();
    now.filters.get_mut("a").unwrap().mean = 1100;
    assert!(
        regressions(&committed, &now).is_empty(),
        "exactly +10% passes"
    );
    now.filters.get_mut("a").unwrap().mean = 1101;
    assert_eq!(
        regressions(&committed, &now),
        vec![("a".to_string(), 1000, 1101)]
    );
    committed.filters.get_mut("a").unwrap().mean = 2000;
    assert!(
        regressions(&committed, &now).is_empty(),
        "getting cheaper never fails"
    );
}
