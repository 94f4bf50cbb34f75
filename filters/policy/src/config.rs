//! The JSON configuration as users write it (each type reads itself with
//! [`sdk_ext::config`]: unknown fields rejected, errors with JSON paths). The filter compiles it
//! once in `configure`; see `README.md` for the reference with defaults and limits.

use crate::global::{GlobalSpec, Scope};
use sdk_ext::config::{ConfigError, FromJson, Node, Object};
use sdk_ext::jwt::JwtSourceSpec;
use sdk_ext::matcher::{PathMatching, RequestMatchSpec};
use sdk_ext::ratelimit::BucketConfig;

/// At most this many rules (evaluation is linear; a longer list is a config smell).
pub const MAX_RULES: usize = 1000;
/// At most this many API keys.
pub const MAX_API_KEYS: usize = 10_000;
/// Rule names: 1..=64 characters from `[A-Za-z0-9_.-]` (they end up in metric names).
pub const MAX_NAME_LEN: usize = 64;
/// Denial messages: at most 512 bytes.
pub const MAX_MESSAGE_LEN: usize = 512;
/// Consumer names: 1..=128 visible ASCII characters (they are forwarded in a header).
pub const MAX_CONSUMER_LEN: usize = 128;

#[derive(Debug, Clone)]
pub struct Config {
    /// Evaluate and count, never enforce (like RBAC `shadow_rules` for the whole policy).
    pub shadow: bool,
    /// What happens to a request no rule matched.
    pub default_action: DefaultAction,
    /// The denial response of `deny` rules without their own, and of `default_action: deny`.
    pub deny: DenyResponse,
    pub api_keys: Option<ApiKeysSpec>,
    /// Where `claims` matchers read claims: `jwt_authn`'s dynamic metadata by default, a
    /// payload header only when asked (see `sdk_ext::jwt`).
    pub jwt: JwtSourceSpec,
    /// `normalized` (default): path rules match the RFC 3986-normalized path; `raw`: the path
    /// as Envoy forwards it.
    pub path_matching: PathMatching,
    pub rules: Vec<RuleSpec>,
}

/// The index in `names` of the string `node` holds ([`Node::choice`]'s errors): one copy for
/// every unit-only enum of the configuration instead of one `choice` per enum type.
#[inline(never)]
pub(crate) fn choice(node: &Node<'_>, names: &[&str]) -> Result<usize, ConfigError> {
    let name = node.str()?;
    names
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| node.unknown_variant(name, names))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefaultAction {
    #[default]
    Allow,
    Deny,
}

impl FromJson for DefaultAction {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        Ok(match choice(node, &["allow", "deny"])? {
            0 => DefaultAction::Allow,
            _ => DefaultAction::Deny,
        })
    }
}

impl FromJson for Config {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            shadow: or("shadow", false),
            default_action: or_default("default_action"),
            deny: or_default("deny"),
            api_keys: opt("api_keys"),
            jwt: or_default("jwt"),
            path_matching: or_default("path_matching"),
            rules: or_default("rules"),
        })
    }
}

#[derive(Debug, Clone)]
pub struct DenyResponse {
    pub status: u16,
    pub message: String,
}

impl Default for DenyResponse {
    fn default() -> Self {
        Self {
            status: default_deny_status(),
            message: default_deny_message(),
        }
    }
}

fn default_deny_status() -> u16 {
    403
}

fn default_deny_message() -> String {
    "request denied by policy".into()
}

impl FromJson for DenyResponse {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            status: or_else("status", default_deny_status),
            message: or_else("message", default_deny_message),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeysSpec {
    /// Header carrying the key (checked first).
    pub header: Option<String>,
    /// Query parameter carrying the key.
    pub query: Option<String>,
    /// Deny requests without a key (401). Default false: they go on as anonymous.
    pub required: bool,
    /// Header in which the consumer's name is forwarded upstream.
    pub consumer_header: String,
    pub keys: Vec<ApiKeySpec>,
}

fn default_consumer_header() -> String {
    "x-api-consumer".into()
}

impl FromJson for ApiKeysSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            header: opt("header"),
            query: opt("query"),
            required: or("required", false),
            consumer_header: or_else("consumer_header", default_consumer_header),
            keys: req("keys"),
        })
    }
}

impl FromJson for ApiKeySpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            consumer: req("consumer"),
            sha256: req("sha256"),
        })
    }
}

impl FromJson for RuleSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            name: req("name"),
            matches: or_default("match"),
            action: req("action"),
            deny: opt("deny"),
            rate_limit: opt("rate_limit"),
            shadow: or("shadow", false),
        })
    }
}

impl FromJson for Action {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        Ok(match choice(node, &["allow", "deny", "rate_limit"])? {
            0 => Action::Allow,
            1 => Action::Deny,
            _ => Action::RateLimit,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeySpec {
    pub consumer: String,
    /// Lowercase or uppercase hex SHA-256 of the key (`printf %s KEY | sha256sum`).
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub name: String,
    /// Conditions ([`RequestMatchSpec`], sdk-ext's match vocabulary): every kind given must
    /// match; `consumers` needs `api_keys`.
    pub matches: RequestMatchSpec,
    pub action: Action,
    /// Denial response for `action: deny` (default: the top-level `deny`).
    pub deny: Option<DenyResponse>,
    /// Required for `action: rate_limit`, refused otherwise.
    pub rate_limit: Option<RateLimitSpec>,
    /// Evaluate and count this rule, but never let it decide.
    pub shadow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    RateLimit,
}

#[derive(Debug, Clone)]
pub struct RateLimitSpec {
    /// `local` (default): the token bucket below, in this Envoy; `global`: ask the rate-limit
    /// service in `global` (see `crate::global`).
    pub scope: Scope,
    /// The local bucket (`max_tokens`, `tokens_per_fill`, `fill_interval`, `max_keys`, written
    /// in this object): required with scope `local`, refused with `global` (its local bucket
    /// is `global.local_first`). `None` when none of its members is given.
    pub bucket: Option<BucketConfig>,
    /// Required with scope `global`, refused otherwise.
    pub global: Option<GlobalSpec>,
    /// What identifies a bucket; empty (default): one bucket for every request the rule matches.
    pub key: Vec<KeyPart>,
    pub message: String,
}

/// Why a global `rate_limit` refuses the bucket members.
pub const GLOBAL_HAS_NO_BUCKET: &str = "a global limit is counted by the service; a local \
    bucket checked first goes in `global.local_first` (with its `max_tokens`, \
    `tokens_per_fill`, `fill_interval`, `max_keys`)";

impl FromJson for RateLimitSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(o = node, also BucketConfig::FIELDS => Self {
            scope: or_default("scope"),
            bucket = local_bucket(&o, scope)?,
            global: opt("global"),
            key: or_default("key"),
            message: or_else("message", || "rate limit exceeded".into()),
        })
    }
}

/// The local bucket of a `rate_limit` object: `None` when none of its members is given;
/// refused with scope `global`.
fn local_bucket(o: &Object<'_>, scope: Scope) -> Result<Option<BucketConfig>, ConfigError> {
    let given = BucketConfig::FIELDS.iter().find(|f| o.get(f).is_some());
    match (scope, given) {
        (_, None) => Ok(None),
        (Scope::Local, Some(_)) => BucketConfig::read(o).map(Some),
        (Scope::Global, Some(field)) => Err(ConfigError::new(
            sdk_ext::config::join_path(o.node().path(), field),
            GLOBAL_HAS_NO_BUCKET,
        )),
    }
}

/// One part of a rate-limit descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The downstream peer address (IPv4-mapped IPv6 as IPv4).
    SourceIp,
    /// The API-key consumer (anonymous requests share one bucket).
    Consumer,
    /// A request header's first value (requests without it share one bucket).
    Header(String),
    /// The first N segments of the path: `{"path_segments": 1}` keys `/api/v1/x` as `/api`.
    PathSegments(u32),
}

impl FromJson for KeyPart {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        match node.variant()? {
            ("source_ip", None) => Ok(KeyPart::SourceIp),
            ("consumer", None) => Ok(KeyPart::Consumer),
            ("header", Some(v)) => v.str().map(|h| KeyPart::Header(h.to_string())),
            ("path_segments", Some(v)) => u32::from_json(&v).map(KeyPart::PathSegments),
            (name, v) => Err(node.bad_variant(
                name,
                v.as_ref(),
                &["source_ip", "consumer"],
                &["header", "path_segments"],
            )),
        }
    }
}
