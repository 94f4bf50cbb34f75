//! Filter modules (`.wasm`) for tests.
//!
//! `cargo xtask test` builds every module once (release, `wasm-opt` when available) and passes
//! the directory in `$FILTER_MODULES_DIR`. Without it (plain `cargo test`), the harness builds the
//! module it needs with cargo into `target/harness` (a separate target dir, so it never waits
//! for the lock held by the `cargo test` that runs it).

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The wasm target every filter compiles to.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// Path of the built module for filter crate `name` (e.g. `example`).
pub fn module(name: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FILTER_MODULES_DIR") {
        let path = PathBuf::from(dir).join(format!("{name}.wasm"));
        if !path.is_file() {
            bail!(
                "{} is missing: was `{name}` built by `cargo xtask build`?",
                path.display()
            );
        }
        return Ok(path);
    }
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(name) {
        return Ok(p.clone());
    }
    let target_dir = crate::workspace_root().join("target/harness");
    let path = build(name, &target_dir)?;
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_string(), path.clone());
    Ok(path)
}

/// `cargo build --release --target wasm32-wasip1 -p NAME` into `target_dir`; returns the
/// `.wasm` path. One package per invocation, so features of crates that embed a filter
/// (`default-features = false`) never leak into the filter's own module.
pub fn build(name: &str, target_dir: &std::path::Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::workspace_root())
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            WASM_TARGET,
            "-p",
            name,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .with_context(|| format!("running cargo build for {name}"))?;
    if !status.success() {
        bail!("building filter `{name}` for {WASM_TARGET} failed");
    }
    let file = format!("{}.wasm", name.replace('-', "_"));
    let path = target_dir.join(WASM_TARGET).join("release").join(file);
    if !path.is_file() {
        bail!(
            "cargo built `{name}` but {} does not exist (is it a cdylib?)",
            path.display()
        );
    }
    Ok(path)
}
