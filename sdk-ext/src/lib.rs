//! `sdk-ext`: what every filter in this workspace needs on top of the `proxy-wasm` crate.
//!
//! Filters implement [`HttpFilter`]: plain Rust over plain data (a [`RequestView`] in, a
//! [`Decision`] out). Two layers:
//!
//! * **logic** (always built): everything below except `abi`, `proxy` and `proxy_network`. It
//!   has no `proxy-wasm` dependency, compiles and is unit-tested natively.
//! * **glue** (feature `glue`, turned on only by a filter's `export` feature): `abi`, `proxy`,
//!   `proxy_network` and the export macros, the only code that talks to the host ABI. Without
//!   the feature, `proxy-wasm` is not in the dependency graph, so a filter's logic build cannot
//!   call the host; `cargo xtask test` checks this for every filter.
//!
//! * `abi` (glue): the host calls, returning the host's status (never panicking).
//! * [`config`]: typed reading of the JSON plugin configuration ([`FromJson`], [`Node`]) with
//!   unknown fields rejected; errors name the JSON path and the reason. [`json`]: its parser.
//! * [`view`]: the request as the filter sees it: headers fetched once, properties on demand.
//! * [`cookie`]: request cookies and a cookie matcher.
//! * [`path`]: path normalization (RFC 3986 dot segments, unreserved escapes, merged slashes)
//!   that path matchers apply by default.
//! * [`matcher`]: method, path, host, header, query and source-CIDR matchers, compiled at
//!   configure time.
//! * [`metrics`]: counters, gauges and histograms declared once at configure time.
//! * [`reply`]: local replies with a small JSON body carrying the request id.
//! * [`jwt`]: JWT claims from `jwt_authn`'s verified dynamic metadata (default) or, opted in, a
//!   payload header.
//! * [`callout`]: asynchronous gRPC calls a request hook asks for (`Decision::Call`).
//! * [`filter`]: the [`HttpFilter`] trait and what a filter can ask the proxy to do.
//! * [`lifecycle`]: the request lifecycle as a host-free state machine (events in, steps out)
//!   that the glue executes; table-tested natively.
//! * [`shared`]: host services for state across requests: shared data with compare-and-swap,
//!   a clock ([`Services`]).
//! * [`ratelimit`]: token buckets shared by every worker, with a bounded key count.
//! * [`network`], `proxy_network` (glue): the same for network (L4) filters:
//!   [`network::NetworkFilter`] over a connection view and the first bytes, exported with
//!   `export_network_filter!`.
//! * [`conn_limit`]: counters shared by every worker (open connections per source).
//! * [`build_info`]: `NAME VERSION (COMMIT)` of the module, logged and exposed at VM start.
//! * [`testing`]: fakes (properties, metric sink) for native unit tests of filters.

#[cfg(feature = "glue")]
pub mod abi;
pub mod build_info;
pub mod callout;
pub mod config;
pub mod conn_limit;
pub mod cookie;
pub mod filter;
pub mod glob;
pub mod json;
pub mod jwt;
pub mod lifecycle;
pub mod matcher;
pub mod metrics;
pub mod network;
pub mod path;
#[cfg(feature = "glue")]
pub mod proxy;
#[cfg(feature = "glue")]
mod proxy_defaults;
#[cfg(feature = "glue")]
pub mod proxy_network;
pub mod ratelimit;
pub mod reply;
pub mod shared;
pub mod testing;
pub mod view;

pub use config::{parse_json, ConfigError, FromJson, Node};
pub use filter::{BodyChunk, Decision, HeaderOps, HostErrorPolicy, HttpFilter, Setup};
pub use metrics::{Counter, Gauge, Histogram, Metrics};
pub use reply::LocalReply;
pub use shared::Services;
pub use view::RequestView;

/// Re-exported so [`export_http_filter!`] works in crates that do not depend on `proxy-wasm`.
#[cfg(feature = "glue")]
#[doc(hidden)]
pub use proxy_wasm as __proxy_wasm;

/// Export `$filter` (a type implementing [`HttpFilter`]) as the proxy-wasm module's entry point.
/// Needs the `glue` feature (a filter's `export` feature turns it on: `export =
/// ["sdk-ext/glue"]`).
///
/// Use it once per `cdylib`, gated on the target so native builds and crates that embed the
/// filter (the suite module) do not export a second entry point:
///
/// ```text
/// #[cfg(all(target_arch = "wasm32", feature = "export"))]
/// sdk_ext::export_http_filter!(MyFilter);
/// ```
#[cfg(feature = "glue")]
#[macro_export]
macro_rules! export_http_filter {
    ($filter:ty) => {
        $crate::__proxy_wasm::main! {{
            $crate::proxy::install_http_filter_built::<$filter>($crate::build_info!());
        }}
    };
}

/// Export `$filter` (a type implementing [`network::NetworkFilter`]) as the proxy-wasm module's
/// entry point, for `envoy.filters.network.wasm`. Gate it like [`export_http_filter!`]:
/// `#[cfg(all(target_arch = "wasm32", feature = "export"))]`.
#[cfg(feature = "glue")]
#[macro_export]
macro_rules! export_network_filter {
    ($filter:ty) => {
        $crate::__proxy_wasm::main! {{
            $crate::proxy_network::install_network_filter_built::<$filter>(
                $crate::build_info!(),
            );
        }}
    };
}
