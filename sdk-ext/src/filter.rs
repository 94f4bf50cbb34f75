//! The contract between a filter's logic and the proxy glue.
//!
//! A filter is a value built once per configuration (`configure`, given its config and a
//! [`Setup`], as network filters are) and shared by every request;
//! per-request data lives in `State`. Hooks receive plain data and say what to do; they never
//! call the host. The glue in `sdk_ext::proxy` (feature `glue`) turns each [`Decision`] and [`HeaderOps`] into
//! host calls.

use crate::callout::{CallOutcome, GrpcCall};
use crate::config::ConfigError;
use crate::config::FromJson;
use crate::metrics::Metrics;
use crate::reply::LocalReply;
use crate::shared::Services;
use crate::view::RequestView;

/// What to do with the request after a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward it (with any header changes applied).
    Continue,
    /// Answer locally; the request never reaches the upstream.
    Respond(LocalReply),
    /// Hold the request body until it (up to [`HttpFilter::max_body_bytes`]) has arrived, then
    /// call [`HttpFilter::on_request_body`]. Only meaningful from `on_request_headers`.
    ///
    /// Envoy (proxy-wasm ABI 0.2.1) cannot hold the headers *and* hand the body to the same
    /// filter: the headers go on to the upstream first, only the body waits for the decision.
    /// A `Respond` from the body hook still stops the request (the upstream stream is reset
    /// before any body byte reaches it), but header changes made there do not reach the
    /// upstream: they are applied after the headers were sent.
    InspectBody,
    /// Hold the request, make this gRPC call, then call [`HttpFilter::on_call_response`] with
    /// the outcome; its decision applies. Only meaningful from `on_request_headers` (elsewhere
    /// the glue treats it as a host failure). One call per request.
    Call(GrpcCall),
}

/// Header changes a hook asks for; applied in order: removals, then sets, then adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOps {
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
}

impl HeaderOps {
    /// Replace every value of `name` with `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.set.push((name.into(), value.into()));
    }
    /// Append a value (keeps existing values).
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.add.push((name.into(), value.into()));
    }
    /// Remove every value of `name`.
    pub fn remove(&mut self, name: impl Into<String>) {
        self.remove.push(name.into());
    }
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
    /// Append `other`'s edits (each list keeps its order). An empty list takes `other`'s as
    /// it is (no new allocation and copy: the suite hands its one editor's edits on this way).
    pub fn extend(&mut self, other: HeaderOps) {
        fn append<T>(to: &mut Vec<T>, from: Vec<T>) {
            if to.is_empty() {
                *to = from;
            } else {
                to.extend(from);
            }
        }
        append(&mut self.remove, other.remove);
        append(&mut self.set, other.set);
        append(&mut self.add, other.add);
    }
    /// Every header name these edits touch, lowercase (possibly repeated).
    pub fn touched_names(&self) -> impl Iterator<Item = String> + '_ {
        self.remove
            .iter()
            .chain(self.set.iter().map(|(n, _)| n))
            .chain(self.add.iter().map(|(n, _)| n))
            .map(|n| n.to_ascii_lowercase())
    }
}

/// What the glue does when the host refuses a call on the request path (reading the headers or
/// the body, applying the filter's header changes). Either way the error is logged (once per
/// VM and kind of call) and counted in `<filter>_host_errors_total`. A local reply that cannot
/// be sent resets the stream whatever the policy: a denial is never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostErrorPolicy {
    /// Answer 503 (or reset the stream if that fails too): the request does not go on
    /// without the filter's decision or edits. The default, and right for any filter that
    /// enforces something (a header it failed to strip would reach the upstream).
    FailClosed,
    /// Forward the request as it is (without the filter's decision or edits).
    FailOpen,
}

/// What a filter gets at configure time besides its config (HTTP and network filters alike).
pub struct Setup<'a> {
    /// Register counters, gauges and histograms.
    pub metrics: &'a mut Metrics,
    /// Shared data (one store for every worker of this `vm_id`) and the proxy's clock, to keep
    /// for the request path (e.g. rate limits). Native use: [`Services::local`].
    pub services: Services,
}

/// The request body as the filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct BodyChunk<'a> {
    /// The first `min(size, max_body_bytes)` bytes of the body.
    pub bytes: &'a [u8],
    /// True when the body is longer than `max_body_bytes` and `bytes` is a prefix.
    pub truncated: bool,
}

/// An HTTP filter's logic. Implement it, then export it with [`crate::export_http_filter!`].
pub trait HttpFilter: Sized + 'static {
    /// Filter name: metric prefix (`-` becomes `_`) and log prefix.
    const NAME: &'static str;
    /// The JSON configuration: a type that reads itself from the document ([`FromJson`],
    /// unknown members refused).
    type Config: FromJson;
    /// Per-request state, created with `Default` for each request.
    type State: Default + 'static;
    /// What the glue does when a host call on the request path fails. Default: fail closed.
    const ON_HOST_ERROR: HostErrorPolicy = HostErrorPolicy::FailClosed;
    /// Whether this filter type can ever return [`Decision::Call`] (whatever its
    /// configuration; [`HttpFilter::calls_out`] says whether a configured one does). The glue
    /// links the gRPC call machinery only for such filters, so the others do not pay for it in
    /// module bytes (cold start); a `Call` from a filter that declared `false` is treated as a
    /// host refusal (status 12, UNIMPLEMENTED) and follows [`HttpFilter::ON_HOST_ERROR`].
    /// Default: false.
    const MAY_CALL: bool = false;

    /// Phase: plugin (re)configuration. Validate and compile `config`; define metrics with
    /// `setup.metrics`; keep `setup.services` (shared data, clock) for filters that keep state
    /// across requests. An error refuses the configuration: Envoy will not start with it, and
    /// on a live update it keeps the previous configuration.
    fn configure(config: Self::Config, setup: Setup<'_>) -> Result<Self, ConfigError>;

    /// Phase: request headers received. Default: continue.
    fn on_request_headers(
        &self,
        _req: &RequestView,
        _state: &mut Self::State,
        _ops: &mut HeaderOps,
    ) -> Decision {
        Decision::Continue
    }

    /// How many body bytes [`Decision::InspectBody`] buffers at most. Default: 0.
    fn max_body_bytes(&self) -> usize {
        0
    }

    /// Phase: request body complete (or `max_body_bytes` reached), after `InspectBody`.
    /// `ops` is applied, but the request headers have already gone upstream (see
    /// [`Decision::InspectBody`]), so changes made here are not seen by the upstream.
    /// Default: continue.
    fn on_request_body(
        &self,
        _req: &RequestView,
        _body: BodyChunk<'_>,
        _state: &mut Self::State,
        _ops: &mut HeaderOps,
    ) -> Decision {
        Decision::Continue
    }

    /// Whether this filter (as configured) may return [`Decision::Call`]. A host that cannot
    /// hold the request for a call (the suite's composition) refuses such a configuration.
    /// Default: false.
    fn calls_out(&self) -> bool {
        false
    }

    /// Phase: the gRPC call asked for by [`Decision::Call`] ended (answer, failure or
    /// timeout); the request is still held. `req` is the view the header hook saw; `ops`
    /// changes the request headers before they go upstream. Returning `Call` again is treated
    /// as a host failure. Default: continue.
    fn on_call_response(
        &self,
        _req: &RequestView,
        _outcome: CallOutcome<'_>,
        _state: &mut Self::State,
        _ops: &mut HeaderOps,
    ) -> Decision {
        Decision::Continue
    }

    /// Phase: response headers from the upstream (or a local reply). `ops` changes response
    /// headers. Default: nothing.
    fn on_response_headers(&self, _state: &mut Self::State, _ops: &mut HeaderOps) {}
}
