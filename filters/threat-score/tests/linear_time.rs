//! Linear time, proven without timing: `Engine::inspect` on hostile 64 KiB bodies costs at most
//! 20x the instructions it costs on the same generator at 4 KiB (a quadratic path costs 256x).
//!
//! Instructions are counted by callgrind (`valgrind --tool=callgrind`), which is deterministic
//! on a shared, noisy machine. This is a `harness = false` test: run by `cargo test`, it
//! re-runs its own binary under callgrind once per case with `LINEAR_TIME_CASE` set; the child
//! builds the request, then calls [`measured`], the only function callgrind counts
//! (`--toggle-collect`). Valgrind is installed by `setup.sh`; without it the test fails and says
//! so (a skipped proof is not a pass).
//!
//! Generators: the ones that were quadratic before (`${`, `{{`, `<%`, `document.`, `'/*(`,
//! `$/*`), plain `a`, more of the engine's trigger characters and runs of escapes, each as a
//! `text/plain` body and as one JSON string, and every structured document of
//! `threat_score::hostile::DOCUMENTS` (nested JSON documents, depth, many values, multipart,
//! XML attributes) in its own carrier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use std::process::Command;
use threat_score::hostile::{Case, DOCUMENTS};
use threat_score::{Config, Engine, Request};

const CASE_ENV: &str = "LINEAR_TIME_CASE";
const SMALL: usize = 4 * 1024;
const LARGE: usize = 64 * 1024;
const MAX_RATIO: f64 = 20.0;

/// The unit generators the issue names, then others that hit each detector's trigger
/// characters, then escape runs; every [`DOCUMENTS`] entry is checked as well.
const CHECKED: &[&str] = &[
    "dollar-brace",
    "braces",
    "erb",
    "document",
    "quote-comment",
    "dollar-comment",
    "plain-a",
    "lt",
    "quote",
    "paren",
    "dollar-paren",
    "newline",
    "escaped-newline",
    "jndi",
    "percent",
    "hash",
    "scheme",
    "erb-tick",
    "pg-cast",
    "punct-mix",
    "percent-lt",
    "percent-25",
    "percent-u",
    "entity-lt",
    "entity-hex",
    "backslash-x",
    "backslashes",
    "base64",
    "sink-chain",
];

/// The only code callgrind counts.
#[no_mangle]
#[inline(never)]
pub extern "Rust" fn linear_time_measured(engine: &Engine, req: &Request<'_>) -> u32 {
    std::hint::black_box(engine.inspect(std::hint::black_box(req))).score
}

fn child(spec: &str) {
    let mut it = spec.split(' ');
    let (name, carrier, size) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let case = threat_score::hostile::case(name, carrier).unwrap();
    let (ct, body) = case.body(size.parse().unwrap());
    let headers = vec![
        ("host".to_string(), "example.com".to_string()),
        ("content-type".to_string(), ct.to_string()),
    ];
    let engine = Config::default().compile().unwrap();
    // Warm-up outside the measured call: one-time lazy initialisation (sorted word sets) is
    // not per-request work.
    let warm = Request::new("POST", "/")
        .with_headers(&headers)
        .with_body(b"x");
    let _ = engine.inspect(&warm);
    let req = Request::new("POST", "/upload")
        .with_headers(&headers)
        .with_body(&body);
    println!("score {}", linear_time_measured(&engine, &req));
}

/// Instructions callgrind counted in [`linear_time_measured`] for one case.
fn instructions(case: &Case, size: usize) -> u64 {
    let (name, carrier) = (case.name, case.carrier);
    let exe = std::env::current_exe().unwrap();
    let out = std::env::temp_dir().join(format!(
        "linear-time-{}-{name}-{carrier}-{size}.callgrind",
        std::process::id(),
    ));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--toggle-collect=linear_time_measured")
        .arg(&exe)
        .env(CASE_ENV, format!("{name} {carrier} {size}"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run valgrind ({e}): install it (./setup.sh installs Debian's valgrind)")
        });
    assert!(
        status.status.success(),
        "callgrind run of {name}/{carrier} failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let summary = text
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .unwrap_or_else(|| panic!("no summary in callgrind output for {name}"));
    let n: u64 = summary.trim().split(' ').next().unwrap().parse().unwrap();
    assert!(
        n > 0,
        "callgrind counted nothing for {name}: the symbol `linear_time_measured` was not \
         found. The release profile strips symbols (`strip` in the workspace Cargo.toml), so \
         this test runs in the dev profile: `cargo test -p threat-score --test linear_time` \
         (as `cargo xtask test` does), not with `--release`"
    );
    n
}

fn main() {
    if let Ok(spec) = std::env::var(CASE_ENV) {
        child(&spec);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        println!("linear_time: test");
        return;
    }
    let mut failures = Vec::new();
    let mut cases = 0;
    println!("linear time: instructions in Engine::inspect, {LARGE} vs {SMALL} bytes");
    // `LINEAR_TIME_ONLY=name,name`: a subset, for investigating one generator.
    let only = std::env::var("LINEAR_TIME_ONLY").unwrap_or_default();
    let checked = |c: &Case| {
        CHECKED.contains(&c.name) || DOCUMENTS.iter().any(|(name, _, _)| *name == c.name)
    };
    let selected = |c: &Case| only.is_empty() || only.split(',').any(|o| o == c.name);
    for case in threat_score::hostile::cases()
        .iter()
        .filter(|c| checked(c) && selected(c))
    {
        let small = instructions(case, SMALL);
        let large = instructions(case, LARGE);
        let ratio = large as f64 / small as f64;
        cases += 1;
        println!(
            "  {:>19} {:>9}: {small:>11} -> {large:>12} instructions, x{ratio:.1}",
            case.name, case.carrier
        );
        if ratio > MAX_RATIO {
            failures.push(format!("{}/{}: x{ratio:.1}", case.name, case.carrier));
        }
    }
    assert!(
        failures.is_empty(),
        "superlinear (more than x{MAX_RATIO} for 16x the input): {failures:?}"
    );
    assert!(cases > 0, "no generator selected");
    println!("test result: ok. {cases} cases linear");
}
