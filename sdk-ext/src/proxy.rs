//! The glue: the only code that talks to the proxy-wasm host ABI.
//!
//! [`install_http_filter`] registers a root context that parses and compiles the plugin
//! configuration once per `on_configure`, and an HTTP context per request that fetches the
//! header map with one host call and executes the steps of the request's lifecycle
//! ([`crate::lifecycle::HttpStream`], where every decision is made and tested natively).

use crate::abi::{self, HostError};
use crate::build_info::BuildInfo;
use crate::callout::GrpcCall;
use crate::config::{cat, parse_json};
use crate::filter::{HeaderOps, HttpFilter, Setup};
pub use crate::lifecycle::HostOp;
use crate::lifecycle::{CallClose, HttpStream, Side, Step, Then};
use crate::metrics::{Counter, MetricKind, MetricSink, Metrics};
use crate::proxy_defaults::{
    no_host_context_defaults, no_host_httpcontext_defaults, no_host_rootcontext_defaults,
};
use crate::shared::{Clock, Services, SharedStore, StoreError};
use crate::view::{text_lossy, PropertySource, RequestView};
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
        abi::shared_data(key).map_err(|e| StoreError::Host(e.text()))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        // A version of 0 means "unconditional" to the host; it never hands out 0.
        match abi::set_shared_data(key, value, cas.unwrap_or(0)) {
            Ok(()) => Ok(()),
            Err(HostError::Status(abi::CAS_MISMATCH)) => Err(StoreError::CasMismatch),
            Err(e) => Err(StoreError::Host(e.text())),
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
        host_log(
            log::Level::Error,
            &[
                "host call failed (",
                op.name(),
                "): ",
                &err.text(),
                "; later failures of this kind are only counted",
            ],
        );
    }
}

/// Log `parts`, joined, at `level` when the proxy's level lets it through: the glue's own lines
/// (the same text as through the `log` crate, which [`HostLogger`] prints unchanged), built
/// without `core::fmt`. A module whose filter formats nothing then links none of `fmt`'s
/// `Display` code (`str`'s padding, integers), which V8 compiled at every push
/// (bench/README.md, "Module size and cold start").
#[inline(never)]
pub fn host_log(level: log::Level, parts: &[&str]) {
    if level <= log::max_level() {
        let _ = abi::log(level_code(level), &cat(parts));
    }
}

/// The ABI's code of a `log` level.
fn level_code(level: log::Level) -> u32 {
    match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    }
}

/// The host's services for a filter's [`Setup`] (HTTP and network glue alike).
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
        // `fmt::write` itself, not `to_string()` (`format`'s capacity estimate and `write_fmt`
        // are more code compiled in every module); a message without arguments as it is.
        let args = record.args();
        let level = level_code(record.level());
        let _ = match args.as_str() {
            Some(text) => abi::log(level, text),
            None => {
                let mut text = String::new();
                let _ = std::fmt::write(&mut text, *args);
                abi::log(level, &text)
            }
        };
    }

    fn flush(&self) {}
}

/// Bridge the `log` crate to the proxy's log and log panics at critical before the module
/// aborts (in builds with a panic runtime: the modules `cargo xtask build` makes abort at once,
/// without a message, `tests/src/modules.rs` `MODULE_RUSTFLAGS`). Starts at info: the host's level cannot be read during `_initialize` (Envoy refuses
/// host calls there); [`sync_log_level`] adopts it once the VM is running.
pub fn init_logging() {
    // A module built with `-Cpanic=immediate-abort` (`cargo xtask build`) traps at the panic
    // site and never runs a hook: installing one there only links the hook's formatting.
    #[cfg(not(panic = "immediate-abort"))]
    if log::set_logger(&HOST_LOGGER).is_ok() {
        std::panic::set_hook(Box::new(|info| {
            let _ = abi::log(5, &info.to_string());
        }));
    }
    #[cfg(panic = "immediate-abort")]
    let _ = log::set_logger(&HOST_LOGGER);
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
    let text = build.text();
    host_log(log::Level::Info, &[&text, " started"]);
    let mut metrics = Metrics::new(filter_name, Rc::new(HostMetrics));
    match metrics.gauge(&build.metric_name()) {
        Ok(gauge) => gauge.set(1),
        Err(e) => host_log(
            log::Level::Warn,
            &[&text, ": build gauge not defined: ", &e.text()],
        ),
    }
}

/// Root context: owns the compiled filter, shared by every request through an `Rc`.
pub struct FilterRoot<F: HttpFilter> {
    filter: Option<Rc<F>>,
    /// `<filter>_host_errors_total`.
    host_errors: Option<Counter>,
    build: BuildInfo,
}

impl<F: HttpFilter> Context for FilterRoot<F> {
    no_host_context_defaults!();
}

impl<F: HttpFilter> RootContext for FilterRoot<F> {
    no_host_rootcontext_defaults!();

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
                host_log(
                    log::Level::Error,
                    &[
                        F::NAME,
                        ": cannot read the plugin configuration; configuration rejected",
                    ],
                );
                return false;
            }
        };
        let mut metrics = Metrics::new(F::NAME, Rc::new(HostMetrics));
        let built = parse_json::<F::Config>(&bytes).and_then(|cfg| {
            let setup = Setup {
                metrics: &mut metrics,
                services: host_services(),
            };
            F::configure(cfg, setup)
        });
        match built {
            Ok(filter) => {
                host_log(log::Level::Info, &[F::NAME, ": configuration accepted"]);
                self.host_errors = self
                    .host_errors
                    .take()
                    .or_else(|| metrics.counter("host_errors_total").ok());
                self.filter = Some(Rc::new(filter));
                true
            }
            Err(err) => {
                // Envoy rejects the plugin config; on a live update it keeps the old one.
                host_log(
                    log::Level::Error,
                    &[F::NAME, ": ", &err.text(), "; configuration rejected"],
                );
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let filter = Rc::clone(self.filter.as_ref()?);
        Some(Box::new(FilterHttp::<F> {
            stream: HttpStream::new(filter),
            host_errors: self.host_errors.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Per-request context: executes the lifecycle's steps.
pub struct FilterHttp<F: HttpFilter> {
    stream: HttpStream<F>,
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

    /// Report a refused call to the lifecycle, which answers with the next step. Out of line:
    /// eight call sites, each an inlined copy of the logging and counting before.
    #[inline(never)]
    fn refused(&mut self, op: HostOp, err: &HostError) -> Step {
        self.host_error(op, err);
        self.stream.on_host_error(op)
    }

    /// Execute `step` and the steps it leads to, until one answers the callback.
    fn execute(&mut self, mut step: Step) -> Action {
        loop {
            if let Some(edits) = step.edits.take() {
                let (map, op) = match edits.side {
                    Side::Request => (MapType::HttpRequestHeaders, HostOp::EditRequestHeaders),
                    Side::Response => (MapType::HttpResponseHeaders, HostOp::EditResponseHeaders),
                };
                if let Err(e) = apply_ops(map, &edits.ops) {
                    if edits.required {
                        step = self.refused(op, &e);
                        continue;
                    }
                    self.host_error(op, &e);
                }
            }
            step = match step.then {
                Then::Continue => return Action::Continue,
                Then::Pause => return Action::Pause,
                Then::Reply(reply) => match abi::send_local_response(
                    u32::from(reply.status),
                    &reply.headers,
                    &reply.body,
                ) {
                    Ok(()) => return Action::Pause,
                    Err(e) => self.refused(HostOp::SendReply, &e),
                },
                Then::Reset => match abi::reset_stream() {
                    Ok(()) => return Action::Pause,
                    Err(e) => self.refused(HostOp::ResetStream, &e),
                },
                Then::ReadBody(len) => match abi::buffer(BufferType::HttpRequestBody, 0, len) {
                    Ok(body) => self.stream.on_body_read(body.unwrap_or_default()),
                    Err(e) => self.refused(HostOp::ReadBody, &e),
                },
                Then::NoBody => self.stream.on_body_read(Vec::new()),
                // A filter type that cannot call has no call machinery linked (`MAY_CALL`).
                Then::Call(_) if !F::MAY_CALL => {
                    self.refused(HostOp::GrpcCall, &HostError::Status(abi::UNIMPLEMENTED))
                }
                Then::Call(call) => match send_call(&call) {
                    Ok(token) => self.stream.on_call_dispatched(token, HostClock.now_nanos()),
                    Err(e) => self.refused(HostOp::GrpcCall, &e),
                },
                // Steps that only follow a call (its answer, the held request's resumption): a
                // filter type that cannot call never gets them, and links neither host call.
                Then::ReadCallAnswer(_) if !F::MAY_CALL => self.refused(
                    HostOp::ReadCallAnswer,
                    &HostError::Status(abi::UNIMPLEMENTED),
                ),
                Then::Resume if !F::MAY_CALL => self.refused(
                    HostOp::ResumeRequest,
                    &HostError::Status(abi::UNIMPLEMENTED),
                ),
                Then::ReadCallAnswer(len) => {
                    match abi::buffer(BufferType::GrpcReceiveBuffer, 0, len) {
                        Ok(answer) => self.stream.on_call_answer(answer.unwrap_or_default()),
                        Err(e) => self.refused(HostOp::ReadCallAnswer, &e),
                    }
                }
                // Outside a host callback (the call's close): the returned action is unused.
                Then::Resume => match abi::continue_stream(StreamType::HttpRequest) {
                    Ok(()) => return Action::Continue,
                    Err(e) => self.refused(HostOp::ResumeRequest, &e),
                },
                // UNIMPLEMENTED, what the host would say.
                Then::Unsupported(op) => self.refused(op, &HostError::Status(abi::UNIMPLEMENTED)),
            };
        }
    }
}

/// Send `call` through the proxy's gRPC client; its token.
fn send_call(call: &GrpcCall) -> Result<u32, HostError> {
    abi::grpc_call(
        &call.cluster,
        call.service,
        call.method,
        &call.message,
        call.timeout,
    )
}

/// Apply header edits to `map`: removals, then sets, then adds; stops at the first refusal.
fn apply_ops(map: MapType, ops: &HeaderOps) -> Result<(), HostError> {
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

impl<F: HttpFilter> Context for FilterHttp<F> {
    no_host_context_defaults!();

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        if !F::MAY_CALL {
            // Never dispatched a call: nothing of this context waits for an answer.
            return;
        }
        // A failed call's status message tells Envoy's own timeout apart (read only now: the
        // host gives it during this callback only).
        let message = if status_code == 0 {
            None
        } else {
            abi::grpc_call_status().ok().map(|(_, m)| m)
        };
        let close = CallClose {
            token: token_id,
            status: status_code,
            response_size,
            message,
            now_nanos: HostClock.now_nanos(),
        };
        let step = self.stream.on_call_closed(&close);
        // The request was held (its header callback answered pause): the steps resume it or
        // answer it; there is no callback to answer.
        self.execute(step);
    }
}

impl<F: HttpFilter> HttpContext for FilterHttp<F> {
    no_host_httpcontext_defaults!();

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // Bytes: Envoy's HTTP/1 codec accepts obs-text (bytes 0x80-0xFF) in header values;
        // invalid sequences become U+FFFD here instead of trapping the VM.
        let step = match abi::header_pairs(MapType::HttpRequestHeaders) {
            Ok(pairs) => {
                let headers = pairs
                    .into_iter()
                    // Not `from_utf8_lossy(..).into_owned()`, which walked every byte and copied
                    // each name and value (`cost11`: noop's instructions per request 30,367 ->
                    // 17,183, threat-score -9.6%).
                    .map(|(n, v)| (text_lossy(n), text_lossy(v)))
                    .collect();
                let view = RequestView::new(headers, Box::new(HostProperties));
                self.stream.on_request_headers(view, end_of_stream)
            }
            Err(e) => self.refused(HostOp::ReadHeaders, &e),
        };
        self.execute(step)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let step = self.stream.on_request_body(body_size, end_of_stream);
        self.execute(step)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let step = self.stream.on_request_trailers();
        self.execute(step)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let step = self.stream.on_response_headers();
        self.execute(step)
    }
}
