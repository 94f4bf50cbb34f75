//! The host side of proxy-wasm ABI 0.2.1 (module `env`) and the few WASI calls
//! (`wasi_snapshot_preview1`) the modules import, written once for every runtime.
//!
//! Semantics follow Envoy 1.40 (proxy-wasm-cpp-host plus `source/extensions/common/wasm`) where
//! it differs from the spec; each such place says so (`ENVOY:`). Calls no filter here needs
//! (HTTP callouts, gRPC streams, shared queues) fail loudly: the VM traps with
//! [`HostTrap::Unsupported`] naming the call, so a test cannot pass by accident. Unary gRPC
//! calls (`proxy_grpc_call`, `proxy_grpc_cancel`, `proxy_get_status`) are served: the call is
//! recorded in [`HostState::grpc_calls`] and answered later by the driver ([`crate::host`]).
//!
//! Everything is deterministic: the clock is the test's ([`HostState::now_nanos`]), WASI
//! `random_get` is a fixed-seed generator, the environment is what the test supplies.

use crate::runtime::{Guest, Val};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Why the host stopped the VM during an import call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostTrap {
    #[error("unsupported host call `{0}` (this in-process host does not implement it)")]
    Unsupported(String),
    #[error("`{call}`: {reason}")]
    BadCall { call: String, reason: String },
    #[error("module has no exported `memory`")]
    NoMemory,
    #[error("module exports neither `malloc` nor `proxy_on_memory_allocate`")]
    NoAllocator,
    #[error("the module's allocator failed: {0}")]
    AllocatorFailed(String),
    #[error("pointer {ptr:#x}+{len} is outside the module's memory")]
    OutOfBounds { ptr: u32, len: u32 },
    #[error("the module called WASI proc_exit({0})")]
    Exit(i32),
}

// ABI 0.2.1 statuses (proxy_wasm::types::Status).
pub const OK: i64 = 0;
pub const NOT_FOUND: i64 = 1;
pub const BAD_ARGUMENT: i64 = 2;
pub const SERIALIZATION_FAILURE: i64 = 3;
pub const PARSE_FAILURE: i64 = 4;
pub const INTERNAL_FAILURE: i64 = 10;
pub const EMPTY: i64 = 7;
pub const CAS_MISMATCH: i64 = 8;

/// ABI 0.2.1 header map types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapType {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
}

impl MapType {
    fn from_abi(v: u32) -> Option<Self> {
        Some(match v {
            0 => MapType::RequestHeaders,
            1 => MapType::RequestTrailers,
            2 => MapType::ResponseHeaders,
            3 => MapType::ResponseTrailers,
            _ => return None,
        })
    }
}

/// ABI 0.2.1 buffer types the host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferType {
    RequestBody,
    ResponseBody,
    DownstreamData,
    UpstreamData,
    /// The message of the gRPC answer being delivered (`proxy_on_grpc_receive`).
    GrpcReceive,
    VmConfiguration,
    PluginConfiguration,
}

impl BufferType {
    fn from_abi(v: u32) -> Option<Self> {
        Some(match v {
            0 => BufferType::RequestBody,
            1 => BufferType::ResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            5 => BufferType::GrpcReceive,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            _ => return None,
        })
    }
}

/// ABI 0.2.1 stream types (`proxy_continue_stream`, `proxy_close_stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    Request,
    Response,
    Downstream,
    Upstream,
}

impl StreamType {
    fn from_abi(v: u32) -> Option<Self> {
        Some(match v {
            0 => StreamType::Request,
            1 => StreamType::Response,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// Header names and values as Envoy holds them: names lower-case, values bytes, order kept.
pub type HeaderMap = Vec<(String, Vec<u8>)>;

/// A local reply the module asked for (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    pub grpc_status: i32,
}

/// One log line: from `proxy_log` (level 0..5 = trace..critical) or WASI stdout/stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: u32,
    pub message: String,
}

/// A metric the module defined (`proxy_define_metric`); counters and gauges hold a value,
/// histograms the recorded samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub name: String,
    /// 0 counter, 1 gauge, 2 histogram (ABI `MetricType`).
    pub kind: u32,
    pub value: i64,
    pub samples: Vec<u64>,
}

/// Per-context (one HTTP stream or TCP connection) data the host holds.
#[derive(Debug, Clone, Default)]
pub struct StreamData {
    pub maps: BTreeMap<MapType, HeaderMap>,
    pub request_body: Option<Vec<u8>>,
    pub response_body: Option<Vec<u8>>,
    pub downstream_data: Option<Vec<u8>>,
    pub upstream_data: Option<Vec<u8>>,
    /// Properties of this stream (looked up before the host-wide ones), by `\0`-joined path.
    pub properties: BTreeMap<String, Vec<u8>>,
    pub local_reply: Option<LocalReply>,
    /// `proxy_continue_stream` calls, applied after the callback returns (ENVOY: deferred).
    pub continued: Vec<StreamType>,
    /// `proxy_close_stream` calls (ENVOY: an HTTP close resets the stream).
    pub closed: Vec<StreamType>,
    /// Number of header map writes per map (Envoy clears the route cache on request-header
    /// writes; tests read this to know a header was touched).
    pub writes: usize,
}

/// One unary gRPC call the module made (`proxy_grpc_call`), in flight until the driver
/// delivers its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    pub token: u32,
    /// The context that was acting when the call was made (the one whose stream waits).
    /// ENVOY (cpp-host `exports.cc`): the call itself belongs to the root context, and its
    /// callbacks are delivered to the root context's id; the SDK routes them by token.
    pub context: u32,
    /// `envoy_grpc.cluster_name` of the `GrpcService` the module passed.
    pub cluster: String,
    pub service: String,
    pub method: String,
    pub initial_metadata: HeaderMap,
    pub message: Vec<u8>,
    pub timeout_ms: u32,
    /// Host clock when the call was made, ns.
    pub sent_at_nanos: u64,
}

/// Work Envoy defers until the VM call returns (an after-VM-call action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    /// Close a gRPC call: `proxy_on_grpc_close(root, token, status)` with `message` readable
    /// through `proxy_get_status`.
    GrpcClose {
        token: u32,
        status: u32,
        message: String,
    },
}

/// Everything the host knows: configuration the test supplied and what the module did.
#[derive(Debug, Clone)]
pub struct HostState {
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    /// Host-wide properties (`plugin_name`, `node`...), by `\0`-joined path.
    pub properties: BTreeMap<String, Vec<u8>>,
    /// WASI environment (ENVOY: `vm_config.environment_variables`).
    pub environment: Vec<(String, String)>,
    /// What `proxy_get_log_level` answers (0 trace .. 5 critical, 6 off).
    pub log_level: u32,
    /// The clock (`proxy_get_current_time_nanoseconds`, WASI `clock_time_get`).
    pub now_nanos: u64,
    pub(crate) rng: u64,
    pub logs: Vec<LogLine>,
    /// Context currently called into (the one host calls act on).
    pub current_context: u32,
    /// Set by `proxy_set_effective_context` for the rest of the callback.
    pub effective_context: Option<u32>,
    pub root_context: u32,
    pub streams: HashMap<u32, StreamData>,
    /// Shared data: value and CAS per key.
    pub shared: BTreeMap<String, (Vec<u8>, u32)>,
    pub(crate) next_cas: u32,
    pub metrics: Vec<Metric>,
    pub tick_period_ms: u32,
    /// `proxy_call_foreign_function` calls the host accepted: name and argument bytes.
    pub foreign_calls: Vec<(String, Vec<u8>)>,
    /// How many times each import was called (for reports and to see what a module uses).
    pub call_counts: BTreeMap<String, u64>,
    /// Clusters Envoy knows (a gRPC call to any other fails as Envoy fails it).
    pub clusters: BTreeSet<String>,
    /// Unary gRPC calls in flight, by token.
    pub grpc_calls: BTreeMap<u32, GrpcCall>,
    /// Every gRPC call the module made, in order (answered or not).
    pub grpc_sent: Vec<GrpcCall>,
    pub(crate) next_grpc_token: u32,
    /// What `proxy_get_status` answers: code and message.
    pub status: (u32, String),
    /// The message being delivered by `proxy_on_grpc_receive` ([`BufferType::GrpcReceive`]).
    pub grpc_receive: Option<Vec<u8>>,
    /// After-VM-call actions the driver runs when the current callback returns.
    pub deferred: Vec<Deferred>,
}

impl Default for HostState {
    fn default() -> Self {
        HostState {
            vm_configuration: Vec::new(),
            plugin_configuration: Vec::new(),
            properties: BTreeMap::new(),
            environment: Vec::new(),
            log_level: 2,
            // 2026-01-01T00:00:00Z: a fixed, plausible wall clock.
            now_nanos: 1_767_225_600_000_000_000,
            rng: 0x9E37_79B9_7F4A_7C15,
            logs: Vec::new(),
            current_context: 0,
            effective_context: None,
            root_context: 0,
            streams: HashMap::new(),
            shared: BTreeMap::new(),
            next_cas: 1,
            metrics: Vec::new(),
            tick_period_ms: 0,
            foreign_calls: Vec::new(),
            call_counts: BTreeMap::new(),
            clusters: BTreeSet::new(),
            grpc_calls: BTreeMap::new(),
            grpc_sent: Vec::new(),
            // ENVOY (`Context::nextGrpcCallToken`): call tokens are odd, from 1; streams even.
            next_grpc_token: 1,
            status: (0, String::new()),
            grpc_receive: None,
            deferred: Vec::new(),
        }
    }
}

impl HostState {
    /// The context host calls act on: the effective one if the module set it, else the one
    /// being called.
    pub fn acting_context(&self) -> u32 {
        self.effective_context.unwrap_or(self.current_context)
    }

    fn stream(&mut self) -> &mut StreamData {
        let id = self.acting_context();
        self.streams.entry(id).or_default()
    }

    /// A metric's current value by its full name (`policy_requests_total`).
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }

    /// The first counter the module defined whose value differs from Envoy's stats
    /// (`wasmcustom.NAME`; an absent stat is 0): its name, this host's value and Envoy's.
    pub fn counter_differing_from(
        &self,
        envoy_stats: &HashMap<String, u64>,
    ) -> Option<(String, u64, u64)> {
        self.metrics
            .iter()
            .filter(|m| m.kind == 0)
            .map(|m| {
                let envoy = envoy_stats
                    .get(&format!("wasmcustom.{}", m.name))
                    .copied()
                    .unwrap_or(0);
                (m.name.clone(), m.value as u64, envoy)
            })
            .find(|(_, ours, envoy)| ours != envoy)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic, good enough for hash seeds.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn property(&self, path: &str) -> Option<Vec<u8>> {
        let id = self.acting_context();
        self.streams
            .get(&id)
            .and_then(|s| s.properties.get(path))
            .or_else(|| self.properties.get(path))
            .cloned()
    }
}

/// Serialize a header map the ABI way: count, then (name length, value length) pairs, then
/// each name and value followed by a NUL.
pub fn serialize_map(map: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in map {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Parse a serialized header map (the inverse of [`serialize_map`]).
pub fn deserialize_map(bytes: &[u8]) -> Option<HeaderMap> {
    let u32_at = |i: usize| -> Option<usize> {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let n = u32_at(0)?;
    let mut sizes = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        sizes.push((u32_at(4 + i * 8)?, u32_at(8 + i * 8)?));
    }
    let mut p = 4 + n * 8;
    let mut out = Vec::with_capacity(sizes.len());
    for (kl, vl) in sizes {
        let k = bytes.get(p..p + kl)?;
        p += kl + 1;
        let v = bytes.get(p..p + vl)?;
        p += vl + 1;
        out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
    }
    Some(out)
}

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Hand `data` to the module: allocate in it, copy, and write the pointer and size to the two
/// out-parameters. ENVOY (cpp-host `copyToPointerSize`): empty data is returned as a null pointer
/// and size 0, without allocating.
fn return_bytes(
    g: &mut dyn Guest,
    data: &[u8],
    ptr_out: u32,
    size_out: u32,
) -> Result<(), HostTrap> {
    let ptr = if data.is_empty() {
        0
    } else {
        let p = g.alloc(data.len() as u32)?;
        g.write(p, data)?;
        p
    };
    g.write(ptr_out, &ptr.to_le_bytes())?;
    g.write(size_out, &(data.len() as u32).to_le_bytes())
}

fn string(g: &mut dyn Guest, ptr: u32, len: u32) -> Result<String, HostTrap> {
    Ok(String::from_utf8_lossy(&g.read(ptr, len)?).into_owned())
}

fn arg(args: &[Val], i: usize, call: &str) -> Result<u32, HostTrap> {
    args.get(i)
        .map(|v| v.u32())
        .ok_or_else(|| HostTrap::BadCall {
            call: call.to_string(),
            reason: format!("expected at least {} arguments, got {}", i + 1, args.len()),
        })
}

/// Run one import. `Ok(Some(v))` is the import's result (a status or errno); `Ok(None)` for
/// imports without one.
pub fn call_import(
    g: &mut dyn Guest,
    module: &str,
    name: &str,
    args: &[Val],
) -> Result<Option<i64>, HostTrap> {
    *g.state().call_counts.entry(name.to_string()).or_default() += 1;
    match module {
        "env" => proxy_call(g, name, args).map(Some),
        "wasi_snapshot_preview1" | "wasi_unstable" => wasi_call(g, name, args),
        _ => Err(HostTrap::Unsupported(format!("{module}.{name}"))),
    }
}

fn proxy_call(g: &mut dyn Guest, name: &str, args: &[Val]) -> Result<i64, HostTrap> {
    let a = |i: usize| arg(args, i, name);
    match name {
        "proxy_log" => {
            let message = string(g, a(1)?, a(2)?)?;
            g.state().logs.push(LogLine {
                level: a(0)?,
                message,
            });
            Ok(OK)
        }
        "proxy_get_log_level" => {
            let level = g.state().log_level;
            g.write(a(0)?, &level.to_le_bytes())?;
            Ok(OK)
        }
        "proxy_get_current_time_nanoseconds" => {
            let now = g.state().now_nanos;
            g.write(a(0)?, &now.to_le_bytes())?;
            Ok(OK)
        }
        "proxy_set_tick_period_milliseconds" => {
            g.state().tick_period_ms = a(0)?;
            Ok(OK)
        }
        "proxy_get_buffer_bytes" => {
            let Some(kind) = BufferType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            let (start, max) = (a(1)? as usize, a(2)? as usize);
            let buffer = {
                let st = g.state();
                match kind {
                    BufferType::VmConfiguration => Some(st.vm_configuration.clone()),
                    BufferType::PluginConfiguration => Some(st.plugin_configuration.clone()),
                    BufferType::RequestBody => st.stream().request_body.clone(),
                    BufferType::ResponseBody => st.stream().response_body.clone(),
                    BufferType::DownstreamData => st.stream().downstream_data.clone(),
                    BufferType::UpstreamData => st.stream().upstream_data.clone(),
                    // ENVOY: the root context's receive buffer, set only during the callback.
                    BufferType::GrpcReceive => st.grpc_receive.clone(),
                }
            };
            // ENVOY: an absent buffer is NotFound; a start past the end is BadArgument; a
            // length past the end is clipped.
            let Some(buffer) = buffer else {
                return Ok(NOT_FOUND);
            };
            if start > buffer.len() {
                return Ok(BAD_ARGUMENT);
            }
            let end = start.saturating_add(max).min(buffer.len());
            return_bytes(g, &buffer[start..end], a(3)?, a(4)?)?;
            Ok(OK)
        }
        "proxy_set_buffer_bytes" => {
            let Some(kind) = BufferType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            let (start, size) = (a(1)? as usize, a(2)? as usize);
            let data = g.read(a(3)?, a(4)?)?;
            let st = g.state();
            let slot = match kind {
                BufferType::RequestBody => &mut st.stream().request_body,
                BufferType::ResponseBody => &mut st.stream().response_body,
                BufferType::DownstreamData => &mut st.stream().downstream_data,
                BufferType::UpstreamData => &mut st.stream().upstream_data,
                _ => return Ok(BAD_ARGUMENT),
            };
            let Some(buf) = slot.as_mut() else {
                return Ok(NOT_FOUND);
            };
            // ENVOY (`Buffer::setBytes`): start 0 and size 0 prepends; start 0 and size >= len
            // replaces everything; start >= len appends; anything else is BadArgument.
            if start == 0 && size == 0 {
                let mut v = data;
                v.extend_from_slice(buf);
                *buf = v;
            } else if start == 0 && size >= buf.len() {
                *buf = data;
            } else if start >= buf.len() {
                buf.extend_from_slice(&data);
            } else {
                return Ok(BAD_ARGUMENT);
            }
            Ok(OK)
        }
        "proxy_get_header_map_pairs" => {
            let Some(map) = MapType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            let pairs = g.state().stream().maps.get(&map).cloned();
            // A map not available in this phase (response headers while the request is
            // processed) comes back empty.
            let data = pairs
                .map(|p| serialize_map(&p))
                .unwrap_or_else(|| serialize_map(&[]));
            return_bytes(g, &data, a(1)?, a(2)?)?;
            Ok(OK)
        }
        "proxy_set_header_map_pairs" => {
            let Some(map) = MapType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            let bytes = g.read(a(1)?, a(2)?)?;
            let Some(pairs) = deserialize_map(&bytes) else {
                return Ok(BAD_ARGUMENT);
            };
            let s = g.state().stream();
            s.maps.insert(
                map,
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            );
            s.writes += 1;
            Ok(OK)
        }
        "proxy_get_header_map_value" => {
            let Some(map) = MapType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            let key = string(g, a(1)?, a(2)?)?.to_ascii_lowercase();
            // ENVOY: only the first value of a repeated header is returned.
            let value = g
                .state()
                .stream()
                .maps
                .get(&map)
                .and_then(|m| m.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()));
            let Some(value) = value else {
                return Ok(NOT_FOUND);
            };
            return_bytes(g, &value, a(3)?, a(4)?)?;
            Ok(OK)
        }
        "proxy_replace_header_map_value" | "proxy_add_header_map_value" => {
            let Some(map) = MapType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            let key = string(g, a(1)?, a(2)?)?.to_ascii_lowercase();
            let value = g.read(a(3)?, a(4)?)?;
            let replace = name == "proxy_replace_header_map_value";
            let s = g.state().stream();
            let m = s.maps.entry(map).or_default();
            if replace {
                // ENVOY (`setCopy`): the first occurrence takes the value, later ones go.
                if let Some(pos) = m.iter().position(|(k, _)| *k == key) {
                    m[pos].1 = value;
                    let mut i = 0;
                    m.retain(|(k, _)| {
                        i += 1;
                        i - 1 <= pos || *k != key
                    });
                } else {
                    m.push((key, value));
                }
            } else {
                m.push((key, value));
            }
            s.writes += 1;
            Ok(OK)
        }
        "proxy_remove_header_map_value" => {
            let Some(map) = MapType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            let key = string(g, a(1)?, a(2)?)?.to_ascii_lowercase();
            let s = g.state().stream();
            if let Some(m) = s.maps.get_mut(&map) {
                m.retain(|(k, _)| *k != key);
            }
            s.writes += 1;
            Ok(OK)
        }
        "proxy_get_property" => {
            let raw = g.read(a(0)?, a(1)?)?;
            // The path is NUL-separated segments; a trailing NUL is tolerated.
            let path =
                String::from_utf8_lossy(raw.strip_suffix(b"\0").unwrap_or(&raw)).into_owned();
            let Some(value) = g.state().property(&path) else {
                return Ok(NOT_FOUND);
            };
            return_bytes(g, &value, a(2)?, a(3)?)?;
            Ok(OK)
        }
        "proxy_set_property" => {
            let raw = g.read(a(0)?, a(1)?)?;
            let path =
                String::from_utf8_lossy(raw.strip_suffix(b"\0").unwrap_or(&raw)).into_owned();
            let value = g.read(a(2)?, a(3)?)?;
            g.state().stream().properties.insert(path, value);
            Ok(OK)
        }
        "proxy_get_shared_data" => {
            let key = string(g, a(0)?, a(1)?)?;
            let Some((value, cas)) = g.state().shared.get(&key).cloned() else {
                return Ok(NOT_FOUND);
            };
            return_bytes(g, &value, a(2)?, a(3)?)?;
            g.write(a(4)?, &cas.to_le_bytes())?;
            Ok(OK)
        }
        "proxy_set_shared_data" => {
            let key = string(g, a(0)?, a(1)?)?;
            let value = g.read(a(2)?, a(3)?)?;
            let cas = a(4)?;
            let st = g.state();
            // ENVOY: cas 0 writes unconditionally; otherwise it must equal the current CAS
            // (a missing key has none, so any non-zero cas mismatches).
            if cas != 0 && st.shared.get(&key).map(|(_, c)| *c) != Some(cas) {
                return Ok(CAS_MISMATCH);
            }
            let next = st.next_cas;
            st.next_cas = st.next_cas.wrapping_add(1).max(1);
            st.shared.insert(key, (value, next));
            Ok(OK)
        }
        "proxy_continue_stream" => {
            let Some(t) = StreamType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            g.state().stream().continued.push(t);
            Ok(OK)
        }
        "proxy_close_stream" => {
            let Some(t) = StreamType::from_abi(a(0)?) else {
                return Ok(BAD_ARGUMENT);
            };
            g.state().stream().closed.push(t);
            Ok(OK)
        }
        "proxy_send_local_response" => {
            let status = a(0)?;
            let details = string(g, a(1)?, a(2)?)?;
            let body = g.read(a(3)?, a(4)?)?;
            let raw = g.read(a(5)?, a(6)?)?;
            let grpc_status = args.get(7).map(|v| v.i64() as i32).unwrap_or(-1);
            let Some(headers) = deserialize_map(&raw) else {
                return Ok(BAD_ARGUMENT);
            };
            let headers = headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            // ENVOY: the reply is sent after the callback returns (an after-VM-call action),
            // so the callback's own return value no longer matters; a second call replaces it.
            g.state().stream().local_reply = Some(LocalReply {
                status,
                details,
                body,
                headers,
                grpc_status,
            });
            Ok(OK)
        }
        "proxy_set_effective_context" => {
            let id = a(0)?;
            let st = g.state();
            if id != st.root_context && !st.streams.contains_key(&id) {
                return Ok(BAD_ARGUMENT);
            }
            st.effective_context = Some(id);
            Ok(OK)
        }
        "proxy_call_foreign_function" => {
            let fname = string(g, a(0)?, a(1)?)?;
            let fargs = g.read(a(2)?, a(3)?)?;
            match fname.as_str() {
                // ENVOY's foreign functions this host accepts and records; none returns data.
                "set_envoy_filter_state" | "clear_route_cache" | "declare_property" => {
                    g.state().foreign_calls.push((fname, fargs));
                    return_bytes(g, &[], a(4)?, a(5)?)?;
                    Ok(OK)
                }
                // ENVOY: an unknown foreign function is NotFound.
                _ => Ok(NOT_FOUND),
            }
        }
        "proxy_define_metric" => {
            let kind = a(0)?;
            if kind > 2 {
                return Ok(BAD_ARGUMENT);
            }
            let metric_name = string(g, a(1)?, a(2)?)?;
            let st = g.state();
            let id = match st.metrics.iter().position(|m| m.name == metric_name) {
                Some(i) => i,
                None => {
                    st.metrics.push(Metric {
                        name: metric_name,
                        kind,
                        value: 0,
                        samples: Vec::new(),
                    });
                    st.metrics.len() - 1
                }
            } as u32;
            g.write(a(3)?, &id.to_le_bytes())?;
            Ok(OK)
        }
        "proxy_increment_metric" | "proxy_record_metric" => {
            let id = a(0)? as usize;
            let value = args.get(1).map(|v| v.i64()).unwrap_or(0);
            let Some(m) = g.state().metrics.get_mut(id) else {
                return Ok(NOT_FOUND);
            };
            // Histograms only record; counters and gauges add (increment) or take (record).
            match (name == "proxy_increment_metric", m.kind == 2) {
                (true, true) => return Ok(BAD_ARGUMENT),
                (true, false) => m.value = m.value.wrapping_add(value),
                (false, true) => m.samples.push(value as u64),
                (false, false) => m.value = value,
            }
            Ok(OK)
        }
        "proxy_get_metric" => {
            let id = a(0)? as usize;
            let Some(v) = g.state().metrics.get(id).map(|m| m.value) else {
                return Ok(NOT_FOUND);
            };
            g.write(a(1)?, &(v as u64).to_le_bytes())?;
            Ok(OK)
        }
        "proxy_grpc_call" => grpc_call(g, args),
        "proxy_grpc_cancel" | "proxy_grpc_close" => {
            // ENVOY (`Context::grpcCancel`/`grpcClose` for a call token): the request is
            // cancelled and forgotten, no callback follows; an unknown call token is NotFound.
            // Stream tokens (even) are not served: no filter here opens streams.
            let token = a(0)?;
            if token % 2 == 0 {
                return Err(HostTrap::Unsupported(format!("{name} on a gRPC stream")));
            }
            Ok(match g.state().grpc_calls.remove(&token) {
                Some(_) => OK,
                None => NOT_FOUND,
            })
        }
        "proxy_get_status" => {
            // ENVOY: the root context's last status: set when a close is delivered; the
            // message is reset to empty after that callback, the code is not.
            let (code, message) = g.state().status.clone();
            g.write(a(0)?, &code.to_le_bytes())?;
            return_bytes(g, message.as_bytes(), a(1)?, a(2)?)?;
            Ok(OK)
        }
        "proxy_done" => Ok(OK),
        other => Err(HostTrap::Unsupported(other.to_string())),
    }
}

/// `proxy_grpc_call(service, service_name, method_name, initial_metadata, request,
/// timeout_ms, token_out)`, as Envoy's `Context::grpcCall` answers it.
fn grpc_call(g: &mut dyn Guest, args: &[Val]) -> Result<i64, HostTrap> {
    let name = "proxy_grpc_call";
    let a = |i: usize| arg(args, i, name);
    let upstream = g.read(a(0)?, a(1)?)?;
    let service = string(g, a(2)?, a(3)?)?;
    let method = string(g, a(4)?, a(5)?)?;
    let metadata = g.read(a(6)?, a(7)?)?;
    let message = g.read(a(8)?, a(9)?)?;
    let timeout_ms = a(10)?;
    let token_out = a(11)?;
    // ENVOY: the bytes are a serialized `GrpcService`; bytes that do not parse as one are
    // ParseFailure (the spec leaves `upstream` to the host).
    let Some(fields) = proto_fields(&upstream) else {
        return Ok(PARSE_FAILURE);
    };
    // ENVOY: without `envoy_grpc` the async client cannot be created (Google gRPC targets
    // are not modelled): BadArgument.
    let Some(cluster) = fields
        .iter()
        .find(|(f, _)| *f == 1)
        .and_then(|(_, inner)| proto_fields(inner))
        .and_then(|inner| inner.into_iter().find(|(f, _)| *f == 1))
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
    else {
        return Ok(BAD_ARGUMENT);
    };
    let initial_metadata = deserialize_map(&metadata).unwrap_or_default();
    let st = g.state();
    let token = st.next_grpc_token;
    st.next_grpc_token = st.next_grpc_token.wrapping_add(2).max(1);
    if !st.clusters.contains(&cluster) {
        // ENVOY: the client is created without a cluster check; sending then finds no
        // cluster, closes the call with UNAVAILABLE "Cluster not available" (deferred until
        // the VM call returns, for a token the module never learns) and the call returns
        // InternalFailure.
        st.deferred.push(Deferred::GrpcClose {
            token,
            status: 14,
            message: "Cluster not available".into(),
        });
        return Ok(INTERNAL_FAILURE);
    }
    let call = GrpcCall {
        token,
        context: st.acting_context(),
        cluster,
        service,
        method,
        initial_metadata,
        message,
        timeout_ms,
        sent_at_nanos: st.now_nanos,
    };
    st.grpc_sent.push(call.clone());
    st.grpc_calls.insert(token, call);
    g.write(token_out, &token.to_le_bytes())?;
    Ok(OK)
}

/// The top-level fields of a protobuf message (number, payload of length-delimited fields;
/// other wire types give an empty payload), or None when the bytes are not a message.
fn proto_fields(bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(b: &[u8], p: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*p)?;
            *p += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let key = varint(bytes, &mut p)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 {
            return None;
        }
        let payload: &[u8] = match wire {
            0 => {
                varint(bytes, &mut p)?;
                &[]
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                bytes.get(p..p + n)?;
                p += n;
                &[]
            }
            2 => {
                let n = usize::try_from(varint(bytes, &mut p)?).ok()?;
                let s = bytes.get(p..p.checked_add(n)?)?;
                p += n;
                s
            }
            _ => return None,
        };
        out.push((field, payload));
    }
    Some(out)
}

/// The strings WASI `environ_*` (`KEY=value`, ENVOY: `vm_config.environment_variables`) and
/// `args_*` (none) hand out.
fn wasi_strings(g: &mut dyn Guest, call: &str) -> Vec<String> {
    if call.starts_with("environ") {
        g.state()
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    } else {
        Vec::new()
    }
}

fn wasi_call(g: &mut dyn Guest, name: &str, args: &[Val]) -> Result<Option<i64>, HostTrap> {
    let a = |i: usize| arg(args, i, name);
    const ERRNO_SUCCESS: i64 = 0;
    const ERRNO_BADF: i64 = 8;
    match name {
        "fd_write" => {
            let (fd, iovs, n) = (a(0)?, a(1)?, a(2)?);
            let mut out = Vec::new();
            for i in 0..n {
                let iov = g.read(iovs + i * 8, 8)?;
                let (p, l) = (u32_le(&iov[0..4]), u32_le(&iov[4..8]));
                out.extend_from_slice(&g.read(p, l)?);
            }
            g.write(a(3)?, &(out.len() as u32).to_le_bytes())?;
            // ENVOY: stdout is logged at info, stderr at error; other descriptors do not exist.
            let level = match fd {
                1 => 2,
                2 => 4,
                _ => return Ok(Some(ERRNO_BADF)),
            };
            let text = String::from_utf8_lossy(&out);
            for line in text.lines().filter(|l| !l.is_empty()) {
                g.state().logs.push(LogLine {
                    level,
                    message: line.to_string(),
                });
            }
            Ok(Some(ERRNO_SUCCESS))
        }
        "environ_sizes_get" | "args_sizes_get" => {
            let env = wasi_strings(g, name);
            let size: usize = env.iter().map(|e| e.len() + 1).sum();
            g.write(a(0)?, &(env.len() as u32).to_le_bytes())?;
            g.write(a(1)?, &(size as u32).to_le_bytes())?;
            Ok(Some(ERRNO_SUCCESS))
        }
        "environ_get" | "args_get" => {
            let env = wasi_strings(g, name);
            let (ptrs, mut buf) = (a(0)?, a(1)?);
            for (i, e) in env.iter().enumerate() {
                g.write(ptrs + 4 * i as u32, &buf.to_le_bytes())?;
                let mut bytes = e.as_bytes().to_vec();
                bytes.push(0);
                g.write(buf, &bytes)?;
                buf += bytes.len() as u32;
            }
            Ok(Some(ERRNO_SUCCESS))
        }
        "random_get" => {
            let (ptr, len) = (a(0)?, a(1)?);
            let mut bytes = Vec::with_capacity(len as usize);
            while bytes.len() < len as usize {
                let r = g.state().next_random();
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            bytes.truncate(len as usize);
            g.write(ptr, &bytes)?;
            Ok(Some(ERRNO_SUCCESS))
        }
        "clock_time_get" => {
            let now = g.state().now_nanos;
            g.write(a(2)?, &now.to_le_bytes())?;
            Ok(Some(ERRNO_SUCCESS))
        }
        "proc_exit" => Err(HostTrap::Exit(a(0)? as i32)),
        other => Err(HostTrap::Unsupported(format!(
            "wasi_snapshot_preview1.{other}"
        ))),
    }
}
