//! The host calls the HTTP glue makes, each returning the host's status instead of panicking.
//!
//! Why not `proxy_wasm`'s own: its trait methods (`HttpContext::set_http_request_header`, ...)
//! `unwrap` the status, and the `hostcalls` functions underneath `panic!("unexpected status")`
//! on anything but `Ok` (and `get_map_bytes` unwraps `String::from_utf8` on every header name).
//! A panic aborts the VM, and with it every request of that worker. These wrappers call the
//! same ABI 0.2.1 imports, read the status as a plain `u32` (a value outside Rust's `Status`
//! enum must not be UB) and parse what the host returns with bounds checks. `clippy.toml`
//! (`disallowed-methods`) keeps the panicking functions out of the workspace.
//!
//! Off wasm (native tests) there is no host: the imports are stubs answering "no host" (one
//! declaration list makes both, [`imports!`]), so every call returns [`HostError::NoHost`] and
//! each wrapper is written once, for both builds.

use proxy_wasm::types::{BufferType, MapType, StreamType};

/// A host call that did not succeed: the ABI status, or no host at all (native build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// `host status 12 (Unimplemented)`.
    Status(u32),
    /// `no proxy host (native build)`.
    NoHost,
}

impl HostError {
    /// The error as text, built without `core::fmt` (whose integer and padding code every
    /// module would otherwise link for this one message; V8 compiles all of it at each push).
    pub fn text(&self) -> String {
        match self {
            HostError::Status(code) => {
                let mut digits = String::new();
                crate::config::push_decimal(&mut digits, u64::from(*code));
                crate::config::cat(&["host status ", &digits, " (", status_name(*code), ")"])
            }
            HostError::NoHost => "no proxy host (native build)".into(),
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for HostError {}

/// Names of ABI 0.2.1 statuses, for logs.
pub fn status_name(status: u32) -> &'static str {
    match status {
        0 => "Ok",
        1 => "NotFound",
        2 => "BadArgument",
        3 => "SerializationFailure",
        4 => "ParseFailure",
        7 => "Empty",
        8 => "CasMismatch",
        10 => "InternalFailure",
        12 => "Unimplemented",
        _ => "unknown",
    }
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

/// Declares the ABI imports once: on wasm the host's functions (module `env`), natively stubs
/// with the same signatures that answer [`NO_HOST`], so the wrappers below have one body.
macro_rules! imports {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> u32;)*) => {
        #[cfg(target_arch = "wasm32")]
        mod imports {
            #[link(wasm_import_module = "env")]
            extern "C" {
                $(pub fn $name($($arg: $ty),*) -> u32;)*
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        #[allow(clippy::too_many_arguments)]
        mod imports {
            $(
                /// Native stub: there is no host.
                ///
                /// # Safety
                /// None needed (nothing is read or written); `unsafe` to match the import.
                pub unsafe fn $name($(_: $ty),*) -> u32 {
                    super::NO_HOST
                }
            )*
        }
    };
}

/// What the native stubs answer: not an ABI status (those are small), mapped to
/// [`HostError::NoHost`] by [`status`].
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
const NO_HOST: u32 = u32::MAX;

imports! {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_get_status(
        return_code: *mut u32,
        return_message_data: *mut *mut u8,
        return_message_size: *mut usize,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// Take ownership of a buffer the host allocated in this module (through the
/// `proxy_on_memory_allocate` export of the `proxy-wasm` crate, i.e. the global allocator).
/// Natively the stubs write nothing: the pointer is null.
fn take_host_buffer(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host wrote `size` bytes into a block of exactly `size` bytes it obtained from
    // this module's allocator, and handed ownership to us (the ABI's contract; the `proxy-wasm`
    // crate does the same).
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

fn status(code: u32) -> Result<(), HostError> {
    match code {
        OK => Ok(()),
        #[cfg(not(target_arch = "wasm32"))]
        NO_HOST => Err(HostError::NoHost),
        _ => Err(HostError::Status(code)),
    }
}

/// Name-value pairs of a header map, as bytes.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Every pair of a header map, as bytes (names and values are not required to be UTF-8).
pub fn header_pairs(map: MapType) -> Result<Pairs, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers to locals; the host writes a pointer and a size.
    let code = unsafe { imports::proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    status(code)?;
    Ok(take_host_buffer(data, size)
        .map(|b| deserialize_map(&b))
        .unwrap_or_default())
}

/// Replace every value of `name` with `value`, or remove it (`None`).
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live slices.
    let code = unsafe {
        match value {
            Some(v) => imports::proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => imports::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()),
        }
    };
    status(code)
}

/// Append a value to `name`.
pub fn add_header(map: MapType, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live slices.
    let code = unsafe {
        imports::proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status(code)
}

/// Up to `max` bytes of a buffer from `start`; `Ok(None)` when the host has none (`NotFound`).
pub fn buffer(kind: BufferType, start: usize, max: usize) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers to locals; the host writes a pointer and a size.
    let code =
        unsafe { imports::proxy_get_buffer_bytes(kind as u32, start, max, &mut data, &mut size) };
    if code == NOT_FOUND {
        return Ok(None);
    }
    status(code)?;
    Ok(take_host_buffer(data, size))
}

/// Answer the request locally.
pub fn send_local_response(
    code: u32,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), HostError> {
    let serialized = serialize_map(headers);
    // SAFETY: pointers and lengths of live buffers; no details string.
    let rc = unsafe {
        imports::proxy_send_local_response(
            code,
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            serialized.as_ptr(),
            serialized.len(),
            -1,
        )
    };
    status(rc)
}

/// Close a stream: the downstream connection ([`StreamType::Downstream`]) for network
/// filters.
pub fn close_stream(stream: StreamType) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { imports::proxy_close_stream(stream as u32) })
}

/// Resume a paused stream (outside of its own callback).
pub fn continue_stream(stream: StreamType) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { imports::proxy_continue_stream(stream as u32) })
}

/// The root context's tick period (0 turns the tick off).
pub fn set_tick_period(period: std::time::Duration) -> Result<(), HostError> {
    let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: no pointers.
    status(unsafe { imports::proxy_set_tick_period_milliseconds(ms) })
}

/// Make later host calls act on context `id` (a connection), from a root context's tick.
pub fn set_effective_context(id: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { imports::proxy_set_effective_context(id) })
}

/// Call one of the host's foreign functions; its result bytes, if any.
pub fn call_foreign_function(name: &str, args: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: live slices in, out-pointers to locals.
    let code = unsafe {
        imports::proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut data,
            &mut size,
        )
    };
    status(code)?;
    Ok(take_host_buffer(data, size))
}

/// Send a unary gRPC call to the Envoy cluster `cluster`; the token that its answer
/// (`proxy_on_grpc_receive` / `proxy_on_grpc_close`) will carry.
///
/// The one host call here that goes through `proxy_wasm::hostcalls`: only its
/// `dispatch_grpc_call` registers the token with the crate's dispatcher, which routes the
/// answer to the calling HTTP context (the registry is private to the crate). That function
/// panics on a status other than `Ok`, `ParseFailure` and `InternalFailure`. Envoy's
/// `Context::grpcCall` returns `BadArgument` besides those only when it cannot create an async
/// client for the `GrpcService` it parsed; so the cluster is passed as a serialized
/// `GrpcService { envoy_grpc { cluster_name } }` ([`grpc_service_for_cluster`]), for which
/// Envoy creates the client without a cluster check, and never as a bare name (a name can
/// parse as a `GrpcService` without `envoy_grpc`, e.g. `abcdefghi`: field 12, fixed64, and
/// client creation would then fail). An unknown cluster then fails the call itself: Envoy
/// closes it with `UNAVAILABLE` before returning `InternalFailure`.
pub fn grpc_call(
    cluster: &str,
    service: &str,
    method: &str,
    message: &[u8],
    timeout: std::time::Duration,
) -> Result<u32, HostError> {
    if cluster.len() > MAX_GRPC_CLUSTER_LEN || !cluster.is_ascii() {
        return Err(HostError::Status(2));
    }
    let upstream = grpc_service_for_cluster(cluster);
    // The crate takes `&str`. For an ASCII name of at most [`MAX_GRPC_CLUSTER_LEN`] bytes every
    // length is one varint byte below 0x80, so the encoding is ASCII; anything else is refused
    // here, before the host sees it.
    let upstream = std::str::from_utf8(&upstream).map_err(|_| HostError::Status(2))?;
    dispatch_grpc_call(upstream, service, method, message, timeout)
}

/// `proxy_wasm::hostcalls::dispatch_grpc_call` (see [`grpc_call`] for why that one and why it
/// cannot panic here); natively there is no host.
#[cfg(target_arch = "wasm32")]
fn dispatch_grpc_call(
    upstream: &str,
    service: &str,
    method: &str,
    message: &[u8],
    timeout: std::time::Duration,
) -> Result<u32, HostError> {
    // Allowed here only: see [`grpc_call`] for why Envoy does not return the statuses that would
    // make it panic, for this upstream.
    #[allow(clippy::disallowed_methods)]
    let r = proxy_wasm::hostcalls::dispatch_grpc_call(
        upstream,
        service,
        method,
        Vec::new(),
        Some(message),
        timeout,
    );
    r.map_err(|s| HostError::Status(s as u32))
}

#[cfg(not(target_arch = "wasm32"))]
fn dispatch_grpc_call(
    _: &str,
    _: &str,
    _: &str,
    _: &[u8],
    _: std::time::Duration,
) -> Result<u32, HostError> {
    Err(HostError::NoHost)
}

/// The status of the gRPC call whose close is being delivered (`proxy_on_grpc_close`): its
/// code and message (e.g. Envoy's `upstream request timeout`).
pub fn grpc_call_status() -> Result<(u32, String), HostError> {
    let mut code: u32 = 0;
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers to locals.
    status(unsafe { imports::proxy_get_status(&mut code, &mut data, &mut size) })?;
    let message = take_host_buffer(data, size).unwrap_or_default();
    Ok((code, crate::view::text_lossy(message)))
}

/// The longest cluster name [`grpc_call`] takes (its encoding stays ASCII); defined with the
/// callout types so that filters' logic (built without the glue) can check it at configure time.
pub use crate::callout::MAX_GRPC_CLUSTER_LEN;

/// `envoy.config.core.v3.GrpcService { envoy_grpc: { cluster_name: cluster } }`, serialized.
pub fn grpc_service_for_cluster(cluster: &str) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: usize) {
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut inner = vec![0x0a];
    varint(&mut inner, cluster.len());
    inner.extend_from_slice(cluster.as_bytes());
    let mut out = vec![0x0a];
    varint(&mut out, inner.len());
    out.extend_from_slice(&inner);
    out
}

/// Reset the HTTP stream: the last resort when a request must not go on and no local reply
/// could be sent.
pub fn reset_stream() -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { imports::proxy_close_stream(StreamType::HttpRequest as u32) })
}

/// A property (`["source", "address"]`); `Ok(None)` when it is not set (`NotFound`).
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    // Segments joined by NUL, as the `proxy-wasm` crate serializes them.
    let mut serialized = Vec::new();
    for (i, segment) in path.iter().enumerate() {
        if i > 0 {
            serialized.push(0);
        }
        serialized.extend_from_slice(segment.as_bytes());
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: a live slice in, out-pointers to locals.
    let code = unsafe {
        imports::proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size)
    };
    if code == NOT_FOUND {
        return Ok(None);
    }
    status(code)?;
    Ok(take_host_buffer(data, size))
}

/// Shared data status for a version mismatch.
pub const CAS_MISMATCH: u32 = 8;

/// The status a host gives for a call it does not implement; the glue answers with it for a
/// call the filter type cannot make (`HttpFilter::MAY_CALL`).
pub const UNIMPLEMENTED: u32 = 12;

/// A shared-data value and its version; `Ok(None)` when the key was never set.
pub fn shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: a live slice in, out-pointers to locals.
    let code = unsafe {
        imports::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
    };
    if code == NOT_FOUND {
        return Ok(None);
    }
    status(code)?;
    Ok(Some((
        take_host_buffer(data, size).unwrap_or_default(),
        cas,
    )))
}

/// Write a shared-data value; `cas` 0 is unconditional. A version mismatch is
/// `Err(HostError::Status(CAS_MISMATCH))`.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: live slices.
    let code = unsafe {
        imports::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    };
    status(code)
}

/// Define a metric (0 counter, 1 gauge, 2 histogram); its id.
pub fn define_metric(kind: u32, name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: a live slice in, an out-pointer to a local.
    let code = unsafe { imports::proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    status(code).map(|()| id)
}

pub fn increment_metric(id: u32, delta: i64) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { imports::proxy_increment_metric(id, delta) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { imports::proxy_record_metric(id, value) })
}

/// The host's wall clock, nanoseconds since the Unix epoch.
pub fn current_time_nanos() -> Result<u64, HostError> {
    let mut t: u64 = 0;
    // SAFETY: an out-pointer to a local.
    status(unsafe { imports::proxy_get_current_time_nanoseconds(&mut t) }).map(|()| t)
}

/// Write a line to the proxy's log (`level` 0 trace .. 5 critical).
pub fn log(level: u32, message: &str) -> Result<(), HostError> {
    // SAFETY: a live slice.
    status(unsafe { imports::proxy_log(level, message.as_ptr(), message.len()) })
}

/// The proxy's log level.
pub fn log_level() -> Result<proxy_wasm::types::LogLevel, HostError> {
    let mut raw: u32 = 0;
    // SAFETY: an out-pointer to a local u32 (the host writes a 32-bit level).
    status(unsafe { imports::proxy_get_log_level(&mut raw) })?;
    Ok(log_level_from(raw))
}

/// ABI log level number (0 trace .. 5 critical) to the crate's type; out of range: critical.
pub fn log_level_from(raw: u32) -> proxy_wasm::types::LogLevel {
    use proxy_wasm::types::LogLevel;
    match raw {
        0 => LogLevel::Trace,
        1 => LogLevel::Debug,
        2 => LogLevel::Info,
        3 => LogLevel::Warn,
        4 => LogLevel::Error,
        _ => LogLevel::Critical,
    }
}

/// The ABI's map encoding: pair count (u32 LE), then each pair's key and value lengths (u32
/// LE), then each key and value followed by a NUL byte.
pub fn serialize_map(pairs: &[(String, String)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len32(pairs.len()));
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.len()));
        out.extend_from_slice(&len32(v.len()));
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Parse the ABI's map encoding. Malformed input (truncated, lengths past the end) yields the
/// pairs read before the fault, never a panic.
pub fn deserialize_map(bytes: &[u8]) -> Pairs {
    let word = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let Some(count) = word(0) else {
        return Vec::new();
    };
    // Each pair needs at least 8 length bytes and 2 NULs: a count past that is a lie.
    let count = count.min(bytes.len() / 10);
    let mut out = Vec::with_capacity(count);
    let Some(mut p) = count.checked_mul(8).and_then(|n| n.checked_add(4)) else {
        return out;
    };
    for n in 0..count {
        let at = 4 + n * 8;
        let (Some(klen), Some(vlen)) = (word(at), word(at + 4)) else {
            break;
        };
        let Some(key) = p.checked_add(klen).and_then(|end| bytes.get(p..end)) else {
            break;
        };
        p += klen + 1;
        let Some(value) = p.checked_add(vlen).and_then(|end| bytes.get(p..end)) else {
            break;
        };
        p += vlen + 1;
        out.push((key.to_vec(), value.to_vec()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trip_and_malformed_input_never_panics() {
        let pairs = vec![
            (":path".to_string(), "/a".to_string()),
            ("x".to_string(), String::new()),
        ];
        let bytes = serialize_map(&pairs);
        let back = deserialize_map(&bytes);
        assert_eq!(
            back,
            vec![
                (b":path".to_vec(), b"/a".to_vec()),
                (b"x".to_vec(), Vec::new())
            ]
        );
        for cut in 0..bytes.len() {
            let partial = deserialize_map(&bytes[..cut]);
            assert!(partial.len() <= 2);
        }
        let mut lying = bytes.clone();
        lying[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let _ = deserialize_map(&lying);
        let mut long = bytes;
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(deserialize_map(&long).is_empty());
        assert!(deserialize_map(&[]).is_empty());
    }

    #[test]
    fn statuses_have_names_and_native_builds_have_no_host() {
        assert_eq!(
            HostError::Status(2).to_string(),
            "host status 2 (BadArgument)"
        );
        assert_eq!(
            set_header(MapType::HttpRequestHeaders, "a", None),
            Err(HostError::NoHost)
        );
    }
}
