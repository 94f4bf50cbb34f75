//! `example`: the template every filter in this workspace starts from.
//!
//! It adds a configurable header to every response and can deny requests that carry a
//! configured header. `cargo xtask new-filter NAME` copies this crate to `filters/NAME`.
//!
//! Configuration (all fields optional):
//! ```json
//! {
//!   "response_header": {"name": "x-example-filter", "value": "active"},
//!   "deny": {"header": {"name": "x-deny"}, "status": 403, "message": "request denied"}
//! }
//! ```

use sdk_ext::config::{header_name, http_status};
use sdk_ext::matcher::{HeaderMatchSpec, HeaderMatcher};
use sdk_ext::{
    ConfigError, Counter, Decision, FromJson, HeaderOps, HttpFilter, LocalReply, Node, RequestView,
    Setup,
};

/// The JSON configuration. Each type reads itself ([`FromJson`]): the members it accepts
/// (any other is refused), which are required and the defaults of the others; errors carry
/// the JSON path (`deny.status`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Header added to every response.
    pub response_header: ResponseHeader,
    /// Deny requests whose headers match; absent means never deny.
    pub deny: Option<Deny>,
}

impl FromJson for Config {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            response_header: or_default("response_header"),
            deny: opt("deny"),
        })
    }
}

/// A response header to add.
#[derive(Debug, Clone)]
pub struct ResponseHeader {
    pub name: String,
    pub value: String,
}

impl FromJson for ResponseHeader {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            name: req("name"),
            value: req("value"),
        })
    }
}

impl Default for ResponseHeader {
    fn default() -> Self {
        Self {
            name: "x-example-filter".into(),
            value: "active".into(),
        }
    }
}

/// When and how to deny.
#[derive(Debug, Clone)]
pub struct Deny {
    /// The header that triggers a denial (present, or matching `value`).
    pub header: HeaderMatchSpec,
    /// Status of the local reply. Default 403.
    pub status: u16,
    /// Message in the JSON body. Never contains request data.
    pub message: String,
}

impl FromJson for Deny {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            header: req("header"),
            status: or("status", 403),
            message: or_else("message", || "request denied".into()),
        })
    }
}

/// The compiled filter, shared by every request.
pub struct ExampleFilter {
    header: (String, String),
    deny: Option<(HeaderMatcher, u16, String)>,
    requests: Counter,
    denied: Counter,
}

impl HttpFilter for ExampleFilter {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    type Config = Config;
    type State = ();

    fn configure(config: Config, setup: Setup<'_>) -> Result<Self, ConfigError> {
        let metrics = setup.metrics;
        let name = header_name("response_header.name", &config.response_header.name)?;
        let deny = match config.deny {
            None => None,
            Some(d) => {
                let matcher = d.header.compile().map_err(|e| e.within("deny.header"))?;
                let status = http_status("deny.status", d.status)?;
                Some((matcher, status, d.message))
            }
        };
        Ok(Self {
            header: (name, config.response_header.value),
            deny,
            requests: metrics.counter("requests_total")?,
            denied: metrics.counter("denied_total")?,
        })
    }

    fn on_request_headers(
        &self,
        req: &RequestView,
        _state: &mut (),
        _ops: &mut HeaderOps,
    ) -> Decision {
        self.requests.inc();
        match &self.deny {
            Some((matcher, status, message)) if matcher.matches(req) => {
                self.denied.inc();
                log::debug!(
                    "{}: denied request (header `{}`)",
                    Self::NAME,
                    matcher.name()
                );
                Decision::Respond(LocalReply::json(
                    *status,
                    "denied",
                    message,
                    req.request_id(),
                ))
            }
            _ => Decision::Continue,
        }
    }

    fn on_response_headers(&self, _state: &mut (), ops: &mut HeaderOps) {
        ops.set(self.header.0.as_str(), self.header.1.as_str());
    }
}

#[cfg(all(target_arch = "wasm32", feature = "export"))]
sdk_ext::export_http_filter!(ExampleFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use sdk_ext::testing::{configure, RequestBuilder};

    #[test]
    fn default_config_adds_header_and_never_denies() {
        let (f, _) = configure::<ExampleFilter>("").unwrap();
        let req = RequestBuilder::get("/").header("x-deny", "1").build();
        assert_eq!(
            f.on_request_headers(&req, &mut (), &mut HeaderOps::default()),
            Decision::Continue
        );
        let mut ops = HeaderOps::default();
        f.on_response_headers(&mut (), &mut ops);
        assert_eq!(
            ops.set,
            vec![("x-example-filter".to_string(), "active".to_string())]
        );
    }

    #[test]
    fn denies_by_header_with_request_id_and_counts() {
        let (f, sink) = configure::<ExampleFilter>(
            r#"{"deny": {"header": {"name": "x-deny", "value": {"exact": "yes"}}, "status": 451}}"#,
        )
        .unwrap();
        let denied = RequestBuilder::get("/")
            .header("x-deny", "yes")
            .header("x-request-id", "r-1")
            .build();
        match f.on_request_headers(&denied, &mut (), &mut HeaderOps::default()) {
            Decision::Respond(r) => {
                assert_eq!(r.status, 451);
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(body["request_id"], "r-1");
            }
            other => panic!("expected a denial, got {other:?}"),
        }
        let allowed = RequestBuilder::get("/").header("x-deny", "no").build();
        assert_eq!(
            f.on_request_headers(&allowed, &mut (), &mut HeaderOps::default()),
            Decision::Continue
        );
        assert_eq!(sink.value("example_requests_total"), 2);
        assert_eq!(sink.value("example_denied_total"), 1);
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (
                r#"{"deny": {"header": {"name": "x"}, "status": 99}}"#,
                "deny.status",
            ),
            (
                r#"{"deny": {"header": {"name": "bad name"}}}"#,
                "deny.header.name",
            ),
            (
                r#"{"deny": {"header": {"name": "x", "value": {"regex": "("}}}}"#,
                "deny.header.value.regex",
            ),
            (
                r#"{"response_header": {"name": "", "value": "v"}}"#,
                "response_header.name",
            ),
            (r#"{"denny": {}}"#, "denny"),
            (
                r#"{"deny": {"header": {"name": "x"}, "stauts": 403}}"#,
                "deny.stauts",
            ),
        ];
        for (json, path) in cases {
            let err = configure::<ExampleFilter>(json)
                .err()
                .unwrap_or_else(|| panic!("accepted {json}"));
            assert_eq!(err.path, path, "{json}: {err}");
        }
    }
}
