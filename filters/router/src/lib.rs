//! `router`: decides where a request goes by setting a destination-tag header that Envoy's (or
//! an Istio `VirtualService`'s) header route matches, so traffic is steered by pushing a new
//! filter config instead of new routes.
//!
//! Per request, in order:
//! 1. every client-supplied copy of the routing header is removed (otherwise a client could pick
//!    its own destination);
//! 2. rules are tried in order, the first whose `match` holds wins; it names a `tag`, or splits
//!    by `weights` on a sticky hash of a key ([`hash`]);
//! 3. the winning rule's rewrites and header edits are applied and the tag header is set; if no
//!    rule matched, `default_tag` is set, or no header at all (the route's default applies).
//!
//! Setting a request header (or `:path`/`:authority`) from a Wasm filter makes Envoy pick the
//! route again, which is what makes header routing after this filter work.
//!
//! See `README.md` for the configuration reference.

pub mod config;
pub mod hash;

use config::{Action, Fallback, HashKey, Rule};
use sdk_ext::jwt::{ClaimSource, Claims};
use sdk_ext::{ConfigError, Counter, Decision, HeaderOps, HttpFilter, RequestView, Setup};
use std::borrow::Cow;
use std::cell::OnceCell;

pub use config::Config;

/// A destination tag and its counter.
#[derive(Debug)]
pub struct Destination {
    pub tag: String,
    routed: Counter,
}

/// The compiled filter, shared by every request of a worker.
#[derive(Debug)]
pub struct RouterFilter {
    route_header: String,
    claim_source: ClaimSource,
    rules: Vec<Rule>,
    /// Every tag named anywhere in the config; rules refer to it by index.
    destinations: Vec<Destination>,
    default_dest: Option<usize>,
    random: hash::Random,
    requests: Counter,
    unrouted: Counter,
    fallback: Counter,
    client_header_removed: Counter,
}

impl HttpFilter for RouterFilter {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    type Config = Config;
    type State = ();

    fn configure(config: Config, setup: Setup<'_>) -> Result<Self, ConfigError> {
        let metrics = setup.metrics;
        let compiled = config.compile()?;
        let mut destinations = Vec::with_capacity(compiled.tags.len());
        for tag in compiled.tags {
            let routed = metrics.counter(&format!("routed_{}_total", metric_tag(&tag)))?;
            destinations.push(Destination { tag, routed });
        }
        Ok(Self {
            route_header: compiled.route_header,
            claim_source: compiled.claim_source,
            rules: compiled.rules,
            destinations,
            default_dest: compiled.default_dest,
            random: hash::Random::default(),
            requests: metrics.counter("requests_total")?,
            unrouted: metrics.counter("unrouted_total")?,
            fallback: metrics.counter("split_fallback_total")?,
            client_header_removed: metrics.counter("client_header_removed_total")?,
        })
    }

    /// Phase: request headers. Always continues; the outcome is header edits.
    fn on_request_headers(
        &self,
        req: &RequestView,
        _state: &mut (),
        ops: &mut HeaderOps,
    ) -> Decision {
        self.requests.inc();
        if req.header(&self.route_header).is_some() {
            ops.remove(self.route_header.as_str());
            self.client_header_removed.inc();
        }
        let decoded = OnceCell::new();
        let claims = || {
            decoded
                .get_or_init(|| self.claim_source.claims(req))
                .as_ref()
        };
        let chosen = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.matches(req, &claims));
        let dest = match chosen {
            Some((i, rule)) => {
                let dest = self.pick(rule, req, &claims);
                rule.edits.apply(req, ops);
                log::debug!(
                    "{}: rule {} ({}) -> {}",
                    Self::NAME,
                    i,
                    rule.name,
                    self.destinations.get(dest).map_or("", |d| &d.tag)
                );
                Some(dest)
            }
            None => self.default_dest,
        };
        match dest.and_then(|d| self.destinations.get(d)) {
            Some(d) => {
                d.routed.inc();
                ops.set(self.route_header.as_str(), d.tag.as_str());
            }
            None => self.unrouted.inc(),
        }
        Decision::Continue
    }
}

impl RouterFilter {
    /// The destination index for a matched rule.
    fn pick<'c>(
        &self,
        rule: &Rule,
        req: &RequestView,
        claims: &dyn Fn() -> Option<&'c Claims>,
    ) -> usize {
        match &rule.action {
            Action::Tag(d) => *d,
            Action::Split {
                weights,
                hash_on,
                fallback,
                salt,
            } => {
                if hash_on.is_empty() {
                    // A non-sticky split by design: not a fallback.
                    return config::pick_weighted(
                        weights,
                        self.random.bucket(request_entropy(req)),
                    );
                }
                let key = hash_on.iter().find_map(|k| key_value(k, req, claims));
                let bucket = match key {
                    Some(key) => hash::bucket(salt, key.as_bytes()),
                    None => {
                        self.fallback.inc();
                        match fallback {
                            Fallback::Tag(d) => return *d,
                            Fallback::Random => self.random.bucket(request_entropy(req)),
                        }
                    }
                };
                config::pick_weighted(weights, bucket)
            }
        }
    }
}

/// The split key from the first configured source present in the request. Empty values count
/// as absent (an empty cookie is not a user).
fn key_value<'r, 'c>(
    key: &HashKey,
    req: &'r RequestView,
    claims: &dyn Fn() -> Option<&'c Claims>,
) -> Option<Cow<'r, str>> {
    // Borrowed where the request holds the value: no copy of a header per request.
    let v = match key {
        HashKey::Header(name) => req.header(name).map(Cow::Borrowed),
        HashKey::Cookie(name) => sdk_ext::cookie::cookie_values(req, name)
            .next()
            .map(Cow::Borrowed),
        HashKey::Query(name) => req.query_values(name).next().map(Cow::Borrowed),
        HashKey::Claim(name) => claims()
            .and_then(|c| c.values(name).into_iter().next())
            .map(Cow::Owned),
        HashKey::SourceIp => req
            .source_ip()
            .map(|ip| Cow::Owned(sdk_ext::matcher::ip_key(ip))),
    };
    v.filter(|s| !s.is_empty())
}

/// Per-request entropy for the random fallback: Envoy's `x-request-id` (a random UUID unless
/// the client's is preserved), else the request time in nanoseconds (`request.time`).
fn request_entropy(req: &RequestView) -> u64 {
    if let Some(id) = req.request_id() {
        return hash::fnv1a64(&[id.as_bytes()]);
    }
    req.raw_property(&["request", "time"])
        .map(|t| hash::fnv1a64(&[&t]))
        .unwrap_or(0)
}

/// A tag as it appears in a metric name: lowercase, `-` and `.` become `_` (tags are
/// `[A-Za-z0-9._-]`, metric names `[a-z0-9_]`). Config validation rejects two tags that map to
/// the same name, so each destination keeps its own counter.
pub use sdk_ext::metrics::metric_safe as metric_tag;

#[cfg(all(target_arch = "wasm32", feature = "export"))]
sdk_ext::export_http_filter!(RouterFilter);

#[cfg(test)]
mod tests;
