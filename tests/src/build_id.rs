//! The commit a module is built from, for its `NAME VERSION (COMMIT)` (`sdk_ext::build_info`).
//!
//! The commit is the last one that changed the module's **inputs**: the filter crate, the
//! workspace crates it depends on (path dependencies, followed transitively; dev-dependencies
//! excluded), and the workspace files every build reads (`Cargo.toml`, `Cargo.lock`,
//! `rust-toolchain.toml`, `.cargo/config.toml`) plus the build recipe (`xtask/src/build.rs`), without what never reaches the module (`*.md`,
//! `tests/`, `examples/`, `benches/`, the `config.json` of local runs). Not `HEAD`: a module embeds its commit, so
//! embedding `HEAD` would change every module's bytes, and every pinned digest, on every commit.
//! This way a module changes only when its inputs do, the same checkout gives the same commit in
//! any folder or clone, and the commit still names a tree that builds the module.
//!
//! `-dirty` is appended when the inputs have uncommitted changes (such a module is not the
//! committed one). Without git, or outside a repository, the commit is `unknown`. A shallow
//! clone that does not reach the last input change reports its boundary commit instead: fetch
//! the history (`git fetch --unshallow`) to reproduce pinned modules.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Hex digits of the commit that are embedded.
pub const COMMIT_LEN: usize = 12;

/// Git pathspecs for files in the input directories that never reach a module.
const NOT_INPUTS: &[&str] = &[
    ":(exclude,glob)**/*.md",
    ":(exclude,glob)**/tests/**",
    ":(exclude,glob)**/examples/**",
    ":(exclude,glob)**/benches/**",
    ":(exclude,glob)**/config.json",
];

/// Files under the workspace root that every module build reads, and the build recipe itself
/// (`xtask/src/build.rs`: cargo flags, path remapping, the `wasm-opt` level), since a change
/// there changes the bytes of every module.
const WORKSPACE_INPUTS: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain.toml",
    ".cargo/config.toml",
    "xtask/src/build.rs",
];

/// The commit for `package` (see the module docs), or `unknown`.
pub fn commit(root: &Path, package: &str) -> Result<String> {
    let inputs = inputs(root, package)?;
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .arg("--")
            .args(&inputs)
            .args(NOT_INPUTS)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(last) = git(&["log", "-1", "--format=%H"]).filter(|c| c.len() >= COMMIT_LEN) else {
        return Ok("unknown".to_string());
    };
    let mut commit = last[..COMMIT_LEN].to_string();
    if git(&["status", "--porcelain", "--untracked-files=all"]).is_some_and(|s| !s.is_empty()) {
        commit.push_str("-dirty");
    }
    Ok(commit)
}

/// The module's inputs as paths relative to `root`: the directories of `package` and of every
/// workspace crate it depends on (normal and build dependencies, transitively), then the
/// workspace files in [`WORKSPACE_INPUTS`] that exist.
pub fn inputs(root: &Path, package: &str) -> Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"]
        .as_array()
        .context("cargo metadata: no packages")?;
    let dir_of = |name: &str| -> Option<PathBuf> {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["manifest_path"].as_str())
            .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
    };
    let mut todo = vec![package.to_string()];
    let mut seen: Vec<String> = Vec::new();
    let mut dirs = Vec::new();
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        let dir = dir_of(&name).with_context(|| format!("no workspace package `{name}`"))?;
        let pkg = packages.iter().find(|p| p["name"] == name.as_str());
        for dep in pkg
            .and_then(|p| p["dependencies"].as_array())
            .into_iter()
            .flatten()
        {
            if dep["kind"] != "dev" && dep["path"].is_string() {
                if let Some(n) = dep["name"].as_str() {
                    todo.push(n.to_string());
                }
            }
        }
        dirs.push(dir.strip_prefix(root).unwrap_or(&dir).to_path_buf());
        seen.push(name);
    }
    dirs.sort();
    dirs.extend(
        WORKSPACE_INPUTS
            .iter()
            .map(PathBuf::from)
            .filter(|p| root.join(p).exists()),
    );
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_follow_path_dependencies_but_not_dev_dependencies() {
        let root = crate::workspace_root();
        let example = inputs(&root, "example").unwrap();
        assert!(example.contains(&PathBuf::from("filters/example")));
        assert!(example.contains(&PathBuf::from("sdk-ext")));
        assert!(example.contains(&PathBuf::from("Cargo.lock")));
        assert!(!example.contains(&PathBuf::from("filters/policy")));
        let suite = inputs(&root, "suite").unwrap();
        for member in ["filters/policy", "filters/router", "filters/threat-score"] {
            assert!(suite.contains(&PathBuf::from(member)), "{suite:?}");
        }
        // `example` and `noop` are the suite's dev-dependencies only.
        assert!(
            !suite.contains(&PathBuf::from("filters/example")),
            "{suite:?}"
        );
    }
}
