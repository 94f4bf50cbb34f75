//! Shared by the xtask end-to-end tests: run the `xtask` binary, copy the manifests tree.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn workspace() -> PathBuf {
    envoy_harness::workspace_root()
}

/// The `xtask` binary built for these tests (never `cargo run`: the outer `cargo test` holds
/// the build lock). Without `$FILTER_MODULES_DIR` (a plain `cargo test`), what it builds goes to
/// `target/harness`, the harness's own target directory, for the same reason.
pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.current_dir(workspace());
    if std::env::var_os("FILTER_MODULES_DIR").is_none() {
        c.env("CARGO_TARGET_DIR", workspace().join("target/harness"));
    }
    c
}

/// The final modules (`<dir>/<filter>.wasm`, as `cargo xtask build` writes them):
/// `$FILTER_MODULES_DIR`, else built once with `xtask build` into `target/harness/modules`.
pub fn modules_dir() -> PathBuf {
    static DIR: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut dir = DIR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = dir.as_ref() {
        return d.clone();
    }
    let d = match std::env::var_os("FILTER_MODULES_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let (ok, out, err) = run(xtask().arg("build"));
            assert!(ok, "xtask build: {out}\n{err}");
            workspace().join("target/harness/modules")
        }
    };
    *dir = Some(d.clone());
    d
}

/// The WasmPlugin named `name` among `docs`.
pub fn plugin<'a>(docs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == "WasmPlugin" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no WasmPlugin {name}"))
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

/// A running `xtask up`, in its own process group (it starts Envoy), killed as a group on drop;
/// its stdout lines are collected.
pub struct UpProcess {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl UpProcess {
    /// `xtask up ARGS` with temporary files under `tmp`.
    pub fn spawn(tmp: &Path, args: &[&std::ffi::OsStr]) -> Self {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = xtask()
            .env("TMPDIR", tmp)
            .arg("up")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                println!("up| {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    /// The first output line containing `needle` (waits up to 120 s).
    pub fn wait_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no `{needle}` in output:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        // The group is xtask and the Envoy it started; both were started by this test.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
