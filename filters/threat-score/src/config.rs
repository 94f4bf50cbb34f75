//! Configuration in two stages: [`Config`] is read from the plugin's JSON with
//! [`sdk_ext::config`] (unknown fields refused, a default for every field, errors with JSON
//! paths), [`Config::compile`] validates it into an [`Engine`] once, in `on_configure`, and the
//! engine is shared by every request.

use sdk_ext::config::{FromJson, Node};

use crate::engine::Engine;
use crate::model::Category;
/// Config errors are sdk-ext's: the JSON path of the field and the reason.
pub use sdk_ext::ConfigError;

/// What the filter does with a request whose score reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Reply 403 (the default).
    #[default]
    Block,
    /// Forward with `x-threat-score` and `x-threat-categories` headers.
    Tag,
    /// Forward unchanged; only log and count.
    Detect,
}

/// What happens when a request goes past a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExceed {
    /// Inspect what fits, let the rest through uninspected, report the hit (counted by the glue).
    Pass,
    /// Treat the request as over the threshold (blocked in `block` mode, tagged in `tag` mode).
    Block,
}

/// One limit: a maximum and the policy past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The maximum (bytes, count or rounds, depending on the limit).
    pub max: u32,
    /// What happens past it.
    pub on_exceed: OnExceed,
}

impl Limit {
    const fn new(max: u32, on_exceed: OnExceed) -> Limit {
        Limit { max, on_exceed }
    }
}

/// Bounds on the work done per request; see the README for the reasoning behind each default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Body bytes inspected (default 65536, pass: larger uploads are normal; only the prefix
    /// is inspected).
    pub body_bytes: Limit,
    /// Parameters inspected: query, urlencoded form and multipart parts together (default 255,
    /// block: CRS's `tx.max_num_args` example; a flood of parameters is a known way to push a
    /// payload past a WAF, and HTML forms do not have hundreds of fields).
    pub args: Limit,
    /// Values of a structured body inspected: every JSON object member and array element,
    /// every XML text node and attribute (default 1000, block: ModSecurity 3's and Coraza's
    /// `SecArgumentsLimit 1000` with rule 200007 denying past it). Real JSON bodies carry
    /// hundreds of values (a list of line items), which CRS's example 255 would refuse.
    pub body_values: Limit,
    /// Decoding rounds per value (default 4, block: legitimate clients encode once).
    pub decode_rounds: Limit,
    /// Request headers (default 100, block).
    pub header_count: Limit,
    /// Bytes inspected per header value (default 8192, pass: large cookies happen).
    pub header_bytes: Limit,
    /// JSON nesting depth inspected (default 32, block: deeper is hostile or broken).
    pub json_depth: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: Limit::new(64 * 1024, OnExceed::Pass),
            args: Limit::new(255, OnExceed::Block),
            body_values: Limit::new(1000, OnExceed::Block),
            decode_rounds: Limit::new(4, OnExceed::Block),
            header_count: Limit::new(100, OnExceed::Block),
            header_bytes: Limit::new(8192, OnExceed::Pass),
            json_depth: Limit::new(32, OnExceed::Block),
        }
    }
}

/// A known false positive to silence. All given conditions must hold; an empty list means
/// "any".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exclusion {
    /// Applies only to requests whose path starts with this prefix (as sent, before decoding).
    pub path_prefix: Option<String>,
    /// Argument or cookie names (exact, case-sensitive) whose values and names are not
    /// inspected for the listed categories. Empty: the whole request.
    pub args: Vec<String>,
    /// Lowercase header names excluded the same way.
    pub headers: Vec<String>,
    /// Categories silenced. Empty: all.
    pub categories: Vec<Category>,
}

/// Which request headers are inspected for injection attacks (protocol checks always see all
/// headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderConfig {
    /// Header names inspected by every detector (lowercase). Default: `user-agent`, `referer`,
    /// `x-forwarded-for`, `x-forwarded-host`, `x-real-ip`, `forwarded`, `true-client-ip`,
    /// `x-filename`, `x-file-name`, `x_filename`, `x.filename`. `cookie` is always parsed into
    /// cookies.
    pub inspect: Vec<String>,
    /// Also inspect headers that are neither in `inspect` nor in `skip` (custom headers are a
    /// common carrier for log4j-style payloads). Default true.
    pub inspect_other: bool,
    /// Headers never inspected for injection: standard headers with structured values
    /// (`accept`, `authorization`, `content-type`, ...; see the README for the default list).
    pub skip: Vec<String>,
}

impl Default for HeaderConfig {
    fn default() -> Self {
        // The default lists packed ([`crate::detect::pack_words!`]): one byte per name in the
        // module instead of a `&str`'s 8, read once at configure time (issue 13).
        let list =
            |packed: &'static [u8]| crate::detect::unpack(packed).map(String::from).collect();
        HeaderConfig {
            inspect: list(crate::detect::pack_words!(&[
                "user-agent",
                "referer",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-real-ip",
                "forwarded",
                "true-client-ip",
                "x-filename",
                "x-file-name",
                "x_filename",
                "x.filename",
            ])),
            inspect_other: true,
            skip: list(crate::detect::pack_words!(&[
                "host",
                "accept",
                "accept-encoding",
                "accept-language",
                "accept-charset",
                "authorization",
                "proxy-authorization",
                "cache-control",
                "connection",
                "content-length",
                "content-type",
                "content-encoding",
                "cookie",
                "if-match",
                "if-none-match",
                "if-modified-since",
                "if-unmodified-since",
                "keep-alive",
                "origin",
                "pragma",
                "range",
                "te",
                "transfer-encoding",
                "upgrade",
                "x-request-id",
                "traceparent",
                "tracestate",
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-parentspanid",
                "x-b3-sampled",
                "x-envoy-attempt-count",
                "x-envoy-expected-rq-timeout-ms",
                "x-envoy-internal",
                "x-envoy-decorator-operation",
                "x-envoy-original-path",
                "x-envoy-peer-metadata",
                "x-envoy-peer-metadata-id",
                "x-forwarded-proto",
                "x-forwarded-client-cert",
                "sec-fetch-site",
                "sec-fetch-mode",
                "sec-fetch-dest",
                "sec-fetch-user",
                "sec-ch-ua",
                "sec-ch-ua-mobile",
                "sec-ch-ua-platform",
                "upgrade-insecure-requests",
                "dnt",
            ])),
        }
    }
}

/// The filter's configuration (the plugin's JSON `configuration`). Every field has a default,
/// so `{}` is a valid configuration; unknown fields are rejected so typos do not silently
/// weaken protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// 1..=4 (default 1). Higher levels enable detections with more false positives.
    pub paranoia_level: u8,
    /// Score at which a request is blocked or tagged (default 5: one critical detection).
    pub inbound_threshold: u32,
    /// `block` (default), `tag` or `detect`.
    pub mode: Mode,
    /// Work bounds and their policies.
    pub limits: Limits,
    /// Known false positives to silence.
    pub exclusions: Vec<Exclusion>,
    /// Which headers are inspected.
    pub headers: HeaderConfig,
    /// Allowed methods (default GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS); others raise a
    /// critical protocol detection.
    pub allowed_methods: Vec<String>,
    /// Allowed request content types (the media type before `;`, lowercase). Default: form,
    /// multipart (form-data, related, mixed), JSON, XML, `text/plain` and vendor-tree
    /// `+json`/`+xml` types.
    /// An entry with one `*` allows the types that start with what precedes it and end with
    /// what follows (`application/*+json`, the default `application/vnd.*+json`).
    pub allowed_content_types: Vec<String>,
    /// File extensions refused in the URL path (backups, dumps, configs), lowercase with the dot.
    pub restricted_extensions: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        // The default lists packed ([`crate::detect::pack_words!`]): one byte per name in the
        // module instead of a `&str`'s 8, read once at configure time (issue 13).
        let list =
            |packed: &'static [u8]| crate::detect::unpack(packed).map(String::from).collect();
        Config {
            paranoia_level: 1,
            inbound_threshold: 5,
            mode: Mode::Block,
            limits: Limits::default(),
            exclusions: Vec::new(),
            headers: HeaderConfig::default(),
            allowed_methods: list(crate::detect::pack_words!(&[
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"
            ])),
            allowed_content_types: list(crate::detect::pack_words!(&[
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/related",
                // Batch APIs (OData `$batch`, Google's batch endpoint) send one request per
                // part; parsed and inspected part by part like form-data.
                "multipart/mixed",
                "application/json",
                "application/xml",
                "text/xml",
                "application/soap+xml",
                "text/plain",
                // Vendor-tree types with a structured-syntax suffix (RFC 6838 3.2, RFC
                // 6839): how APIs version their bodies (`application/vnd.github+json`,
                // `application/vnd.api+json`). Parsed and inspected as JSON or XML.
                "application/vnd.*+json",
                "application/vnd.*+xml",
            ])),
            restricted_extensions: list(crate::detect::pack_words!(&[
                ".asa",
                ".asax",
                ".ascx",
                ".backup",
                ".bak",
                ".bat",
                ".cdx",
                ".cer",
                ".cfg",
                ".cmd",
                ".com",
                ".config",
                ".conf",
                ".cs",
                ".csproj",
                ".csr",
                ".dat",
                ".db",
                ".dbf",
                ".dll",
                ".dos",
                ".htr",
                ".htw",
                ".ida",
                ".idc",
                ".idq",
                ".inc",
                ".ini",
                ".key",
                ".licx",
                ".lnk",
                ".log",
                ".mdb",
                ".old",
                ".pass",
                ".pdb",
                ".pol",
                ".printer",
                ".pwd",
                ".rdb",
                ".resources",
                ".resx",
                ".sql",
                ".swp",
                ".sys",
                ".vb",
                ".vbs",
                ".vbproj",
                ".vsdisco",
                ".webinfo",
                ".xsd",
                ".xsx",
                ".orig",
                ".save",
                ".sqlite",
                ".tmp",
                ".git",
                ".svn",
            ])),
        }
    }
}

impl FromJson for Mode {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.choice(&[
            ("block", Mode::Block),
            ("tag", Mode::Tag),
            ("detect", Mode::Detect),
        ])
    }
}

impl FromJson for OnExceed {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.choice(&[("pass", OnExceed::Pass), ("block", OnExceed::Block)])
    }
}

impl FromJson for Limit {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Limit {
            max: req("max"),
            on_exceed: req("on_exceed"),
        })
    }
}

impl FromJson for Limits {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let d = Limits::default();
        sdk_ext::read_object!(node => Limits {
            body_bytes: or("body_bytes", d.body_bytes),
            args: or("args", d.args),
            body_values: or("body_values", d.body_values),
            decode_rounds: or("decode_rounds", d.decode_rounds),
            header_count: or("header_count", d.header_count),
            header_bytes: or("header_bytes", d.header_bytes),
            json_depth: or("json_depth", d.json_depth),
        })
    }
}

impl FromJson for Category {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let name = node.str()?;
        Category::parse(name).ok_or_else(|| {
            node.error(format!(
                "unknown category `{name}`, expected one of: {}",
                Category::ALL.map(Category::as_str).join(", ")
            ))
        })
    }
}

impl FromJson for Exclusion {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Exclusion {
            path_prefix: opt("path_prefix"),
            args: or_default("args"),
            headers: or_default("headers"),
            categories: or_default("categories"),
        })
    }
}

impl FromJson for HeaderConfig {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let d = HeaderConfig::default();
        sdk_ext::read_object!(node => HeaderConfig {
            inspect: or("inspect", d.inspect),
            inspect_other: or("inspect_other", d.inspect_other),
            skip: or("skip", d.skip),
        })
    }
}

impl FromJson for Config {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let d = Config::default();
        sdk_ext::read_object!(node => Config {
            paranoia_level: or("paranoia_level", d.paranoia_level),
            inbound_threshold: or("inbound_threshold", d.inbound_threshold),
            mode: or("mode", d.mode),
            limits: or("limits", d.limits),
            exclusions: or("exclusions", d.exclusions),
            headers: or("headers", d.headers),
            allowed_methods: or("allowed_methods", d.allowed_methods),
            allowed_content_types: or("allowed_content_types", d.allowed_content_types),
            restricted_extensions: or("restricted_extensions", d.restricted_extensions),
        })
    }
}

impl Config {
    /// Parses the plugin configuration with [`sdk_ext::parse_json`], as the glue does: errors
    /// name the JSON path; empty input means all defaults (Envoy hands an empty configuration
    /// when none is set).
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        sdk_ext::parse_json(bytes)
    }

    /// Validates the configuration and builds the engine. Call once per configuration.
    pub fn compile(self) -> Result<Engine, ConfigError> {
        if !(1..=4).contains(&self.paranoia_level) {
            return Err(ConfigError::new("paranoia_level", "must be 1..=4"));
        }
        if self.inbound_threshold == 0 {
            return Err(ConfigError::new(
                "inbound_threshold",
                "must be at least 1 (0 would block every request)",
            ));
        }
        let l = &self.limits;
        let checks = [
            (
                "limits.body_bytes.max",
                l.body_bytes.max,
                0,
                64 * 1024 * 1024,
            ),
            ("limits.args.max", l.args.max, 1, 100_000),
            ("limits.body_values.max", l.body_values.max, 1, 100_000),
            ("limits.decode_rounds.max", l.decode_rounds.max, 1, 16),
            ("limits.header_count.max", l.header_count.max, 1, 10_000),
            (
                "limits.header_bytes.max",
                l.header_bytes.max,
                64,
                1024 * 1024,
            ),
            ("limits.json_depth.max", l.json_depth.max, 1, 512),
        ];
        for (field, value, min, max) in checks {
            if value < min || value > max {
                return Err(ConfigError::new(
                    field,
                    format!("must be {min}..={max}, got {value}"),
                ));
            }
        }
        for (i, m) in self.allowed_methods.iter().enumerate() {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::new(
                    format!("allowed_methods[{i}]"),
                    "must be a non-empty token",
                ));
            }
        }
        for (i, e) in self.exclusions.iter().enumerate() {
            if e.path_prefix
                .as_deref()
                .is_some_and(|p| !p.starts_with('/'))
            {
                return Err(ConfigError::new(
                    format!("exclusions[{i}].path_prefix"),
                    "must start with `/`",
                ));
            }
            if e.path_prefix.is_none()
                && e.args.is_empty()
                && e.headers.is_empty()
                && e.categories.is_empty()
            {
                return Err(ConfigError::new(
                    format!("exclusions[{i}]"),
                    "excludes everything; set path_prefix, args, headers or categories",
                ));
            }
        }
        for (list, names) in [
            ("headers.inspect", &self.headers.inspect),
            ("headers.skip", &self.headers.skip),
        ] {
            if let Some((i, h)) = names
                .iter()
                .enumerate()
                .find(|(_, h)| h.bytes().any(|b| b.is_ascii_uppercase()))
            {
                return Err(ConfigError::new(
                    format!("{list}[{i}]"),
                    format!("`{h}`: header names must be lowercase"),
                ));
            }
        }
        Ok(Engine::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_braces_are_defaults() {
        assert_eq!(Config::from_json(b"").unwrap(), Config::default());
        assert_eq!(Config::from_json(b"{}").unwrap(), Config::default());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = Config::from_json(br#"{"paranoia": 2}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert_eq!(err.path, "paranoia");
        let err = Config::from_json(br#"{"limits": {"body": 1}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert_eq!(err.path, "limits.body");
    }

    #[test]
    fn validation_names_the_field() {
        let cfg = Config {
            paranoia_level: 5,
            ..Config::default()
        };
        assert_eq!(
            cfg.compile().unwrap_err(),
            ConfigError::new("paranoia_level", "must be 1..=4")
        );
        let cfg =
            Config::from_json(br#"{"limits": {"decode_rounds": {"max": 0, "on_exceed": "pass"}}}"#)
                .unwrap();
        assert_eq!(
            cfg.compile().unwrap_err(),
            ConfigError::new("limits.decode_rounds.max", "must be 1..=16, got 0")
        );
        let cfg = Config::from_json(br#"{"headers": {"skip": ["accept", "X-Mine"]}}"#).unwrap();
        assert_eq!(
            cfg.compile().unwrap_err(),
            ConfigError::new(
                "headers.skip[1]",
                "`X-Mine`: header names must be lowercase"
            )
        );
        let err = Config::from_json(br#"{"exclusions": [{"args": ["a"]}, {}]}"#)
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(err.path, "exclusions[1]");
        let err = Config::from_json(br#"{"mode": "block", "limits": {"args": {"max": "x"}}}"#)
            .unwrap_err();
        assert_eq!(err.path, "limits.args.max");
    }

    #[test]
    fn full_config_parses() {
        let cfg = Config::from_json(
            br#"{"paranoia_level": 2, "inbound_threshold": 10, "mode": "tag",
                 "exclusions": [{"path_prefix": "/cms/", "args": ["body"], "categories": ["xss"]}],
                 "headers": {"inspect": ["x-custom"], "inspect_other": false}}"#,
        )
        .unwrap();
        assert_eq!(cfg.mode, Mode::Tag);
        assert_eq!(cfg.exclusions[0].categories, vec![Category::Xss]);
        assert!(cfg.compile().is_ok());
    }
}
