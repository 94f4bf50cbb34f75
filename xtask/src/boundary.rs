//! The ABI boundary as a fact of the dependency graph, not a convention: a filter's logic build
//! (its crate without the `export` feature, as the suite, the bench driver and native tests use
//! it) must not link `proxy-wasm`; only the entry-point side (`export`, which turns on
//! `sdk-ext/glue`) may. Checked with `cargo tree` for every filter crate, both ways, so the check
//! cannot pass vacuously: the export build must show `proxy-wasm`, the logic build must not.
//! `sdk-ext` itself is also compiled once without `glue`, so its logic cannot refer to the glue.

use crate::build::filter_names;
use crate::{cargo, run_cmd};
use anyhow::{bail, Context, Result};

/// The crate that carries the host ABI.
const ABI_CRATE: &str = "proxy-wasm";

/// The packages in `package`'s normal (non-dev, non-build) dependency graph for every target,
/// with or without its default features.
fn normal_deps(package: &str, default_features: bool) -> Result<Vec<String>> {
    let mut cmd = cargo();
    cmd.args([
        "tree", "--quiet", "-p", package, "-e", "normal", "--target", "all", "--prefix", "none",
        "--format", "{p}",
    ]);
    if !default_features {
        cmd.arg("--no-default-features");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running cargo tree -p {package}"))?;
    if !out.status.success() {
        bail!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect())
}

/// Which filters break the boundary, and how (empty: none).
pub fn violations() -> Result<Vec<String>> {
    let mut bad = Vec::new();
    for name in filter_names()? {
        let logic = normal_deps(&name, false)?;
        if logic.iter().any(|p| p == ABI_CRATE) {
            bad.push(format!(
                "{name}: its logic build (--no-default-features) links {ABI_CRATE}; only the \
                 `export` feature may (export = [\"sdk-ext/glue\"])"
            ));
        }
        let export = normal_deps(&name, true)?;
        if !export.iter().any(|p| p == ABI_CRATE) {
            bad.push(format!(
                "{name}: its module build (default features) does not link {ABI_CRATE}: it \
                 exports no entry point (export = [\"sdk-ext/glue\"] missing?)"
            ));
        }
    }
    Ok(bad)
}

/// `cargo xtask test`'s boundary step: fail with every violation.
pub fn check() -> Result<()> {
    let bad = violations()?;
    if !bad.is_empty() {
        bail!("the ABI boundary is broken:\n  {}", bad.join("\n  "));
    }
    println!(
        "    no filter's logic build links {ABI_CRATE}; every module build does ({} filters)",
        filter_names()?.len()
    );
    // sdk-ext's logic layer compiles without the glue (the workspace build unifies features,
    // so nothing else compiles it this way).
    run_cmd(cargo().args(["check", "--quiet", "-p", "sdk-ext", "--lib"]))
}
