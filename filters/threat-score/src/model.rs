//! The vocabulary of an assessment: categories, severities, where a signal was found and what
//! the engine decided. Plain data, so the glue can turn it into headers, metrics and log lines.

use std::fmt;

/// Attack families, named after the OWASP CRS rule files they mirror. The glue uses
/// [`Category::as_str`] for metric names and the `x-threat-categories` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// SQL injection (CRS 942).
    Sqli,
    /// Cross-site scripting (CRS 941).
    Xss,
    /// Path traversal and local file inclusion (CRS 930).
    Lfi,
    /// Remote file inclusion (CRS 931).
    Rfi,
    /// OS command injection (CRS 932).
    Rce,
    /// PHP injection (CRS 933).
    Php,
    /// Java attacks: deserialization, JNDI lookups, dangerous classes (CRS 944).
    Java,
    /// Generic application attacks: prototype pollution, SSRF, template injection (CRS 934).
    Generic,
    /// Session fixation (CRS 943).
    SessionFixation,
    /// Security scanners identified by their user agent (CRS 913).
    Scanner,
    /// Protocol violations and anomalies: methods, Host, Content-Length, encodings (CRS 911/920).
    Protocol,
    /// Protocol attacks: smuggling, header/CRLF injection, LDAP injection (CRS 921).
    ProtocolAttack,
    /// Malformed or dangerous multipart bodies (CRS 922).
    Multipart,
}

impl Category {
    /// Every category, in a stable order (the bit order of [`CategorySet`]).
    pub const ALL: [Category; 13] = [
        Category::Sqli,
        Category::Xss,
        Category::Lfi,
        Category::Rfi,
        Category::Rce,
        Category::Php,
        Category::Java,
        Category::Generic,
        Category::SessionFixation,
        Category::Scanner,
        Category::Protocol,
        Category::ProtocolAttack,
        Category::Multipart,
    ];

    /// Stable lowercase name used in config, headers, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Sqli => "sqli",
            Category::Xss => "xss",
            Category::Lfi => "lfi",
            Category::Rfi => "rfi",
            Category::Rce => "rce",
            Category::Php => "php",
            Category::Java => "java",
            Category::Generic => "generic",
            Category::SessionFixation => "session-fixation",
            Category::Scanner => "scanner",
            Category::Protocol => "protocol",
            Category::ProtocolAttack => "protocol-attack",
            Category::Multipart => "multipart",
        }
    }

    /// Parses [`Category::as_str`] names (config files use these).
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Category::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown category `{name}`, expected one of: {}", {
                Category::ALL.map(Category::as_str).join(", ")
            }))
        })
    }
}

/// A small set of categories (a bit set; copying it is free).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CategorySet(u16);

impl CategorySet {
    /// The empty set.
    pub const EMPTY: CategorySet = CategorySet(0);

    /// Every category.
    pub fn all() -> CategorySet {
        Category::ALL
            .into_iter()
            .fold(CategorySet::EMPTY, |s, c| s.with(c))
    }

    /// Returns the set with `c` added.
    pub fn with(self, c: Category) -> CategorySet {
        CategorySet(self.0 | c.bit())
    }

    /// Adds `c`.
    pub fn insert(&mut self, c: Category) {
        self.0 |= c.bit();
    }

    /// Whether `c` is in the set.
    pub fn contains(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`Category::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Comma-separated names, the value of the `x-threat-categories` header.
    pub fn to_header_value(self) -> String {
        self.iter()
            .map(Category::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromIterator<Category> for CategorySet {
    fn from_iter<I: IntoIterator<Item = Category>>(iter: I) -> Self {
        iter.into_iter().fold(CategorySet::EMPTY, |s, c| s.with(c))
    }
}

/// CRS severities; the numeric value is the anomaly score a detection adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// 2 points.
    Notice,
    /// 3 points.
    Warning,
    /// 4 points.
    Error,
    /// 5 points: enough on its own to reach the default threshold.
    Critical,
}

impl Severity {
    /// The anomaly score this severity adds (CRS defaults).
    pub fn score(self) -> u32 {
        match self {
            Severity::Notice => 2,
            Severity::Warning => 3,
            Severity::Error => 4,
            Severity::Critical => 5,
        }
    }
}

/// Which part of the request a value came from. Query and body arguments share `Arg`/`ArgName`
/// (like CRS `ARGS`), because attackers move payloads freely between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The request method.
    Method,
    /// The URL path (before `?`).
    Path,
    /// The query string as a whole.
    Query,
    /// An argument name (query, urlencoded/JSON/multipart/XML body).
    ArgName,
    /// An argument value.
    Arg,
    /// A cookie name.
    CookieName,
    /// A cookie value.
    Cookie,
    /// A header value (`name` holds the lowercase header name).
    Header,
    /// A header name.
    HeaderName,
    /// A multipart file name.
    Filename,
    /// The body as a whole (when it is not a parsed format).
    Body,
    /// The request as a whole (protocol-level findings).
    Request,
}

impl Source {
    /// Stable lowercase name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Method => "method",
            Source::Path => "path",
            Source::Query => "query",
            Source::ArgName => "arg-name",
            Source::Arg => "arg",
            Source::CookieName => "cookie-name",
            Source::Cookie => "cookie",
            Source::Header => "header",
            Source::HeaderName => "header-name",
            Source::Filename => "filename",
            Source::Body => "body",
            Source::Request => "request",
        }
    }
}

/// Where a detection was found: the source and, for named sources, the name (argument, cookie
/// or header name; truncated to keep logs small). Attack text itself is never stored here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The part of the request.
    pub source: Source,
    /// The argument, cookie or header name, empty for unnamed sources.
    pub name: String,
}

impl Location {
    /// Longest name kept: names are attacker-controlled and end up in logs.
    pub const MAX_NAME: usize = 64;

    /// A location with `name` truncated to [`Location::MAX_NAME`] bytes (on a char boundary).
    pub fn new(source: Source, name: &str) -> Location {
        let mut end = name.len().min(Location::MAX_NAME);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        Location {
            source,
            name: name.get(..end).unwrap_or_default().to_string(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str(self.source.as_str())
        } else {
            write!(f, "{}:{}", self.source.as_str(), self.name.escape_debug())
        }
    }
}

/// One signal raised by a detector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The attack family.
    pub category: Category,
    /// A stable rule name, `family.what` (e.g. `sqli.fingerprint`), for logs and tuning.
    pub rule: &'static str,
    /// How much it adds to the score.
    pub severity: Severity,
    /// The lowest paranoia level at which this signal counts.
    pub paranoia: u8,
    /// Where it was found.
    pub location: Location,
}

/// A configured limit that a request went past. Whether that blocks is the limit's
/// `on_exceed` policy; either way it is reported so the glue can count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The body was longer than `max_body_bytes` (or arrived truncated): only a prefix was inspected.
    BodySize,
    /// More query/form/multipart parameters than `limits.args`: the rest were not inspected.
    ArgCount,
    /// More JSON or XML values than `limits.body_values`: the rest were not inspected.
    BodyValues,
    /// A value was still encoded after `max_decode_rounds` rounds, or documents carried as
    /// values nested past that many levels or past the bytes their leaves may decode (the
    /// length of the outermost values carrying them).
    DecodeRounds,
    /// More headers than `max_header_count`.
    HeaderCount,
    /// A header longer than `max_header_bytes`: only a prefix was inspected.
    HeaderSize,
    /// JSON nested deeper than `max_json_depth`: deeper values were not inspected.
    JsonDepth,
}

impl LimitKind {
    /// Stable name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::BodySize => "body_size",
            LimitKind::ArgCount => "arg_count",
            LimitKind::BodyValues => "body_values",
            LimitKind::DecodeRounds => "decode_rounds",
            LimitKind::HeaderCount => "header_count",
            LimitKind::HeaderSize => "header_size",
            LimitKind::JsonDepth => "json_depth",
        }
    }
}

/// What the glue should do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward unchanged.
    Allow,
    /// Forward, adding `x-threat-score` / `x-threat-categories` (mode `tag`).
    Tag,
    /// Reply 403 without forwarding (mode `block`).
    Block,
}

/// The outcome of [`crate::Engine::inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Sum of the severities of the distinct rules that fired (each rule counts once per
    /// request, as in CRS).
    pub score: u32,
    /// Categories of the counted detections.
    pub categories: CategorySet,
    /// The counted detections (first location per rule; at most
    /// [`Assessment::MAX_DETECTIONS`]).
    pub detections: Vec<Detection>,
    /// Limits the request went past.
    pub limit_hits: Vec<LimitKind>,
    /// True when the score reached the threshold (whatever the mode).
    pub over_threshold: bool,
    /// The action for the glue, after applying the mode and the limit policies.
    pub verdict: Verdict,
}

impl Assessment {
    /// Cap on the stored detections: enough for logs, bounded for hostile requests.
    pub const MAX_DETECTIONS: usize = 32;
}
