//! HTTP threat scoring in the spirit of OWASP CRS anomaly scoring, as a pure-Rust engine: the
//! filter ([`ThreatScoreFilter`]) builds a [`Request`] view, calls [`Engine::inspect`] and
//! returns the [`Verdict`] as a decision that `sdk-ext`'s glue applies. Without its `export`
//! feature this crate does not link `proxy-wasm` at all (`cargo xtask boundary` checks it), so
//! the detectors are unit-tested, fuzzed and benchmarked natively.
//!
//! Pipeline: [`extract`] splits the request into values (path, arguments, cookies, headers,
//! body formats) and decodes them ([`decode`]); each [`detect`] module scores them; the engine
//! sums severities of distinct rules, compares with the threshold and applies the mode and the
//! limit policies.
//!
//! ```
//! use threat_score::{Config, Request, Verdict};
//! let engine = Config::default().compile().unwrap();
//! let headers = vec![("host".to_string(), "example.com".to_string())];
//! let req = Request::new("GET", "/search?q=1%27%20OR%20%271%27%3D%271").with_headers(&headers);
//! assert_eq!(engine.inspect(&req).verdict, Verdict::Block);
//! let req = Request::new("GET", "/search?q=blue+shoes").with_headers(&headers);
//! assert_eq!(engine.inspect(&req).verdict, Verdict::Allow);
//! ```

pub mod config;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod extract;
pub mod filter;
pub mod hostile;
pub mod model;
pub mod request;

pub use config::{Config, ConfigError, Exclusion, HeaderConfig, Limit, Limits, Mode, OnExceed};
pub use detect::DetectorKind;
pub use engine::Engine;
pub use extract::{Input, Prepared};
pub use filter::ThreatScoreFilter;
pub use model::{
    Assessment, Category, CategorySet, Detection, LimitKind, Location, Severity, Source, Verdict,
};
pub use request::Request;

#[cfg(all(target_arch = "wasm32", feature = "export"))]
sdk_ext::export_http_filter!(ThreatScoreFilter);
