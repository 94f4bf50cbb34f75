//! Shared by the xtask end-to-end tests: run the `xtask` binary, copy the manifests tree.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn workspace() -> PathBuf {
    envoy_harness::workspace_root()
}

/// The `xtask` binary built for these tests (never `cargo run`: the outer `cargo test` holds
/// the build lock).
pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.current_dir(workspace());
    c
}

/// Run to completion; returns (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Copy the committed `istio/` tree into `dst/istio` (overlays refer to `../../base`).
pub fn copy_istio(dst: &Path) -> PathBuf {
    let to = dst.join("istio");
    copy_tree(&workspace().join("istio"), &to);
    to
}

pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// Replace `from` (which must occur) with `to` in a file.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// `kubectl kustomize DIR` as JSON documents.
pub fn kustomize(dir: &Path) -> Vec<serde_json::Value> {
    let (ok, out, err) = run(Command::new("kubectl").arg("kustomize").arg(dir));
    assert!(ok, "kubectl kustomize {}: {err}", dir.display());
    serde_yaml_ng::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}
