//! `noop`: an HTTP filter whose hooks are all the defaults (continue, change nothing).
//!
//! It exists to measure the floor every Rust Wasm filter pays in Envoy: the HTTP context per
//! request, one VM crossing per callback and the glue's header fetch. `cargo xtask bench`
//! reports every other filter's cost relative to it.

use sdk_ext::{ConfigError, FromJson, HttpFilter, Node, Setup};

/// No settings; `{}` or an empty configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {}

impl FromJson for Config {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.object(&[]).map(|_| Config {})
    }
}

/// The filter: nothing to compile, nothing to do.
pub struct NoopFilter;

impl HttpFilter for NoopFilter {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    type Config = Config;
    type State = ();

    fn configure(_config: Config, _setup: Setup<'_>) -> Result<Self, ConfigError> {
        Ok(Self)
    }
}

#[cfg(feature = "bench-host-calls")]
pub mod probe;

#[cfg(all(
    target_arch = "wasm32",
    feature = "export",
    not(feature = "bench-host-calls")
))]
sdk_ext::export_http_filter!(NoopFilter);

#[cfg(all(
    target_arch = "wasm32",
    feature = "export",
    feature = "bench-host-calls"
))]
sdk_ext::export_http_filter!(probe::HostCallProbe);

#[cfg(test)]
mod tests {
    use super::*;
    use sdk_ext::config::parse_json;
    use sdk_ext::testing::{configure, RequestBuilder};
    use sdk_ext::{Decision, HeaderOps};

    #[test]
    fn continues_and_changes_nothing() {
        let (f, _) = configure::<NoopFilter>("").unwrap();
        let req = RequestBuilder::get("/").header("x-a", "1").build();
        let mut ops = HeaderOps::default();
        assert_eq!(
            f.on_request_headers(&req, &mut (), &mut ops),
            Decision::Continue
        );
        f.on_response_headers(&mut (), &mut ops);
        assert!(ops.is_empty());
    }

    #[test]
    fn rejects_settings() {
        assert!(parse_json::<Config>(br#"{"x": 1}"#).is_err());
    }
}
