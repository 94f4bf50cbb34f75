//! Request matchers, compiled once at configure time.
//!
//! Each matcher has a *spec* (what users write in JSON, read with [`FromJson`], unknown fields
//! rejected) and a
//! compiled form. `compile` validates the spec and returns a [`ConfigError`] whose path is
//! relative to the spec (callers add their own prefix with [`ConfigError::within`]).
//!
//! Semantics follow Envoy's route and RBAC matchers where they overlap:
//! * regexes must match the **whole** value (as Envoy's `safe_regex`);
//! * glob `*` matches within one path segment, `**` across segments;
//! * a header matcher matches if **any** value of that header matches; `invert` negates the
//!   result (so an inverted matcher matches a missing header);
//! * in a [`RequestMatcher`], every configured kind must match (AND); within one kind's list,
//!   methods, paths, hosts and CIDRs are alternatives (OR) while headers and query parameters
//!   must all match (AND), as in Envoy's `RouteMatch`; cookies and JWT claims are ANDed too,
//!   API-key consumers are alternatives;
//! * paths are matched **normalized** by default ([`PathMatching`], [`crate::path`]): a rule
//!   on `/admin` also holds for `//admin`, `/./admin`, `/%61dmin` and `/x/../admin`, whether or
//!   not the Envoy in front normalizes paths.

use crate::config::{header_name, ConfigError, FromJson, Node};
use crate::cookie::{CookieMatchSpec, CookieMatcher};
use crate::jwt::{ClaimMatchSpec, ClaimMatcher, Claims};
use crate::view::RequestView;
use ipnet::IpNet;
use regex_lite::{Regex, RegexBuilder};
use std::net::IpAddr;

/// Upper bound on a compiled regex's size, so a hostile config cannot exhaust VM memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How to match a string value. Exactly one of the match kinds must be given.
///
/// ```json
/// {"prefix": "/api/"}   {"regex": "/users/[0-9]+"}   {"glob": "/static/**"}
/// {"exact": "Bob", "ignore_case": true}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringMatchSpec {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub contains: Option<String>,
    /// RE2-like syntax (`regex-lite`: `\d`, `\w`, `\s`, `\b` and case folding ASCII-only, no
    /// `\p{..}` classes), matched against the whole value.
    pub regex: Option<String>,
    /// `*` (within a `/`-separated segment), `**` (across segments), `?`, `[a-z]`.
    pub glob: Option<String>,
    /// Compare ASCII case-insensitively (all kinds).
    pub ignore_case: bool,
}

impl FromJson for StringMatchSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        // Six optional strings read by one loop (one `opt::<String>` call site instead of six
        // inlined reads, each with the drops of the ones before it: module size).
        const FIELDS: [&str; 7] = [
            "exact",
            "prefix",
            "suffix",
            "contains",
            "regex",
            "glob",
            "ignore_case",
        ];
        let o = node.object(&FIELDS)?;
        let mut spec = Self::default();
        let kinds = [
            &mut spec.exact,
            &mut spec.prefix,
            &mut spec.suffix,
            &mut spec.contains,
            &mut spec.regex,
            &mut spec.glob,
        ];
        for (key, kind) in FIELDS.iter().zip(kinds) {
            *kind = o.opt(key)?;
        }
        spec.ignore_case = o.or("ignore_case", false)?;
        Ok(spec)
    }
}

/// A compiled [`StringMatchSpec`].
#[derive(Debug, Clone)]
pub enum StringMatcher {
    Exact(String, bool),
    Prefix(String, bool),
    Suffix(String, bool),
    Contains(String, bool),
    Regex(Regex),
    Glob(crate::glob::Glob, bool),
}

impl StringMatchSpec {
    pub fn exact(v: &str) -> Self {
        Self {
            exact: Some(v.into()),
            ..Self::default()
        }
    }
    pub fn prefix(v: &str) -> Self {
        Self {
            prefix: Some(v.into()),
            ..Self::default()
        }
    }
    pub fn regex(v: &str) -> Self {
        Self {
            regex: Some(v.into()),
            ..Self::default()
        }
    }
    pub fn glob(v: &str) -> Self {
        Self {
            glob: Some(v.into()),
            ..Self::default()
        }
    }

    /// Validate and compile. Errors name the match kind's field (`regex`, `glob`, ...).
    pub fn compile(&self) -> Result<StringMatcher, ConfigError> {
        self.compile_case(self.ignore_case)
    }

    /// [`Self::compile`] with `ignore_case` given (hosts force it without a copy of the spec).
    fn compile_case(&self, ic: bool) -> Result<StringMatcher, ConfigError> {
        let kinds = [
            ("exact", &self.exact),
            ("prefix", &self.prefix),
            ("suffix", &self.suffix),
            ("contains", &self.contains),
            ("regex", &self.regex),
            ("glob", &self.glob),
        ];
        if kinds.iter().filter(|(_, v)| v.is_some()).count() != 1 {
            return Err(one_kind_error(&kinds));
        }
        // The one kind given, and its value folded once (one copy of the fold, not one per
        // kind: module size).
        let Some((at, v)) = kinds
            .iter()
            .enumerate()
            .find_map(|(at, (_, v))| v.as_ref().map(|v| (at, v)))
        else {
            return Err(ConfigError::new("$", "no match kind given"));
        };
        // `at` indexes `kinds`: 4 is `regex`, 5 `glob`.
        if at == 4 {
            return compile_regex(v, ic)
                .map(StringMatcher::Regex)
                .map_err(|reason| ConfigError::new("regex", reason));
        }
        let folded = if ic {
            v.to_ascii_lowercase()
        } else {
            v.clone()
        };
        Ok(match at {
            0 => StringMatcher::Exact(folded, ic),
            1 => StringMatcher::Prefix(folded, ic),
            2 => StringMatcher::Suffix(folded, ic),
            3 => StringMatcher::Contains(folded, ic),
            _ => {
                let pattern = crate::glob::Glob::new(&folded).map_err(|e| {
                    ConfigError::new("glob", format!("invalid glob `{v}`: {}", e.msg))
                })?;
                StringMatcher::Glob(pattern, ic)
            }
        })
    }
}

/// `exactly one of .. is required (found ..)`: out of line, without a `Vec` or `format!` in
/// `compile` (module size).
#[inline(never)]
fn one_kind_error(kinds: &[(&str, &Option<String>)]) -> ConfigError {
    let mut reason = String::from(
        "exactly one of exact, prefix, suffix, contains, regex, glob is required (found ",
    );
    let mut found = false;
    for (name, v) in kinds {
        if v.is_some() {
            if found {
                reason.push_str(", ");
            }
            reason.push_str(name);
            found = true;
        }
    }
    if !found {
        reason.push_str("none");
    }
    reason.push(')');
    ConfigError::new("$", reason)
}

/// Compile `pattern` anchored at both ends, with a size limit.
pub fn compile_regex(pattern: &str, ignore_case: bool) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(ignore_case)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex `{pattern}`: {e}"))
}

impl StringMatcher {
    /// Does `value` match?
    pub fn matches(&self, value: &str) -> bool {
        fn cmp(ic: bool, value: &str, f: impl Fn(&str) -> bool) -> bool {
            if ic {
                f(&value.to_ascii_lowercase())
            } else {
                f(value)
            }
        }
        match self {
            Self::Exact(p, ic) => {
                if *ic {
                    value.eq_ignore_ascii_case(p)
                } else {
                    value == p
                }
            }
            Self::Prefix(p, ic) => {
                value.len() >= p.len()
                    && value.is_char_boundary(p.len())
                    && if *ic {
                        value[..p.len()].eq_ignore_ascii_case(p)
                    } else {
                        value.starts_with(p.as_str())
                    }
            }
            Self::Suffix(p, ic) => cmp(*ic, value, |v| v.ends_with(p.as_str())),
            Self::Contains(p, ic) => cmp(*ic, value, |v| v.contains(p.as_str())),
            Self::Regex(re) => re.is_match(value),
            Self::Glob(pattern, ic) => cmp(*ic, value, |v| pattern.matches(v)),
        }
    }
}

/// Match a header: `{"name": "x-user", "value": {"exact": "bob"}}`; without `value` the header
/// only has to be present. `invert: true` negates the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatchSpec {
    pub name: String,
    pub value: Option<StringMatchSpec>,
    pub invert: bool,
}

named_match_spec!(HeaderMatchSpec, name);

/// A compiled [`HeaderMatchSpec`].
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    name: String,
    value: Option<StringMatcher>,
    invert: bool,
}

impl HeaderMatchSpec {
    pub fn compile(&self) -> Result<HeaderMatcher, ConfigError> {
        Ok(HeaderMatcher {
            name: header_name("name", &self.name)?,
            value: compile_value(&self.value)?,
            invert: self.invert,
        })
    }
}

/// `{"<name_field>": .., "value": {..}, "invert": ..}`: the shape of header, query, cookie and
/// claim matchers.
pub fn named_match(
    node: &Node<'_>,
    name_field: &str,
) -> Result<(String, Option<StringMatchSpec>, bool), ConfigError> {
    let o = node.object(&[name_field, "value", "invert"])?;
    Ok((o.req(name_field)?, o.opt("value")?, o.or("invert", false)?))
}

/// `FromJson` for a `{<name_field>, value, invert}` spec (header, query, cookie, claim), read
/// with [`named_match`]; `$name` is both the struct field and the JSON member.
macro_rules! named_match_spec {
    ($ty:ident, $name:ident) => {
        impl $crate::config::FromJson for $ty {
            fn from_json(
                node: &$crate::config::Node<'_>,
            ) -> Result<Self, $crate::config::ConfigError> {
                let ($name, value, invert) = $crate::matcher::named_match(node, stringify!($name))?;
                Ok(Self {
                    $name,
                    value,
                    invert,
                })
            }
        }
    };
}
pub(crate) use named_match_spec;

/// A named matcher's optional `value`, compiled (errors under `value`).
pub(crate) fn compile_value(
    spec: &Option<StringMatchSpec>,
) -> Result<Option<StringMatcher>, ConfigError> {
    spec.as_ref()
        .map(|s| s.compile().map_err(|e| e.within("value")))
        .transpose()
}

/// The rule of header, query and cookie matchers: any of the name's `values` matches `value`
/// (without one: the name is present at all), negated by `invert`.
pub(crate) fn values_match<'v>(
    value: &Option<StringMatcher>,
    invert: bool,
    mut values: impl Iterator<Item = &'v str>,
) -> bool {
    let hit = match value {
        None => values.next().is_some(),
        Some(m) => values.any(|v| m.matches(v)),
    };
    hit != invert
}

impl HeaderMatcher {
    /// The (lowercase) header name this matcher reads.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn matches(&self, req: &RequestView) -> bool {
        values_match(&self.value, self.invert, req.header_values(&self.name))
    }
}

/// Match a query parameter (decoded): `{"name": "debug"}` (present) or with a `value` matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMatchSpec {
    pub name: String,
    pub value: Option<StringMatchSpec>,
    pub invert: bool,
}

named_match_spec!(QueryMatchSpec, name);

/// A compiled [`QueryMatchSpec`].
#[derive(Debug, Clone)]
pub struct QueryMatcher {
    name: String,
    value: Option<StringMatcher>,
    invert: bool,
}

impl QueryMatchSpec {
    pub fn compile(&self) -> Result<QueryMatcher, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::new("name", "must not be empty"));
        }
        Ok(QueryMatcher {
            name: self.name.clone(),
            value: compile_value(&self.value)?,
            invert: self.invert,
        })
    }
}

impl QueryMatcher {
    pub fn matches(&self, req: &RequestView) -> bool {
        values_match(&self.value, self.invert, req.query_values(&self.name))
    }
}

/// Methods, compared case-sensitively after upper-casing the configured names (HTTP methods
/// are case-sensitive and conventionally upper case).
#[derive(Debug, Clone, Default)]
pub struct MethodMatcher(Vec<String>);

impl MethodMatcher {
    pub fn compile(methods: &[String]) -> Result<Self, ConfigError> {
        let mut out = Vec::with_capacity(methods.len());
        for (i, m) in methods.iter().enumerate() {
            if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
                return Err(within_index(
                    ConfigError::new("", format!("`{m}` is not an HTTP method")),
                    "",
                    i,
                ));
            }
            out.push(m.to_ascii_uppercase());
        }
        Ok(Self(out))
    }

    pub fn matches(&self, method: &str) -> bool {
        self.0.iter().any(|m| m == method)
    }
}

/// Source address ranges, IPv4 and IPv6. A bare address is a single-host range. IPv4-mapped
/// IPv6 sources (`::ffff:10.0.0.1`) are matched as IPv4.
#[derive(Debug, Clone, Default)]
pub struct CidrMatcher(Vec<IpNet>);

impl CidrMatcher {
    pub fn compile(cidrs: &[String]) -> Result<Self, ConfigError> {
        let mut out = Vec::with_capacity(cidrs.len());
        for (i, c) in cidrs.iter().enumerate() {
            match parse_cidr(c) {
                Ok(net) => out.push(net),
                Err(reason) => return Err(within_index(ConfigError::new("", reason), "", i)),
            }
        }
        Ok(Self(out))
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parse `10.0.0.0/8`, `2001:db8::/32` or a bare address.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    t.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))
}

/// IPv4-mapped IPv6 addresses become IPv4 so one v4 rule covers dual-stack listeners.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// [`canonical_ip`]'s text, exactly what `canonical_ip(ip).to_string()` gives (IPv4 dotted
/// decimal; IPv6 in lowercase hex with the longest run of two or more zero groups, the first of
/// equal runs, as `::`): the source-IP key of policy's rate limits and router's hash splits.
/// Written here instead of through `Display` because core's IPv6 formatter (its `Formatter`
/// buffers, hex and padding paths) was ~3 KB of every module keying on the client address
/// (bench/README.md, "Suite size and glue, round 14"); `ip_key_matches_display` compares the
/// two.
pub fn ip_key(ip: IpAddr) -> String {
    let mut out = String::with_capacity(39);
    match canonical_ip(ip) {
        IpAddr::V4(v4) => push_ipv4(&mut out, v4.octets()),
        IpAddr::V6(v6) => {
            let groups = v6.segments();
            // The longest run of zero groups (the first of equal length), as core finds it.
            let (mut best, mut best_len, mut run) = (0usize, 0usize, 0usize);
            for (i, &g) in groups.iter().enumerate() {
                run = if g == 0 { run + 1 } else { 0 };
                if run > best_len {
                    best_len = run;
                    best = i + 1 - run;
                }
            }
            let (head, tail) = if best_len > 1 {
                (&groups[..best], Some(&groups[best + best_len..]))
            } else {
                (&groups[..], None)
            };
            push_groups(&mut out, head);
            if let Some(tail) = tail {
                out.push_str("::");
                push_groups(&mut out, tail);
            }
        }
    }
    out
}

/// `a.b.c.d` in decimal.
fn push_ipv4(out: &mut String, octets: [u8; 4]) {
    for (i, o) in octets.into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        crate::config::push_decimal(out, u64::from(o));
    }
}

/// IPv6 groups in lowercase hex without leading zeros, `:` between them.
fn push_groups(out: &mut String, groups: &[u16]) {
    for (i, &g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let mut shift = 12;
        while shift > 0 && (g >> shift) == 0 {
            shift -= 4;
        }
        loop {
            out.push(char::from(
                b"0123456789abcdef"[usize::from((g >> shift) & 0xf)],
            ));
            if shift == 0 {
                break;
            }
            shift -= 4;
        }
    }
}

/// Which form of the path path matchers (and path-derived keys) see. A filter's top-level
/// config field `path_matching`: `"normalized"` (default) or `"raw"`.
///
/// `normalized` ([`crate::path::normalize`]) is safe whatever Envoy does in front. `raw` is for
/// upstreams that give dot segments, doubled slashes or escaped unreserved characters a
/// meaning of their own; with it, rules see the path exactly as Envoy forwards it, so Envoy's
/// own `normalize_path` and `merge_slashes` must be on (they are in every config this project
/// renders) or a rule on `/admin` misses `//admin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathMatching {
    #[default]
    Normalized,
    Raw,
}

impl FromJson for PathMatching {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.choice(&[("normalized", Self::Normalized), ("raw", Self::Raw)])
    }
}

/// Everything a rule can match on, as users write it: the one match vocabulary of every filter
/// (policy's and router's `match`). Omitted kinds match anything. Kinds are ANDed;
/// alternatives within `methods`, `paths`, `hosts`, `source_cidrs` and `consumers` are ORed;
/// `headers`, `query`, `cookies` and `claims` are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatchSpec {
    pub methods: Vec<String>,
    pub paths: Vec<StringMatchSpec>,
    pub hosts: Vec<StringMatchSpec>,
    pub headers: Vec<HeaderMatchSpec>,
    pub query: Vec<QueryMatchSpec>,
    pub source_cidrs: Vec<String>,
    /// Cookies, all of which must match (`{"name": "beta", "value": {"exact": "yes"}}`).
    pub cookies: Vec<CookieMatchSpec>,
    /// JWT claims, all of which must match, read from the filter's claim source (see
    /// [`crate::jwt`]) only when every other kind matched.
    pub claims: Vec<ClaimMatchSpec>,
    /// Consumer names (from the filter's API-key check); `"*"` is any consumer. Only filters
    /// that identify consumers accept it ([`MatchOptions::no_consumers`]); the others refuse it.
    pub consumers: Vec<String>,
}

impl FromJson for RequestMatchSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        // Every member is a list: one loop over (name, list) instead of `read_object!`'s read
        // per member, each with the drops of the members read before it (module size).
        const FIELDS: [&str; 9] = [
            "methods",
            "paths",
            "hosts",
            "headers",
            "query",
            "source_cidrs",
            "cookies",
            "claims",
            "consumers",
        ];
        let o = node.object(&FIELDS)?;
        let mut spec = Self::default();
        let lists: [&mut dyn crate::config::Items; 9] = [
            &mut spec.methods,
            &mut spec.paths,
            &mut spec.hosts,
            &mut spec.headers,
            &mut spec.query,
            &mut spec.source_cidrs,
            &mut spec.cookies,
            &mut spec.claims,
            &mut spec.consumers,
        ];
        for (key, list) in FIELDS.iter().zip(lists) {
            o.read_list(key, list)?;
        }
        Ok(spec)
    }
}

/// How a filter compiles its [`RequestMatchSpec`]s: what it can supply at request time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    /// Which form of the path `paths` see (the filter's `path_matching`).
    pub path_matching: PathMatching,
    /// Why `consumers` cannot be used (refused at configure time with this reason), or `None`
    /// when the filter identifies consumers and passes them to [`RequestMatcher::matches_with`].
    /// Default: refused, so a filter that never supplies consumers cannot hold rules that would
    /// silently never match.
    pub no_consumers: Option<&'static str>,
}

impl Default for MatchOptions {
    fn default() -> Self {
        Self {
            path_matching: PathMatching::default(),
            no_consumers: Some("this filter identifies no API-key consumers"),
        }
    }
}

impl MatchOptions {
    /// Paths as `path_matching` says; `consumers` refused with `why`.
    pub fn without_consumers(path_matching: PathMatching, why: &'static str) -> Self {
        Self {
            path_matching,
            no_consumers: Some(why),
        }
    }
}

/// What every rule of a filter reads of the request line, read once per request: the method
/// and the path in the form each matcher asks for (the normalized one computed on first use).
/// The bench policy's 31 path rules each found `:path` and its end again before.
pub struct MatchFacts<'r> {
    req: &'r RequestView,
    method: &'r str,
    raw: &'r str,
    normalized: std::cell::OnceCell<&'r str>,
}

impl<'r> MatchFacts<'r> {
    pub fn of(req: &'r RequestView) -> Self {
        Self {
            req,
            method: req.method(),
            raw: req.path(),
            normalized: std::cell::OnceCell::new(),
        }
    }

    /// `:method`, or `""`.
    pub fn method(&self) -> &'r str {
        self.method
    }

    /// The path as [`RequestView::match_path`] gives it for `mode`.
    pub fn path(&self, mode: PathMatching) -> &'r str {
        match mode {
            PathMatching::Raw => self.raw,
            PathMatching::Normalized => self.normalized.get_or_init(|| self.req.normalized_path()),
        }
    }
}

/// A compiled [`RequestMatchSpec`].
#[derive(Debug, Clone, Default)]
pub struct RequestMatcher(std::mem::ManuallyDrop<Compiled>);

/// Dropped in one place: the drop glue of a type with this many lists is ~500 bytes, and
/// without a `Drop` of its own every crate holding a matcher (policy, router, the suite)
/// compiled its own copy of it (module size).
impl Drop for RequestMatcher {
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: the only place the field is dropped, and it is not used after.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.0) }
    }
}

/// What a [`RequestMatcher`] holds.
#[derive(Debug, Clone, Default)]
struct Compiled {
    methods: MethodMatcher,
    paths: Vec<StringMatcher>,
    hosts: Vec<StringMatcher>,
    headers: Vec<HeaderMatcher>,
    query: Vec<QueryMatcher>,
    cidrs: CidrMatcher,
    cookies: Vec<CookieMatcher>,
    claims: Vec<ClaimMatcher>,
    consumers: Vec<String>,
    path_matching: PathMatching,
}

// A plain loop with the error path out of line: `collect::<Result<Vec<_>, _>>()` built a
// `GenericShunt` adapter per element type (~600 bytes each) and a `format!` per instance
// (module size; configure time only).
fn compile_list<S, T>(
    field: &str,
    specs: &[S],
    f: impl Fn(&S) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    let mut out = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        match f(s) {
            Ok(t) => out.push(t),
            Err(e) => return Err(within_index(e, field, i)),
        }
    }
    Ok(out)
}

/// `e` under `field[i]` (`field` may be empty: `[i]`).
#[inline(never)]
pub(crate) fn within_index(e: ConfigError, field: &str, i: usize) -> ConfigError {
    let mut at = String::with_capacity(field.len() + 4);
    at.push_str(field);
    at.push('[');
    crate::config::push_decimal(&mut at, i as u64);
    at.push(']');
    e.within(&at)
}

impl RequestMatchSpec {
    /// True when nothing is configured (the matcher would match every request).
    pub fn is_empty(&self) -> bool {
        // Field by field (the default has every list empty): `== Self::default()` kept a
        // `PartialEq` of every spec type in the module.
        self.methods.is_empty()
            && self.paths.is_empty()
            && self.hosts.is_empty()
            && self.headers.is_empty()
            && self.query.is_empty()
            && self.source_cidrs.is_empty()
            && self.cookies.is_empty()
            && self.claims.is_empty()
            && self.consumers.is_empty()
    }

    /// Compile with the default options: normalized paths, `consumers` refused (a filter that
    /// supplies consumers uses [`Self::compile_with`]).
    pub fn compile(&self) -> Result<RequestMatcher, ConfigError> {
        self.compile_with(MatchOptions::default())
    }

    /// Validate and compile. Errors name the field relative to this spec
    /// (`cookies[1].value.regex`).
    pub fn compile_with(&self, options: MatchOptions) -> Result<RequestMatcher, ConfigError> {
        // Hosts are case-insensitive (RFC 9110 section 4.2.3). Paths and hosts share one
        // instance of `compile_list` (one closure type, module size).
        let strings = |host: bool| move |s: &StringMatchSpec| s.compile_case(host || s.ignore_case);
        if let (Some(why), false) = (options.no_consumers, self.consumers.is_empty()) {
            return Err(ConfigError::new("consumers", why));
        }
        let consumer = |c: &String| {
            if c.is_empty() {
                Err(ConfigError::new("", "must not be empty"))
            } else {
                Ok(c.clone())
            }
        };
        Ok(RequestMatcher(std::mem::ManuallyDrop::new(Compiled {
            methods: MethodMatcher::compile(&self.methods).map_err(|e| e.within("methods"))?,
            paths: compile_list("paths", &self.paths, strings(false))?,
            hosts: compile_list("hosts", &self.hosts, strings(true))?,
            headers: compile_list("headers", &self.headers, HeaderMatchSpec::compile)?,
            query: compile_list("query", &self.query, QueryMatchSpec::compile)?,
            cidrs: CidrMatcher::compile(&self.source_cidrs)
                .map_err(|e| e.within("source_cidrs"))?,
            cookies: compile_list("cookies", &self.cookies, CookieMatchSpec::compile)?,
            claims: compile_list("claims", &self.claims, ClaimMatchSpec::compile)?,
            consumers: compile_list("consumers", &self.consumers, consumer)?,
            path_matching: options.path_matching,
        })))
    }
}

impl RequestMatcher {
    /// Match paths in `mode` instead of the one compiled in.
    #[must_use]
    pub fn with_path_matching(mut self, mode: PathMatching) -> Self {
        self.0.path_matching = mode;
        self
    }

    /// Does the request match every configured kind? Without a consumer or claims: a rule with
    /// `consumers` or (non-inverted) `claims` does not match here; filters that supply them
    /// call [`Self::matches_with`].
    pub fn matches(&self, req: &RequestView) -> bool {
        self.matches_with(req, None, &|| None)
    }

    /// As [`Self::matches`], with the request's consumer and claims. `claims` is called only
    /// when every other kind matched and this matcher has claim conditions, so a filter decodes
    /// the claims lazily, at most once per request (behind a `OnceCell`).
    pub fn matches_with<'c>(
        &self,
        req: &RequestView,
        consumer: Option<&str>,
        claims: &dyn Fn() -> Option<&'c Claims>,
    ) -> bool {
        (self.0.methods.0.is_empty() || self.0.methods.matches(req.method()))
            && (self.0.paths.is_empty() || {
                let path = req.match_path(self.0.path_matching);
                self.0.paths.iter().any(|m| m.matches(path))
            })
            && self.matches_rest(req, consumer, claims)
    }

    /// As [`Self::matches_with`], with the request line read once for all of a filter's
    /// rules ([`MatchFacts`]) instead of once per rule.
    pub fn matches_facts<'c>(
        &self,
        facts: &MatchFacts<'_>,
        consumer: Option<&str>,
        claims: &dyn Fn() -> Option<&'c Claims>,
    ) -> bool {
        (self.0.methods.0.is_empty() || self.0.methods.matches(facts.method))
            && (self.0.paths.is_empty() || {
                let path = facts.path(self.0.path_matching);
                self.0.paths.iter().any(|m| m.matches(path))
            })
            && self.matches_rest(facts.req, consumer, claims)
    }

    /// Every kind but methods and paths.
    fn matches_rest<'c>(
        &self,
        req: &RequestView,
        consumer: Option<&str>,
        claims: &dyn Fn() -> Option<&'c Claims>,
    ) -> bool {
        (self.0.hosts.is_empty() || self.0.hosts.iter().any(|m| m.matches(req.host())))
            && self.0.headers.iter().all(|m| m.matches(req))
            && self.0.query.iter().all(|m| m.matches(req))
            && (self.0.cidrs.is_empty()
                || req.source_ip().is_some_and(|ip| self.0.cidrs.matches(ip)))
            && (self.0.consumers.is_empty()
                || consumer.is_some_and(|c| self.0.consumers.iter().any(|r| r == "*" || r == c)))
            && self.0.cookies.iter().all(|m| m.matches(req))
            && (self.0.claims.is_empty() || {
                let c = claims();
                self.0.claims.iter().all(|m| m.matches(c))
            })
    }

    /// A header this matcher needs present (its first header condition without `invert`), if
    /// any: a request without that header cannot match, whatever the other conditions say.
    /// Lets a filter with many rules skip them by one pass over the request's header names.
    pub fn required_header(&self) -> Option<&str> {
        self.0
            .headers
            .iter()
            .find(|h| !h.invert)
            .map(|h| h.name.as_str())
    }

    /// Whether any condition reads JWT claims.
    pub fn needs_claims(&self) -> bool {
        !self.0.claims.is_empty()
    }

    /// The methods this matcher accepts (uppercase, compared exactly); empty: any method.
    pub fn methods(&self) -> &[String] {
        &self.0.methods.0
    }

    /// A necessary condition of this matcher's paths, when they allow one ([`PathLead`]).
    pub fn path_lead(&self) -> Option<PathLead> {
        let mut set = [0u64; 4];
        for m in &self.0.paths {
            let p = match m {
                StringMatcher::Exact(p, false) | StringMatcher::Prefix(p, false) => p,
                _ => return None,
            };
            let b = *p.as_bytes().get(1)?;
            set[usize::from(b >> 6)] |= 1 << (b & 63);
        }
        (!self.0.paths.is_empty()).then_some(PathLead {
            mode: self.0.path_matching,
            set,
        })
    }
}

/// The second byte a matched path can have, for a matcher whose path conditions are all
/// case-sensitive `exact` or `prefix` values of two bytes or more: a path whose second byte is
/// none of theirs (or that is shorter) matches none of them, whatever the other conditions say.
/// Paths start with `/`, so the second byte is the first that tells `/internal/...` from
/// `/api/...`. A filter with many path rules checks it (a few operators) before the matcher
/// (~110 operators a rule: the call, the method and path lists, the prefix compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathLead {
    mode: PathMatching,
    /// Bit `b` set: some condition's second byte is `b`.
    set: [u64; 4],
}

impl PathLead {
    /// Whether the request's path (as the matcher sees it) can match.
    pub fn admits(&self, facts: &MatchFacts<'_>) -> bool {
        facts.path(self.mode).as_bytes().get(1).is_some_and(|&b| {
            self.set
                .get(usize::from(b >> 6))
                .is_some_and(|w| w >> (b & 63) & 1 == 1)
        })
    }
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
