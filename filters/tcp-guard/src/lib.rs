//! `tcp-guard`: a network (L4) filter for Envoy TCP listeners, placed before `tcp_proxy`.
//!
//! At connection start it applies the source policy (CIDR deny/allow lists), a per-source
//! connection rate limit and a per-source cap on concurrent connections, both shared by every
//! worker. Then, if any rule needs the first bytes, it holds the connection (nothing reaches
//! the upstream, which is not even connected yet) while it detects the protocol (TLS,
//! HTTP/1, HTTP/2, SSH, other) and, for TLS, parses the ClientHello for SNI and ALPN however
//! the bytes are split; it checks the protocol and SNI allow lists and picks the upstream
//! cluster from the SNI, which `tcp_proxy` reads from the filter state
//! `envoy.tcp_proxy.cluster`. Inspection is bounded in bytes and time.
//!
//! See the README for the configuration reference and what Envoy does before and after the
//! decision.

pub mod sni;
pub mod sniff;
pub mod tls;

use ipnet::IpNet;
use sdk_ext::conn_limit::{Held, Outcome, SlotCounters};
use sdk_ext::matcher::{canonical_ip, parse_cidr};
use sdk_ext::metrics::metric_safe;
use sdk_ext::network::{ConnOps, ConnectionView, DataChunk, NetDecision, NetworkFilter, Setup};
use sdk_ext::ratelimit::{BucketConfig, SlotBudget, TokenBuckets, MAX_TOTAL_SLOTS};
use sdk_ext::{ConfigError, Counter, FromJson, Gauge, Metrics, Node};
use sni::SniTable;
use sniff::{sniff, Protocol, Sniff};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;
use tls::{parse_client_hello, ClientHello, Hello};

/// Default and bounds of `inspect.max_bytes`: one full-size TLS record is 16 KiB plus a
/// 5-byte header; real ClientHellos are 0.2-2 KiB (post-quantum key shares included).
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024;
pub const MIN_MAX_BYTES: usize = 64;
pub const MAX_MAX_BYTES: usize = 64 * 1024;
/// Default and bound of `inspect.timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const MAX_TIMEOUT_MS: u64 = 300_000;

/// The JSON configuration. Every field is optional; `{}` admits everything and inspects
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Source address policy, checked first.
    pub source: SourceSpec,
    /// Per-source-IP token bucket for new connections (shared by all workers).
    /// (`sdk_ext::ratelimit::BucketConfig`, as the policy filter writes rate limits;
    /// `max_keys`: distinct sources tracked at once).
    pub connection_rate: Option<BucketConfig>,
    /// Per-source-IP cap on open connections (shared by all workers).
    pub max_connections_per_source: Option<u64>,
    /// Distinct sources whose open connections are counted at once (slots created at
    /// configure time; a source with no open connection gives its slot up).
    pub max_sources: u32,
    /// Limits and protocol allow list of first-bytes inspection.
    pub inspect: InspectSpec,
    /// SNI allow list and routes (TLS connections).
    pub sni: SniSpec,
    /// Cluster for admitted connections no SNI route matched; absent: `tcp_proxy`'s own.
    pub default_cluster: Option<String>,
}

/// Source CIDR lists (IPv4 and IPv6; IPv4-mapped IPv6 sources match IPv4 ranges).
#[derive(Debug, Clone, Default)]
pub struct SourceSpec {
    /// If non-empty, only these sources are admitted.
    pub allow: Vec<String>,
    /// Never admitted; wins over `allow`.
    pub deny: Vec<String>,
}

/// First-bytes inspection.
#[derive(Debug, Clone)]
pub struct InspectSpec {
    /// Protocols admitted; absent: all.
    pub protocols: Option<Vec<Protocol>>,
    /// Most bytes held and inspected per connection.
    pub max_bytes: usize,
    /// Longest a connection is held before the decision, from its start.
    pub timeout_ms: u64,
    /// What to do with a connection that sent no byte before the timeout; absent: as `other`
    /// (admitted if `protocols` admits `other`).
    pub no_data: Option<NoData>,
}

/// `inspect.no_data`: the decision for a connection silent until `inspect.timeout_ms`.
///
/// Silence is counted apart from `other` (`no_data_total`) because it has two very different
/// causes: a server-first protocol (SMTP, MySQL), or a proxy that never hands the filter the
/// bytes (a `tcp_proxy` without `max_early_data_bytes`, as istiod renders it). `deny` makes the
/// second fail closed and visible instead of admitting traffic the rules never saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoData {
    Allow,
    Deny,
}

impl Default for InspectSpec {
    fn default() -> Self {
        Self {
            protocols: None,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            no_data: None,
        }
    }
}

/// SNI rules. Patterns: `a.example.com`, `*.example.com`, `*`.
#[derive(Debug, Clone, Default)]
pub struct SniSpec {
    /// If non-empty, TLS connections must send an SNI matching one of these.
    pub allow: Vec<String>,
    /// SNI pattern to upstream cluster; the most specific pattern wins.
    pub routes: BTreeMap<String, String>,
}

impl FromJson for Config {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            source: or_default("source"),
            connection_rate: opt("connection_rate"),
            max_connections_per_source: opt("max_connections_per_source"),
            max_sources: or("max_sources", sdk_ext::ratelimit::DEFAULT_MAX_KEYS),
            inspect: or_default("inspect"),
            sni: or_default("sni"),
            default_cluster: opt("default_cluster"),
        })
    }
}

impl FromJson for SourceSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            allow: or_default("allow"),
            deny: or_default("deny"),
        })
    }
}

impl FromJson for InspectSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            protocols: opt("protocols"),
            max_bytes: or("max_bytes", DEFAULT_MAX_BYTES),
            timeout_ms: or("timeout_ms", DEFAULT_TIMEOUT_MS),
            no_data: opt("no_data"),
        })
    }
}

impl FromJson for NoData {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.choice(&[("allow", NoData::Allow), ("deny", NoData::Deny)])
    }
}

impl FromJson for SniSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            allow: or_default("allow"),
            routes: or_default("routes"),
        })
    }
}

/// Decision counters and the open-connections gauge (`tcp_guard_*`).
struct Stats {
    connections: Counter,
    allowed: Counter,
    denied_cidr: Counter,
    rate_limited: Counter,
    over_limit: Counter,
    protocol_denied: Counter,
    sni_denied: Counter,
    malformed: Counter,
    inspect_limit: Counter,
    inspect_timeout: Counter,
    no_data: Counter,
    limiter_contended: Counter,
    shared_slots: Counter,
    active: Gauge,
    detected: HashMap<Protocol, Counter>,
    routed: HashMap<String, Counter>,
}

/// One CIDR rule and where it was configured (`source.deny[1]`), for log lines.
#[derive(Debug, Clone)]
struct CidrRule {
    net: IpNet,
    path: String,
}

fn compile_cidrs(list: &[String], field: &str) -> Result<Vec<CidrRule>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            let path = format!("{field}[{i}]");
            parse_cidr(text)
                .map(|net| CidrRule {
                    net,
                    path: path.clone(),
                })
                .map_err(|reason| ConfigError::new(path, reason))
        })
        .collect()
}

/// The compiled filter, shared by every connection of a worker.
pub struct TcpGuard {
    allow: Vec<CidrRule>,
    deny: Vec<CidrRule>,
    rate: Option<TokenBuckets>,
    cap: Option<(SlotCounters, u64)>,
    /// Whether any rule needs the first bytes.
    inspect: bool,
    protocols: Vec<Protocol>,
    max_bytes: usize,
    timeout: Duration,
    /// Admit a connection that sent nothing before the timeout (`inspect.no_data`).
    admit_no_data: bool,
    sni_allow: SniTable<()>,
    routes: SniTable<String>,
    default_cluster: Option<String>,
    stats: Stats,
}

/// Where a connection is.
#[derive(Debug, Default)]
pub enum Phase {
    /// Before `on_new_connection`.
    #[default]
    New,
    /// Admitted, held until the first bytes decide.
    Inspecting {
        /// Bytes so far (at most `inspect.max_bytes`).
        buf: Vec<u8>,
        /// Do not re-parse before the buffer has this many bytes.
        need: usize,
        protocol: Option<Protocol>,
    },
    /// Decided (passed or closed).
    Decided,
}

/// Per-connection state.
#[derive(Debug, Default)]
pub struct ConnState {
    pub phase: Phase,
    /// Counted in `active_connections`.
    admitted: bool,
    /// The shared slot counting this connection (released on close).
    slot: Option<Held>,
}

/// Why a connection is closed during inspection.
enum Reject {
    Malformed(&'static str),
    TooLarge,
}

/// What the bytes so far say.
enum Step {
    Wait(usize),
    Decide(Protocol, Option<ClientHello>),
    Reject(Reject),
}

/// The peer for log lines.
struct Peer<'a>(&'a ConnectionView);

impl fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.source_addr() {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("unknown source"),
        }
    }
}

impl TcpGuard {
    fn close(
        &self,
        counter: &Counter,
        conn: &ConnectionView,
        why: fmt::Arguments<'_>,
    ) -> NetDecision {
        counter.inc();
        // Per connection, so at debug: a flood must not become a log flood (counters count).
        log::debug!(
            "{}: closed connection from {}: {why}",
            Self::NAME,
            Peer(conn)
        );
        NetDecision::Close
    }

    /// Source policy and limits, in order: deny list, allow list, rate, concurrency.
    fn admit(&self, conn: &ConnectionView, state: &mut ConnState) -> Option<NetDecision> {
        let ip = conn.source_ip().map(canonical_ip);
        if let Some(ip) = ip {
            if let Some(rule) = self.deny.iter().find(|r| r.net.contains(&ip)) {
                let why = format_args!("source matches {} ({})", rule.path, rule.net);
                return Some(self.close(&self.stats.denied_cidr, conn, why));
            }
        }
        if !self.allow.is_empty()
            && !ip.is_some_and(|ip| self.allow.iter().any(|r| r.net.contains(&ip)))
        {
            let why = format_args!("source matches no source.allow range");
            return Some(self.close(&self.stats.denied_cidr, conn, why));
        }
        // Limits are per source IP; a connection without one (a pipe) is not limited.
        let key = ip?.to_string();
        if let Some(buckets) = &self.rate {
            match buckets.take(key.as_bytes(), 1) {
                Ok(admission) if admission.allowed => {}
                Ok(_) => {
                    let why = format_args!("connection_rate exceeded for {key}");
                    return Some(self.close(&self.stats.rate_limited, conn, why));
                }
                Err(err) => {
                    // Fail open: losing every CAS race means heavy contention on this
                    // source's bucket (or a host error), not an attack on the limit itself.
                    self.stats.limiter_contended.inc();
                    log::warn!(
                        "{}: connection_rate for {key}: {err}; admitting",
                        Self::NAME
                    );
                }
            }
        }
        if let Some((counter, max)) = &self.cap {
            match counter.acquire(key.as_bytes(), *max) {
                Outcome::Allowed(held) => {
                    if held.shared {
                        self.stats.shared_slots.inc();
                    }
                    state.slot = Some(held);
                }
                Outcome::Limited => {
                    let why = format_args!("max_connections_per_source ({max}) reached for {key}");
                    return Some(self.close(&self.stats.over_limit, conn, why));
                }
                Outcome::Contended => {
                    self.stats.limiter_contended.inc();
                    log::warn!(
                        "{}: connection count for {key} contended; admitting uncounted",
                        Self::NAME
                    );
                }
            }
        }
        None
    }

    /// Apply protocol and SNI rules, choose the cluster.
    fn decide(
        &self,
        conn: &ConnectionView,
        state: &mut ConnState,
        protocol: Protocol,
        hello: Option<&ClientHello>,
        ops: &mut ConnOps,
    ) -> NetDecision {
        state.phase = Phase::Decided;
        if let Some(c) = self.stats.detected.get(&protocol) {
            c.inc();
        }
        if !self.protocols.contains(&protocol) {
            let why = format_args!("protocol {protocol} is not in inspect.protocols");
            return self.close(&self.stats.protocol_denied, conn, why);
        }
        let sni = hello.and_then(|h| h.sni.as_deref());
        if protocol == Protocol::Tls && !self.sni_allow.is_empty() {
            match sni {
                Some(name) if self.sni_allow.lookup(name).is_some() => {}
                Some(name) => {
                    let why = format_args!("SNI `{name}` matches no sni.allow pattern");
                    return self.close(&self.stats.sni_denied, conn, why);
                }
                None => {
                    let why = format_args!("no SNI, and sni.allow is set");
                    return self.close(&self.stats.sni_denied, conn, why);
                }
            }
        }
        self.pass(conn, sni, ops)
    }

    /// Let an admitted connection through: route it (SNI route, else `default_cluster`).
    fn pass(&self, conn: &ConnectionView, sni: Option<&str>, ops: &mut ConnOps) -> NetDecision {
        let route = sni.and_then(|name| self.routes.lookup(name).map(|(p, c)| (name, p, c)));
        let cluster = match route {
            Some((name, pattern, cluster)) => {
                log::debug!(
                    "{}: {} SNI `{name}` routed to `{cluster}` by sni.routes.{pattern}",
                    Self::NAME,
                    Peer(conn)
                );
                Some(cluster)
            }
            None => self.default_cluster.as_ref(),
        };
        if let Some(cluster) = cluster {
            ops.route_to_cluster(cluster);
            if let Some(c) = self.stats.routed.get(cluster) {
                c.inc();
            }
        }
        self.stats.allowed.inc();
        NetDecision::Continue
    }

    /// What the bytes buffered so far say.
    fn step(&self, buf: &[u8], protocol: &mut Option<Protocol>, overflow: bool, eos: bool) -> Step {
        let detected = match *protocol {
            Some(p) => p,
            None => match sniff(buf) {
                Sniff::Is(p) => {
                    *protocol = Some(p);
                    p
                }
                Sniff::NeedMore if eos => Protocol::Other,
                Sniff::NeedMore => return Step::Wait(buf.len() + 1),
            },
        };
        if detected != Protocol::Tls {
            return Step::Decide(detected, None);
        }
        match parse_client_hello(buf) {
            Hello::Done(hello) => Step::Decide(Protocol::Tls, Some(hello)),
            Hello::Malformed(reason) => Step::Reject(Reject::Malformed(reason)),
            Hello::NeedMore(n) if n > self.max_bytes || overflow => Step::Reject(Reject::TooLarge),
            Hello::NeedMore(_) if eos => Step::Reject(Reject::Malformed(
                "connection half-closed inside the ClientHello",
            )),
            Hello::NeedMore(n) => Step::Wait(n),
        }
    }
}

impl NetworkFilter for TcpGuard {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    type Config = Config;
    type State = ConnState;

    fn configure(c: Config, setup: Setup<'_>) -> Result<Self, ConfigError> {
        let metrics: &mut Metrics = setup.metrics;
        let allow = compile_cidrs(&c.source.allow, "source.allow")?;
        let deny = compile_cidrs(&c.source.deny, "source.deny")?;
        // One bounded table for the rate buckets and the connection counters (shared data
        // cannot free keys): slots are created here and reused by whichever source is active.
        let mut budget = SlotBudget::new("tcp-guard", MAX_TOTAL_SLOTS, &setup.services)
            .map_err(|e| ConfigError::new("", e.reason))?;
        let rate = match &c.connection_rate {
            Some(r) => Some(
                r.compile(&mut budget, "connection_rate")
                    .map_err(|e| e.within("connection_rate"))?,
            ),
            None => None,
        };
        let cap = match c.max_connections_per_source {
            Some(0) => {
                return Err(ConfigError::new(
                    "max_connections_per_source",
                    "must be at least 1",
                ))
            }
            Some(n) => {
                let table = budget
                    .reserve("connections", c.max_sources)
                    .map_err(|e| ConfigError::new("max_sources", e.reason))?;
                Some((SlotCounters::new(table), n))
            }
            None => None,
        };
        budget
            .prepare()
            .map_err(|e| ConfigError::new("", format!("cannot create the shared slots: {e}")))?;
        let i = &c.inspect;
        if !(MIN_MAX_BYTES..=MAX_MAX_BYTES).contains(&i.max_bytes) {
            return Err(ConfigError::new(
                "inspect.max_bytes",
                format!(
                    "{} is not between {MIN_MAX_BYTES} and {MAX_MAX_BYTES}",
                    i.max_bytes
                ),
            ));
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&i.timeout_ms) {
            return Err(ConfigError::new(
                "inspect.timeout_ms",
                format!("{} is not between 1 and {MAX_TIMEOUT_MS}", i.timeout_ms),
            ));
        }
        let protocols = match &i.protocols {
            Some(list) if list.is_empty() => {
                return Err(ConfigError::new(
                    "inspect.protocols",
                    "must not be empty (omit it to admit every protocol)",
                ))
            }
            Some(list) => list.clone(),
            None => Protocol::ALL.to_vec(),
        };
        let sni_allow = SniTable::compile(
            c.sni
                .allow
                .iter()
                .enumerate()
                .map(|(n, p)| (p.clone(), (), format!("sni.allow[{n}]"))),
        )?;
        for (pattern, cluster) in &c.sni.routes {
            if cluster.is_empty() {
                return Err(ConfigError::new(
                    format!("sni.routes.{pattern}"),
                    "cluster name must not be empty",
                ));
            }
        }
        let routes = SniTable::compile(
            c.sni
                .routes
                .iter()
                .map(|(p, cluster)| (p.clone(), cluster.clone(), format!("sni.routes.{p}"))),
        )?;
        if c.default_cluster.as_deref() == Some("") {
            return Err(ConfigError::new("default_cluster", "must not be empty"));
        }
        let all_protocols = Protocol::ALL.iter().all(|p| protocols.contains(p));
        let inspect = !all_protocols || !sni_allow.is_empty() || !routes.is_empty();

        let mut detected = HashMap::new();
        for p in Protocol::ALL {
            detected.insert(p, metrics.counter(&format!("detected_{p}_total"))?);
        }
        let mut routed = HashMap::new();
        for cluster in routes.values().chain(c.default_cluster.iter()) {
            if !routed.contains_key(cluster) {
                let counter = metrics.counter(&format!("routed_{}_total", metric_safe(cluster)))?;
                routed.insert(cluster.clone(), counter);
            }
        }
        let stats = Stats {
            connections: metrics.counter("connections_total")?,
            allowed: metrics.counter("allowed_total")?,
            denied_cidr: metrics.counter("denied_cidr_total")?,
            rate_limited: metrics.counter("rate_limited_total")?,
            over_limit: metrics.counter("over_limit_total")?,
            protocol_denied: metrics.counter("protocol_denied_total")?,
            sni_denied: metrics.counter("sni_denied_total")?,
            malformed: metrics.counter("malformed_total")?,
            inspect_limit: metrics.counter("inspect_limit_total")?,
            inspect_timeout: metrics.counter("inspect_timeout_total")?,
            no_data: metrics.counter("no_data_total")?,
            limiter_contended: metrics.counter("limiter_contended_total")?,
            shared_slots: metrics.counter("shared_slots_total")?,
            active: metrics.gauge("active_connections")?,
            detected,
            routed,
        };
        let admit_no_data = match i.no_data {
            Some(n) => n == NoData::Allow,
            None => protocols.contains(&Protocol::Other),
        };
        Ok(Self {
            allow,
            deny,
            rate,
            cap,
            inspect,
            protocols,
            max_bytes: i.max_bytes,
            timeout: Duration::from_millis(i.timeout_ms),
            admit_no_data,
            sni_allow,
            routes,
            default_cluster: c.default_cluster,
            stats,
        })
    }

    fn on_new_connection(
        &self,
        conn: &ConnectionView,
        state: &mut ConnState,
        ops: &mut ConnOps,
    ) -> NetDecision {
        self.stats.connections.inc();
        if let Some(decision) = self.admit(conn, state) {
            state.phase = Phase::Decided;
            return decision;
        }
        state.admitted = true;
        self.stats.active.add(1);
        if self.inspect {
            state.phase = Phase::Inspecting {
                buf: Vec::new(),
                need: 1,
                protocol: None,
            };
            return NetDecision::Pause;
        }
        state.phase = Phase::Decided;
        if let Some(cluster) = &self.default_cluster {
            ops.route_to_cluster(cluster);
            if let Some(c) = self.stats.routed.get(cluster) {
                c.inc();
            }
        }
        self.stats.allowed.inc();
        NetDecision::Continue
    }

    fn on_downstream_data(
        &self,
        conn: &ConnectionView,
        data: DataChunk<'_>,
        state: &mut ConnState,
        ops: &mut ConnOps,
    ) -> NetDecision {
        let Phase::Inspecting {
            buf,
            need,
            protocol,
        } = &mut state.phase
        else {
            return NetDecision::Continue;
        };
        let room = self.max_bytes.saturating_sub(buf.len());
        let take = data.new_bytes.len().min(room);
        buf.extend_from_slice(&data.new_bytes[..take]);
        let overflow = data.new_bytes.len() > take;
        if buf.len() < *need && !data.end_of_stream && !overflow {
            return NetDecision::Pause;
        }
        match self.step(buf, protocol, overflow, data.end_of_stream) {
            Step::Wait(n) => {
                *need = n;
                NetDecision::Pause
            }
            Step::Decide(p, hello) => self.decide(conn, state, p, hello.as_ref(), ops),
            Step::Reject(reject) => {
                if let Some(c) = self.stats.detected.get(&Protocol::Tls) {
                    c.inc();
                }
                state.phase = Phase::Decided;
                match reject {
                    Reject::Malformed(reason) => {
                        let why = format_args!("malformed ClientHello: {reason}");
                        self.close(&self.stats.malformed, conn, why)
                    }
                    Reject::TooLarge => {
                        let why = format_args!(
                            "ClientHello larger than inspect.max_bytes ({})",
                            self.max_bytes
                        );
                        self.close(&self.stats.inspect_limit, conn, why)
                    }
                }
            }
        }
    }

    fn pause_timeout(&self) -> Option<Duration> {
        self.inspect.then_some(self.timeout)
    }

    fn on_timeout(
        &self,
        conn: &ConnectionView,
        state: &mut ConnState,
        ops: &mut ConnOps,
    ) -> NetDecision {
        self.stats.inspect_timeout.inc();
        if matches!(&state.phase, Phase::Inspecting { buf, .. } if buf.is_empty()) {
            // Not a protocol: nothing reached the filter (a server-first protocol, or a
            // `tcp_proxy` without `max_early_data_bytes`). Counted apart from `other`.
            state.phase = Phase::Decided;
            if !self.admit_no_data {
                let why = format_args!(
                    "no data within inspect.timeout_ms ({} ms) and inspect.no_data is deny",
                    u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
                );
                return self.close(&self.stats.no_data, conn, why);
            }
            self.stats.no_data.inc();
            return self.pass(conn, None, ops);
        }
        let undetermined = matches!(state.phase, Phase::Inspecting { protocol: None, .. });
        if undetermined {
            // Nothing recognisable arrived in time (or nothing at all, as with server-first
            // protocols): it is `other`, and the protocol allow list decides.
            return self.decide(conn, state, Protocol::Other, None, ops);
        }
        state.phase = Phase::Decided;
        if let Some(c) = self.stats.detected.get(&Protocol::Tls) {
            c.inc();
        }
        log::debug!(
            "{}: closed connection from {}: ClientHello incomplete after inspect.timeout_ms ({} ms)",
            Self::NAME,
            Peer(conn),
            u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
        );
        NetDecision::Close
    }

    fn on_downstream_close(&self, conn: &ConnectionView, state: &mut ConnState) {
        if std::mem::take(&mut state.admitted) {
            self.stats.active.add(-1);
        }
        if let (Some(held), Some((counter, _))) = (state.slot.take(), &self.cap) {
            if !counter.release(held) {
                self.stats.limiter_contended.inc();
                log::warn!(
                    "{}: could not release a connection slot of {} (contended)",
                    Self::NAME,
                    Peer(conn)
                );
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", feature = "export"))]
sdk_ext::export_network_filter!(TcpGuard);

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
