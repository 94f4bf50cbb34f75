//! Global rate limits: a `rate_limit` rule with `scope: "global"` asks a rate-limit service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, the protocol of
//! envoyproxy/ratelimit, Limitador and Envoy's own `envoy.filters.http.ratelimit`) through a
//! gRPC callout to an Envoy cluster, so every replica shares one count.
//!
//! * Descriptor: the optional literal `entries` first, then one entry per `key` part, in order
//!   ([`descriptor_key`] names them: `remote_address`, `consumer`, the header's name,
//!   `path_prefix`). A part without a value (no such header, anonymous consumer) is sent with
//!   an empty value, so those requests share one count, as they share one local bucket.
//! * `OK`: the request goes on with the service's `request_headers_to_add`; its
//!   `response_headers_to_add` go on the response. `OVER_LIMIT`: 429 with the service's
//!   `response_headers_to_add`, plus `retry-after` and `ratelimit-limit/-remaining/-reset`
//!   computed from the descriptor statuses unless the service set them.
//! * Failure (timeout, unreachable service, unparseable or `UNKNOWN` answer): `failure_mode`
//!   `allow` (default, as Envoy's filter) or `deny` (`failure_status`, default 500 as Envoy's
//!   `status_on_error`). Counted either way; Envoy's deadline (`timeout`) bounds the wait.
//! * `local_first`: a local token bucket (shared by the workers, keyed like the descriptor)
//!   checked before the callout; what it refuses never reaches the service.
//!
//! This module holds its own config structs so that the policy's match vocabulary can change
//! without touching it.

pub mod proto;

use crate::config::KeyPart;
use sdk_ext::callout::{CallOutcome, GrpcCall};
use sdk_ext::config::{header_name, http_status, FromJson, Node};
use sdk_ext::ratelimit::{parse_duration, BucketConfig, SlotBudget, TokenBuckets};
use sdk_ext::ConfigError;
use std::time::Duration;

/// Longest time a request may wait for the service.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many literal descriptor entries, and bytes per key or value.
pub const MAX_ENTRIES: usize = 16;
pub const MAX_ENTRY_LEN: usize = 256;

/// `rate_limit.scope`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// Token buckets in this Envoy's shared data (exact across its workers).
    #[default]
    Local,
    /// A rate-limit service shared by every Envoy (`rate_limit.global`).
    Global,
}

/// What a request gets when the service cannot answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// Let it through (Envoy's default: a broken limiter must not take the service down).
    #[default]
    Allow,
    /// Refuse it with `failure_status`.
    Deny,
}

impl FailureMode {
    /// The configuration's name of the mode (for logs).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::Allow => "allow",
            FailureMode::Deny => "deny",
        }
    }
}

/// `rate_limit.global`.
#[derive(Debug, Clone)]
pub struct GlobalSpec {
    /// The Envoy cluster of the rate-limit service (HTTP/2). Under Istio:
    /// `outbound|PORT||HOST`.
    pub cluster: String,
    /// The service's `domain` these limits live in.
    pub domain: String,
    /// How long a request waits for the answer (`20ms` default, as Envoy's filter); 1ms..=60s.
    pub timeout: String,
    pub failure_mode: FailureMode,
    /// Status of a request refused by `failure_mode: deny` (default 500, as Envoy).
    pub failure_status: u16,
    /// Hits one request counts for (default 1).
    pub hits_addend: u32,
    /// Literal entries sent before the key parts, e.g. `{"key": "generic_key", "value": "api"}`.
    pub entries: Vec<EntrySpec>,
    /// A local bucket checked before the callout.
    pub local_first: Option<BucketConfig>,
}

fn default_timeout() -> String {
    "20ms".into()
}

fn default_failure_status() -> u16 {
    500
}

fn default_hits() -> u32 {
    1
}

#[derive(Debug, Clone)]
pub struct EntrySpec {
    pub key: String,
    pub value: String,
}

impl FromJson for Scope {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        Ok(match crate::config::choice(node, &["local", "global"])? {
            0 => Scope::Local,
            _ => Scope::Global,
        })
    }
}

impl FromJson for FailureMode {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        Ok(match crate::config::choice(node, &["allow", "deny"])? {
            0 => FailureMode::Allow,
            _ => FailureMode::Deny,
        })
    }
}

impl FromJson for GlobalSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            cluster: req("cluster"),
            domain: req("domain"),
            timeout: or_else("timeout", default_timeout),
            failure_mode: or_default("failure_mode"),
            failure_status: or_else("failure_status", default_failure_status),
            hits_addend: or_else("hits_addend", default_hits),
            entries: or_default("entries"),
            local_first: opt("local_first"),
        })
    }
}

impl FromJson for EntrySpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            key: req("key"),
            value: req("value"),
        })
    }
}

/// The descriptor entry key of a key part.
pub fn descriptor_key(part: &KeyPart) -> &str {
    match part {
        KeyPart::SourceIp => "remote_address",
        KeyPart::Consumer => "consumer",
        KeyPart::Header(h) => h,
        KeyPart::PathSegments(_) => "path_prefix",
    }
}

/// A compiled global limit.
#[derive(Debug)]
pub struct GlobalLimit {
    cluster: String,
    domain: String,
    timeout: Duration,
    pub failure_mode: FailureMode,
    pub failure_status: u16,
    hits_addend: u32,
    entries: Vec<(String, String)>,
    /// The local bucket checked first, if any.
    pub local_first: Option<TokenBuckets>,
}

/// What the service (or its absence) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Under the limit: headers for the upstream request and for the response.
    Allow {
        request_headers: Vec<(String, String)>,
        response_headers: Vec<(String, String)>,
    },
    /// Over the limit: the 429's headers.
    OverLimit { headers: Vec<(String, String)> },
    /// No usable answer.
    Failed { reason: String, timeout: bool },
}

impl GlobalLimit {
    /// Validate `cfg` (paths relative to `rate_limit.global`). `key` is the rule's key parts
    /// (validated by the caller); `name` keys the local-first bucket's slots.
    pub fn compile(
        cfg: &GlobalSpec,
        key: &[KeyPart],
        name: &str,
        budget: &mut SlotBudget,
    ) -> Result<Self, ConfigError> {
        let cluster_ok = !cfg.cluster.is_empty()
            && cfg.cluster.len() <= sdk_ext::callout::MAX_GRPC_CLUSTER_LEN
            && cfg.cluster.bytes().all(|b| b.is_ascii_graphic());
        if !cluster_ok {
            return Err(ConfigError::new(
                "cluster",
                format!(
                    "`{}` must be 1 to {} visible ASCII characters (an Envoy cluster name)",
                    cfg.cluster,
                    sdk_ext::callout::MAX_GRPC_CLUSTER_LEN
                ),
            ));
        }
        if cfg.domain.is_empty() || cfg.domain.len() > MAX_ENTRY_LEN {
            return Err(ConfigError::new(
                "domain",
                format!("must be 1 to {MAX_ENTRY_LEN} bytes"),
            ));
        }
        let timeout = parse_duration(&cfg.timeout).map_err(|r| ConfigError::new("timeout", r))?;
        if timeout < Duration::from_millis(1) || timeout > MAX_TIMEOUT {
            return Err(ConfigError::new(
                "timeout",
                format!(
                    "{} ms; must be 1ms to 60s (a request waits this long)",
                    // u64, not as_millis's u128: its formatter is 1.6 KB of module.
                    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
                ),
            ));
        }
        let failure_status = http_status("failure_status", cfg.failure_status)?;
        if cfg.hits_addend == 0 {
            return Err(ConfigError::new("hits_addend", "must be at least 1"));
        }
        if cfg.entries.len() > MAX_ENTRIES {
            return Err(ConfigError::new(
                "entries",
                format!("{} entries; at most {MAX_ENTRIES}", cfg.entries.len()),
            ));
        }
        for (i, e) in cfg.entries.iter().enumerate() {
            for (what, s) in [("key", &e.key), ("value", &e.value)] {
                if s.is_empty() || s.len() > MAX_ENTRY_LEN {
                    return Err(ConfigError::new(
                        format!("entries[{i}].{what}"),
                        format!("must be 1 to {MAX_ENTRY_LEN} bytes"),
                    ));
                }
            }
        }
        if cfg.entries.is_empty() && key.is_empty() {
            return Err(ConfigError::new(
                "entries",
                "a global limit needs a descriptor: add `rate_limit.key` parts or literal \
                 `entries` (e.g. {\"key\": \"generic_key\", \"value\": \"api\"})",
            ));
        }
        let local_first = cfg
            .local_first
            .as_ref()
            .map(|l| l.compile(budget, name))
            .transpose()
            .map_err(|e| e.within("local_first"))?;
        Ok(Self {
            cluster: cfg.cluster.clone(),
            domain: cfg.domain.clone(),
            timeout,
            failure_mode: cfg.failure_mode,
            failure_status,
            hits_addend: cfg.hits_addend,
            entries: cfg
                .entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect(),
            local_first,
        })
    }

    /// The `ShouldRateLimit` call for a request whose key parts have `values` (one per part,
    /// `None` when absent).
    pub fn call(&self, parts: &[KeyPart], values: &[Option<String>]) -> GrpcCall {
        let entries =
            self.entries
                .iter()
                .cloned()
                .chain(
                    parts.iter().zip(values).map(|(p, v)| {
                        (descriptor_key(p).to_string(), v.clone().unwrap_or_default())
                    }),
                )
                .collect();
        let request = proto::RateLimitRequest {
            domain: self.domain.clone(),
            entries,
            hits_addend: self.hits_addend,
        };
        GrpcCall {
            cluster: self.cluster.clone(),
            service: proto::SERVICE,
            method: proto::METHOD,
            message: request.encode(),
            timeout: self.timeout,
        }
    }

    /// What the call's outcome means for the request.
    pub fn interpret(&self, outcome: CallOutcome<'_>) -> Answer {
        let bytes = match outcome {
            CallOutcome::Answer(b) => b,
            CallOutcome::Failed { timed_out, .. } => {
                return Answer::Failed {
                    reason: outcome.failure_name(),
                    timeout: timed_out,
                }
            }
        };
        let response = match proto::RateLimitResponse::decode(bytes) {
            Ok(r) => r,
            Err(e) => {
                return Answer::Failed {
                    reason: format!("unreadable answer ({e})"),
                    timeout: false,
                }
            }
        };
        let response_headers = headers(&response.response_headers_to_add);
        match response.overall_code {
            proto::code::OK => Answer::Allow {
                request_headers: headers(&response.request_headers_to_add),
                response_headers,
            },
            proto::code::OVER_LIMIT => {
                let mut out = response_headers;
                for (n, v) in limit_headers(&response.statuses) {
                    if !out.iter().any(|(have, _)| have.eq_ignore_ascii_case(&n)) {
                        out.push((n, v));
                    }
                }
                Answer::OverLimit { headers: out }
            }
            other => Answer::Failed {
                reason: format!("answer with code {other} (UNKNOWN)"),
                timeout: false,
            },
        }
    }
}

/// The service's headers that are safe to set: valid names, no pseudo-headers. `raw_value`
/// is used when `value` is empty (as Envoy does); values with bytes Envoy would refuse in a
/// header (NUL, CR, LF) are dropped.
fn headers(list: &[proto::HeaderValue]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|h| {
            let value = if h.value.is_empty() {
                String::from_utf8_lossy(&h.raw_value).into_owned()
            } else {
                h.value.clone()
            };
            let ok = header_name("header", &h.key).is_ok()
                && !h.key.starts_with(':')
                && !value.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n'));
            ok.then(|| (h.key.to_ascii_lowercase(), value))
        })
        .collect()
}

/// `retry-after` and the IETF draft's `ratelimit-limit`, `ratelimit-remaining`,
/// `ratelimit-reset` (as local limits send them) from the over-limit descriptor with the
/// longest wait (the earliest moment every limit admits again).
fn limit_headers(statuses: &[proto::DescriptorStatus]) -> Vec<(String, String)> {
    let reset_secs = |s: &proto::DescriptorStatus| -> u64 {
        match &s.duration_until_reset {
            Some((seconds, nanos)) => {
                let secs = u64::try_from(*seconds).unwrap_or(0);
                secs.saturating_add(u64::from(*nanos > 0))
            }
            None => s
                .current_limit
                .as_ref()
                .map_or(0, |l| proto::unit_seconds(l.unit)),
        }
    };
    let Some(worst) = statuses
        .iter()
        .filter(|s| s.code == proto::code::OVER_LIMIT)
        .max_by_key(|s| reset_secs(s))
    else {
        return Vec::new();
    };
    let reset = reset_secs(worst).max(1).to_string();
    let mut out = vec![("retry-after".to_string(), reset.clone())];
    if let Some(l) = &worst.current_limit {
        out.push(("ratelimit-limit".into(), l.requests_per_unit.to_string()));
    }
    out.push((
        "ratelimit-remaining".into(),
        worst.limit_remaining.to_string(),
    ));
    out.push(("ratelimit-reset".into(), reset));
    out
}

#[cfg(test)]
mod tests;
