//! The host-call probe (feature `bench-host-calls`, a measurement build, never deployed): the
//! no-op filter plus `count` host calls of one `kind` per request, through the same glue the
//! filters use. Two scenarios of the same module, `count` 20 and 0, differ only by those calls,
//! so their Envoy CPU per request, divided by 20, is what one call of that kind costs in Envoy
//! (bench/README.md, "Host calls: what each costs in Envoy").
//!
//! Configuration: `{"kind": KIND, "count": N}` (N <= 1000). Kinds, each a call a filter of this
//! workspace makes per request:
//!
//! * `metric`: `proxy_increment_metric` (a counter's `inc`);
//! * `clock`: `proxy_get_current_time_nanoseconds` (policy's rate limit);
//! * `shared_get`, `shared_set`: `proxy_get_shared_data` / `proxy_set_shared_data` of one
//!   8-byte value (policy's token bucket reads, then writes with compare-and-swap; the set
//!   here is unconditional);
//! * `property`: `proxy_get_property` of `request.protocol` (threat-score on some requests);
//! * `request_header`: `proxy_replace_header_map_value` on the request headers, each of a
//!   different header (router's tag; Envoy clears the route cache on each);
//! * `response_header`: the same on the response headers (no route to clear);
//! * `body`: the request body buffered (`StopIteration` until it is complete) and read with one
//!   `proxy_get_buffer_bytes` on every request that announces one (`count` unused), as
//!   threat-score does.

use sdk_ext::{
    BodyChunk, ConfigError, Counter, Decision, FromJson, HeaderOps, HttpFilter, Node, RequestView,
    Services, Setup,
};

/// What the probe calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Metric,
    Clock,
    SharedGet,
    SharedSet,
    Property,
    RequestHeader,
    ResponseHeader,
    Body,
}

/// `{"kind": .., "count": ..}`.
#[derive(Debug, Clone)]
pub struct Config {
    pub kind: Kind,
    pub count: u32,
}

impl FromJson for Config {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let o = node.object(&["kind", "count"])?;
        let kind = o.req_with("kind", |n| {
            n.choice(&[
                ("metric", Kind::Metric),
                ("clock", Kind::Clock),
                ("shared_get", Kind::SharedGet),
                ("shared_set", Kind::SharedSet),
                ("property", Kind::Property),
                ("request_header", Kind::RequestHeader),
                ("response_header", Kind::ResponseHeader),
                ("body", Kind::Body),
            ])
        })?;
        let count: u32 = o.req("count")?;
        if count > 1000 {
            return Err(o.error("count above 1000"));
        }
        Ok(Config { kind, count })
    }
}

/// The probe: the configured calls, nothing else.
pub struct HostCallProbe {
    kind: Kind,
    count: u32,
    counter: Counter,
    services: Services,
    /// `x-probe-0` .. `x-probe-{count-1}`, built once.
    names: Vec<String>,
}

/// The shared-data key the probe reads and writes.
const KEY: &str = "noop-probe";

impl HostCallProbe {
    fn calls(&self, req: Option<&RequestView>) {
        for _ in 0..self.count {
            match self.kind {
                Kind::Metric => self.counter.inc(),
                Kind::Clock => {
                    std::hint::black_box(self.services.clock.now_nanos());
                }
                Kind::SharedGet => {
                    let _ = std::hint::black_box(self.services.shared.get(KEY));
                }
                Kind::SharedSet => {
                    let _ = self.services.shared.set(KEY, &[1; 8], None);
                }
                Kind::Property => {
                    if let Some(req) = req {
                        std::hint::black_box(req.raw_property(&["request", "protocol"]));
                    }
                }
                Kind::RequestHeader | Kind::ResponseHeader | Kind::Body => {}
            }
        }
    }

    fn header_edits(&self, ops: &mut HeaderOps) {
        for name in &self.names {
            ops.set(name.clone(), "1");
        }
    }
}

impl HttpFilter for HostCallProbe {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    type Config = Config;
    type State = ();

    fn configure(config: Config, setup: Setup<'_>) -> Result<Self, ConfigError> {
        let counter = setup.metrics.counter("probe_total")?;
        let _ = setup.services.shared.set(KEY, &[0; 8], None);
        let names = match config.kind {
            Kind::RequestHeader | Kind::ResponseHeader => (0..config.count)
                .map(|i| ["x-probe-", &i.to_string()].concat())
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            kind: config.kind,
            count: config.count,
            counter,
            services: setup.services,
            names,
        })
    }

    fn on_request_headers(&self, req: &RequestView, _: &mut (), ops: &mut HeaderOps) -> Decision {
        self.calls(Some(req));
        match self.kind {
            Kind::RequestHeader => self.header_edits(ops),
            Kind::Body
                if req.header("content-length").is_some()
                    || req.header("transfer-encoding").is_some() =>
            {
                return Decision::InspectBody
            }
            _ => {}
        }
        Decision::Continue
    }

    fn max_body_bytes(&self) -> usize {
        65536
    }

    fn on_request_body(
        &self,
        _req: &RequestView,
        body: BodyChunk<'_>,
        _: &mut (),
        _: &mut HeaderOps,
    ) -> Decision {
        std::hint::black_box(body.bytes);
        Decision::Continue
    }

    fn on_response_headers(&self, _: &mut (), ops: &mut HeaderOps) {
        if self.kind == Kind::ResponseHeader {
            self.header_edits(ops);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk_ext::testing::{configure, RequestBuilder};

    #[test]
    fn makes_the_configured_calls() {
        let (f, _) =
            configure::<HostCallProbe>(r#"{"kind": "request_header", "count": 3}"#).unwrap();
        let req = RequestBuilder::get("/").build();
        let mut ops = HeaderOps::default();
        assert_eq!(
            f.on_request_headers(&req, &mut (), &mut ops),
            Decision::Continue
        );
        assert_eq!(ops.set.len(), 3);
        let (f, _) = configure::<HostCallProbe>(r#"{"kind": "body", "count": 0}"#).unwrap();
        let post = RequestBuilder::post("/")
            .header("content-length", "2")
            .build();
        assert_eq!(
            f.on_request_headers(&post, &mut (), &mut HeaderOps::default()),
            Decision::InspectBody
        );
        assert!(configure::<HostCallProbe>(r#"{"kind": "x", "count": 1}"#).is_err());
    }
}
