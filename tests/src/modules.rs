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

/// Code-generation flags of every module build, before the caller's own (which can override
/// them: the last `-Cllvm-args` value wins). LLVM's inline threshold at 100 instead of
/// `opt-level = 3`'s 250 (issue 13, measured in bench/README.md "Module size and cold start"):
/// threat-score -14 KB, suite -29 KB, router -10 KB, policy -8 KB after wasm-opt, for +1.7%
/// Wasm instructions per request on threat-score and the suite (+0.5% policy, -2% router).
/// No runtime loop unrolling (`-unroll-runtime=false`: loops whose trip count is known only
/// at run time are not unrolled with a remainder loop; constant-count loops still are):
/// threat-score -6.3 KB, suite -10.4 KB, tcp-guard -4.2 KB, router -3.0 KB, policy -2.1 KB
/// for +1.25% Wasm instructions per request on threat-score, +1.12% on the suite, 0 on the
/// others (branch `threat-size3`). Module size is cold-start time, paid on every push and every
/// new VM.
///
/// Panics abort at once (`-Cpanic=immediate-abort`, with std built from source by
/// [`BUILD_STD`]): no panic message formatting, no `Location` records, no unwinding or hook
/// machinery in the module (threat-score -39 KB, suite -54 KB after wasm-opt; bench/README.md,
/// "Module size and cold start"). The filters' request paths do not panic by construction
/// (`clippy::unwrap_used`, `expect_used`, `panic` and `disallowed_methods` deny every
/// panicking call the workspace could make); what a panic would have logged is lost, the trap
/// itself is not: V8 reports `RuntimeError: unreachable` with the hook's name in Envoy's log and
/// the plugin's `fail_open` decides, exactly as after a panic with the message.
pub const MODULE_RUSTFLAGS: &[&str] = &[
    "-Cllvm-args=-inline-threshold=100",
    "-Cllvm-args=-unroll-runtime=false",
    "-Zunstable-options",
    "-Cpanic=immediate-abort",
];

/// Cargo's arguments that compile std (and core, alloc) from the pinned toolchain's `rust-src`
/// with the module, so that `-Cpanic=immediate-abort` reaches std's own panics and std's code
/// is optimised with the module's settings. Unstable cargo and rustc options on the pinned
/// stable compiler, allowed by `RUSTC_BOOTSTRAP=1` for these builds only ([`build`]); the
/// toolchain is pinned (rust-toolchain.toml), so their behaviour cannot change under us.
/// `setup.sh` installs `rust-src`.
///
/// std, core and alloc at `opt-level = 3`, as the prebuilt std is: the workspace's
/// `[profile.release.package."*"]` (`"z"`, meant for crates.io dependencies) would otherwise
/// reach them. Measured (`cargo xtask build`, `cargo xtask bench --instructions`): at 3 they
/// are both smaller and faster than at `"z"` under the module's inline threshold (threat-score
/// 420,209 -> 418,511 bytes, 143,653 -> 142,673 instructions per request; the suite 667,356 ->
/// 662,277, 157,968 -> 156,631). On the command line rather than in Cargo.toml, where every
/// build without `-Zbuild-std` would warn that the packages are not in its graph.
pub const BUILD_STD: &[&str] = &[
    "-Zbuild-std=std,panic_abort",
    "--config",
    "profile.release.package.std.opt-level=3",
    "--config",
    "profile.release.package.core.opt-level=3",
    "--config",
    "profile.release.package.alloc.opt-level=3",
];

/// The rustflags of module builds (`CARGO_ENCODED_RUSTFLAGS`: `\x1f`-separated):
/// [`MODULE_RUSTFLAGS`], the caller's own (`$CARGO_ENCODED_RUSTFLAGS` or `$RUSTFLAGS`), then
/// `--remap-path-prefix` for the three absolute paths rustc would otherwise embed in panic
/// locations and `file!()`: the checkout (`/workspace`), cargo's home with the registry and git
/// sources (`/cargo`) and the target directory with build-script output (`/target`). The last
/// matching mapping wins in rustc, so the target directory (usually inside the checkout) comes
/// last. Cargo does not hash rustflags into `-C metadata` (cargo#7417), so symbol names, and
/// therefore the module, are the same in any folder with any `CARGO_HOME`. With `--target`,
/// rustflags apply to the wasm crates only, never to build scripts or proc macros, so host
/// artifacts are shared with other builds.
pub fn reproducible_rustflags(target_dir: &std::path::Path) -> String {
    let mut flags: Vec<String> = MODULE_RUSTFLAGS.iter().map(|f| f.to_string()).collect();
    flags.extend(
        match (
            std::env::var("CARGO_ENCODED_RUSTFLAGS"),
            std::env::var("RUSTFLAGS"),
        ) {
            (Ok(encoded), _) if !encoded.is_empty() => {
                encoded.split('\x1f').map(String::from).collect()
            }
            (_, Ok(plain)) => plain.split_whitespace().map(String::from).collect(),
            _ => Vec::new(),
        },
    );
    let root = crate::workspace_root();
    let mut remap = |from: PathBuf, to: &str| {
        let mut seen = Vec::new();
        for p in [from.clone(), from.canonicalize().unwrap_or(from)] {
            if !seen.contains(&p) {
                flags.push(format!("--remap-path-prefix={}={to}", p.display()));
                seen.push(p);
            }
        }
    };
    remap(root, "/workspace");
    remap(cargo_home(), "/cargo");
    // std's sources (BUILD_STD), where the prebuilt std says they are.
    if let Some((src, to)) = std_sources() {
        remap(src, &to);
    }
    remap(target_dir.to_path_buf(), "/target");
    flags.join("\x1f")
}

/// The pinned toolchain's library sources (`SYSROOT/lib/rustlib/src/rust`, what
/// [`BUILD_STD`] compiles) and `/rustc/COMMIT`, the prefix the prebuilt std's own paths carry:
/// rustup's home (and the toolchain's folder name) would otherwise be in the module. Asked of
/// rustc once per process (every module build needs the same answer).
fn std_sources() -> Option<(PathBuf, String)> {
    static SOURCES: std::sync::OnceLock<Option<(PathBuf, String)>> = std::sync::OnceLock::new();
    SOURCES.get_or_init(ask_rustc_for_std_sources).clone()
}

/// [`std_sources`], from `rustc --print=sysroot` and `rustc -vV`.
fn ask_rustc_for_std_sources() -> Option<(PathBuf, String)> {
    let rustc = |arg: &str| {
        Command::new("rustc")
            .current_dir(crate::workspace_root())
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let sysroot = rustc("--print=sysroot")?;
    let version = rustc("-vV")?;
    let commit = version
        .lines()
        .find_map(|l| l.strip_prefix("commit-hash: "))?
        .trim()
        .to_string();
    let src = PathBuf::from(sysroot.trim()).join("lib/rustlib/src/rust");
    Some((src, format!("/rustc/{commit}")))
}

/// `$CARGO_HOME`, else `~/.cargo` (cargo's own rule).
pub fn cargo_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cargo")
}

/// `cargo build --release --target wasm32-wasip1 -p NAME` into `target_dir`; returns the
/// `.wasm` path. One package per invocation, so features of crates that embed a filter
/// (`default-features = false`) never leak into the filter's own module. Built with
/// [`reproducible_rustflags`], so the bytes do not depend on where anything lives.
pub fn build(name: &str, target_dir: &std::path::Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::workspace_root())
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            reproducible_rustflags(target_dir),
        )
        .env(
            "PROXY_WASM_FILTER_COMMIT",
            crate::build_id::commit(&crate::workspace_root(), name)?,
        )
        .env_remove("RUSTFLAGS")
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            WASM_TARGET,
            "-p",
            name,
        ])
        .args(BUILD_STD)
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
