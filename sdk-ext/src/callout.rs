//! Asynchronous gRPC callouts from a request hook: the filter returns
//! [`crate::Decision::Call`] with a [`GrpcCall`]; the glue sends it through the proxy's gRPC
//! client (proxy-wasm `proxy_grpc_call`, to an Envoy cluster), holds the request, and hands the
//! outcome to [`crate::HttpFilter::on_call_response`], whose decision then applies.
//!
//! Why a decision and not a host service: the hooks stay plain functions over data (the filter
//! never waits), and every outcome (answer, gRPC error, timeout, refused dispatch) reaches the
//! same hook, so the filter decides what a failure means. A request is never held without a
//! deadline: Envoy's async client ends the call after `timeout` with `DEADLINE_EXCEEDED`.

use std::time::Duration;

/// A unary gRPC call to make before the request goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// The Envoy cluster of the service (must speak HTTP/2).
    pub cluster: String,
    /// Fully-qualified service, e.g. `envoy.service.ratelimit.v3.RateLimitService`.
    pub service: &'static str,
    /// Method, e.g. `ShouldRateLimit`.
    pub method: &'static str,
    /// The serialized request message (protobuf).
    pub message: Vec<u8>,
    /// Deadline of the call; the request waits at most this long.
    pub timeout: Duration,
}

/// The longest cluster name a [`GrpcCall`] may name: the glue sends the cluster as a serialized
/// `GrpcService` that must stay ASCII (every length one varint byte below 0x80), so it refuses
/// longer or non-ASCII names; a filter checks this at configure time.
pub const MAX_GRPC_CLUSTER_LEN: usize = 120;

/// gRPC status codes the glue reports for failures it detects itself.
pub mod grpc_status {
    /// `DEADLINE_EXCEEDED`: the call did not answer in time.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// `UNAVAILABLE`: the proxy could not send the call (unknown cluster, no host).
    pub const UNAVAILABLE: u32 = 14;
    /// `INTERNAL`: the answer could not be read.
    pub const INTERNAL: u32 = 13;
}

/// How a call ended, as [`crate::HttpFilter::on_call_response`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome<'a> {
    /// The service answered `OK` with this message (protobuf bytes; possibly empty).
    Answer(&'a [u8]),
    /// The call failed: the gRPC status (`UNAVAILABLE` when the service cannot be reached,
    /// ...), whether the proxy refused to send it at all, and whether it ended at its deadline
    /// (Envoy reports a timeout as `UNAVAILABLE`, "upstream request timeout", so the glue
    /// decides by the time elapsed, or a `DEADLINE_EXCEEDED` status).
    Failed {
        status: u32,
        dispatched: bool,
        timed_out: bool,
    },
}

impl CallOutcome<'_> {
    /// A short name of the failure for logs: `timeout`, `unavailable`, `grpc status N`.
    pub fn failure_name(&self) -> String {
        match self {
            CallOutcome::Answer(_) => "answer".into(),
            CallOutcome::Failed {
                dispatched: false, ..
            } => "not dispatched".into(),
            CallOutcome::Failed {
                timed_out: true, ..
            } => "timeout".into(),
            CallOutcome::Failed {
                status: grpc_status::UNAVAILABLE,
                ..
            } => "unavailable".into(),
            CallOutcome::Failed { status, .. } => format!("grpc status {status}"),
        }
    }
}
