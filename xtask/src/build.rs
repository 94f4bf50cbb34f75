//! `cargo xtask build`: every filter crate to an optimised `.wasm` in `target/modules/`.

use anyhow::{bail, Context, Result};
use envoy_harness::{build_id, modules, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `wasm-opt` arguments: the size pipeline and the target features rustc enables by default
/// for wasm32-wasip1 (binaryen must be told). `-Oz` rather than `-O3`: modules 1.5-2% smaller
/// (threat-score 475,317 -> 468,170 bytes, suite 777,906 -> 764,737) for +0.3-0.6% Wasm
/// instructions per request (`cargo xtask bench --instructions`); V8's optimizing tier
/// recompiles the code anyway, and module size is cold-start time (bench/README.md, "Module
/// size and cold start"). `--flatten --rereloop` first (every expression to a flat form, then
/// control flow rebuilt by the Relooper), then `-Oz` twice and `--converge` (repeat until no
/// byte changes): every module 0.7-1.5% smaller again and 0.7-1.3% fewer instructions per
/// request than one `-Oz` (suite 599,961 -> 595,410 bytes and 85,488 -> 84,901 instructions,
/// threat-score 399,276 -> 396,206 and 73,359 -> 72,791; binaryen 108, 2026-12-01), for
/// ~30 s of wasm-opt over all modules instead of ~15 (cached per input, see [`optimise_cached`]).
pub const WASM_OPT_ARGS: &[&str] = &[
    "--flatten",
    "--rereloop",
    "-Oz",
    "-Oz",
    "--converge",
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// Filter crates: directories under `filters/` whose manifest builds a `cdylib`.
pub fn filter_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("filters"))? {
        let dir = entry?.path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        if builds_module(&manifest) {
            if let Some(name) = package_name(&manifest) {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Whether a manifest's `crate-type` line (not a comment) lists `cdylib`.
fn builds_module(manifest: &str) -> bool {
    manifest.lines().any(|l| {
        let l = l.trim();
        l.starts_with("crate-type") && l.contains("\"cdylib\"")
    })
}

/// Filters whose manifest declares `[package.metadata.filter] kind = "network"`: they run in a
/// TCP listener before `tcp_proxy` (`envoy.filters.network.wasm`), not in the HTTP chain.
pub fn network_filter_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("filters"))? {
        let manifest =
            std::fs::read_to_string(entry?.path().join("Cargo.toml")).unwrap_or_default();
        if builds_module(&manifest) && filter_kind(&manifest) == Some("network") {
            if let Some(name) = package_name(&manifest) {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// `kind` in the manifest's `[package.metadata.filter]` table.
fn filter_kind(manifest: &str) -> Option<&str> {
    let mut in_table = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[package.metadata.filter]";
        } else if in_table {
            if let Some(v) = line.strip_prefix("kind").map(str::trim) {
                return v.strip_prefix('=').map(|v| v.trim().trim_matches('"'));
            }
        }
    }
    None
}

fn package_name(manifest: &str) -> Option<String> {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("name = \""))
        .and_then(|rest| rest.split('"').next())
        .map(String::from)
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(d) => std::path::absolute(&d).unwrap_or_else(|_| PathBuf::from(d)),
        None => workspace_root().join("target"),
    }
}

/// Where `cargo xtask build` puts the final modules: `<target dir>/modules`.
pub fn modules_dir() -> PathBuf {
    target_dir().join("modules")
}

/// Build `only` (or every filter), optimise, copy to `<target dir>/modules/NAME.wasm`, print
/// sizes and each module's build identity. Returns the modules directory.
pub fn build_and_report(only: &[String]) -> Result<PathBuf> {
    let all = filter_names()?;
    for n in only {
        if !all.contains(n) {
            bail!("no filter `{n}` (filters: {})", all.join(", "));
        }
    }
    let names: Vec<String> = if only.is_empty() { all } else { only.to_vec() };
    let root = workspace_root();
    let out_dir = modules_dir();
    std::fs::create_dir_all(&out_dir)?;
    let wasm_opt = which("wasm-opt");
    if wasm_opt.is_none() {
        println!(
            "note: wasm-opt not found (Debian package `binaryen`); modules are not post-optimised"
        );
    }
    println!(
        "{:<16} {:>12} {:>12}  build",
        "filter", "cargo bytes", "final bytes"
    );
    for name in &names {
        let built = modules::build(name, &target_dir())?;
        let out = out_dir.join(format!("{name}.wasm"));
        let before = size(&built)?;
        let optimised = match &wasm_opt {
            Some(bin) => optimise_cached(bin, &built, &out)?,
            None => false,
        };
        if !optimised {
            std::fs::copy(&built, &out).with_context(|| format!("copying {}", built.display()))?;
        }
        let identity = format!(
            "{name} {} ({})",
            crate::package::filter_version(name)?,
            build_id::commit(&root, name)?
        );
        println!(
            "{:<16} {:>12} {:>12}  {identity}",
            name,
            before,
            size(&out)?
        );
    }
    println!("modules in {}", out_dir.display());
    Ok(out_dir)
}

/// `wasm-opt` `input` into `output`, unless `output` is already the optimisation of these exact
/// input bytes with this `wasm-opt` and these flags (recorded in `output.opt-key`): wasm-opt is
/// deterministic (same input, same output; checked by a test), so the result can be reused.
fn optimise_cached(wasm_opt: &Path, input: &Path, output: &Path) -> Result<bool> {
    let key_file = output.with_extension("wasm.opt-key");
    let version = Command::new(wasm_opt)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let key = format!(
        "{} {version} {}",
        crate::package::sha256_digest(&bytes),
        WASM_OPT_ARGS.join(" ")
    );
    if output.is_file() && std::fs::read_to_string(&key_file).ok().as_deref() == Some(&key) {
        return Ok(true);
    }
    let _ = std::fs::remove_file(&key_file);
    let ok = optimise(wasm_opt, input, output);
    if ok {
        std::fs::write(&key_file, key)?;
    }
    Ok(ok)
}

/// Optimise `input` into `output` with [`WASM_OPT_ARGS`]; false (after a warning) if it failed.
pub fn optimise(wasm_opt: &Path, input: &Path, output: &Path) -> bool {
    let status = Command::new(wasm_opt)
        .args(WASM_OPT_ARGS)
        .arg(input)
        .arg("-o")
        .arg(output)
        .status();
    match status {
        Ok(s) if s.success() => true,
        other => {
            println!(
                "warning: wasm-opt failed on {} ({other:?}); using cargo's output",
                input.display()
            );
            false
        }
    }
}

fn size(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("reading {}", p.display()))?
        .len())
}

/// Find an executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::filter_kind;

    #[test]
    fn kind_is_read_from_the_metadata_table_only() {
        let m = "[package]\nname = \"x\"\n[package.metadata.filter]\nkind = \"network\"\n";
        assert_eq!(filter_kind(m), Some("network"));
        assert_eq!(filter_kind("[package]\nkind = \"network\"\n"), None);
        assert_eq!(filter_kind("[package]\nname = \"x\"\n"), None);
    }
}
