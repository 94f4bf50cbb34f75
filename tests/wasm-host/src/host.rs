//! Driving a module the way Envoy does: VM start, root context, `on_configure`, then one
//! context per HTTP stream or TCP connection, callbacks in Envoy's order.

use crate::abi::{
    Deferred, GrpcCall, HeaderMap, HostState, LocalReply, MapType, StreamData, StreamType,
};
use crate::runtime::{CallError, Instance, RuntimeKind, Val};
use anyhow::{bail, Context as _};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the host tells a module about itself (Envoy's `PluginConfig` and node).
#[derive(Debug, Clone, Default)]
pub struct Plugin {
    /// `plugin_name` property (Envoy: the `PluginConfig.name`).
    pub name: String,
    /// Plugin configuration bytes (Envoy: `configuration`, a `StringValue` handed as-is).
    pub configuration: Vec<u8>,
    pub vm_configuration: Vec<u8>,
    /// Host-wide properties by path segments (`["node", "id"]`).
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    pub environment: Vec<(String, String)>,
    /// Clusters Envoy knows: a gRPC call to any other fails as in Envoy.
    pub clusters: Vec<String>,
}

impl Plugin {
    pub fn new(name: &str, configuration: impl Into<Vec<u8>>) -> Self {
        Plugin {
            name: name.to_string(),
            configuration: configuration.into(),
            ..Default::default()
        }
    }
    /// Declare a cluster (the target of the module's gRPC calls).
    pub fn cluster(mut self, name: &str) -> Self {
        self.clusters.push(name.to_string());
        self
    }
}

/// How the gRPC service answers one call: what a test's responder returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcReply {
    /// Status OK with this message: `proxy_on_grpc_receive`, the message readable as the
    /// gRPC receive buffer.
    Message(Vec<u8>),
    /// The call fails with this gRPC status and message (a service error, or what Envoy
    /// reports for a refused connection): `proxy_on_grpc_close`.
    Status { code: u32, message: String },
    /// No answer: the call ends at its deadline as Envoy ends it (see [`Vm::deliver_grpc`]).
    NoAnswer,
}

/// A test's gRPC service: from the call (cluster, service, method, message) to the answer.
pub type GrpcResponder = Box<dyn FnMut(&GrpcCall) -> GrpcReply>;

/// ENVOY: the status and message of a call its async client timed out: the router's
/// `upstream request timeout` local reply (504), which a gRPC client sees as UNAVAILABLE.
pub const GRPC_TIMEOUT: (u32, &str) = (14, "upstream request timeout");

/// One request to replay through an HTTP filter.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Request headers including the pseudo-headers (`:method`, `:path`, `:authority`,
    /// `:scheme`), names lower-case, as Envoy hands them to a filter.
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    pub trailers: Option<HeaderMap>,
    /// Per-request properties (`source.address`, `request.protocol`...).
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    /// The upstream's answer when the request gets through (default: 200, no body).
    pub response: Option<Response>,
}

/// An upstream response replayed through the filter's response callbacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A request with Envoy's usual pseudo-headers and `host`-less authority.
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            headers: vec![
                (":authority".into(), b"example.test".to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                (":method".into(), method.as_bytes().to_vec()),
                (":scheme".into(), b"http".to_vec()),
            ],
            properties: vec![
                (
                    vec!["source".into(), "address".into()],
                    b"127.0.0.1:40000".to_vec(),
                ),
                (
                    vec!["source".into(), "port".into()],
                    40000i64.to_le_bytes().to_vec(),
                ),
                (
                    vec!["request".into(), "protocol".into()],
                    b"HTTP/1.1".to_vec(),
                ),
            ],
            ..Default::default()
        }
    }
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.properties.retain(|(p, _)| *p != path);
        self.properties.push((path, value.into()));
        self
    }
}

/// How a stream ended in the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded upstream (with these headers and body), and the response came back through.
    Forwarded,
    /// The filter answered itself.
    LocalReply(LocalReply),
    /// The filter reset the stream (`proxy_close_stream`).
    Reset,
    /// The filter paused and never resumed: in Envoy the request would wait for a timeout.
    Stalled,
}

/// What one HTTP stream did.
#[derive(Debug, Clone)]
pub struct HttpOutcome {
    pub verdict: Verdict,
    /// The request headers the upstream would see (after the filter's edits).
    pub upstream_headers: HeaderMap,
    pub upstream_body: Option<Vec<u8>>,
    /// The response the client gets (status in `:status`), after the filter's response hooks;
    /// for a local reply, the reply.
    pub response: Response,
    /// Fuel (instructions) used by this stream, from context creation to deletion.
    pub fuel: u64,
}

impl HttpOutcome {
    /// The status the client sees.
    pub fn status(&self) -> u32 {
        header(&self.response.headers, ":status")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0)
    }
    /// A header the upstream saw (first value).
    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        header(&self.upstream_headers, name).and_then(|v| std::str::from_utf8(v).ok())
    }
    pub fn response_body(&self) -> &[u8] {
        self.response.body.as_deref().unwrap_or_default()
    }
}

/// The first value of a header in a map.
pub fn header<'a>(map: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    map.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

/// The directory `cargo xtask build` writes modules to (`$FILTER_MODULES_DIR` when set, else
/// `target/modules` of this workspace).
pub fn modules_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FILTER_MODULES_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.join("../../target/modules")
}

/// The path of a built module (`target/modules/NAME.wasm`), or an error saying how to build it.
pub fn module_path(name: &str) -> anyhow::Result<PathBuf> {
    let p = modules_dir().join(format!("{name}.wasm"));
    if !p.is_file() {
        bail!(
            "{} not found: run `cargo xtask build {name}` first",
            p.display()
        );
    }
    Ok(p)
}

/// Compiled-module cache: compiling the largest module takes Wasmtime a while, and every test
/// instantiates the same few.
fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// One VM running one plugin: the root context is created, started and configured.
pub struct Vm {
    instance: Box<dyn Instance>,
    pub runtime: RuntimeKind,
    root: u32,
    next_context: u32,
    /// Fuel used by instantiation and `_initialize` (module start).
    pub start_fuel: u64,
    /// Fuel used by `on_vm_start` + `on_configure`.
    pub configure_fuel: u64,
    configured: bool,
    /// Answers the module's gRPC calls while a stream waits for them (none: they stay in
    /// flight and the stream stalls).
    responder: Option<GrpcResponder>,
}

fn path_key(path: &[String]) -> String {
    path.join("\0")
}

impl Vm {
    /// Load `target/modules/NAME.wasm` and start it with `plugin` (see [`Vm::start`]).
    pub fn load(runtime: RuntimeKind, name: &str, plugin: &Plugin) -> anyhow::Result<Vm> {
        let wasm = read_module(&module_path(name)?)?;
        Vm::start(runtime, &wasm, plugin)
    }

    /// Instantiate `wasm`, run `_initialize` (or `_start`), create the root context and call
    /// `on_vm_start` and `on_configure`, as Envoy does for a new plugin. A module whose
    /// `on_vm_start` or `on_configure` returns false is an error (Envoy rejects the config);
    /// use [`Vm::start_unconfigured`] to look at a rejection.
    pub fn start(runtime: RuntimeKind, wasm: &[u8], plugin: &Plugin) -> anyhow::Result<Vm> {
        let mut vm = Vm::start_unconfigured(runtime, wasm, plugin)?;
        if !vm.configure()? {
            let logs: Vec<String> = vm.state().logs.iter().map(|l| l.message.clone()).collect();
            bail!(
                "the plugin rejected its configuration; log:\n{}",
                logs.join("\n")
            );
        }
        Ok(vm)
    }

    /// Instantiate and initialize without calling `on_vm_start`/`on_configure`.
    pub fn start_unconfigured(
        runtime: RuntimeKind,
        wasm: &[u8],
        plugin: &Plugin,
    ) -> anyhow::Result<Vm> {
        let mut state = HostState {
            vm_configuration: plugin.vm_configuration.clone(),
            plugin_configuration: plugin.configuration.clone(),
            environment: plugin.environment.clone(),
            clusters: plugin.clusters.iter().cloned().collect(),
            ..Default::default()
        };
        let mut props: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        props.insert("plugin_name".into(), plugin.name.as_bytes().to_vec());
        props.insert("plugin_root_id".into(), Vec::new());
        props.insert("plugin_vm_id".into(), Vec::new());
        for (p, v) in &plugin.properties {
            props.insert(path_key(p), v.clone());
        }
        state.properties = props;
        let instance = runtime.runtime().instantiate(wasm, state)?;
        let mut vm = Vm {
            instance,
            runtime,
            root: 1,
            next_context: 2,
            start_fuel: 0,
            configure_fuel: 0,
            configured: false,
            responder: None,
        };
        // ENVOY (cpp-host): `_initialize` for WASI reactors, else `_start`; then `main` is not
        // called for reactors. Host calls are refused while it runs (Envoy has no context yet);
        // here they are answered, but the filters' glue does not make any.
        for init in ["_initialize", "_start"] {
            if vm.instance.has_export(init) {
                vm.instance
                    .call(init, &[])
                    .with_context(|| format!("calling {init}"))?;
                break;
            }
        }
        if !vm.instance.has_export("proxy_abi_version_0_2_1") {
            bail!(
                "the module does not export proxy_abi_version_0_2_1 (only ABI 0.2.1 is supported)"
            );
        }
        vm.start_fuel = vm.instance.fuel_consumed();
        Ok(vm)
    }

    /// Create the root context and call `on_vm_start` then `on_configure`; false when either
    /// refuses (Envoy then rejects the plugin).
    pub fn configure(&mut self) -> anyhow::Result<bool> {
        let before = self.instance.fuel_consumed();
        let root = self.root;
        self.state().root_context = root;
        self.enter(root);
        if !self.configured {
            self.call(
                "proxy_on_context_create",
                &[Val::I32(root as i32), Val::I32(0)],
            )?;
            let vm_size = self.state().vm_configuration.len() as i32;
            if self
                .call(
                    "proxy_on_vm_start",
                    &[Val::I32(root as i32), Val::I32(vm_size)],
                )?
                .map(|v| v.u32())
                == Some(0)
            {
                return Ok(false);
            }
            self.configured = true;
        }
        let size = self.state().plugin_configuration.len() as i32;
        let ok = self
            .call(
                "proxy_on_configure",
                &[Val::I32(root as i32), Val::I32(size)],
            )?
            .map(|v| v.u32())
            != Some(0);
        self.configure_fuel += self.instance.fuel_consumed() - before;
        Ok(ok)
    }

    /// Replace the plugin configuration and call `on_configure` again (an ECDS update).
    pub fn reconfigure(&mut self, configuration: impl Into<Vec<u8>>) -> anyhow::Result<bool> {
        self.state().plugin_configuration = configuration.into();
        self.configure()
    }

    pub fn state(&mut self) -> &mut HostState {
        self.instance.state()
    }
    pub fn state_ref(&self) -> &HostState {
        self.instance.state_ref()
    }

    /// Total fuel (instructions) used by this VM so far.
    pub fn fuel(&self) -> u64 {
        self.instance.fuel_consumed()
    }

    /// Advance the host clock.
    pub fn advance(&mut self, d: std::time::Duration) {
        self.state().now_nanos += d.as_nanos() as u64;
    }

    /// Call the root context's `on_tick` (what Envoy does every tick period the module set).
    pub fn tick(&mut self) -> anyhow::Result<()> {
        let root = self.root;
        self.enter(root);
        self.call("proxy_on_tick", &[Val::I32(root as i32)])?;
        self.run_deferred()
    }

    /// Answer the module's gRPC calls with `responder` from now on: [`Vm::http`] asks it for
    /// each call a paused stream waits for, and delivers the answer.
    pub fn set_grpc_responder(&mut self, responder: impl FnMut(&GrpcCall) -> GrpcReply + 'static) {
        self.responder = Some(Box::new(responder));
    }

    /// The gRPC calls in flight (made and not yet answered), in token order.
    pub fn grpc_in_flight(&self) -> Vec<GrpcCall> {
        self.state_ref().grpc_calls.values().cloned().collect()
    }

    /// Deliver the answer to the call `token`, as Envoy does once the answer arrives (outside
    /// any other callback):
    ///
    /// * a message: `proxy_on_grpc_receive(root, token, size)`, the message readable as the
    ///   gRPC receive buffer during that callback;
    /// * a status: `proxy_on_grpc_close(root, token, code)`, with `proxy_get_status` giving
    ///   the code and message during that callback;
    /// * no answer: the clock moves to the call's deadline and the call closes as Envoy's
    ///   async client closes it ([`GRPC_TIMEOUT`]); a call without a timeout (0 ms) has no
    ///   deadline and stays in flight.
    ///
    /// ENVOY: a unary call never gets `proxy_on_grpc_receive_initial_metadata` or
    /// `..._trailing_metadata` (only streams do), and a successful call gets no
    /// `proxy_on_grpc_close`. Callbacks go to the root context's id (the SDK routes them to
    /// the calling context by token). Returns false when the call stays in flight.
    pub fn deliver_grpc(&mut self, token: u32, reply: GrpcReply) -> anyhow::Result<bool> {
        let Some(call) = self.state().grpc_calls.remove(&token) else {
            bail!("no gRPC call {token} in flight");
        };
        let root = self.root;
        match reply {
            GrpcReply::Message(message) => {
                self.enter(root);
                let size = message.len() as i32;
                if self.instance.has_export("proxy_on_grpc_receive") {
                    self.state().grpc_receive = Some(message);
                    let r = self.call(
                        "proxy_on_grpc_receive",
                        &[
                            Val::I32(root as i32),
                            Val::I32(token as i32),
                            Val::I32(size),
                        ],
                    );
                    self.state().grpc_receive = None;
                    r.context("proxy_on_grpc_receive")?;
                }
                self.run_deferred()?;
            }
            GrpcReply::Status { code, message } => self.close_grpc(token, code, message)?,
            GrpcReply::NoAnswer => {
                if call.timeout_ms == 0 {
                    // ENVOY: timeout 0 sets no deadline: the call waits for ever.
                    self.state().grpc_calls.insert(token, call);
                    return Ok(false);
                }
                let deadline = call.sent_at_nanos + u64::from(call.timeout_ms) * 1_000_000;
                let st = self.state();
                st.now_nanos = st.now_nanos.max(deadline);
                let (code, message) = GRPC_TIMEOUT;
                self.close_grpc(token, code, message.to_string())?;
            }
        }
        Ok(true)
    }

    /// `proxy_on_grpc_close(root, token, code)` with the status readable meanwhile.
    fn close_grpc(&mut self, token: u32, code: u32, message: String) -> anyhow::Result<()> {
        let root = self.root;
        self.enter(root);
        if self.instance.has_export("proxy_on_grpc_close") {
            self.state().status = (code, message);
            let r = self.call(
                "proxy_on_grpc_close",
                &[
                    Val::I32(root as i32),
                    Val::I32(token as i32),
                    Val::I32(code as i32),
                ],
            );
            // ENVOY (`onGrpcCloseWrapper`): the message is cleared after the callback, the code
            // stays until the next close.
            self.state().status.1.clear();
            r.context("proxy_on_grpc_close")?;
        }
        self.run_deferred()
    }

    /// Run what Envoy defers until a VM call returns (closes of calls that failed at once).
    fn run_deferred(&mut self) -> anyhow::Result<()> {
        while !self.state().deferred.is_empty() {
            let work = std::mem::take(&mut self.state().deferred);
            for d in work {
                match d {
                    Deferred::GrpcClose {
                        token,
                        status,
                        message,
                    } => {
                        let current = self.state().current_context;
                        self.close_grpc(token, status, message)?;
                        self.enter(current);
                    }
                }
            }
        }
        Ok(())
    }

    /// While `ctx` waits (paused) for its gRPC calls, ask the responder for each and deliver
    /// the answers, until the stream goes on, is answered or no call is left. The calls are
    /// answered after the request has reached the filter whole (headers, body, trailers): the
    /// service answers after the client finished sending.
    fn drive_calls(&mut self, ctx: u32, paused: &mut bool) -> anyhow::Result<Option<Verdict>> {
        let mut waiting_for_ever = std::collections::BTreeSet::new();
        while *paused {
            let next = self
                .state_ref()
                .grpc_calls
                .values()
                .find(|c| c.context == ctx && !waiting_for_ever.contains(&c.token))
                .cloned();
            let Some(call) = next else { break };
            let Some(mut responder) = self.responder.take() else {
                break;
            };
            let reply = responder(&call);
            self.responder = Some(responder);
            if !self.deliver_grpc(call.token, reply)? {
                waiting_for_ever.insert(call.token);
            }
            if let Some(v) = self.after_callback(ctx, StreamType::Request, paused) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn enter(&mut self, ctx: u32) {
        let st = self.state();
        st.current_context = ctx;
        st.effective_context = None;
    }

    fn call(&mut self, export: &str, args: &[Val]) -> Result<Option<Val>, CallError> {
        self.instance.call(export, args)
    }

    /// Call a stream callback; returns true for `Action::Pause`.
    fn callback(&mut self, ctx: u32, export: &str, args: &[Val]) -> anyhow::Result<bool> {
        self.enter(ctx);
        let r = self
            .call(export, args)
            .with_context(|| format!("{export} on context {ctx}"))?;
        self.run_deferred()?;
        self.enter(ctx);
        Ok(r.map(|v| v.u32()) == Some(1))
    }

    fn stream(&mut self, ctx: u32) -> &mut StreamData {
        self.state().streams.entry(ctx).or_default()
    }

    fn new_context(&mut self, data: StreamData) -> anyhow::Result<u32> {
        let ctx = self.next_context;
        self.next_context += 1;
        self.state().streams.insert(ctx, data);
        let root = self.root;
        self.enter(ctx);
        self.call(
            "proxy_on_context_create",
            &[Val::I32(ctx as i32), Val::I32(root as i32)],
        )?;
        Ok(ctx)
    }

    fn finish_context(&mut self, ctx: u32, log: bool) -> anyhow::Result<StreamData> {
        let c = Val::I32(ctx as i32);
        self.enter(ctx);
        // ENVOY: on_done (ignored result), then on_log (HTTP: after the stream; TCP: at close),
        // then on_delete.
        self.call("proxy_on_done", &[c])?;
        if log {
            self.call("proxy_on_log", &[c])?;
        }
        self.call("proxy_on_delete", &[c])?;
        let data = self.state().streams.remove(&ctx).unwrap_or_default();
        self.enter(self.root);
        Ok(data)
    }

    /// Replay one HTTP request through the filter, then the upstream's response (when the
    /// request got through), in Envoy's order: request headers, body, trailers; response
    /// headers, body; `on_done`, `on_log`, `on_delete`.
    ///
    /// ENVOY: `Pause` from a header callback is `StopIteration` (body callbacks still run and a
    /// `Continue` from one of them resumes the headers too); `Pause` from a body callback buffers.
    /// `proxy_send_local_response` takes effect when the callback returns, whatever it returns.
    pub fn http(&mut self, req: &Request) -> anyhow::Result<HttpOutcome> {
        let fuel_before = self.fuel();
        let mut data = StreamData::default();
        data.maps
            .insert(MapType::RequestHeaders, req.headers.clone());
        for (p, v) in &req.properties {
            data.properties.insert(path_key(p), v.clone());
        }
        let ctx = self.new_context(data)?;
        let c = Val::I32(ctx as i32);
        let n = |m: &HeaderMap| Val::I32(m.len() as i32);
        let eos_after_headers = req.body.is_none() && req.trailers.is_none();

        let mut paused = self.callback(
            ctx,
            "proxy_on_request_headers",
            &[c, n(&req.headers), Val::I32(eos_after_headers as i32)],
        )?;
        let mut verdict = self.after_callback(ctx, StreamType::Request, &mut paused);
        if verdict.is_none() {
            if let Some(body) = &req.body {
                self.stream(ctx).request_body = Some(body.clone());
                let eos = req.trailers.is_none();
                let body_paused = self.callback(
                    ctx,
                    "proxy_on_request_body",
                    &[c, Val::I32(body.len() as i32), Val::I32(eos as i32)],
                )?;
                // A Continue from the body resumes paused headers (StopIteration semantics).
                paused = body_paused && !self.stream(ctx).continued.contains(&StreamType::Request);
                let mut p = paused;
                verdict = self.after_callback(ctx, StreamType::Request, &mut p);
                paused = p;
            }
        }
        if verdict.is_none() {
            if let Some(trailers) = &req.trailers {
                self.stream(ctx)
                    .maps
                    .insert(MapType::RequestTrailers, trailers.clone());
                let t = self.callback(ctx, "proxy_on_request_trailers", &[c, n(trailers)])?;
                paused = t && !self.stream(ctx).continued.contains(&StreamType::Request);
                let mut p = paused;
                verdict = self.after_callback(ctx, StreamType::Request, &mut p);
                paused = p;
            }
        }
        if verdict.is_none() && paused {
            verdict = self.drive_calls(ctx, &mut paused)?;
        }
        let upstream_headers = self
            .stream(ctx)
            .maps
            .get(&MapType::RequestHeaders)
            .cloned()
            .unwrap_or_default();
        let upstream_body = self.stream(ctx).request_body.clone();
        if verdict.is_none() && paused {
            verdict = Some(Verdict::Stalled);
        }

        let mut response = Response::default();
        match &verdict {
            None => {
                let resp = req.response.clone().unwrap_or_else(|| Response {
                    headers: vec![(":status".into(), b"200".to_vec())],
                    body: None,
                });
                let mut resp_paused = false;
                self.run_response(ctx, &resp, &mut resp_paused)?;
                let s = self.stream(ctx);
                if let Some(reply) = s.local_reply.clone() {
                    verdict = Some(Verdict::LocalReply(reply.clone()));
                    response = reply_response(&reply);
                } else {
                    response = Response {
                        headers: s
                            .maps
                            .get(&MapType::ResponseHeaders)
                            .cloned()
                            .unwrap_or_default(),
                        body: s.response_body.clone(),
                    };
                    verdict = Some(if resp_paused {
                        Verdict::Stalled
                    } else {
                        Verdict::Forwarded
                    });
                }
            }
            Some(Verdict::LocalReply(reply)) => {
                // ENVOY: a local reply travels the encoder path, so this filter's response
                // callbacks see it (headers with `:status`, then the body).
                let r = reply_response(reply);
                let mut ignored = false;
                self.run_response(ctx, &r, &mut ignored)?;
                let s = self.stream(ctx);
                response = Response {
                    headers: s
                        .maps
                        .get(&MapType::ResponseHeaders)
                        .cloned()
                        .unwrap_or(r.headers),
                    body: s.response_body.clone().or(r.body),
                };
            }
            _ => {}
        }
        self.finish_context(ctx, true)?;
        Ok(HttpOutcome {
            verdict: verdict.unwrap_or(Verdict::Forwarded),
            upstream_headers,
            upstream_body,
            response,
            fuel: self.fuel() - fuel_before,
        })
    }

    fn run_response(&mut self, ctx: u32, resp: &Response, paused: &mut bool) -> anyhow::Result<()> {
        let c = Val::I32(ctx as i32);
        self.stream(ctx)
            .maps
            .insert(MapType::ResponseHeaders, resp.headers.clone());
        let eos = resp.body.is_none();
        *paused = self.callback(
            ctx,
            "proxy_on_response_headers",
            &[c, Val::I32(resp.headers.len() as i32), Val::I32(eos as i32)],
        )?;
        if let Some(body) = &resp.body {
            self.stream(ctx).response_body = Some(body.clone());
            let p = self.callback(
                ctx,
                "proxy_on_response_body",
                &[c, Val::I32(body.len() as i32), Val::I32(1)],
            )?;
            *paused = p && !self.stream(ctx).continued.contains(&StreamType::Response);
        }
        Ok(())
    }

    /// Apply what the callback asked for: a local reply, a reset, a resume.
    fn after_callback(&mut self, ctx: u32, kind: StreamType, paused: &mut bool) -> Option<Verdict> {
        let s = self.stream(ctx);
        if let Some(reply) = s.local_reply.clone() {
            return Some(Verdict::LocalReply(reply));
        }
        if s.closed.contains(&kind) {
            return Some(Verdict::Reset);
        }
        if s.continued.contains(&kind) {
            *paused = false;
        }
        None
    }
}

/// One TCP connection to replay through a network filter.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Connection properties (`source.address`, `source.port`, `destination.port`...).
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    /// What the client sends, one `on_downstream_data` per chunk (Envoy's reads).
    pub chunks: Vec<Vec<u8>>,
    /// The client half-closes after its last chunk (end of stream on that chunk).
    pub half_close: bool,
}

impl Connection {
    pub fn from_source(addr: &str, port: u16) -> Self {
        Connection {
            properties: vec![
                (
                    vec!["source".into(), "address".into()],
                    format!("{addr}:{port}").into_bytes(),
                ),
                (
                    vec!["source".into(), "port".into()],
                    i64::from(port).to_le_bytes().to_vec(),
                ),
                (
                    vec!["destination".into(), "port".into()],
                    10001i64.to_le_bytes().to_vec(),
                ),
            ],
            ..Default::default()
        }
    }
    pub fn send(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.chunks.push(bytes.into());
        self
    }
}

/// How a connection ended in a network filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpVerdict {
    /// The filter let the bytes through to `tcp_proxy`.
    Forwarded,
    /// The filter closed the connection (`proxy_close_stream(Downstream)`).
    Closed,
    /// The filter still holds the bytes (Envoy would wait for more data or a timer).
    Paused,
}

/// What one connection did.
#[derive(Debug, Clone)]
pub struct TcpOutcome {
    pub verdict: TcpVerdict,
    /// The bytes that reached the upstream, in order.
    pub upstream_bytes: Vec<u8>,
    /// Foreign calls during the connection (`set_envoy_filter_state` for SNI routing).
    pub foreign_calls: Vec<(String, Vec<u8>)>,
    pub fuel: u64,
}

impl Vm {
    /// Open a connection through a network filter and send its chunks; the connection is then
    /// closed by the client (`on_downstream_connection_close`), and the context deleted.
    ///
    /// ENVOY: `Pause` from `on_new_connection` or `on_downstream_data` is `StopIteration`: the
    /// bytes stay in the read buffer and the next `on_downstream_data` sees them again together
    /// with the new ones; `proxy_continue_stream(Downstream)` resumes (`continueReading`).
    pub fn tcp(&mut self, conn: &Connection) -> anyhow::Result<TcpOutcome> {
        let fuel_before = self.fuel();
        let calls_before = self.state().foreign_calls.len();
        let mut data = StreamData::default();
        for (p, v) in &conn.properties {
            data.properties.insert(path_key(p), v.clone());
        }
        let ctx = self.new_context(data)?;
        let c = Val::I32(ctx as i32);
        let mut paused = self.callback(ctx, "proxy_on_new_connection", &[c])?;
        let mut closed = self.stream(ctx).closed.contains(&StreamType::Downstream);
        if self.stream(ctx).continued.contains(&StreamType::Downstream) {
            paused = false;
        }
        let mut buffer: Vec<u8> = Vec::new();
        let mut upstream = Vec::new();
        let last = conn.chunks.len().saturating_sub(1);
        for (i, chunk) in conn.chunks.iter().enumerate() {
            if closed {
                break;
            }
            buffer.extend_from_slice(chunk);
            self.stream(ctx).downstream_data = Some(buffer.clone());
            self.stream(ctx).continued.clear();
            let eos = conn.half_close && i == last;
            let p = self.callback(
                ctx,
                "proxy_on_downstream_data",
                &[c, Val::I32(buffer.len() as i32), Val::I32(eos as i32)],
            )?;
            let s = self.stream(ctx);
            closed = s.closed.contains(&StreamType::Downstream);
            paused = p && !s.continued.contains(&StreamType::Downstream);
            if !closed && !paused {
                upstream.extend_from_slice(s.downstream_data.as_deref().unwrap_or_default());
                buffer.clear();
            } else {
                buffer = s.downstream_data.clone().unwrap_or_default();
            }
        }
        if !closed {
            // The client goes away (ABI PeerType::Remote = 2).
            self.enter(ctx);
            self.call("proxy_on_downstream_connection_close", &[c, Val::I32(2)])
                .context("proxy_on_downstream_connection_close")?;
        }
        let verdict = if closed {
            TcpVerdict::Closed
        } else if paused && (!buffer.is_empty() || upstream.is_empty()) {
            TcpVerdict::Paused
        } else {
            TcpVerdict::Forwarded
        };
        self.finish_context(ctx, true)?;
        let foreign_calls = self.state().foreign_calls[calls_before..].to_vec();
        Ok(TcpOutcome {
            verdict,
            upstream_bytes: upstream,
            foreign_calls,
            fuel: self.fuel() - fuel_before,
        })
    }
}

fn reply_response(reply: &LocalReply) -> Response {
    let mut headers = vec![(":status".to_string(), reply.status.to_string().into_bytes())];
    headers.extend(reply.headers.iter().cloned());
    Response {
        headers,
        body: Some(reply.body.clone()),
    }
}
