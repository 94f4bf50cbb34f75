//! `policy`: HTTP policy enforcement in one filter: ordered access rules (first match wins, then
//! a default action), API keys stored as SHA-256 hashes, token-bucket rate limits shared by
//! every Envoy worker, and shadow mode per rule or for the whole policy.
//!
//! Semantic anchors: Envoy's RBAC filter (rules, `shadow_rules`) and `local_ratelimit` (token
//! buckets, 429 with rate-limit headers). The full configuration reference is in `README.md`.
//!
//! Evaluation of one request:
//! 1. API keys (if configured): drop client-supplied consumer headers, look the key up, strip
//!    it. An invalid key (or a missing one when `required`) answers 401.
//! 2. Rules in order; the first matching non-shadow rule decides (`allow`, `deny`, or
//!    `rate_limit`: allow while the bucket has tokens, else 429). Shadow rules that match are
//!    counted and logged, and evaluation goes on as if they had not matched.
//! 3. No rule: `default_action`.
//! 4. Global `shadow`: a denial is counted and logged as `shadow_*`, and the request goes on.

mod apikey;
pub mod config;

use apikey::{ApiKeys, KeyCheck};
use config::{Action, Config, DefaultAction, DenyResponse, KeyPart, RuleSpec};
use sdk_ext::config::{header_name, http_status};
use sdk_ext::jwt::{ClaimSource, Claims};
use sdk_ext::matcher::{canonical_ip, MatchOptions, PathMatching, RequestMatcher};
use sdk_ext::ratelimit::{parse_duration, Admission, BucketSpec, SlotBudget, TokenBuckets};
use sdk_ext::{
    ConfigError, Counter, Decision, HeaderOps, HttpFilter, LocalReply, Metrics, RequestView, Setup,
};
use std::cell::OnceCell;
use std::collections::HashSet;

/// `WWW-Authenticate` of a 401 when no API keys are configured.
const BEARER_CHALLENGE: &str = "Bearer realm=\"api\"";

/// A compiled denial response.
#[derive(Debug, Clone)]
struct Denial {
    status: u16,
    message: String,
}

impl Denial {
    fn compile(cfg: &DenyResponse) -> Result<Self, ConfigError> {
        check_message("message", &cfg.message)?;
        Ok(Self {
            status: http_status("status", cfg.status)?,
            message: cfg.message.clone(),
        })
    }
}

fn check_message(path: &str, message: &str) -> Result<(), ConfigError> {
    if message.len() > config::MAX_MESSAGE_LEN {
        return Err(ConfigError::new(
            path,
            format!(
                "{} bytes; at most {}",
                message.len(),
                config::MAX_MESSAGE_LEN
            ),
        ));
    }
    Ok(())
}

/// A rate-limit action: buckets plus how to key them.
#[derive(Debug)]
struct Limiter {
    buckets: TokenBuckets,
    key: Vec<KeyPart>,
    message: String,
}

#[derive(Debug)]
enum RuleAction {
    Allow,
    Deny(Denial),
    RateLimit(Limiter),
}

/// Counters of one rule (or of the default action), `policy_<scope>_<outcome>`.
#[derive(Debug)]
struct Outcomes {
    allowed: Counter,
    denied: Counter,
    rate_limited: Counter,
    shadow_allowed: Counter,
    shadow_denied: Counter,
    shadow_rate_limited: Counter,
}

impl Outcomes {
    fn define(metrics: &mut Metrics, scope: &str) -> Result<Self, ConfigError> {
        let mut c = |what: &str| metrics.counter(&format!("{scope}_{what}"));
        Ok(Self {
            allowed: c("allowed")?,
            denied: c("denied")?,
            rate_limited: c("rate_limited")?,
            shadow_allowed: c("shadow_allowed")?,
            shadow_denied: c("shadow_denied")?,
            shadow_rate_limited: c("shadow_rate_limited")?,
        })
    }
}

#[derive(Debug)]
struct Rule {
    name: String,
    matcher: RequestMatcher,
    action: RuleAction,
    shadow: bool,
    counts: Outcomes,
}

/// What the policy decided for a request, before global shadow mode is applied.
#[derive(Debug)]
enum Verdict<'a> {
    Allow,
    Deny(&'a Denial),
    Limited(Admission, &'a str),
    Unauthorized(&'static str),
}

impl Verdict<'_> {
    fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}

/// Who decided.
#[derive(Debug, Clone, Copy)]
enum Decider<'a> {
    Rule(&'a Rule),
    Default,
    ApiKey,
}

impl Decider<'_> {
    fn label(&self) -> String {
        match self {
            Decider::Rule(r) => format!("rule `{}`", r.name),
            Decider::Default => "the default action".into(),
            Decider::ApiKey => "API key check".into(),
        }
    }
}

/// Other counters.
#[derive(Debug)]
struct Totals {
    api_key_valid: Counter,
    api_key_invalid: Counter,
    api_key_missing: Counter,
    api_key_shadow_rejected: Counter,
    ratelimit_store_errors: Counter,
    ratelimit_shared_slots: Counter,
}

/// The compiled policy, shared by every request of a worker.
pub struct PolicyFilter {
    shadow: bool,
    default_deny: Option<Denial>,
    default_counts: Outcomes,
    api_keys: Option<ApiKeys>,
    claim_source: ClaimSource,
    path_matching: PathMatching,
    rules: Vec<Rule>,
    totals: Totals,
}

/// `Admin-Only.v2` -> `admin_only_v2`: metric names allow `[a-z0-9_]` only.
pub use sdk_ext::metrics::metric_safe as metric_name;

impl PolicyFilter {
    fn compile_rule(
        cfg: &RuleSpec,
        top: &Config,
        api_keys: Option<&ApiKeys>,
        metrics: &mut Metrics,
        budget: &mut SlotBudget,
    ) -> Result<Rule, ConfigError> {
        let name_ok = !cfg.name.is_empty()
            && cfg.name.len() <= config::MAX_NAME_LEN
            && cfg
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !name_ok {
            return Err(ConfigError::new(
                "name",
                format!(
                    "`{}` must be 1 to {} characters from A-Z a-z 0-9 _ . -",
                    cfg.name,
                    config::MAX_NAME_LEN
                ),
            ));
        }
        let m = &cfg.matches;
        if m.is_empty() {
            return Err(ConfigError::new(
                "match",
                "an empty rule would match every request: add a condition (for every request, \
                 use \"paths\": [{\"prefix\": \"/\"}]) or use default_action",
            ));
        }
        let options = MatchOptions {
            path_matching: top.path_matching,
            no_consumers: api_keys
                .is_none()
                .then_some("consumers come from API keys, but `api_keys` is not set"),
        };
        let matcher = m.compile_with(options).map_err(|e| e.within("match"))?;
        let action = match (cfg.action, &cfg.deny, &cfg.rate_limit) {
            (Action::Allow, None, None) => RuleAction::Allow,
            (Action::Deny, deny, None) => RuleAction::Deny(
                Denial::compile(deny.as_ref().unwrap_or(&top.deny))
                    .map_err(|e| e.within("deny"))?,
            ),
            (Action::RateLimit, None, Some(rl)) => {
                let fill = parse_duration(&rl.fill_interval)
                    .map_err(|r| ConfigError::new("fill_interval", r))
                    .and_then(|d| BucketSpec::new(rl.max_tokens, rl.tokens_per_fill, d))
                    .map_err(|e| e.within("rate_limit"))?;
                // Slots are a range of the policy's one budget; the rule's name only keys the
                // fingerprints, so renaming a rule reuses its slots.
                let buckets = TokenBuckets::new(budget, &cfg.name, fill, rl.max_keys)
                    .map_err(|e| e.within("rate_limit"))?;
                for (j, part) in rl.key.iter().enumerate() {
                    let at = format!("rate_limit.key[{j}]");
                    match part {
                        KeyPart::Header(h) => {
                            header_name(&at, h)?;
                        }
                        KeyPart::Consumer if api_keys.is_none() => {
                            return Err(ConfigError::new(at, "`consumer` needs `api_keys`"));
                        }
                        KeyPart::PathSegments(0) => {
                            return Err(ConfigError::new(at, "path_segments must be at least 1"));
                        }
                        _ => {}
                    }
                }
                check_message("rate_limit.message", &rl.message)?;
                let key = rl
                    .key
                    .iter()
                    .map(|k| match k {
                        KeyPart::Header(h) => KeyPart::Header(h.to_ascii_lowercase()),
                        other => other.clone(),
                    })
                    .collect();
                RuleAction::RateLimit(Limiter {
                    buckets,
                    key,
                    message: rl.message.clone(),
                })
            }
            (Action::RateLimit, _, None) => {
                return Err(ConfigError::new(
                    "rate_limit",
                    "`action: rate_limit` needs a `rate_limit` object",
                ))
            }
            (_, Some(_), _) => {
                return Err(ConfigError::new("deny", "only `action: deny` takes `deny`"))
            }
            (_, _, Some(_)) => {
                return Err(ConfigError::new(
                    "rate_limit",
                    "only `action: rate_limit` takes `rate_limit`",
                ))
            }
        };
        let counts = Outcomes::define(metrics, &format!("rule_{}", metric_name(&cfg.name)))
            .map_err(|e| ConfigError::new("name", e.reason))?;
        Ok(Rule {
            name: cfg.name.clone(),
            matcher,
            action,
            shadow: cfg.shadow,
            counts,
        })
    }

    /// The first non-shadow rule that matches, or the default action. Shadow rules that match
    /// are counted here.
    fn evaluate<'a>(
        &'a self,
        req: &RequestView,
        consumer: Option<&str>,
    ) -> (Decider<'a>, Verdict<'a>) {
        let claims: OnceCell<Option<Claims>> = OnceCell::new();
        let claims = || {
            claims
                .get_or_init(|| self.claim_source.claims(req))
                .as_ref()
        };
        for rule in &self.rules {
            if !rule.matcher.matches_with(req, consumer, &claims) {
                continue;
            }
            let verdict = match &rule.action {
                RuleAction::Allow => Verdict::Allow,
                RuleAction::Deny(d) => Verdict::Deny(d),
                RuleAction::RateLimit(l) => self.take_token(rule, l, req, consumer),
            };
            if !rule.shadow {
                return (Decider::Rule(rule), verdict);
            }
            let c = &rule.counts;
            match verdict {
                Verdict::Allow => c.shadow_allowed.inc(),
                Verdict::Deny(_) | Verdict::Unauthorized(_) => c.shadow_denied.inc(),
                Verdict::Limited(..) => c.shadow_rate_limited.inc(),
            }
            if !verdict.is_allow() {
                log::debug!(
                    "{}: shadow rule `{}` would deny the request (request id {})",
                    Self::NAME,
                    rule.name,
                    req.request_id().unwrap_or("-")
                );
            }
        }
        match &self.default_deny {
            None => (Decider::Default, Verdict::Allow),
            Some(d) => (Decider::Default, Verdict::Deny(d)),
        }
    }

    fn take_token<'a>(
        &self,
        rule: &Rule,
        limiter: &'a Limiter,
        req: &RequestView,
        consumer: Option<&str>,
    ) -> Verdict<'a> {
        let descriptor = descriptor(&limiter.key, req, consumer, self.path_matching);
        match limiter.buckets.take(&descriptor, 1) {
            Ok(a) => {
                if a.shared_slot {
                    self.totals.ratelimit_shared_slots.inc();
                }
                if a.allowed {
                    Verdict::Allow
                } else {
                    Verdict::Limited(a, &limiter.message)
                }
            }
            Err(e) => {
                // Fail open, as Envoy's rate-limit filters do by default: a broken limiter must
                // not take the service down. Counted and logged.
                self.totals.ratelimit_store_errors.inc();
                log::warn!(
                    "{}: rule `{}`: rate limiter unavailable ({e}); request admitted",
                    Self::NAME,
                    rule.name
                );
                Verdict::Allow
            }
        }
    }
}

/// The bucket key: each part tagged and separated, so `("a", "bc")` and `("ab", "c")` differ
/// and a missing value differs from an empty one.
fn descriptor(
    parts: &[KeyPart],
    req: &RequestView,
    consumer: Option<&str>,
    paths: PathMatching,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for part in parts {
        let value: Option<String> = match part {
            KeyPart::SourceIp => req.source_ip().map(|ip| canonical_ip(ip).to_string()),
            KeyPart::Consumer => consumer.map(String::from),
            KeyPart::Header(h) => req.header(h).map(String::from),
            KeyPart::PathSegments(n) => Some(path_prefix(req.match_path(paths), *n).to_string()),
        };
        match value {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(v.as_bytes());
            }
            None => out.push(0),
        }
        out.push(0x1f);
    }
    out
}

/// The first `n` segments of `path`: `/a/b/c` with 2 is `/a/b`.
fn path_prefix(path: &str, n: u32) -> &str {
    let mut seen = 0;
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' && i > 0 {
            seen += 1;
            if seen == n {
                return &path[..i];
            }
        }
    }
    path
}

impl HttpFilter for PolicyFilter {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    type Config = Config;
    type State = ();

    /// Rate-limit buckets live in `setup.services`' shared data (every worker's), read with its
    /// clock; with [`sdk_ext::Services::local`] (native use) they are private to this thread.
    fn configure(config: Config, setup: Setup<'_>) -> Result<Self, ConfigError> {
        let Setup { metrics, services } = setup;
        let services = &services;
        let deny = Denial::compile(&config.deny).map_err(|e| e.within("deny"))?;
        let default_deny = (config.default_action == DefaultAction::Deny).then_some(deny);
        let api_keys = config
            .api_keys
            .as_ref()
            .map(|k| ApiKeys::compile(k).map_err(|e| e.within("api_keys")))
            .transpose()?;
        let claim_source = config.jwt.compile().map_err(|e| e.within("jwt"))?;
        if config.rules.len() > config::MAX_RULES {
            return Err(ConfigError::new(
                "rules",
                format!(
                    "{} rules; at most {}",
                    config.rules.len(),
                    config::MAX_RULES
                ),
            ));
        }
        let mut metric_names = HashSet::new();
        let mut rules = Vec::with_capacity(config.rules.len());
        // One slot budget for every rate-limit rule (shared data cannot free keys).
        let mut budget = SlotBudget::new("policy", sdk_ext::ratelimit::MAX_TOTAL_SLOTS, services)
            .map_err(|e| ConfigError::new("rules", e.reason))?;
        for (i, r) in config.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            if !metric_names.insert(metric_name(&r.name)) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "rule `{}`: another rule has the same name or metric name `{}`",
                        r.name,
                        metric_name(&r.name)
                    ),
                ));
            }
            let rule = Self::compile_rule(r, &config, api_keys.as_ref(), metrics, &mut budget)
                .map_err(|mut e| {
                    e.reason = format!("rule `{}`: {}", r.name, e.reason);
                    e.within(&at)
                })?;
            rules.push(rule);
        }
        budget.prepare().map_err(|e| {
            ConfigError::new("rules", format!("cannot create rate-limit slots: {e}"))
        })?;
        let mut c = |n: &str| metrics.counter(n);
        let totals = Totals {
            api_key_valid: c("api_key_valid")?,
            api_key_invalid: c("api_key_invalid")?,
            api_key_missing: c("api_key_missing")?,
            api_key_shadow_rejected: c("api_key_shadow_rejected")?,
            ratelimit_store_errors: c("ratelimit_store_errors")?,
            ratelimit_shared_slots: c("ratelimit_shared_slots")?,
        };
        Ok(Self {
            shadow: config.shadow,
            default_deny,
            default_counts: Outcomes::define(metrics, "default")?,
            api_keys,
            claim_source,
            path_matching: config.path_matching,
            rules,
            totals,
        })
    }

    fn on_request_headers(
        &self,
        req: &RequestView,
        _state: &mut (),
        ops: &mut HeaderOps,
    ) -> Decision {
        let mut consumer = None;
        let mut rejected = None;
        if let Some(keys) = &self.api_keys {
            keys.strip(req, ops);
            match keys.check(req) {
                KeyCheck::Valid(c) => {
                    self.totals.api_key_valid.inc();
                    consumer = Some(c);
                }
                KeyCheck::Invalid => {
                    self.totals.api_key_invalid.inc();
                    rejected = Some("invalid API key");
                }
                KeyCheck::Missing => {
                    self.totals.api_key_missing.inc();
                    if keys.required {
                        rejected = Some("missing API key");
                    }
                }
            }
        }
        let (decider, verdict) = match rejected {
            Some(why) => (Decider::ApiKey, Verdict::Unauthorized(why)),
            None => self.evaluate(req, consumer),
        };
        let counts = match decider {
            Decider::Rule(r) => Some(&r.counts),
            Decider::Default => Some(&self.default_counts),
            Decider::ApiKey => None,
        };
        let forward = |ops: &mut HeaderOps| {
            if let (Some(keys), Some(c)) = (&self.api_keys, consumer) {
                ops.set(keys.consumer_header.as_str(), c);
            }
            Decision::Continue
        };
        if verdict.is_allow() {
            if let Some(c) = counts {
                c.allowed.inc();
            }
            return forward(ops);
        }
        let request_id = req.request_id();
        if self.shadow {
            match (counts, &verdict) {
                (Some(c), Verdict::Limited(..)) => c.shadow_rate_limited.inc(),
                (Some(c), _) => c.shadow_denied.inc(),
                (None, _) => self.totals.api_key_shadow_rejected.inc(),
            }
            log::debug!(
                "{}: {} would deny the request (shadow mode; request id {})",
                Self::NAME,
                decider.label(),
                request_id.unwrap_or("-")
            );
            return forward(ops);
        }
        let reply = match verdict {
            Verdict::Allow => return forward(ops),
            Verdict::Deny(d) => {
                if let Some(c) = counts {
                    c.denied.inc();
                }
                LocalReply::json(d.status, "denied", &d.message, request_id)
            }
            Verdict::Limited(a, message) => {
                if let Some(c) = counts {
                    c.rate_limited.inc();
                }
                a.headers().iter().fold(
                    LocalReply::json(429, "rate_limited", message, request_id),
                    |r, (n, v)| r.with_header(n, v),
                )
            }
            Verdict::Unauthorized(why) => LocalReply::json(401, "unauthorized", why, request_id),
        };
        // RFC 9110 section 15.5.2: a 401 carries a challenge. Where an API key is expected, it
        // says where; otherwise (a rule configured to answer 401) a bearer token is expected.
        let reply = if reply.status == 401 {
            let challenge = self
                .api_keys
                .as_ref()
                .map_or(BEARER_CHALLENGE, |k| k.challenge.as_str());
            reply.with_header("www-authenticate", challenge)
        } else {
            reply
        };
        log::debug!(
            "{}: {} denied the request with {} (request id {})",
            Self::NAME,
            decider.label(),
            reply.status,
            request_id.unwrap_or("-")
        );
        Decision::Respond(reply)
    }
}

#[cfg(all(target_arch = "wasm32", feature = "export"))]
sdk_ext::export_http_filter!(PolicyFilter);

#[cfg(test)]
mod tests;
