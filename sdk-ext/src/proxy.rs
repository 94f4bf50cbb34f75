//! The glue: the only code that talks to the proxy-wasm host ABI.
//!
//! [`install_http_filter`] registers a root context that parses and compiles the plugin
//! configuration once per `on_configure`, and an HTTP context per request that fetches the
//! header map with one host call, runs the filter's hooks and applies their decisions.

use crate::abi::{self, HostError};
use crate::build_info::BuildInfo;
use crate::callout::{grpc_status, CallOutcome, GrpcCall};
use crate::config::parse_json;
use crate::filter::{BodyChunk, Decision, HeaderOps, HostErrorPolicy, HttpFilter};
use crate::metrics::{Counter, MetricKind, MetricSink, Metrics};
use crate::reply::LocalReply;
use crate::shared::{Clock, Services, SharedStore, StoreError};
use crate::view::{PropertySource, RequestView};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, StreamType};
use std::cell::Cell;
use std::rc::Rc;

/// Properties read from the host on demand. A host error reads as "not set" (and is logged
/// once): every property a filter reads is optional to it.
pub struct HostProperties;

impl PropertySource for HostProperties {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match abi::property(path) {
            Ok(v) => v,
            Err(e) => {
                log_once(HostOp::Property, &e);
                None
            }
        }
    }
}

/// Metrics defined and updated through the host.
pub struct HostMetrics;

impl MetricSink for HostMetrics {
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let t = match kind {
            MetricKind::Counter => 0,
            MetricKind::Gauge => 1,
            MetricKind::Histogram => 2,
        };
        abi::define_metric(t, name).ok()
    }

    fn increment(&self, id: u32, delta: i64) {
        if let Err(e) = abi::increment_metric(id, delta) {
            log_once(HostOp::Metric, &e);
        }
    }

    fn record(&self, id: u32, value: u64) {
        if let Err(e) = abi::record_metric(id, value) {
            log_once(HostOp::Metric, &e);
        }
    }
}

/// Shared data of the plugin's `vm_id` (one map for every worker's VM), through the host.
pub struct HostSharedStore;

impl SharedStore for HostSharedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        abi::shared_data(key).map_err(|e| StoreError::Host(e.to_string()))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        // A version of 0 means "unconditional" to the host; it never hands out 0.
        match abi::set_shared_data(key, value, cas.unwrap_or(0)) {
            Ok(()) => Ok(()),
            Err(HostError::Status(abi::CAS_MISMATCH)) => Err(StoreError::CasMismatch),
            Err(e) => Err(StoreError::Host(e.to_string())),
        }
    }
}

/// The host's wall clock (`proxy_get_current_time_nanoseconds`; the same on every worker).
pub struct HostClock;

impl Clock for HostClock {
    fn now_nanos(&self) -> u64 {
        abi::current_time_nanos().unwrap_or_else(|e| {
            log_once(HostOp::Clock, &e);
            0
        })
    }
}

/// Kinds of host call, for logging each kind's first failure once per VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOp {
    ReadConfig,
    ReadHeaders,
    EditRequestHeaders,
    EditResponseHeaders,
    ReadBody,
    SendReply,
    ResetStream,
    Property,
    Metric,
    Clock,
    GrpcCall,
    ResumeRequest,
}

thread_local! {
    /// Bit `op as u32` set: that kind of failure was logged by this VM already.
    static LOGGED: Cell<u32> = const { Cell::new(0) };
}

/// Log a host error at error level the first time this VM sees that kind of call fail (a
/// failing host would otherwise log once per request); later ones are only counted.
pub fn log_once(op: HostOp, err: &HostError) {
    let bit = 1u32 << (op as u32);
    let first = LOGGED.with(|l| {
        let seen = l.get();
        l.set(seen | bit);
        seen & bit == 0
    });
    if first {
        log::error!(
            "host call failed ({op:?}): {err}; later failures of this kind are only counted"
        );
    }
}

/// The host's services for [`HttpFilter::configure_with`] (and for other glue, e.g. a TCP
/// filter's, that keeps state across requests).
pub fn host_services() -> Services {
    Services {
        shared: Rc::new(HostSharedStore),
        clock: Rc::new(HostClock),
    }
}

/// The `log` crate's backend: the proxy's log, through [`abi::log`] (whose status is ignored:
/// a log line that cannot be written is not worth a request). `proxy_wasm`'s own logger
/// unwraps the status of every line.
struct HostLogger;

static HOST_LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        let _ = abi::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Bridge the `log` crate to the proxy's log and log panics at critical before the module
/// aborts. Starts at info: the host's level cannot be read during `_initialize` (Envoy refuses
/// host calls there); [`sync_log_level`] adopts it once the VM is running.
pub fn init_logging() {
    if log::set_logger(&HOST_LOGGER).is_ok() {
        std::panic::set_hook(Box::new(|info| {
            let _ = abi::log(5, &info.to_string());
        }));
    }
    log::set_max_level(log::LevelFilter::Info);
}

/// Adopt the proxy's current log level, so disabled levels cost no formatting or host call.
pub fn sync_log_level() {
    if let Ok(level) = abi::log_level() {
        log::set_max_level(match level {
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Error => log::LevelFilter::Error,
            _ => log::LevelFilter::Off,
        });
    }
}

/// Register `F` as this module's HTTP filter. Called from the module's `_initialize` by
/// [`crate::export_http_filter!`].
pub fn install_http_filter<F: HttpFilter>() {
    install_http_filter_built::<F>(module_build(F::NAME));
}

/// [`install_http_filter`] with the module's [`BuildInfo`], logged and exposed at VM start.
pub fn install_http_filter_built<F: HttpFilter>(build: BuildInfo) {
    init_logging();
    set_build(build);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(FilterRoot::<F> {
            filter: None,
            host_errors: None,
            build: module_build(F::NAME),
        })
    });
}

/// The module's build, set once by the entry point (`set_root_context` takes a plain `fn`, so
/// the root contexts read it from here).
static BUILD: std::sync::OnceLock<BuildInfo> = std::sync::OnceLock::new();

/// Record the module's build (the first call wins; there is one entry point per module).
pub fn set_build(build: BuildInfo) {
    let _ = BUILD.set(build);
}

/// The module's build, or an unknown one named `name`.
pub fn module_build(name: &'static str) -> BuildInfo {
    BUILD.get().copied().unwrap_or(BuildInfo {
        name,
        version: "",
        commit: crate::build_info::UNKNOWN_COMMIT,
    })
}

/// At VM start: log `NAME VERSION (COMMIT) started` and set the gauge
/// `<filter>_build_<version>_<commit>` to 1 (see [`crate::build_info`]).
pub fn announce_build(filter_name: &str, build: &BuildInfo) {
    sync_log_level();
    log::info!("{build} started");
    let mut metrics = Metrics::new(filter_name, Rc::new(HostMetrics));
    match metrics.gauge(&build.metric_name()) {
        Ok(gauge) => gauge.set(1),
        Err(e) => log::warn!("{build}: build gauge not defined: {e}"),
    }
}

/// Root context: owns the compiled filter, shared by every request through an `Rc`.
pub struct FilterRoot<F: HttpFilter> {
    filter: Option<Rc<F>>,
    /// `<filter>_host_errors_total`.
    host_errors: Option<Counter>,
    build: BuildInfo,
}

impl<F: HttpFilter> Context for FilterRoot<F> {}

impl<F: HttpFilter> RootContext for FilterRoot<F> {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        announce_build(F::NAME, &self.build);
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        sync_log_level();
        let bytes = match abi::buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => {
                log_once(HostOp::ReadConfig, &e);
                log::error!(
                    "{}: cannot read the plugin configuration; configuration rejected",
                    F::NAME
                );
                return false;
            }
        };
        let mut metrics = Metrics::new(F::NAME, Rc::new(HostMetrics));
        let services = host_services();
        let built = parse_json::<F::Config>(&bytes)
            .and_then(|cfg| F::configure_with(cfg, &mut metrics, &services));
        match built {
            Ok(filter) => {
                log::info!("{}: configuration accepted", F::NAME);
                self.host_errors = self
                    .host_errors
                    .take()
                    .or_else(|| metrics.counter("host_errors_total").ok());
                self.filter = Some(Rc::new(filter));
                true
            }
            Err(err) => {
                // Envoy rejects the plugin config; on a live update it keeps the old one.
                log::error!("{}: {err}; configuration rejected", F::NAME);
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let filter = Rc::clone(self.filter.as_ref()?);
        Some(Box::new(FilterHttp::<F> {
            filter,
            state: F::State::default(),
            phase: Phase::Headers,
            host_errors: self.host_errors.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Where a request is in its lifecycle.
enum Phase {
    /// Waiting for request headers, or done with the request side.
    Headers,
    /// Headers held until the body arrives; the view is kept for the body hook.
    Buffering(RequestView),
    /// Headers held while a gRPC call the filter asked for is in flight; the view is kept for
    /// [`HttpFilter::on_call_response`].
    Calling(RequestView, Pending),
    /// A local reply was sent (or the stream reset); ignore the rest of the stream.
    Replied,
}

/// A gRPC call in flight: its token, and when it must have ended (host clock, ns).
#[derive(Debug, Clone, Copy)]
struct Pending {
    token: u32,
    deadline_nanos: u64,
}

/// Per-request context.
pub struct FilterHttp<F: HttpFilter> {
    filter: Rc<F>,
    state: F::State,
    phase: Phase,
    host_errors: Option<Counter>,
}

impl<F: HttpFilter> FilterHttp<F> {
    /// Log (once per VM and kind) and count a failed host call.
    fn host_error(&self, op: HostOp, err: &HostError) {
        log_once(op, err);
        if let Some(c) = &self.host_errors {
            c.inc();
        }
    }

    /// A host call on the request path failed: fail closed (503, else reset) or open
    /// (forward as is), as the filter declares.
    fn on_host_failure(&mut self, op: HostOp, err: &HostError) -> Action {
        self.host_error(op, err);
        match F::ON_HOST_ERROR {
            HostErrorPolicy::FailOpen => Action::Continue,
            HostErrorPolicy::FailClosed => {
                let reply = LocalReply::json(503, "unavailable", "filter could not run", None);
                self.reply(&reply)
            }
        }
    }

    fn apply_request_ops(&self, ops: &HeaderOps) -> Result<(), HostError> {
        let map = MapType::HttpRequestHeaders;
        for name in &ops.remove {
            abi::set_header(map, name, None)?;
        }
        for (n, v) in &ops.set {
            abi::set_header(map, n, Some(v))?;
        }
        for (n, v) in &ops.add {
            abi::add_header(map, n, v)?;
        }
        Ok(())
    }

    /// Apply `ops`, then act on `decision`; a failed edit is a host failure (a reply still
    /// goes out: a denial does not depend on the edits).
    fn finish(&mut self, ops: &HeaderOps, decision: Decision) -> Result<Decision, Action> {
        if let Err(e) = self.apply_request_ops(ops) {
            if let Decision::Respond(_) = decision {
                self.host_error(HostOp::EditRequestHeaders, &e);
                return Ok(decision);
            }
            return Err(self.on_host_failure(HostOp::EditRequestHeaders, &e));
        }
        Ok(decision)
    }

    /// Send a local reply; if the host refuses, reset the stream (a denial must never be
    /// forwarded). Either way the rest of the stream is ignored.
    fn reply(&mut self, reply: &LocalReply) -> Action {
        self.phase = Phase::Replied;
        if let Err(e) =
            abi::send_local_response(u32::from(reply.status), &reply.headers, &reply.body)
        {
            self.host_error(HostOp::SendReply, &e);
            if let Err(e) = abi::reset_stream() {
                self.host_error(HostOp::ResetStream, &e);
            }
        }
        Action::Pause
    }

    fn run_body_hook(&mut self, view: &RequestView, body: &[u8], truncated: bool) -> Action {
        let mut ops = HeaderOps::default();
        let chunk = BodyChunk {
            bytes: body,
            truncated,
        };
        let decision = self
            .filter
            .on_request_body(view, chunk, &mut self.state, &mut ops);
        self.phase = Phase::Headers;
        match self.finish(&ops, decision) {
            Err(action) => action,
            Ok(Decision::Respond(r)) => self.reply(&r),
            // The headers were paused; resume them along with the buffered body.
            Ok(Decision::Continue | Decision::InspectBody) => Action::Continue,
            // A call is only possible from the header hook.
            Ok(Decision::Call(_)) => self.on_host_failure(HostOp::GrpcCall, &HostError::Status(12)),
        }
    }

    /// Send `call` and hold the request until its outcome; a call the proxy refuses to send
    /// goes to the filter's call hook at once, as a failure.
    fn start_call(&mut self, view: RequestView, call: &GrpcCall) -> Action {
        match abi::grpc_call(
            &call.cluster,
            call.service,
            call.method,
            &call.message,
            call.timeout,
        ) {
            Ok(token) => {
                let timeout = u64::try_from(call.timeout.as_nanos()).unwrap_or(u64::MAX);
                let deadline_nanos = HostClock.now_nanos().saturating_add(timeout);
                let pending = Pending {
                    token,
                    deadline_nanos,
                };
                self.phase = Phase::Calling(view, pending);
                Action::Pause
            }
            Err(e) => {
                self.host_error(HostOp::GrpcCall, &e);
                let outcome = CallOutcome::Failed {
                    status: grpc_status::UNAVAILABLE,
                    dispatched: false,
                    timed_out: false,
                };
                self.run_call_hook(&view, outcome)
            }
        }
    }

    /// Whether the failed call was ended by its deadline: Envoy closes it with `UNAVAILABLE`
    /// and the message `upstream request timeout{response_timeout}` (its async client's own
    /// timeout reply, with the response details appended).
    fn envoy_timeout() -> bool {
        matches!(
            abi::grpc_call_status(),
            Ok((grpc_status::UNAVAILABLE, m)) if m.starts_with("upstream request timeout")
        )
    }

    /// The filter's call hook; its decision as the action of the (held) header callback.
    fn run_call_hook(&mut self, view: &RequestView, outcome: CallOutcome<'_>) -> Action {
        let mut ops = HeaderOps::default();
        let decision = self
            .filter
            .on_call_response(view, outcome, &mut self.state, &mut ops);
        match self.finish(&ops, decision) {
            Err(action) => action,
            Ok(Decision::Respond(r)) => self.reply(&r),
            Ok(Decision::Continue) => Action::Continue,
            // Neither a body inspection nor a second call can start once the headers were
            // held for a call.
            Ok(Decision::InspectBody | Decision::Call(_)) => {
                self.on_host_failure(HostOp::GrpcCall, &HostError::Status(12))
            }
        }
    }

    /// Up to `len` bytes of the request body, or the host failure's action.
    fn read_body(&mut self, len: usize) -> Result<Vec<u8>, Action> {
        match abi::buffer(BufferType::HttpRequestBody, 0, len) {
            Ok(b) => Ok(b.unwrap_or_default()),
            Err(e) => Err(self.on_host_failure(HostOp::ReadBody, &e)),
        }
    }
}

impl<F: HttpFilter> Context for FilterHttp<F> {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let (view, pending) = match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Calling(view, p) if p.token == token_id => (view, p),
            other => {
                self.phase = other;
                return;
            }
        };
        let body = if status_code == 0 {
            match abi::buffer(BufferType::GrpcReceiveBuffer, 0, response_size) {
                Ok(b) => Ok(b.unwrap_or_default()),
                Err(e) => {
                    self.host_error(HostOp::GrpcCall, &e);
                    Err(grpc_status::INTERNAL)
                }
            }
        } else {
            Err(status_code)
        };
        let outcome = match &body {
            Ok(b) => CallOutcome::Answer(b),
            Err(status) => CallOutcome::Failed {
                status: *status,
                dispatched: true,
                timed_out: *status == grpc_status::DEADLINE_EXCEEDED
                    || Self::envoy_timeout()
                    || HostClock.now_nanos() >= pending.deadline_nanos,
            },
        };
        // The header callback returned `Pause`: resume (or reply) from here.
        // Otherwise a reply was sent (or the stream reset) by the hook's decision.
        if self.run_call_hook(&view, outcome) == Action::Continue {
            if let Err(e) = abi::continue_stream(StreamType::HttpRequest) {
                self.host_error(HostOp::ResumeRequest, &e);
                // A held request that cannot be resumed must not hang: reset it.
                if let Err(e) = abi::reset_stream() {
                    self.host_error(HostOp::ResetStream, &e);
                }
            }
        }
    }
}

impl<F: HttpFilter> HttpContext for FilterHttp<F> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // Bytes: Envoy's HTTP/1 codec accepts obs-text (bytes 0x80-0xFF) in header values;
        // invalid sequences become U+FFFD here instead of trapping the VM.
        let headers = match abi::header_pairs(MapType::HttpRequestHeaders) {
            Ok(pairs) => pairs
                .into_iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(&n).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect(),
            Err(e) => return self.on_host_failure(HostOp::ReadHeaders, &e),
        };
        let view = RequestView::new(headers, Box::new(HostProperties));
        let mut ops = HeaderOps::default();
        let decision = self
            .filter
            .on_request_headers(&view, &mut self.state, &mut ops);
        let decision = match self.finish(&ops, decision) {
            Ok(d) => d,
            Err(action) => return action,
        };
        match decision {
            Decision::Continue => Action::Continue,
            Decision::Respond(r) => self.reply(&r),
            Decision::Call(call) => self.start_call(view, &call),
            Decision::InspectBody if end_of_stream || self.filter.max_body_bytes() == 0 => {
                self.run_body_hook(&view, &[], false)
            }
            Decision::InspectBody => {
                // Continue, not Pause: under ABI 0.2.1 Envoy turns a paused headers callback
                // into StopAllIterationAndWatermark, which also withholds the body from this
                // filter, so the body hook would never run and the request would hang. The
                // headers therefore travel on (the router opens the upstream request) while
                // the body is held by pausing `on_http_request_body` (StopIterationAndBuffer);
                // a local reply from the body hook resets the upstream request.
                self.phase = Phase::Buffering(view);
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let limit = self.filter.max_body_bytes();
        match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Buffering(view) if end_of_stream || body_size >= limit => {
                match self.read_body(body_size.min(limit)) {
                    Ok(body) => self.run_body_hook(&view, &body, body_size > limit),
                    Err(action) => action,
                }
            }
            Phase::Buffering(view) => {
                // Keep buffering (Envoy: StopIterationAndBuffer) until the limit or the end.
                self.phase = Phase::Buffering(view);
                Action::Pause
            }
            Phase::Replied => {
                self.phase = Phase::Replied;
                Action::Pause
            }
            // Held for a call: Envoy buffers the body until the request is resumed.
            Phase::Calling(view, pending) => {
                self.phase = Phase::Calling(view, pending);
                Action::Pause
            }
            Phase::Headers => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A body followed by trailers never sets end_of_stream on the body: inspect it now.
        match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Buffering(view) => {
                let limit = self.filter.max_body_bytes();
                match self.read_body(limit) {
                    Ok(body) => {
                        let truncated = body.len() >= limit;
                        self.run_body_hook(&view, &body, truncated)
                    }
                    Err(action) => action,
                }
            }
            other => {
                let held = matches!(other, Phase::Calling(..));
                self.phase = other;
                if held {
                    Action::Pause
                } else {
                    Action::Continue
                }
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let mut ops = HeaderOps::default();
        self.filter.on_response_headers(&mut self.state, &mut ops);
        // The response is on its way: a failed edit is logged and counted, never a reason to
        // drop the upstream's answer.
        let map = MapType::HttpResponseHeaders;
        let result = ops
            .remove
            .iter()
            .try_for_each(|name| abi::set_header(map, name, None))
            .and_then(|()| {
                ops.set
                    .iter()
                    .try_for_each(|(n, v)| abi::set_header(map, n, Some(v)))
            })
            .and_then(|()| {
                ops.add
                    .iter()
                    .try_for_each(|(n, v)| abi::add_header(map, n, v))
            });
        if let Err(e) = result {
            self.host_error(HostOp::EditResponseHeaders, &e);
        }
        Action::Continue
    }
}
