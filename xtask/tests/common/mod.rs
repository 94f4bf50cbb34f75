//! Shared by the xtask end-to-end tests: run the `xtask` binary, copy the manifests tree, run
//! `xtask up` (its own process group, output drained and searched, killed on drop).

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

/// Envoy's ECDS filters (admin `config_dump`) run with `failure_policy: FAIL_OPEN`.
pub fn assert_ecds_fail_open(admin: &str) {
    let dump = envoy_harness::Client::new()
        .get(&format!("{admin}/config_dump?resource=ecds_filters"))
        .unwrap()
        .body;
    assert!(dump.contains("\"failure_policy\": \"FAIL_OPEN\""), "{dump}");
}

/// A test's directories for `xtask up --plugins`: `modules/`, the modules it serves, and `tmp/`,
/// the temporary files of xtask and its Envoy (inside the test's own directory, even though the
/// process group is killed without a chance to clean up). Removed on drop.
pub struct UpDirs {
    pub root: tempfile::TempDir,
    pub modules: PathBuf,
    pub tmp: PathBuf,
}

impl UpDirs {
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let (modules, tmp) = (root.path().join("modules"), root.path().join("tmp"));
        std::fs::create_dir_all(&modules).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        Self { root, modules, tmp }
    }

    /// Put filter `name`'s module (`envoy_harness::modules`) in `modules/`.
    pub fn add_module(&self, name: &str) {
        let module = envoy_harness::modules::module(name).unwrap();
        std::fs::copy(module, self.modules.join(format!("{name}.wasm"))).unwrap();
    }
}

/// A running `xtask up`, in its own process group (it starts Envoy), killed as a group on drop;
/// its stdout is drained for as long as it runs (a closed pipe would stop it) and its lines are
/// collected.
pub struct UpProcess {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// How long `up` may take to print a line waited for (Envoy start on a loaded machine).
const UP_WAIT: std::time::Duration = std::time::Duration::from_secs(180);

impl UpProcess {
    /// `xtask up --plugins PLUGINS` serving `dirs`' modules on free ports (`--port 0
    /// --admin-port 0`), then `extra` options.
    pub fn plugins(dirs: &UpDirs, plugins: &Path, extra: &[&str]) -> Self {
        Self::start(
            xtask()
                .env("TMPDIR", &dirs.tmp)
                .arg("up")
                .arg("--plugins")
                .arg(plugins)
                .arg("--modules")
                .arg(&dirs.modules)
                .args(["--port", "0", "--admin-port", "0"])
                .args(extra),
        )
    }

    /// Start `cmd` (an `xtask up` command line, e.g. from another workspace).
    pub fn start(cmd: &mut Command) -> Self {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = cmd
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

    /// The first output line containing `needle`.
    pub fn wait_line(&self, needle: &str) -> String {
        self.wait_line_from(needle, 0)
    }

    /// The first output line containing `needle` from line `from` on (see
    /// [`UpProcess::line_count`]).
    pub fn wait_line_from(&self, needle: &str, from: usize) -> String {
        let deadline = std::time::Instant::now() + UP_WAIT;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .skip(from)
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no `{needle}` in output:\n{}",
                self.output()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// How many lines `up` has printed so far.
    pub fn line_count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The HTTP listener's URL (`URL: http://127.0.0.1:P/`, with its slash).
    pub fn url(&self) -> String {
        last_word(&self.wait_line("URL:"))
    }

    /// The admin URL, without the trailing slash.
    pub fn admin(&self) -> String {
        last_word(&self.wait_line("admin:"))
            .trim_end_matches('/')
            .to_string()
    }

    /// The guarded TCP listener's address (the `guard TCP` line).
    pub fn tcp_addr(&self) -> std::net::SocketAddr {
        self.wait_line("guard TCP")
            .split_whitespace()
            .find(|w| w.starts_with("127.0.0.1:"))
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

fn last_word(line: &str) -> String {
    line.split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
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
