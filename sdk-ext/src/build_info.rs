//! Which build is running: `NAME VERSION (COMMIT)`.
//!
//! The export macros ([`crate::export_http_filter!`], [`crate::export_network_filter!`]) capture
//! it in the filter crate with [`crate::build_info!`]: the package name and version, and the
//! commit from `$PROXY_WASM_FILTER_COMMIT`, which `cargo xtask build` sets to the last commit
//! that changed the module's inputs (see `tests/src/build_id.rs`). At VM start the glue logs
//! `example 0.1.0 (3f2a9c1d7e12) started` and sets the gauge
//! `<filter>_build_<version>_<commit>` to 1 (`wasmcustom.example_build_0_1_0_3f2a9c1d7e12` in
//! Envoy's `/stats`), so the running build can be read from the proxy's log and its metrics.

use crate::metrics::metric_safe;

/// The environment variable the export macros read the commit from at compile time.
pub const COMMIT_ENV: &str = "PROXY_WASM_FILTER_COMMIT";

/// The commit when the module was built without `$PROXY_WASM_FILTER_COMMIT` (plain `cargo build`).
pub const UNKNOWN_COMMIT: &str = "unknown";

/// Name, version and commit of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// The filter crate's package name.
    pub name: &'static str,
    /// The filter crate's version.
    pub version: &'static str,
    /// Short commit of the last change to the module's inputs, `-dirty` when they had
    /// uncommitted changes, or [`UNKNOWN_COMMIT`].
    pub commit: &'static str,
}

impl BuildInfo {
    /// The gauge's name without the filter prefix: `build_<version>_<commit>`, in metric-safe
    /// characters (`0.1.0` -> `0_1_0`, `-dirty` -> `_dirty`).
    pub fn metric_name(&self) -> String {
        crate::config::cat(&[
            "build_",
            &metric_safe(self.version),
            "_",
            &metric_safe(self.commit),
        ])
    }

    /// `NAME VERSION (COMMIT)`, built without `core::fmt` (the glue's log lines use it; see
    /// `ConfigError::text`).
    pub fn text(&self) -> String {
        crate::config::cat(&[self.name, " ", self.version, " (", self.commit, ")"])
    }
}

impl std::fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// The [`BuildInfo`] of the crate this expands in. Used by the export macros; a change of
/// `$PROXY_WASM_FILTER_COMMIT` recompiles only that crate (cargo tracks `option_env!`).
#[macro_export]
macro_rules! build_info {
    () => {
        $crate::build_info::BuildInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            commit: match option_env!("PROXY_WASM_FILTER_COMMIT") {
                Some(commit) => commit,
                None => $crate::build_info::UNKNOWN_COMMIT,
            },
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_names_its_gauge() {
        let b = BuildInfo {
            name: "example",
            version: "0.1.0",
            commit: "3f2a9c1d7e12-dirty",
        };
        assert_eq!(b.to_string(), "example 0.1.0 (3f2a9c1d7e12-dirty)");
        assert_eq!(b.metric_name(), "build_0_1_0_3f2a9c1d7e12_dirty");
        let here = crate::build_info!();
        assert_eq!(
            (here.name, here.version),
            ("sdk-ext", env!("CARGO_PKG_VERSION"))
        );
    }
}
