//! The glue: the only code that talks to the proxy-wasm host ABI.
//!
//! [`install_http_filter`] registers a root context that parses and compiles the plugin
//! configuration once per `on_configure`, and an HTTP context per request that fetches the
//! header map with one host call, runs the filter's hooks and applies their decisions.

use crate::build_info::BuildInfo;
use crate::config::parse_json;
use crate::filter::{BodyChunk, Decision, HeaderOps, HttpFilter};
use crate::metrics::{MetricKind, MetricSink, Metrics};
use crate::reply::LocalReply;
use crate::shared::{Clock, Services, SharedStore, StoreError};
use crate::view::{PropertySource, RequestView};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use std::rc::Rc;

/// Properties read from the host on demand.
pub struct HostProperties;

impl PropertySource for HostProperties {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }
}

/// Metrics defined and updated through the host.
pub struct HostMetrics;

impl MetricSink for HostMetrics {
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let t = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        hostcalls::define_metric(t, name).ok()
    }

    fn increment(&self, id: u32, delta: i64) {
        let _ = hostcalls::increment_metric(id, delta);
    }

    fn record(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// Shared data of the plugin's `vm_id` (one map for every worker's VM), through the host.
pub struct HostSharedStore;

impl SharedStore for HostSharedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Ok(Some((value, cas.unwrap_or(0)))),
            Ok((None, _)) => Ok(None),
            Err(status) => Err(StoreError::Host(format!("{status:?}"))),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        // A version of 0 means "unconditional" to the host; it never hands out 0.
        match hostcalls::set_shared_data(key, Some(value), cas.filter(|c| *c != 0)) {
            Ok(()) => Ok(()),
            Err(proxy_wasm::types::Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => Err(StoreError::Host(format!("{status:?}"))),
        }
    }
}

/// The host's wall clock (`proxy_get_current_time_nanoseconds`; the same on every worker).
pub struct HostClock;

impl Clock for HostClock {
    fn now_nanos(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
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

/// Bridge the `log` crate to the proxy's log and log panics at critical before the module
/// aborts. Starts at info: the host's level cannot be read during `_initialize` (Envoy refuses
/// host calls there); [`sync_log_level`] adopts it once the VM is running.
pub fn init_logging() {
    proxy_wasm::set_log_level(LogLevel::Info);
}

/// Adopt the proxy's current log level, so disabled levels cost no formatting or host call.
pub fn sync_log_level() {
    if let Ok(level) = hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
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
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let mut metrics = Metrics::new(F::NAME, Rc::new(HostMetrics));
        let services = host_services();
        let built = parse_json::<F::Config>(&bytes)
            .and_then(|cfg| F::configure_with(cfg, &mut metrics, &services));
        match built {
            Ok(filter) => {
                log::info!("{}: configuration accepted", F::NAME);
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
    /// A local reply was sent; ignore the rest of the stream.
    Replied,
}

/// Per-request context.
pub struct FilterHttp<F: HttpFilter> {
    filter: Rc<F>,
    state: F::State,
    phase: Phase,
}

impl<F: HttpFilter> FilterHttp<F> {
    fn apply_request_ops(&self, ops: &HeaderOps) {
        for name in &ops.remove {
            self.set_http_request_header(name, None);
        }
        for (n, v) in &ops.set {
            self.set_http_request_header(n, Some(v));
        }
        for (n, v) in &ops.add {
            self.add_http_request_header(n, v);
        }
    }

    fn reply(&mut self, reply: &LocalReply) -> Action {
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.send_http_response(u32::from(reply.status), headers, Some(&reply.body));
        self.phase = Phase::Replied;
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
        self.apply_request_ops(&ops);
        self.phase = Phase::Headers;
        match decision {
            Decision::Respond(r) => self.reply(&r),
            Decision::Continue | Decision::InspectBody => {
                // The headers were paused; resume them along with the buffered body.
                Action::Continue
            }
        }
    }
}

impl<F: HttpFilter> Context for FilterHttp<F> {}

impl<F: HttpFilter> HttpContext for FilterHttp<F> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // Bytes, not `get_http_request_headers`: that one unwraps `String::from_utf8` on every
        // value, and Envoy's HTTP/1 codec accepts obs-text (bytes 0x80-0xFF) in header values,
        // so one such header would trap the VM. Invalid sequences become U+FFFD here.
        let headers = self
            .get_http_request_headers_bytes()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let view = RequestView::new(headers, Box::new(HostProperties));
        let mut ops = HeaderOps::default();
        let decision = self
            .filter
            .on_request_headers(&view, &mut self.state, &mut ops);
        self.apply_request_ops(&ops);
        match decision {
            Decision::Continue => Action::Continue,
            Decision::Respond(r) => self.reply(&r),
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
                let body = self
                    .get_http_request_body(0, body_size.min(limit))
                    .unwrap_or_default();
                self.run_body_hook(&view, &body, body_size > limit)
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
            Phase::Headers => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A body followed by trailers never sets end_of_stream on the body: inspect it now.
        match std::mem::replace(&mut self.phase, Phase::Headers) {
            Phase::Buffering(view) => {
                let limit = self.filter.max_body_bytes();
                let body = self.get_http_request_body(0, limit).unwrap_or_default();
                let truncated = body.len() >= limit;
                self.run_body_hook(&view, &body, truncated)
            }
            other => {
                self.phase = other;
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let mut ops = HeaderOps::default();
        self.filter.on_response_headers(&mut self.state, &mut ops);
        for name in &ops.remove {
            self.set_http_response_header(name, None);
        }
        for (n, v) in &ops.set {
            self.set_http_response_header(n, Some(v));
        }
        for (n, v) in &ops.add {
            self.add_http_response_header(n, v);
        }
        Action::Continue
    }
}
