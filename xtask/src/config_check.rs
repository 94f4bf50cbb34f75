//! Each filter's own configuration parser, found from the filter itself.
//!
//! A filter module's entry point names its filter type: `sdk_ext::export_http_filter!(T)` or
//! `sdk_ext::export_network_filter!(T)` in `filters/<name>/src/lib.rs`. From those, this module
//! writes a small native program (`<target dir>/config-check/`) that depends on every filter crate
//! (`default-features = false`, as a library), and for each `{filter, config}` it is given runs
//! the code `on_configure` runs: parse the JSON as `T::Config`, then `T::configure`. So
//! `cargo xtask validate` checks a `pluginConfig` with exactly the filter's parser, and a new
//! filter (`cargo xtask new-filter`) is covered without any list to edit.
//!
//! The program has its own target directory (under the workspace's), so it builds while a
//! `cargo test` holds the workspace's build lock; cargo rebuilds it when a filter changes.

use crate::plugins::PluginType;
use anyhow::{bail, Context, Result};
use envoy_harness::workspace_root;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A filter module and the type its entry point exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterEntry {
    /// Package name (`tcp-guard`).
    pub name: String,
    /// The exported type, as a path from the crate root (`TcpGuard`).
    pub ty: String,
    pub kind: PluginType,
}

/// The entry point in a filter's `lib.rs`: `export_http_filter!(T)` / `export_network_filter!(T)`.
pub fn entry_point(lib_rs: &str) -> Option<(PluginType, String)> {
    for (mac, kind) in [
        ("export_http_filter!", PluginType::Http),
        ("export_network_filter!", PluginType::Network),
    ] {
        for line in lib_rs.lines() {
            let code = line.split("//").next().unwrap_or_default();
            let Some(at) = code.find(mac) else { continue };
            let args = code[at + mac.len()..].trim_start();
            let Some(inner) = args.strip_prefix('(') else {
                continue;
            };
            let ty: String = inner
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if !ty.is_empty() && ty != "$filter" {
                return Some((kind, ty));
            }
        }
    }
    None
}

/// Every filter module under `filters/` with its entry point.
pub fn discover() -> Result<Vec<FilterEntry>> {
    let mut out = Vec::new();
    for name in crate::build::filter_names()? {
        let lib = workspace_root()
            .join("filters")
            .join(&name)
            .join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap_or_default();
        if let Some((kind, ty)) = entry_point(&text) {
            out.push(FilterEntry { name, ty, kind });
        }
    }
    Ok(out)
}

/// The generated checker program.
pub struct Checker {
    exe: PathBuf,
    filters: Vec<FilterEntry>,
}

/// What the filter's parser said about one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected(String),
    NoSuchFilter,
}

impl Checker {
    /// Write (when changed) and build the checker for every filter module.
    pub fn build() -> Result<Self> {
        let filters = discover()?;
        let dir = crate::build::target_dir().join("config-check");
        std::fs::create_dir_all(dir.join("src"))?;
        let root = workspace_root();
        write_if_changed(&dir.join("Cargo.toml"), &manifest(&root, &filters))?;
        write_if_changed(&dir.join("src/main.rs"), &main_rs(&filters))?;
        // The workspace's lock: the same dependency versions as the modules.
        if let Ok(lock) = std::fs::read(root.join("Cargo.lock")) {
            if std::fs::read(dir.join("Cargo.lock")).ok().as_deref() != Some(&lock[..]) {
                std::fs::write(dir.join("Cargo.lock"), lock)?;
            }
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(&dir)
            .args(["build", "--quiet", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(dir.join("target"))
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .context("building the configuration checker")?;
        if !out.status.success() {
            bail!(
                "building the configuration checker ({}) failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Self {
            exe: dir.join("target/debug/filter-config-check"),
            filters,
        })
    }

    /// The filter module `name`, if there is one.
    pub fn filter(&self, name: &str) -> Option<&FilterEntry> {
        self.filters.iter().find(|f| f.name == name)
    }

    /// Run `filter`'s parser on `config` (JSON text; empty = no configuration).
    pub fn check(&self, filter: &str, config: &str) -> Result<Verdict> {
        if self.filter(filter).is_none() {
            return Ok(Verdict::NoSuchFilter);
        }
        let mut child = Command::new(&self.exe)
            .arg(filter)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", self.exe.display()))?;
        child
            .stdin
            .take()
            .context("checker stdin")?
            .write_all(config.as_bytes())?;
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match out.status.code() {
            Some(0) => Ok(Verdict::Accepted),
            Some(1) => Ok(Verdict::Rejected(text)),
            _ => bail!(
                "the configuration checker failed on `{filter}`: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn manifest(root: &Path, filters: &[FilterEntry]) -> String {
    let mut deps = format!(
        "sdk-ext = {{ path = {:?} }}\n",
        root.join("sdk-ext").display().to_string()
    );
    for f in filters {
        let dir = root.join("filters").join(&f.name);
        let features = std::fs::read_to_string(dir.join("Cargo.toml"))
            .map(|t| library_features(&t))
            .unwrap_or_default();
        deps.push_str(&format!(
            "{} = {{ path = {:?}, default-features = false, features = {features:?} }}\n",
            f.name,
            dir.display().to_string()
        ));
    }
    format!(
        "# Generated by `cargo xtask validate` (xtask/src/config_check.rs) from filters/*/src/lib.rs.\n\
         [package]\nname = \"filter-config-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\n{deps}"
    )
}

/// A filter crate's default features but `export` (its proxy-wasm entry point, which a native
/// program cannot link): what its own module is built with, so the checker refuses exactly what
/// the module refuses (policy's `callouts`, say: without it a global rate limit is refused).
fn library_features(cargo_toml: &str) -> Vec<String> {
    let mut in_features = false;
    let mut offset = 0;
    for line in cargo_toml.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        let line = line.trim();
        if line.starts_with('[') {
            in_features = line == "[features]";
        } else if in_features
            && line
                .strip_prefix("default")
                .is_some_and(|r| r.trim_start().starts_with('='))
        {
            // The array may span lines: the text from `default` to its closing bracket.
            let rest = &cargo_toml[at..];
            let list = rest.split_once('[').and_then(|(_, r)| r.split_once(']'));
            return list.map_or(Vec::new(), |(list, _)| {
                list.split(',')
                    .map(|f| f.trim().trim_matches('"').to_string())
                    .filter(|f| !f.is_empty() && f != "export")
                    .collect()
            });
        }
    }
    Vec::new()
}

fn main_rs(filters: &[FilterEntry]) -> String {
    let mut arms = String::new();
    for f in filters {
        let krate = f.name.replace('-', "_");
        let call = match f.kind {
            PluginType::Http => "http",
            PluginType::Network => "network",
        };
        arms.push_str(&format!(
            "        {:?} => {call}::<{krate}::{}>(&config),\n",
            f.name, f.ty
        ));
    }
    format!(
        r#"//! Generated by `cargo xtask validate` (xtask/src/config_check.rs): runs a filter's own
//! configuration parser and `configure` on stdin. Exit 0: accepted; 1: rejected (the reason on
//! stdout); 2: usage.

use sdk_ext::network::NetworkFilter;
use sdk_ext::shared::Services;
use sdk_ext::testing::{{configure, configure_network}};
use sdk_ext::{{ConfigError, HttpFilter}};
use std::io::Read;

fn http<F: HttpFilter>(json: &str) -> Result<(), ConfigError> {{
    configure::<F>(json).map(|_| ())
}}

fn network<F: NetworkFilter>(json: &str) -> Result<(), ConfigError> {{
    configure_network::<F>(json, Services::local()).map(|_| ())
}}

fn main() {{
    let filter = std::env::args().nth(1).unwrap_or_default();
    let mut config = String::new();
    if std::io::stdin().read_to_string(&mut config).is_err() {{
        std::process::exit(2);
    }}
    let result = match filter.as_str() {{
{arms}        _ => std::process::exit(2),
    }};
    if let Err(e) = result {{
        println!("{{e}}");
        std::process::exit(1);
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_features_are_the_defaults_but_the_entry_point() {
        let toml = "[package]\nname = \"p\"\n\n[features]\ndefault = [\"export\", \"callouts\"]\nexport = []\ncallouts = []\n";
        assert_eq!(library_features(toml), ["callouts"]);
        let multi = "[features]\ndefault = [\n  \"export\",\n  \"a\",\n  \"b\",\n]\n";
        assert_eq!(library_features(multi), ["a", "b"]);
        assert!(library_features("[features]\ndefault = [\"export\"]\n").is_empty());
        assert!(library_features("[dependencies]\ndefault = [\"x\"]\n").is_empty());
        assert!(library_features("[package]\nname = \"q\"\n").is_empty());
        // The workspace's filters: policy's module keeps `callouts`.
        let root = envoy_harness::workspace_root();
        let policy =
            std::fs::read_to_string(root.join("filters/policy/Cargo.toml")).unwrap_or_default();
        assert_eq!(library_features(&policy), ["callouts"]);
    }

    #[test]
    fn finds_the_entry_point_of_each_kind() {
        let http = "#[cfg(all(target_arch = \"wasm32\", feature = \"export\"))]\nsdk_ext::export_http_filter!(ExampleFilter);\n";
        assert_eq!(
            entry_point(http),
            Some((PluginType::Http, "ExampleFilter".into()))
        );
        let net = "sdk_ext::export_network_filter!(filter::TcpGuard);";
        assert_eq!(
            entry_point(net),
            Some((PluginType::Network, "filter::TcpGuard".into()))
        );
        assert_eq!(entry_point("// sdk_ext::export_http_filter!(Old);\n"), None);
        assert_eq!(entry_point("pub struct X;"), None);
    }

    #[test]
    fn every_filter_module_has_an_entry_point() {
        let found = discover().unwrap();
        for name in crate::build::filter_names().unwrap() {
            assert!(found.iter().any(|f| f.name == name), "{name}: {found:?}");
        }
        let tcp = found.iter().find(|f| f.name == "tcp-guard").unwrap();
        assert_eq!(tcp.kind, PluginType::Network);
    }
}
