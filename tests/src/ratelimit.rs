//! A rate-limit service for tests and demos: `envoy.service.ratelimit.v3.RateLimitService`
//! over gRPC (tonic), counting in Redis the way envoyproxy/ratelimit does.
//!
//! * **Configuration**: envoyproxy/ratelimit's own format (`domain`, a tree of `descriptors`
//!   with `key`, optional `value`, `rate_limit: {unit, requests_per_unit}`), so the docs'
//!   example is what the tests run. A request descriptor matches by walking the tree entry by
//!   entry, `key`+`value` first, then `key` alone (any value, counted per value).
//! * **Counting**: fixed windows. For each descriptor with a limit, one pipeline of `INCRBY
//!   key hits` and `EXPIRE key unit_seconds`, where `key` is
//!   `domain_k1_v1_..._kn_vn_<window start>`; over the limit when the count exceeds
//!   `requests_per_unit`. Redis holds every count, so any number of Envoys (and service
//!   instances) share them.
//! * **Redis unavailable**: the call fails with `UNAVAILABLE`, and Envoy (native filter) or
//!   the policy filter apply their failure mode. A restarted Redis (no persistence) starts every
//!   window from zero: up to one extra window's worth of requests is admitted.
//!
//! This is test infrastructure. Production deployments run envoyproxy/ratelimit or Limitador
//! (see `filters/policy/README.md`).

use crate::redis::{RedisConnection, Reply};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The protocol's messages (prost derive, from `rls.proto` and its imports; declared once in
/// `test-support`, shared with policy's codec tests).
pub use test_support::rls as proto;

/// One domain's limits, in envoyproxy/ratelimit's configuration format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    pub domain: String,
    #[serde(default)]
    pub descriptors: Vec<DescriptorConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorConfig {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub rate_limit: Option<LimitConfig>,
    #[serde(default)]
    pub descriptors: Vec<DescriptorConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// `second`, `minute`, `hour`, `day` (any case, as envoyproxy/ratelimit).
    pub unit: String,
    pub requests_per_unit: u32,
}

/// `RateLimitResponse.RateLimit.Unit` of a unit name, and its window in seconds.
fn unit(name: &str) -> Result<(i32, u64)> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "second" => (1, 1),
        "minute" => (2, 60),
        "hour" => (3, 3600),
        "day" => (4, 86_400),
        other => bail!("unknown rate_limit.unit `{other}` (second, minute, hour, day)"),
    })
}

/// The limit a descriptor falls under, if any (envoyproxy/ratelimit's matching).
fn find_limit<'a>(
    nodes: &'a [DescriptorConfig],
    entries: &[proto::Entry],
) -> Option<&'a LimitConfig> {
    let (first, rest) = entries.split_first()?;
    let node = nodes
        .iter()
        .find(|n| n.key == first.key && n.value.as_deref() == Some(first.value.as_str()))
        .or_else(|| {
            nodes
                .iter()
                .find(|n| n.key == first.key && n.value.is_none())
        })?;
    if rest.is_empty() {
        node.rate_limit.as_ref()
    } else {
        find_limit(&node.descriptors, rest)
    }
}

/// What the service counted, for tests.
#[derive(Debug, Default)]
pub struct ServiceStats {
    /// Calls answered (OK or OVER_LIMIT).
    pub answered: AtomicU64,
    pub over_limit: AtomicU64,
    /// Calls failed because Redis did not answer.
    pub redis_errors: AtomicU64,
}

struct Limiter {
    domains: HashMap<String, DomainConfig>,
    redis: SocketAddr,
    /// Idle connections (taken for one pipeline, returned after it).
    pool: Mutex<Vec<RedisConnection>>,
    stats: Arc<ServiceStats>,
    /// Answers are held this long first (tests of the callers' timeouts).
    delay_ms: AtomicU64,
    /// Add `ratelimit-limit/-remaining/-reset` as `response_headers_to_add` (what
    /// envoyproxy/ratelimit does with `LIMIT_RESPONSE_HEADERS_ENABLED=true`).
    response_headers: std::sync::atomic::AtomicBool,
}

impl Limiter {
    async fn should_rate_limit(
        &self,
        req: proto::RateLimitRequest,
    ) -> Result<proto::RateLimitResponse, tonic::Status> {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let Some(domain) = self.domains.get(&req.domain) else {
            return Err(tonic::Status::invalid_argument(format!(
                "unknown domain `{}`",
                req.domain
            )));
        };
        let hits = u64::from(req.hits_addend.max(1));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now_secs = now.as_secs();
        // (status index, redis key, limit, window seconds) for every descriptor with a limit.
        let mut counted = Vec::new();
        let mut statuses = Vec::with_capacity(req.descriptors.len());
        for d in &req.descriptors {
            let Some(limit) = find_limit(&domain.descriptors, &d.entries) else {
                statuses.push(proto::DescriptorStatus {
                    code: proto::OK,
                    ..Default::default()
                });
                continue;
            };
            let (unit_code, window) =
                unit(&limit.unit).map_err(|e| tonic::Status::internal(e.to_string()))?;
            let start = now_secs - now_secs % window;
            let mut key = domain.domain.clone();
            for e in &d.entries {
                key.push('_');
                key.push_str(&e.key);
                key.push('_');
                key.push_str(&e.value);
            }
            key.push('_');
            key.push_str(&start.to_string());
            counted.push((
                statuses.len(),
                key,
                limit.requests_per_unit,
                unit_code,
                window,
                start,
            ));
            statuses.push(proto::DescriptorStatus::default());
        }
        if !counted.is_empty() {
            let counts = self.count(&counted, hits).await.map_err(|e| {
                self.stats.redis_errors.fetch_add(1, Ordering::Relaxed);
                tonic::Status::unavailable(format!("redis: {e:#}"))
            })?;
            for ((i, _, limit, unit_code, window, start), count) in counted.iter().zip(counts) {
                let over = count > u64::from(*limit);
                let reset = (start + window).saturating_sub(now_secs);
                statuses[*i] = proto::DescriptorStatus {
                    code: if over { proto::OVER_LIMIT } else { proto::OK },
                    current_limit: Some(proto::RateLimit {
                        requests_per_unit: *limit,
                        unit: *unit_code,
                        name: String::new(),
                    }),
                    limit_remaining: u32::try_from(u64::from(*limit).saturating_sub(count))
                        .unwrap_or(0),
                    duration_until_reset: Some(proto::Duration {
                        seconds: i64::try_from(reset).unwrap_or(0),
                        nanos: 0,
                    }),
                };
            }
        }
        let over = statuses.iter().any(|s| s.code == proto::OVER_LIMIT);
        let mut response_headers_to_add = Vec::new();
        // The most restrictive limited descriptor (fewest remaining) speaks for the request.
        let tightest = statuses
            .iter()
            .filter(|s| s.current_limit.is_some())
            .min_by_key(|s| s.limit_remaining);
        if let (true, Some(s)) = (self.response_headers.load(Ordering::Relaxed), tightest) {
            let limit = s.current_limit.as_ref().map_or(0, |l| l.requests_per_unit);
            let reset = s.duration_until_reset.as_ref().map_or(0, |d| d.seconds);
            for (k, v) in [
                ("ratelimit-limit", limit.to_string()),
                ("ratelimit-remaining", s.limit_remaining.to_string()),
                ("ratelimit-reset", reset.to_string()),
            ] {
                response_headers_to_add.push(proto::HeaderValue {
                    key: k.into(),
                    value: v,
                    ..Default::default()
                });
            }
        }
        self.stats.answered.fetch_add(1, Ordering::Relaxed);
        if over {
            self.stats.over_limit.fetch_add(1, Ordering::Relaxed);
        }
        Ok(proto::RateLimitResponse {
            overall_code: if over { proto::OVER_LIMIT } else { proto::OK },
            statuses,
            response_headers_to_add,
            ..Default::default()
        })
    }

    /// `INCRBY key hits` + `EXPIRE key window` per descriptor, one pipeline; the new counts.
    async fn count(
        &self,
        counted: &[(usize, String, u32, i32, u64, u64)],
        hits: u64,
    ) -> Result<Vec<u64>> {
        let pooled = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        let mut conn = match pooled {
            Some(c) => c,
            None => RedisConnection::connect(self.redis, Duration::from_secs(1)).await?,
        };
        let hits_s = hits.to_string();
        let windows: Vec<String> = counted.iter().map(|c| c.4.to_string()).collect();
        let mut cmds: Vec<Vec<&[u8]>> = Vec::with_capacity(2 * counted.len());
        for (c, w) in counted.iter().zip(&windows) {
            cmds.push(vec![b"INCRBY", c.1.as_bytes(), hits_s.as_bytes()]);
            cmds.push(vec![b"EXPIRE", c.1.as_bytes(), w.as_bytes()]);
        }
        let replies = tokio::time::timeout(Duration::from_secs(1), conn.pipeline(&cmds))
            .await
            .context("redis pipeline timed out")??;
        // A connection that answered goes back to the pool; a failed one is dropped.
        if let Ok(mut p) = self.pool.lock() {
            p.push(conn);
        }
        replies
            .iter()
            .step_by(2)
            .map(|r| match r {
                Reply::Integer(n) => Ok(u64::try_from(*n).unwrap_or(0)),
                other => bail!("INCRBY answered {other:?}"),
            })
            .collect()
    }
}

/// The tonic service: one method, routed by path (what tonic-build would generate).
#[derive(Clone)]
struct RlsService(Arc<Limiter>);

impl tonic::server::NamedService for RlsService {
    const NAME: &'static str = "envoy.service.ratelimit.v3.RateLimitService";
}

struct ShouldRateLimit(Arc<Limiter>);

impl tonic::server::UnaryService<proto::RateLimitRequest> for ShouldRateLimit {
    type Response = proto::RateLimitResponse;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<tonic::Response<Self::Response>, tonic::Status>>
                + Send,
        >,
    >;

    fn call(&mut self, request: tonic::Request<proto::RateLimitRequest>) -> Self::Future {
        let limiter = Arc::clone(&self.0);
        Box::pin(async move {
            limiter
                .should_rate_limit(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

impl<B> tower_service::Service<http::Request<B>> for RlsService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let limiter = Arc::clone(&self.0);
        if req.uri().path() == "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit" {
            Box::pin(async move {
                let codec = tonic_prost::ProstCodec::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(ShouldRateLimit(limiter), req).await)
            })
        } else {
            Box::pin(async move { Ok(tonic::Status::unimplemented("no such method").into_http()) })
        }
    }
}

/// A running service on a loopback port, on its own thread and runtime; stopped on drop.
pub struct RateLimitServer {
    addr: SocketAddr,
    limiter: Arc<Limiter>,
    stats: Arc<ServiceStats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RateLimitServer {
    /// Serve `domains` on a free loopback port, counting in the Redis at `redis`.
    pub fn start(domains: Vec<DomainConfig>, redis: SocketAddr) -> Result<Self> {
        Self::start_on(domains, redis, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// As [`RateLimitServer::start`], on `bind` (port 0: any free port).
    pub fn start_on(
        domains: Vec<DomainConfig>,
        redis: SocketAddr,
        bind: SocketAddr,
    ) -> Result<Self> {
        for d in &domains {
            check(&d.descriptors).with_context(|| format!("domain `{}`", d.domain))?;
        }
        let stats = Arc::new(ServiceStats::default());
        let limiter = Arc::new(Limiter {
            domains: domains.into_iter().map(|d| (d.domain.clone(), d)).collect(),
            redis,
            pool: Mutex::new(Vec::new()),
            stats: Arc::clone(&stats),
            delay_ms: AtomicU64::new(0),
            response_headers: std::sync::atomic::AtomicBool::new(false),
        });
        let listener = std::net::TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let svc = RlsService(Arc::clone(&limiter));
        // Served with hyper's HTTP/2 server directly rather than tonic's: tonic's server
        // enforces the caller's `grpc-timeout` itself, and the callers' own deadlines (what
        // Envoy does when a service is slow) are what the tests exercise.
        let thread = std::thread::Builder::new()
            .name("ratelimit-service".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        let stream = tokio::select! {
                            _ = &mut rx => break,
                            accepted = listener.accept() => match accepted {
                                Ok((stream, _)) => stream,
                                Err(_) => continue,
                            },
                        };
                        let _ = stream.set_nodelay(true);
                        let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http2::Builder::new(
                                hyper_util::rt::TokioExecutor::new(),
                            )
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                        });
                    }
                });
                // Dropping the runtime ends every open connection.
                rt.shutdown_background();
            })?;
        Ok(Self {
            addr,
            limiter,
            stats,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> &ServiceStats {
        &self.stats
    }

    /// Hold every answer this long (0: answer at once).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.limiter.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Send `ratelimit-limit/-remaining/-reset` as `response_headers_to_add` on every answer.
    pub fn set_response_headers(&self, on: bool) {
        self.limiter.response_headers.store(on, Ordering::Relaxed);
    }

    /// Stop serving: the port closes, open connections are ended.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RateLimitServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every unit is known and every limit positive.
fn check(nodes: &[DescriptorConfig]) -> Result<()> {
    for n in nodes {
        if let Some(l) = &n.rate_limit {
            unit(&l.unit).with_context(|| format!("descriptor `{}`", n.key))?;
        }
        check(&n.descriptors)?;
    }
    Ok(())
}

/// Sleep into the next minute when fewer than `needed` remain of this one: the service counts in
/// one-minute windows, and a test's sequence must stay in one.
pub fn wait_for_fresh_minute(needed: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let into = now.as_secs() % 60;
    if into + needed.as_secs() >= 60 {
        std::thread::sleep(Duration::from_secs(60 - into) + Duration::from_millis(200));
    }
}

/// How a unary gRPC call ended, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcAnswer {
    /// Status OK and the response message (without the gRPC frame prefix).
    Message(Vec<u8>),
    /// A gRPC status other than OK (`grpc-status`, `grpc-message`).
    Status { code: u32, message: String },
    /// No answer before the deadline.
    Timeout,
    /// No connection (refused, reset before an answer): what happened.
    Unreachable(String),
}

/// Call `path` (`/package.Service/Method`) on the gRPC server at `addr` with the serialized
/// `message`, over a new HTTP/2 connection, waiting at most `timeout`. Blocking: for tests that
/// stand in for Envoy's gRPC client (the in-process host's responder).
pub fn grpc_unary(addr: SocketAddr, path: &str, message: &[u8], timeout: Duration) -> GrpcAnswer {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return GrpcAnswer::Unreachable(format!("runtime: {e}")),
    };
    rt.block_on(async {
        match tokio::time::timeout(timeout, grpc_unary_h2(addr, path, message)).await {
            Err(_) => GrpcAnswer::Timeout,
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => GrpcAnswer::Unreachable(format!("{e:#}")),
        }
    })
}

async fn grpc_unary_h2(addr: SocketAddr, path: &str, message: &[u8]) -> Result<GrpcAnswer> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .context("connect")?;
    let (client, connection) = h2::client::handshake(tcp).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await?;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?;
    let (response, mut send) = client.send_request(request, false)?;
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
    framed.extend_from_slice(message);
    send.send_data(bytes::Bytes::from(framed), true)?;
    let (parts, mut body) = response.await?.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await?;
    // Trailers-only answers carry the status in the headers.
    let status_of = |h: &http::HeaderMap| -> Option<(u32, String)> {
        let code = h.get("grpc-status")?.to_str().ok()?.parse().ok()?;
        let message = h
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Some((code, message))
    };
    let status = trailers
        .as_ref()
        .and_then(status_of)
        .or_else(|| status_of(&parts.headers));
    if parts.status != http::StatusCode::OK {
        bail!("HTTP status {} from a gRPC server", parts.status);
    }
    match status {
        Some((0, _)) => {
            let len = data
                .get(1..5)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .context("no message frame")?;
            let msg = data.get(5..5 + len).context("short message frame")?;
            Ok(GrpcAnswer::Message(msg.to_vec()))
        }
        Some((code, message)) => Ok(GrpcAnswer::Status { code, message }),
        None => bail!("no grpc-status"),
    }
}

/// An Envoy cluster for the service (HTTP/2, as gRPC needs), for [`crate::EnvoyConfig`].
pub fn cluster_json(name: &str, addr: SocketAddr) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": {
                "address": addr.ip().to_string(), "port_value": addr.port() } } } }] }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(json: &str) -> DomainConfig {
        serde_json::from_str(json).unwrap()
    }

    fn entries(pairs: &[(&str, &str)]) -> Vec<proto::Entry> {
        pairs
            .iter()
            .map(|(k, v)| proto::Entry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    #[test]
    fn descriptors_match_like_envoyproxy_ratelimit() {
        let d = domain(
            r#"{"domain": "edge", "descriptors": [
                {"key": "generic_key", "value": "api", "descriptors": [
                    {"key": "remote_address", "rate_limit": {"unit": "minute", "requests_per_unit": 10}},
                    {"key": "remote_address", "value": "10.0.0.9", "rate_limit": {"unit": "second", "requests_per_unit": 1}}
                ]},
                {"key": "x-user", "rate_limit": {"unit": "HOUR", "requests_per_unit": 5}}
            ]}"#,
        );
        let limit = |pairs: &[(&str, &str)]| {
            find_limit(&d.descriptors, &entries(pairs)).map(|l| l.requests_per_unit)
        };
        assert_eq!(
            limit(&[("generic_key", "api"), ("remote_address", "1.2.3.4")]),
            Some(10)
        );
        // A value-specific node wins over the key-only one.
        assert_eq!(
            limit(&[("generic_key", "api"), ("remote_address", "10.0.0.9")]),
            Some(1)
        );
        assert_eq!(limit(&[("x-user", "bob")]), Some(5));
        assert_eq!(
            limit(&[("generic_key", "other"), ("remote_address", "1.2.3.4")]),
            None
        );
        // A prefix of a configured path has no limit of its own.
        assert_eq!(limit(&[("generic_key", "api")]), None);
        assert_eq!(limit(&[]), None);
    }

    #[test]
    fn unknown_units_are_refused() {
        let d = domain(
            r#"{"domain": "e", "descriptors": [{"key": "k", "rate_limit": {"unit": "fortnight", "requests_per_unit": 1}}]}"#,
        );
        assert!(check(&d.descriptors).is_err());
    }
}
