//! The JSON configuration as users write it (serde DTOs, unknown fields rejected). The filter
//! compiles it once in `configure`; see `README.md` for the reference with defaults and limits.

use sdk_ext::jwt::JwtSourceSpec;
use sdk_ext::matcher::{PathMatching, RequestMatchSpec};
use serde::Deserialize;

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Evaluate and count, never enforce (like RBAC `shadow_rules` for the whole policy).
    #[serde(default)]
    pub shadow: bool,
    /// What happens to a request no rule matched.
    #[serde(default)]
    pub default_action: DefaultAction,
    /// The denial response of `deny` rules without their own, and of `default_action: deny`.
    #[serde(default)]
    pub deny: DenyResponse,
    #[serde(default)]
    pub api_keys: Option<ApiKeysSpec>,
    /// Where `claims` matchers read claims: `jwt_authn`'s dynamic metadata by default, a
    /// payload header only when asked (see `sdk_ext::jwt`).
    #[serde(default)]
    pub jwt: JwtSourceSpec,
    /// `normalized` (default): path rules match the RFC 3986-normalized path; `raw`: the path
    /// as Envoy forwards it.
    #[serde(default)]
    pub path_matching: PathMatching,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyResponse {
    #[serde(default = "default_deny_status")]
    pub status: u16,
    #[serde(default = "default_deny_message")]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysSpec {
    /// Header carrying the key (checked first).
    #[serde(default)]
    pub header: Option<String>,
    /// Query parameter carrying the key.
    #[serde(default)]
    pub query: Option<String>,
    /// Deny requests without a key (401). Default false: they go on as anonymous.
    #[serde(default)]
    pub required: bool,
    /// Header in which the consumer's name is forwarded upstream.
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    pub keys: Vec<ApiKeySpec>,
}

fn default_consumer_header() -> String {
    "x-api-consumer".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    pub consumer: String,
    /// Lowercase or uppercase hex SHA-256 of the key (`printf %s KEY | sha256sum`).
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// Conditions ([`RequestMatchSpec`], sdk-ext's match vocabulary): every kind given must
    /// match; `consumers` needs `api_keys`.
    #[serde(rename = "match", default)]
    pub matches: RequestMatchSpec,
    pub action: Action,
    /// Denial response for `action: deny` (default: the top-level `deny`).
    #[serde(default)]
    pub deny: Option<DenyResponse>,
    /// Required for `action: rate_limit`, refused otherwise.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// Evaluate and count this rule, but never let it decide.
    #[serde(default)]
    pub shadow: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
    RateLimit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// `local` (default): the token bucket below, in this Envoy; `global`: ask the rate-limit
    /// service in `global` (see `crate::global`).
    #[serde(default)]
    pub scope: crate::global::Scope,
    /// Required with scope `local`; refused with `global` (its local bucket is
    /// `global.local_first`).
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Default: `max_tokens` (the bucket refills completely every interval).
    #[serde(default)]
    pub tokens_per_fill: Option<u64>,
    /// `500ms`, `10s`, `5m`, `1h`; 1ms..=24h. Required with scope `local`.
    #[serde(default)]
    pub fill_interval: Option<String>,
    /// Required with scope `global`, refused otherwise.
    #[serde(default)]
    pub global: Option<crate::global::GlobalSpec>,
    /// What identifies a bucket; empty (default): one bucket for every request the rule matches.
    #[serde(default)]
    pub key: Vec<KeyPart>,
    /// Distinct buckets tracked (slots in shared data), 1..=100000.
    #[serde(default = "default_max_keys")]
    pub max_keys: u32,
    #[serde(default = "default_limit_message")]
    pub message: String,
}

fn default_max_keys() -> u32 {
    10_000
}

fn default_limit_message() -> String {
    "rate limit exceeded".into()
}

/// One part of a rate-limit descriptor.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
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
