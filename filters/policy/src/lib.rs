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
pub mod global;

use apikey::{ApiKeys, KeyCheck};
use config::{Action, Config, DefaultAction, DenyResponse, KeyPart, RateLimitSpec, RuleSpec};
use global::{Answer, FailureMode, GlobalLimit, Scope};
use sdk_ext::callout::CallOutcome;
use sdk_ext::config::{header_name, http_status};
use sdk_ext::jwt::{ClaimSource, Claims};
use sdk_ext::matcher::{ip_key, MatchFacts, MatchOptions, PathMatching, RequestMatcher};
use sdk_ext::ratelimit::{Admission, SlotBudget, TokenBuckets};
use sdk_ext::{
    ConfigError, Counter, Decision, HeaderOps, HttpFilter, LocalReply, Metrics, RequestView, Setup,
};
use std::cell::OnceCell;

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

/// A global rate-limit action: the service's call, plus how to key it.
#[derive(Debug)]
struct GlobalLimiter {
    limit: GlobalLimit,
    #[cfg_attr(not(feature = "callouts"), allow(dead_code))]
    key: Vec<KeyPart>,
    message: String,
}

#[derive(Debug)]
enum RuleAction {
    Allow,
    Deny(Denial),
    RateLimit(Limiter),
    #[cfg_attr(not(feature = "callouts"), allow(dead_code))]
    GlobalRateLimit(GlobalLimiter),
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
        // `concat`, not `format!`: six per rule, at configure time (instructions).
        let [allowed, denied, rate_limited, shadow_allowed, shadow_denied, shadow_rate_limited] =
            metrics.counters(
                &[scope, "_"].concat(),
                [
                    "allowed",
                    "denied",
                    "rate_limited",
                    "shadow_allowed",
                    "shadow_denied",
                    "shadow_rate_limited",
                ],
            )?;
        Ok(Self {
            allowed,
            denied,
            rate_limited,
            shadow_allowed,
            shadow_denied,
            shadow_rate_limited,
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
    /// Bit of [`PolicyFilter::screen`] for a header this rule needs present
    /// ([`RequestMatcher::required_header`]): absent from the request, the rule is skipped
    /// without evaluating it.
    needs: Option<u64>,
    /// Bits of [`PolicyFilter::methods`] for the methods this rule accepts (0: any method, or
    /// more distinct methods than bits): a request whose method has none of them is skipped.
    methods: u64,
    /// The second byte this rule's paths allow ([`sdk_ext::matcher::PathLead`]), if they tell.
    lead: Option<sdk_ext::matcher::PathLead>,
}

/// What the policy decided for a request, before global shadow mode is applied.
#[derive(Debug)]
enum Verdict<'a> {
    Allow,
    Deny(&'a Denial),
    Limited(Admission, &'a str),
    Unauthorized(&'static str),
    /// Ask the rate-limit service (the key parts' values, in order).
    Ask(&'a GlobalLimiter, Vec<Option<String>>),
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

/// Who decided, for logs: "rule `name`", "the default action", "API key check".
impl std::fmt::Display for Decider<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decider::Rule(r) => write!(f, "rule `{}`", r.name),
            Decider::Default => f.write_str("the default action"),
            Decider::ApiKey => f.write_str("API key check"),
        }
    }
}

/// A debug line: one out-of-line copy of `log`'s call for every site (module size). The glue's
/// logger prints the message only, so the lines are what `log::debug!` at the site printed.
#[inline(never)]
fn debug(args: std::fmt::Arguments<'_>) {
    log::debug!("{args}");
}

/// A warning line, as [`debug`].
#[inline(never)]
fn warn(args: std::fmt::Arguments<'_>) {
    log::warn!("{args}");
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
    global: GlobalCounts,
}

/// Counters of the global rate-limit callouts (named like Envoy's `ratelimit.*` stats).
#[derive(Debug)]
struct GlobalCounts {
    /// Answers `OK`.
    ok: Counter,
    /// Answers `OVER_LIMIT`.
    over_limit: Counter,
    /// No usable answer (timeouts included).
    error: Counter,
    /// Of `error`: the call timed out.
    timeout: Counter,
    /// Failures let through / refused by `failure_mode`.
    failure_mode_allowed: Counter,
    failure_mode_denied: Counter,
    /// Refused by the `local_first` bucket without a callout.
    #[cfg_attr(not(feature = "callouts"), allow(dead_code))]
    local_first_limited: Counter,
}

impl GlobalCounts {
    fn define(metrics: &mut Metrics) -> Result<Self, ConfigError> {
        let [ok, over_limit, error, timeout, failure_mode_allowed, failure_mode_denied, local_first_limited] =
            metrics.counters(
                "ratelimit_global_",
                [
                    "ok",
                    "over_limit",
                    "error",
                    "timeout",
                    "failure_mode_allowed",
                    "failure_mode_denied",
                    "local_first_limited",
                ],
            )?;
        Ok(Self {
            ok,
            over_limit,
            error,
            timeout,
            failure_mode_allowed,
            failure_mode_denied,
            local_first_limited,
        })
    }
}

/// Per-request state: the rule waiting for the service, and headers for the response.
#[derive(Debug, Default)]
pub struct PolicyState {
    /// Index of the global rule whose call is in flight.
    pending: Option<usize>,
    /// The service's `response_headers_to_add` of an `OK` answer.
    response_headers: Vec<(String, String)>,
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
    /// The distinct header names rules need present (at most 64, one bit each): one pass over
    /// the request's header names per request tells which rules can be skipped (the bench
    /// policy's 25 header rules all need `x-blocked-client`, which requests rarely carry).
    screen: Vec<String>,
    /// The distinct methods rules name (at most 64, one bit each): the request's method is
    /// looked up once, and a rule that names methods, none of them the request's, is skipped
    /// without evaluating it (the bench policy's 10 `DELETE` rules on every `GET`).
    methods: Vec<String>,
    totals: Totals,
}

/// The rules, the header screen and the method screen.
type CompiledRules = (Vec<Rule>, Vec<String>, Vec<String>);

/// The bits of `names` in `screen` (added there, up to 64 distinct names); 0 when `names` is
/// empty or one of them has no bit (the rule is then never skipped for its method).
fn method_bits(screen: &mut Vec<String>, names: &[String]) -> u64 {
    let mut bits = 0u64;
    for name in names {
        let b = match screen.iter().position(|s| s == name) {
            Some(b) => b,
            None if screen.len() < 64 => {
                screen.push(name.clone());
                screen.len() - 1
            }
            None => return 0,
        };
        bits |= 1 << b;
    }
    bits
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
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
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
                Self::compile_rate_limit(rl, &cfg.name, cfg.shadow, api_keys, budget)
                    .map_err(|e| e.within("rate_limit"))?
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
        let counts = Outcomes::define(metrics, &["rule_", &metric_name(&cfg.name)].concat())
            .map_err(|e| ConfigError::new("name", e.reason))?;
        Ok(Rule {
            name: cfg.name.clone(),
            matcher,
            action,
            shadow: cfg.shadow,
            counts,
            needs: None,
            methods: 0,
            lead: None,
        })
    }

    /// The action of `action: rate_limit` (paths relative to `rate_limit`).
    fn compile_rate_limit(
        rl: &RateLimitSpec,
        name: &str,
        shadow: bool,
        api_keys: Option<&ApiKeys>,
        budget: &mut SlotBudget,
    ) -> Result<RuleAction, ConfigError> {
        for (j, part) in rl.key.iter().enumerate() {
            let at = format!("key[{j}]");
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
        check_message("message", &rl.message)?;
        let key: Vec<KeyPart> = rl
            .key
            .iter()
            .map(|k| match k {
                KeyPart::Header(h) => KeyPart::Header(h.to_ascii_lowercase()),
                other => other.clone(),
            })
            .collect();
        match rl.scope {
            Scope::Local => {
                if rl.global.is_some() {
                    return Err(ConfigError::new(
                        "global",
                        "only `scope: global` takes `global`",
                    ));
                }
                let Some(bucket) = &rl.bucket else {
                    return Err(ConfigError::new(
                        "max_tokens",
                        "required for a local rate limit",
                    ));
                };
                // Slots are a range of the policy's one budget; the rule's name only keys the
                // fingerprints, so renaming a rule reuses its slots.
                let buckets = bucket.compile(budget, name)?;
                Ok(RuleAction::RateLimit(Limiter {
                    buckets,
                    key,
                    message: rl.message.clone(),
                }))
            }
            Scope::Global => {
                if rl.bucket.is_some() {
                    return Err(ConfigError::new("max_tokens", config::GLOBAL_HAS_NO_BUCKET));
                }
                let Some(g) = &rl.global else {
                    return Err(ConfigError::new(
                        "global",
                        "`scope: global` needs a `global` object (cluster, domain)",
                    ));
                };
                if shadow {
                    return Err(ConfigError::new(
                        "scope",
                        "a shadow rule cannot wait for the rate-limit service (evaluation goes \
                         on past it); use the policy-wide `shadow` to try a global limit",
                    ));
                }
                // Without `callouts` (the suite) a global limit is refused here, after its
                // `global` object was read and checked, naming the rule: the limit's compiler
                // and request path are not in that module.
                #[cfg(not(feature = "callouts"))]
                let _ = g;
                #[cfg(not(feature = "callouts"))]
                return Err(ConfigError::new(
                    "scope",
                    "a global rate limit makes gRPC calls to the rate-limit service, which the \
                     suite cannot wait for: run policy as its own module",
                ));
                #[cfg(feature = "callouts")]
                let limit =
                    GlobalLimit::compile(g, &key, name, budget).map_err(|e| e.within("global"))?;
                #[cfg(feature = "callouts")]
                Ok(RuleAction::GlobalRateLimit(GlobalLimiter {
                    limit,
                    key,
                    message: rl.message.clone(),
                }))
            }
        }
    }

    /// [`HttpFilter::configure`]'s work.
    #[inline(never)]
    fn build(
        config: &Config,
        metrics: &mut Metrics,
        services: &sdk_ext::Services,
    ) -> Result<Self, ConfigError> {
        let deny = Denial::compile(&config.deny).map_err(|e| e.within("deny"))?;
        let default_deny = (config.default_action == DefaultAction::Deny).then_some(deny);
        let api_keys = match &config.api_keys {
            Some(k) => Some(ApiKeys::compile(k).map_err(|e| e.within("api_keys"))?),
            None => None,
        };
        let claim_source = config.jwt.compile().map_err(|e| e.within("jwt"))?;
        let (rules, screen, methods) =
            Self::compile_rules(config, api_keys.as_ref(), metrics, services)?;
        let [api_key_valid, api_key_invalid, api_key_missing, api_key_shadow_rejected, ratelimit_store_errors, ratelimit_shared_slots] =
            metrics.counters(
                "",
                [
                    "api_key_valid",
                    "api_key_invalid",
                    "api_key_missing",
                    "api_key_shadow_rejected",
                    "ratelimit_store_errors",
                    "ratelimit_shared_slots",
                ],
            )?;
        let totals = Totals {
            api_key_valid,
            api_key_invalid,
            api_key_missing,
            api_key_shadow_rejected,
            ratelimit_store_errors,
            ratelimit_shared_slots,
            global: GlobalCounts::define(metrics)?,
        };
        Ok(Self {
            shadow: config.shadow,
            default_deny,
            default_counts: Outcomes::define(metrics, "default")?,
            api_keys,
            claim_source,
            path_matching: config.path_matching,
            rules,
            screen,
            methods,
            totals,
        })
    }

    /// The rules, and the header names they need present ([`PolicyFilter::screen`]).
    #[inline(never)]
    fn compile_rules(
        config: &Config,
        api_keys: Option<&ApiKeys>,
        metrics: &mut Metrics,
        services: &sdk_ext::Services,
    ) -> Result<CompiledRules, ConfigError> {
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
        // Sorted, for the duplicate check (at most `MAX_RULES`: a binary search and a short
        // move per rule; no hash set instantiated for it).
        let mut metric_names: Vec<String> = Vec::with_capacity(config.rules.len());
        let mut rules = Vec::with_capacity(config.rules.len());
        let mut screen: Vec<String> = Vec::new();
        let mut methods: Vec<String> = Vec::new();
        // One slot budget for every rate-limit rule (shared data cannot free keys).
        let mut budget = SlotBudget::new("policy", sdk_ext::ratelimit::MAX_TOTAL_SLOTS, services)
            .map_err(|e| ConfigError::new("rules", e.reason))?;
        for (i, r) in config.rules.iter().enumerate() {
            let name = metric_name(&r.name);
            let at = metric_names.partition_point(|n| *n < name);
            if metric_names.get(at) == Some(&name) {
                return Err(ConfigError::new(
                    format!("rules[{i}].name"),
                    format!(
                        "rule `{}`: another rule has the same name or metric name `{name}`",
                        r.name,
                    ),
                ));
            }
            metric_names.insert(at, name);
            let mut rule = Self::compile_rule(r, config, api_keys, metrics, &mut budget)
                .map_err(|e| rule_error(e, i, &r.name))?;
            if let Some(name) = rule.matcher.required_header() {
                let bit = match screen.iter().position(|s| s == name) {
                    Some(b) => Some(b),
                    None if screen.len() < 64 => {
                        screen.push(name.to_string());
                        Some(screen.len() - 1)
                    }
                    None => None,
                };
                rule.needs = bit.map(|b| 1u64 << b);
            }
            rule.methods = method_bits(&mut methods, rule.matcher.methods());
            rule.lead = rule.matcher.path_lead();
            rules.push(rule);
        }
        budget.prepare().map_err(|e| {
            ConfigError::new("rules", format!("cannot create rate-limit slots: {e}"))
        })?;
        Ok((rules, screen, methods))
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
        // Which of the screened header names the request carries: one pass over its names.
        let mut present = 0u64;
        if !self.screen.is_empty() {
            for (name, _) in req.headers() {
                if let Some(b) = self.screen.iter().position(|s| s == name) {
                    present |= 1 << b;
                }
            }
        }
        let facts = MatchFacts::of(req);
        let method = self
            .methods
            .iter()
            .position(|m| m == facts.method())
            .map_or(0, |b| 1u64 << b);
        for rule in &self.rules {
            if rule.needs.is_some_and(|bit| present & bit == 0)
                || (rule.methods != 0 && rule.methods & method == 0)
                || rule.lead.is_some_and(|lead| !lead.admits(&facts))
            {
                continue;
            }
            if !rule.matcher.matches_facts(&facts, consumer, &claims) {
                continue;
            }
            let verdict = match &rule.action {
                RuleAction::Allow => Verdict::Allow,
                RuleAction::Deny(d) => Verdict::Deny(d),
                RuleAction::RateLimit(l) => self.take_token(rule, l, req, consumer),
                RuleAction::GlobalRateLimit(g) => self.global_first(rule, g, req, consumer),
            };
            if !rule.shadow {
                return (Decider::Rule(rule), verdict);
            }
            let c = &rule.counts;
            match verdict {
                Verdict::Allow => c.shadow_allowed.inc(),
                Verdict::Deny(_) | Verdict::Unauthorized(_) => c.shadow_denied.inc(),
                Verdict::Limited(..) => c.shadow_rate_limited.inc(),
                // Refused at configure time (a shadow rule cannot wait for the service).
                Verdict::Ask(..) => {}
            }
            if !verdict.is_allow() {
                debug(format_args!(
                    "{}: shadow rule `{}` would deny the request (request id {})",
                    Self::NAME,
                    rule.name,
                    req.request_id().unwrap_or("-")
                ));
            }
        }
        match &self.default_deny {
            None => (Decider::Default, Verdict::Allow),
            Some(d) => (Decider::Default, Verdict::Deny(d)),
        }
    }

    /// A global rule without the `callouts` feature (the suite, which refuses global rules at
    /// configure time through `calls_out`): never reached; [`Verdict::Ask`] is answered as the
    /// suite answers a call it cannot wait for.
    #[cfg(not(feature = "callouts"))]
    fn global_first<'a>(
        &self,
        _rule: &Rule,
        g: &'a GlobalLimiter,
        _req: &RequestView,
        _consumer: Option<&str>,
    ) -> Verdict<'a> {
        Verdict::Ask(g, Vec::new())
    }

    /// A global rule: the `local_first` bucket, then the service.
    #[cfg(feature = "callouts")]
    fn global_first<'a>(
        &self,
        rule: &Rule,
        g: &'a GlobalLimiter,
        req: &RequestView,
        consumer: Option<&str>,
    ) -> Verdict<'a> {
        if let Some(buckets) = &g.limit.local_first {
            let descriptor = descriptor(&g.key, req, consumer, self.path_matching);
            match buckets.take(&descriptor, 1) {
                Ok(a) if !a.allowed => {
                    self.totals.global.local_first_limited.inc();
                    return Verdict::Limited(a, &g.message);
                }
                Ok(_) => {}
                Err(e) => {
                    // The service still decides.
                    self.totals.ratelimit_store_errors.inc();
                    warn(format_args!(
                        "{}: rule `{}`: local-first bucket unavailable ({e}); asking the service",
                        Self::NAME,
                        rule.name
                    ));
                }
            }
        }
        let values = g
            .key
            .iter()
            .map(|p| key_value(p, req, consumer, self.path_matching))
            .collect();
        Verdict::Ask(g, values)
    }

    fn take_token<'a>(
        &self,
        rule: &Rule,
        limiter: &'a Limiter,
        req: &RequestView,
        consumer: Option<&str>,
    ) -> Verdict<'a> {
        let descriptor = descriptor(&limiter.key, req, consumer, self.path_matching);
        // Leased: large buckets skip the shared-data round trip on most requests, never
        // admitting more than the bucket gives (README, "Rate limits across workers").
        match limiter.buckets.take_leased(&descriptor, 1) {
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
                warn(format_args!(
                    "{}: rule `{}`: rate limiter unavailable ({e}); request admitted",
                    Self::NAME,
                    rule.name
                ));
                Verdict::Allow
            }
        }
    }
}

/// An error of rule `i` (named `name`): `rules[i].<path>`, the reason prefixed with the name.
#[inline(never)]
fn rule_error(e: ConfigError, i: usize, name: &str) -> ConfigError {
    ConfigError {
        path: sdk_ext::config::join_path(format!("rules[{i}]"), &e.path),
        reason: format!("rule `{name}`: {}", e.reason),
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
        // Borrowed where the request holds the value (no `String` per part per request).
        let borrowed = match part {
            KeyPart::Consumer => Some(consumer),
            KeyPart::Header(h) => Some(req.header(h)),
            KeyPart::PathSegments(n) => Some(Some(path_prefix(req.match_path(paths), *n))),
            KeyPart::SourceIp => None,
        };
        let owned;
        let value = match borrowed {
            Some(v) => v,
            None => {
                owned = key_value(part, req, consumer, paths);
                owned.as_deref()
            }
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

/// The value of one key part for `req`; `None` when absent.
fn key_value(
    part: &KeyPart,
    req: &RequestView,
    consumer: Option<&str>,
    paths: PathMatching,
) -> Option<String> {
    match part {
        KeyPart::SourceIp => req.source_ip().map(ip_key),
        KeyPart::Consumer => consumer.map(String::from),
        KeyPart::Header(h) => req.header(h).map(String::from),
        KeyPart::PathSegments(n) => Some(path_prefix(req.match_path(paths), *n).to_string()),
    }
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
    /// Global rate limits ask the rate-limit service (`calls_out`).
    const MAY_CALL: bool = true;
    type Config = Config;
    type State = PolicyState;

    /// Rate-limit buckets live in `setup.services`' shared data (every worker's), read with its
    /// clock; with [`sdk_ext::Services::local`] (native use) they are private to this thread.
    fn configure(config: Config, setup: Setup<'_>) -> Result<Self, ConfigError> {
        // By reference from here: `config` and the services are dropped once, here, instead
        // of on every error path of the compiler (module size).
        Self::build(&config, setup.metrics, &setup.services)
    }

    fn on_request_headers(
        &self,
        req: &RequestView,
        state: &mut PolicyState,
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
        if let (Verdict::Ask(g, values), Decider::Rule(rule)) = (&verdict, decider) {
            // The consumer header goes upstream whatever the service says; the glue applies
            // it before the call.
            state.pending = self.rules.iter().position(|r| std::ptr::eq(r, rule));
            forward(ops);
            #[cfg(feature = "callouts")]
            return Decision::Call(g.limit.call(&g.key, values));
            // What the suite answers for a member's call (refused at configure time there).
            #[cfg(not(feature = "callouts"))]
            return {
                let _ = (g, values);
                Decision::Respond(LocalReply::json(
                    503,
                    "unavailable",
                    "filter could not run",
                    req.request_id(),
                ))
            };
        }
        let request_id = req.request_id();
        if self.shadow {
            match (counts, &verdict) {
                (Some(c), Verdict::Limited(..)) => c.shadow_rate_limited.inc(),
                (Some(c), _) => c.shadow_denied.inc(),
                (None, _) => self.totals.api_key_shadow_rejected.inc(),
            }
            debug(format_args!(
                "{}: {} would deny the request (shadow mode; request id {})",
                Self::NAME,
                decider,
                request_id.unwrap_or("-")
            ));
            return forward(ops);
        }
        let reply = match verdict {
            Verdict::Allow | Verdict::Ask(..) => return forward(ops),
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
        debug(format_args!(
            "{}: {} denied the request with {} (request id {})",
            Self::NAME,
            decider,
            reply.status,
            request_id.unwrap_or("-")
        ));
        Decision::Respond(reply)
    }

    fn calls_out(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.action, RuleAction::GlobalRateLimit(_)))
    }

    /// The rate-limit service answered (or failed) for the rule in `state.pending`.
    fn on_call_response(
        &self,
        req: &RequestView,
        outcome: CallOutcome<'_>,
        state: &mut PolicyState,
        ops: &mut HeaderOps,
    ) -> Decision {
        let rule = state.pending.take().and_then(|i| self.rules.get(i));
        let (Some(rule), Some(g)) = (
            rule,
            rule.and_then(|r| match &r.action {
                RuleAction::GlobalRateLimit(g) => Some(g),
                _ => None,
            }),
        ) else {
            return Decision::Continue;
        };
        let c = &rule.counts;
        let t = &self.totals.global;
        let request_id = req.request_id();
        match g.limit.interpret(outcome) {
            Answer::Allow {
                request_headers,
                response_headers,
            } => {
                t.ok.inc();
                c.allowed.inc();
                for (n, v) in request_headers {
                    ops.set(n, v);
                }
                state.response_headers = response_headers;
                Decision::Continue
            }
            Answer::OverLimit { headers } => {
                t.over_limit.inc();
                if self.shadow {
                    c.shadow_rate_limited.inc();
                    debug(format_args!(
                        "{}: rule `{}` would rate-limit the request (shadow mode; request id {})",
                        Self::NAME,
                        rule.name,
                        request_id.unwrap_or("-")
                    ));
                    return Decision::Continue;
                }
                c.rate_limited.inc();
                let reply = headers.iter().fold(
                    LocalReply::json(429, "rate_limited", &g.message, request_id),
                    |r, (n, v)| r.with_header(n, v),
                );
                Decision::Respond(reply)
            }
            Answer::Failed { reason, timeout } => {
                t.error.inc();
                if timeout {
                    t.timeout.inc();
                }
                debug(format_args!(
                    "{}: rule `{}`: rate-limit service failed ({reason}); failure mode {} \
                     (request id {})",
                    Self::NAME,
                    rule.name,
                    g.limit.failure_mode.as_str(),
                    request_id.unwrap_or("-")
                ));
                match g.limit.failure_mode {
                    FailureMode::Allow => {
                        t.failure_mode_allowed.inc();
                        c.allowed.inc();
                        Decision::Continue
                    }
                    FailureMode::Deny => {
                        t.failure_mode_denied.inc();
                        if self.shadow {
                            c.shadow_denied.inc();
                            return Decision::Continue;
                        }
                        c.denied.inc();
                        Decision::Respond(LocalReply::json(
                            g.limit.failure_status,
                            "unavailable",
                            "rate limit service unavailable",
                            request_id,
                        ))
                    }
                }
            }
        }
    }

    /// An `OK` answer's `response_headers_to_add`.
    fn on_response_headers(&self, state: &mut PolicyState, ops: &mut HeaderOps) {
        for (n, v) in state.response_headers.drain(..) {
            ops.set(n, v);
        }
    }
}

#[cfg(all(target_arch = "wasm32", feature = "export"))]
sdk_ext::export_http_filter!(PolicyFilter);

#[cfg(test)]
mod tests;
