//! Configuration: the form users write (read with [`sdk_ext::config`]), validated and compiled
//! once in `configure`.
//!
//! Errors name the JSON path and the reason (`rules[1].weights[0].percent: ...`). Validation is
//! strict where a mistake would silently misroute traffic: weights must add up to exactly 100,
//! a rule must not read the routing header the filter owns, two tags must not share a metric.

use crate::{hash, metric_tag};
use sdk_ext::config::{header_name, ConfigError, FromJson, Node};
use sdk_ext::jwt::{ClaimSource, Claims, JwtSourceSpec};
use sdk_ext::matcher::{MatchOptions, PathMatching, RequestMatchSpec, RequestMatcher};
use sdk_ext::{HeaderOps, RequestView};

/// Default routing header: what the `VirtualService` / Envoy route matches on.
pub const DEFAULT_ROUTE_HEADER: &str = "x-route-tag";
/// Longest tag accepted (it becomes a header value and part of a metric name).
pub const MAX_TAG_LEN: usize = 64;

/// The JSON configuration. Every field is optional; `{}` removes client copies of
/// `x-route-tag` and sets nothing.
#[derive(Debug, Clone)]
pub struct Config {
    /// The header this filter owns and sets to the destination tag.
    pub route_header: String,
    /// Tag for requests no rule matched; none leaves the header unset.
    pub default_tag: Option<String>,
    /// Where `claims` matchers and `{"claim": ..}` split keys read claims: `jwt_authn`'s
    /// dynamic metadata by default; a payload header only when asked (`sdk_ext::jwt`).
    pub jwt: JwtSourceSpec,
    /// `normalized` (default): path rules match the RFC 3986-normalized path; `raw`: the path
    /// as Envoy forwards it.
    pub path_matching: PathMatching,
    /// Tried in order; the first match wins.
    pub rules: Vec<RuleSpec>,
}

fn default_route_header() -> String {
    DEFAULT_ROUTE_HEADER.into()
}

/// One rule: a match, a destination (`tag`, or a `weights` split) and optional edits.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// For logs only. Default `rules[i]`.
    pub name: Option<String>,
    /// Conditions ([`RequestMatchSpec`], sdk-ext's match vocabulary), all of which must hold;
    /// omitted matches every request. `consumers` is refused (this filter checks no API keys).
    pub matches: RequestMatchSpec,
    /// Fixed destination. Exactly one of `tag` and `weights`.
    pub tag: Option<String>,
    /// Weighted split; percentages add up to 100.
    pub weights: Option<Vec<WeightSpec>>,
    /// Split key sources, first present wins. Omitted: a fresh random draw per request.
    pub hash_on: Option<Vec<HashKey>>,
    /// When no `hash_on` key is present: `"random"` (default) or `{"tag": "stable"}`.
    pub fallback: Option<FallbackSpec>,
    /// Mixed into the hash so two experiments on the same key assign users independently.
    pub salt: Option<String>,
    /// Path prefix and host rewrites.
    pub rewrite: Option<RewriteSpec>,
    /// Request header edits.
    pub request_headers: HeaderEditsSpec,
}

/// One side of a split.
#[derive(Debug, Clone)]
pub struct WeightSpec {
    pub tag: String,
    /// 0 to 100, at most two decimals: the JSON number as written (read exactly, no
    /// floating point: `33.33` is 3333 of 10000 buckets, never 3332.9999).
    pub percent: String,
}

/// Where a split key comes from: `{"header": "x-user-id"}`, `{"cookie": "uid"}`,
/// `{"query": "user"}`, `{"claim": "sub"}` or `"source_ip"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Header(String),
    Cookie(String),
    Query(String),
    Claim(String),
    SourceIp,
}

/// What a split does without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackSpec {
    /// Draw a bucket per request (not sticky).
    Random,
    /// Send every keyless request to this tag.
    Tag(String),
}

/// Rewrites applied when the rule wins.
#[derive(Debug, Clone)]
pub struct RewriteSpec {
    /// Replace a leading path prefix (query kept); no effect when the path does not start
    /// with `from`.
    pub path_prefix: Option<PrefixRewrite>,
    /// New `:authority`.
    pub host: Option<String>,
}

/// `{"from": "/v1/", "to": "/v2/"}`.
#[derive(Debug, Clone)]
pub struct PrefixRewrite {
    pub from: String,
    pub to: String,
}

/// Header edits, applied as removals, then sets (replacing), then adds (appending).
#[derive(Debug, Clone, Default)]
pub struct HeaderEditsSpec {
    pub set: HeaderMap,
    pub add: HeaderMap,
    pub remove: Vec<String>,
}

/// A JSON object of header names to values, in name order (byte order; the parser refuses
/// duplicate names). What a `BTreeMap<String, String>` gave, without a B-tree in the module
/// for one configuration field (module size).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap(pub Vec<(String, String)>);

impl FromJson for HeaderMap {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in node.entries()? {
            let value = value.str()?.to_string();
            // Insertion in name order: a handful of entries.
            let at = out.partition_point(|(n, _)| n.as_str() < name);
            out.insert(at, (name.to_string(), value));
        }
        Ok(HeaderMap(out))
    }
}

impl FromJson for Config {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            route_header: or_else("route_header", default_route_header),
            default_tag: opt("default_tag"),
            jwt: or_default("jwt"),
            path_matching: or_default("path_matching"),
            rules: or_default("rules"),
        })
    }
}

impl FromJson for RuleSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            name: opt("name"),
            matches: or_default("match"),
            tag: opt("tag"),
            weights: opt("weights"),
            hash_on: opt("hash_on"),
            fallback: opt("fallback"),
            salt: opt("salt"),
            rewrite: opt("rewrite"),
            request_headers: or_default("request_headers"),
        })
    }
}

impl FromJson for WeightSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            tag: req("tag"),
            percent: req_with("percent", |n| match n.json() {
                sdk_ext::config::Json::Number(text) => Ok(text.clone()),
                _ => Err(n.invalid_type("a number")),
            }),
        })
    }
}

impl FromJson for HashKey {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        const WITH_VALUE: [&str; 4] = ["header", "cookie", "query", "claim"];
        let (name, value) = node.variant()?;
        match (WITH_VALUE.iter().position(|k| *k == name), &value) {
            (Some(kind), Some(v)) => {
                // One string read for the four kinds that name something.
                let text = v.str()?.to_string();
                Ok(match kind {
                    0 => HashKey::Header(text),
                    1 => HashKey::Cookie(text),
                    2 => HashKey::Query(text),
                    _ => HashKey::Claim(text),
                })
            }
            (None, None) if name == "source_ip" => Ok(HashKey::SourceIp),
            _ => Err(node.bad_variant(name, value.as_ref(), &["source_ip"], &WITH_VALUE)),
        }
    }
}

impl FromJson for FallbackSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        match node.variant()? {
            ("random", None) => Ok(FallbackSpec::Random),
            ("tag", Some(v)) => v.str().map(|t| FallbackSpec::Tag(t.to_string())),
            (name, v) => Err(node.bad_variant(name, v.as_ref(), &["random"], &["tag"])),
        }
    }
}

impl FromJson for RewriteSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            path_prefix: opt("path_prefix"),
            host: opt("host"),
        })
    }
}

impl FromJson for PrefixRewrite {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            from: req("from"),
            to: req("to"),
        })
    }
}

impl FromJson for HeaderEditsSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        sdk_ext::read_object!(node => Self {
            set: or_default("set"),
            add: or_default("add"),
            remove: or_default("remove"),
        })
    }
}

/// The validated configuration, ready for the filter.
#[derive(Debug)]
pub struct Compiled {
    pub route_header: String,
    pub claim_source: ClaimSource,
    pub rules: Vec<Rule>,
    /// Every tag, in first-seen order; `Action`s refer to them by index.
    pub tags: Vec<String>,
    pub default_dest: Option<usize>,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    request: RequestMatcher,
    pub action: Action,
    pub edits: Edits,
}

/// A compiled destination choice.
#[derive(Debug)]
pub enum Action {
    /// Always this destination.
    Tag(usize),
    /// Buckets `[previous end, end)` go to the destination.
    Split {
        weights: Vec<(u32, usize)>,
        hash_on: Vec<HashKey>,
        fallback: Fallback,
        salt: String,
    },
}

/// A compiled [`FallbackSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Random,
    Tag(usize),
}

/// Compiled rewrites and header edits.
#[derive(Debug, Default)]
pub struct Edits {
    path_prefix: Option<(String, String)>,
    /// Which path `path_prefix` is cut from: the one the rule's path matchers saw, so a rule
    /// that matched `//legacy/x` as `/legacy/x` also rewrites it.
    paths: PathMatching,
    host: Option<String>,
    remove: Vec<String>,
    set: Vec<(String, String)>,
    add: Vec<(String, String)>,
}

impl Rule {
    /// Do all conditions hold? Claims are decoded at most once per request, and only when a
    /// rule that reaches its claim matchers needs them.
    pub fn matches<'c>(&self, req: &RequestView, claims: &dyn Fn() -> Option<&'c Claims>) -> bool {
        self.request.matches_with(req, None, claims)
    }
}

impl Edits {
    /// Add this rule's edits to `ops`.
    pub fn apply(&self, req: &RequestView, ops: &mut HeaderOps) {
        for name in &self.remove {
            ops.remove(name.as_str());
        }
        for (n, v) in &self.set {
            ops.set(n.as_str(), v.as_str());
        }
        for (n, v) in &self.add {
            ops.add(n.as_str(), v.as_str());
        }
        if let Some((from, to)) = &self.path_prefix {
            // The path part as matched (normalized by default), then the query and fragment
            // exactly as sent.
            let suffix = req.raw_path().get(req.path().len()..).unwrap_or("");
            if let Some(rest) = req.match_path(self.paths).strip_prefix(from.as_str()) {
                ops.set(":path", [to.as_str(), rest, suffix].concat());
            }
        }
        if let Some(host) = &self.host {
            ops.set(":authority", host.as_str());
        }
    }
}

/// The destination whose bucket range holds `bucket`.
pub fn pick_weighted(weights: &[(u32, usize)], bucket: u32) -> usize {
    weights
        .iter()
        .find(|(end, _)| bucket < *end)
        .or(weights.last())
        .map_or(0, |(_, d)| *d)
}

/// `parts` joined: an error's JSON path. One out-of-line copy for every error site of the
/// compiler (configure time only; a `format!` per site was most of `Config::compile`'s code).
#[inline(never)]
fn path(parts: &[&str]) -> String {
    parts.concat()
}

/// `prefix[i]`, e.g. `rules[3]`.
#[inline(never)]
fn indexed(prefix: &str, i: usize) -> String {
    format!("{prefix}[{i}]")
}

/// An error at `parts` joined.
#[inline(never)]
fn error_at(parts: &[&str], reason: String) -> ConfigError {
    ConfigError {
        path: path(parts),
        reason,
    }
}

/// An error at `parts` joined, with a fixed reason.
#[inline(never)]
fn fixed_at(parts: &[&str], reason: &str) -> ConfigError {
    error_at(parts, reason.to_string())
}

/// Interns tags, checking each and that no two share a metric name.
#[derive(Default)]
struct Tags(Vec<String>);

impl Tags {
    /// `tag`'s index; errors at the path `at` + `field`.
    #[inline(never)]
    fn intern(&mut self, at: &str, field: &str, tag: &str) -> Result<usize, ConfigError> {
        if let Some(i) = self.0.iter().position(|t| t == tag) {
            return Ok(i);
        }
        let valid = !tag.is_empty()
            && tag.len() <= MAX_TAG_LEN
            && tag
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !valid {
            return Err(error_at(
                &[at, field],
                format!("tag `{tag}` must be 1 to {MAX_TAG_LEN} characters of A-Z a-z 0-9 - _ ."),
            ));
        }
        let metric = metric_tag(tag);
        if let Some(other) = self.0.iter().find(|t| metric_tag(t) == metric) {
            return Err(error_at(
                &[at, field],
                format!("tags `{other}` and `{tag}` would share the metric `routed_{metric}_total`; rename one"),
            ));
        }
        self.0.push(tag.to_string());
        Ok(self.0.len() - 1)
    }
}

impl Config {
    /// Validate and compile. By reference: the specification is dropped once, by the caller,
    /// not on every error path (module size).
    pub fn compile(&self) -> Result<Compiled, ConfigError> {
        let route_header = header_name("route_header", &self.route_header)?;
        if route_header.starts_with(':') || route_header == "host" {
            return Err(error_at(
                &["route_header"],
                format!("`{route_header}` cannot be a routing header; use a custom header such as `x-route-tag`"),
            ));
        }
        let claim_source = self.jwt.compile().map_err(|e| e.within("jwt"))?;
        if claim_source.header() == Some(route_header.as_str()) {
            return Err(fixed_at(
                &["jwt.payload_header"],
                "must differ from `route_header`",
            ));
        }
        let mut tags = Tags::default();
        let default_dest = match &self.default_tag {
            Some(t) => Some(tags.intern("", "default_tag", t)?),
            None => None,
        };
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, spec) in self.rules.iter().enumerate() {
            let at = indexed("rules", i);
            rules.push(compile_rule(
                spec,
                &at,
                &route_header,
                self.path_matching,
                &mut tags,
            )?);
        }
        Ok(Compiled {
            route_header,
            claim_source,
            rules,
            tags: tags.0,
            default_dest,
        })
    }
}

fn compile_rule(
    spec: &RuleSpec,
    at: &str,
    route_header: &str,
    paths: PathMatching,
    tags: &mut Tags,
) -> Result<Rule, ConfigError> {
    let request = compile_match(&spec.matches, route_header, paths)
        .map_err(|e| e.within("match").within(at))?;
    let action = match (&spec.tag, &spec.weights) {
        (Some(_), Some(_)) => {
            return Err(fixed_at(&[at], "give either `tag` or `weights`, not both"))
        }
        (None, None) => {
            return Err(fixed_at(
                &[at],
                "a rule needs a destination: `tag` or `weights`",
            ))
        }
        (Some(tag), None) => {
            for (field, given) in [
                (".hash_on", spec.hash_on.is_some()),
                (".fallback", spec.fallback.is_some()),
                (".salt", spec.salt.is_some()),
            ] {
                if given {
                    return Err(fixed_at(&[at, field], "only applies to a `weights` split"));
                }
            }
            Action::Tag(tags.intern(at, ".tag", tag)?)
        }
        (None, Some(weights)) => compile_split(spec, weights, at, route_header, tags)?,
    };
    let mut edits = compile_edits(spec.rewrite.as_ref(), &spec.request_headers, route_header)
        .map_err(|e| e.within(at))?;
    edits.paths = paths;
    Ok(Rule {
        name: spec.name.as_deref().unwrap_or(at).to_string(),
        request,
        action,
        edits,
    })
}

fn compile_match(
    m: &RequestMatchSpec,
    route_header: &str,
    paths: PathMatching,
) -> Result<RequestMatcher, ConfigError> {
    for (j, h) in m.headers.iter().enumerate() {
        if h.name.eq_ignore_ascii_case(route_header) {
            return Err(error_at(
                &[&indexed("headers", j), ".name"],
                format!("`{route_header}` is the routing header this filter owns; matching on it would let clients pick their destination"),
            ));
        }
    }
    m.compile_with(MatchOptions::without_consumers(
        paths,
        "consumers come from API keys, which this filter does not check (put the rule in policy)",
    ))
}

fn compile_split(
    spec: &RuleSpec,
    weights: &[WeightSpec],
    at: &str,
    route_header: &str,
    tags: &mut Tags,
) -> Result<Action, ConfigError> {
    if weights.is_empty() {
        return Err(fixed_at(&[at, ".weights"], "needs at least one entry"));
    }
    let mut ranges = Vec::with_capacity(weights.len());
    let mut end = 0u32;
    for (j, w) in weights.iter().enumerate() {
        let wat = indexed(&path(&[at, ".weights"]), j);
        let dest = tags.intern(&wat, ".tag", &w.tag)?;
        if ranges.iter().any(|(_, d)| *d == dest) {
            return Err(error_at(
                &[&wat, ".tag"],
                format!("tag `{}` appears twice in this split", w.tag),
            ));
        }
        let bp = basis_points(&w.percent).map_err(|r| error_at(&[&wat, ".percent"], r))?;
        end += bp;
        ranges.push((end, dest));
    }
    if end != hash::BUCKETS {
        let sum = format!("{}.{:02}", end / 100, end % 100);
        let sum = sum.trim_end_matches('0').trim_end_matches('.');
        return Err(error_at(
            &[at, ".weights"],
            format!("percentages add up to {sum}, they must add up to 100"),
        ));
    }
    let keys = spec.hash_on.as_deref().unwrap_or_default();
    let mut hash_on = Vec::with_capacity(keys.len());
    for (k, key) in keys.iter().enumerate() {
        let key = match key {
            HashKey::Header(name) => {
                let kat = indexed(&path(&[at, ".hash_on"]), k);
                let name = header_name(&path(&[&kat, ".header"]), name)?;
                if name == route_header {
                    return Err(fixed_at(
                        &[&kat, ".header"],
                        "cannot hash on the routing header this filter owns",
                    ));
                }
                HashKey::Header(name)
            }
            HashKey::Cookie(n) | HashKey::Query(n) | HashKey::Claim(n) if n.is_empty() => {
                let field = match key {
                    HashKey::Cookie(_) => ".cookie",
                    HashKey::Query(_) => ".query",
                    _ => ".claim",
                };
                let kat = indexed(&path(&[at, ".hash_on"]), k);
                return Err(fixed_at(&[&kat, field], "must not be empty"));
            }
            other => other.clone(),
        };
        hash_on.push(key);
    }
    let fallback = match &spec.fallback {
        None | Some(FallbackSpec::Random) => Fallback::Random,
        Some(FallbackSpec::Tag(_)) if hash_on.is_empty() => return Err(fixed_at(
            &[at, ".fallback"],
            "a fallback tag needs `hash_on` (without a key source every request would fall back)",
        )),
        Some(FallbackSpec::Tag(t)) => Fallback::Tag(tags.intern(at, ".fallback.tag", t)?),
    };
    Ok(Action::Split {
        weights: ranges,
        hash_on,
        fallback,
        salt: spec.salt.clone().unwrap_or_default(),
    })
}

/// A percentage (a JSON number's text: `-?int(.frac)?([eE][+-]?exp)?`, checked by the parser)
/// as basis points of [`hash::BUCKETS`], exactly: decimal digits shifted, no floating point.
#[inline(never)]
fn basis_points(text: &str) -> Result<u32, String> {
    let range = || out_of_range(text);
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], exponent(&text[i + 1..]).ok_or_else(range)?),
        None => (text, 0),
    };
    let negative = mantissa.starts_with('-');
    let unsigned = mantissa.trim_start_matches('-');
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all = [int, frac].concat();
    let digits = all.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    if negative {
        return Err(range());
    }
    // value = digits x 10^(exp - frac.len()); basis points = value x 100.
    let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
    let shift = exp.saturating_sub(frac_len).saturating_add(2);
    let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let bp: u64 = if shift >= 0 {
        if len.saturating_add(shift) > 6 {
            return Err(range());
        }
        let n = small_decimal(digits).ok_or_else(range)?;
        n * 10u64.pow(u32::try_from(shift).unwrap_or(0))
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        let keep = digits.len().saturating_sub(cut);
        if digits[keep..].bytes().any(|b| b != b'0') {
            return Err(format!(
                "{text} has more than two decimals (splits resolve to 0.01 %)"
            ));
        }
        if keep > 6 {
            return Err(range());
        }
        small_decimal(&digits[..keep]).unwrap_or(0)
    };
    if bp > u64::from(hash::BUCKETS) {
        return Err(range());
    }
    u32::try_from(bp).map_err(|_| range())
}

/// Why a percentage is refused (one copy for the five places that say it).
#[inline(never)]
fn out_of_range(text: &str) -> String {
    format!("{text} is not between 0 and 100")
}

/// A JSON number's exponent (`[+-]?digits`) as `i64`; `None` when it does not fit, as
/// `str::parse::<i64>` answers.
fn exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = i64::from(b - b'0');
        // Accumulated negatively for a negative exponent, so `i64::MIN` is read too.
        n = n.checked_mul(10).and_then(|n| {
            if negative {
                n.checked_sub(d)
            } else {
                n.checked_add(d)
            }
        })?;
    }
    Some(n)
}

/// Up to 6 decimal digits (the caller bounds the length); `None` for anything else.
fn small_decimal(digits: &str) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

fn compile_edits(
    rewrite: Option<&RewriteSpec>,
    headers: &HeaderEditsSpec,
    route_header: &str,
) -> Result<Edits, ConfigError> {
    let mut edits = Edits::default();
    if let Some(rw) = rewrite {
        if let Some(p) = &rw.path_prefix {
            for (field, v) in [("from", &p.from), ("to", &p.to)] {
                let ok = v.starts_with('/') && !v.chars().any(not_in_path);
                if !ok {
                    return Err(error_at(
                        &["rewrite.path_prefix.", field],
                        format!("`{v}` must start with `/` and contain no whitespace, `?` or `#`"),
                    ));
                }
            }
            edits.path_prefix = Some((p.from.clone(), p.to.clone()));
        }
        if let Some(h) = &rw.host {
            let ok = !h.is_empty()
                && h.bytes().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, b'-' | b'.' | b':' | b'[' | b']' | b'_')
                });
            if !ok {
                return Err(error_at(
                    &["rewrite.host"],
                    format!("`{h}` is not a host or host:port"),
                ));
            }
            edits.host = Some(h.clone());
        }
    }
    for (j, name) in headers.remove.iter().enumerate() {
        let at = indexed("request_headers.remove", j);
        edits.remove.push(edit_name(&at, name, route_header)?);
    }
    compile_sets(
        "request_headers.set.",
        &headers.set,
        &mut edits.set,
        route_header,
    )?;
    compile_sets(
        "request_headers.add.",
        &headers.add,
        &mut edits.add,
        route_header,
    )?;
    Ok(edits)
}

/// `set` or `add` (`kind` is the path before the header name): checked, names lowercased.
/// One copy for both (a loop over the two was unrolled into two).
#[inline(never)]
fn compile_sets(
    kind: &str,
    map: &HeaderMap,
    out: &mut Vec<(String, String)>,
    route_header: &str,
) -> Result<(), ConfigError> {
    for (name, value) in &map.0 {
        let at = path(&[kind, name]);
        let lower = edit_name(&at, name, route_header)?;
        if value.bytes().any(|c| matches!(c, b'\r' | b'\n' | b'\0')) {
            return Err(fixed_at(
                &[&at],
                "header values must not contain CR, LF or NUL",
            ));
        }
        out.push((lower, value.clone()));
    }
    Ok(())
}

/// A character a path prefix rewrite refuses.
#[inline(never)]
fn not_in_path(c: char) -> bool {
    c.is_ascii_control() || c.is_whitespace() || c == '?' || c == '#'
}

/// A header a rule edits, lowercased: not a pseudo-header, `host` or the routing header.
fn edit_name(at: &str, name: &str, route_header: &str) -> Result<String, ConfigError> {
    let name = header_name(at, name)?;
    if name.starts_with(':') || name == "host" {
        return Err(fixed_at(
            &[at],
            "use `rewrite` for the path and host; other pseudo-headers cannot be edited",
        ));
    }
    if name == route_header {
        return Err(fixed_at(
            &[at],
            "the routing header is set by the rule's `tag`/`weights`",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentages_are_read_exactly() {
        for (text, bp) in [
            ("0", 0),
            ("-0", 0),
            ("0.0", 0),
            ("10", 1000),
            ("33.33", 3333),
            ("12.340", 1234),
            ("100", 10000),
            ("100.00", 10000),
            ("1e1", 1000),
            ("2.5E+1", 2500),
            ("1234e-2", 1234),
            ("0.01", 1),
        ] {
            assert_eq!(super::basis_points(text), Ok(bp), "{text}");
        }
        for (text, why) in [
            ("-1", "between"),
            ("100.01", "between"),
            ("1e3", "between"),
            ("1e999999999999", "between"),
            ("10.125", "two decimals"),
            ("0.001", "two decimals"),
            ("1e-3", "two decimals"),
            ("99999999999999999999", "between"),
        ] {
            let e = super::basis_points(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    /// The parser before `exponent` and `small_decimal` (with `str::parse`): the reference.
    fn reference(text: &str) -> Result<u32, String> {
        let range = || format!("{text} is not between 0 and 100");
        let (mantissa, exp) = match text.find(['e', 'E']) {
            Some(i) => (
                &text[..i],
                text[i + 1..].parse::<i64>().map_err(|_| range())?,
            ),
            None => (text, 0),
        };
        let negative = mantissa.starts_with('-');
        let unsigned = mantissa.trim_start_matches('-');
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all = format!("{int}{frac}");
        let digits = all.trim_start_matches('0');
        if digits.is_empty() {
            return Ok(0);
        }
        if negative {
            return Err(range());
        }
        let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
        let shift = exp.saturating_sub(frac_len).saturating_add(2);
        let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
        let bp: u64 = if shift >= 0 {
            if len.saturating_add(shift) > 6 {
                return Err(range());
            }
            let n: u64 = digits.parse().map_err(|_| range())?;
            n * 10u64.pow(u32::try_from(shift).unwrap_or(0))
        } else {
            let cut = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
            let keep = digits.len().saturating_sub(cut);
            if digits[keep..].bytes().any(|b| b != b'0') {
                return Err(format!(
                    "{text} has more than two decimals (splits resolve to 0.01 %)"
                ));
            }
            if keep > 6 {
                return Err(range());
            }
            digits[..keep].parse().unwrap_or(0)
        };
        if bp > u64::from(super::hash::BUCKETS) {
            return Err(range());
        }
        u32::try_from(bp).map_err(|_| range())
    }

    /// Every JSON number over a small alphabet of parts, and exponents at the edges of `i64`:
    /// the same answer (value or message) as the `str::parse` version.
    #[test]
    fn percentages_match_the_parse_based_reader() {
        let ints = [
            "", "0", "-0", "1", "-1", "00", "10", "33", "100", "101", "999999", "1234567",
        ];
        let fracs = ["", ".0", ".5", ".01", ".001", ".50", ".125", ".0000"];
        let exps = [
            "",
            "e0",
            "E1",
            "e+2",
            "e-1",
            "e-2",
            "e-3",
            "e3",
            "e7",
            "e19",
            "e9223372036854775807",
            "e-9223372036854775808",
            "e9223372036854775808",
            "e-9223372036854775809",
            "e99999999999999999999",
            "e-99999999999999999999",
            "e+",
            "e-",
            "e",
        ];
        let mut n = 0;
        for i in ints {
            for f in fracs {
                for e in exps {
                    let text = format!("{i}{f}{e}");
                    assert_eq!(super::basis_points(&text), reference(&text), "{text}");
                    n += 1;
                }
            }
        }
        assert_eq!(n, 12 * 8 * 19);
        for e in [
            "5",
            "-5",
            "+5",
            "",
            "+",
            "-",
            "1x",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "007",
        ] {
            assert_eq!(super::exponent(e), e.parse::<i64>().ok(), "{e}");
        }
    }

    /// `HeaderMap` lists an object's members in the order a `BTreeMap<String, String>` (what
    /// it replaced) iterates them, and refuses what it refuses.
    #[test]
    fn header_maps_read_like_a_btree_map() {
        use sdk_ext::config::from_str;
        use std::collections::BTreeMap;
        for doc in [
            r#"{}"#,
            r#"{"b": "1", "a": "2", "B": "3", "x-a": "", "aa": "4", "a-": "5", "é": "6"}"#,
            r#"{"z": "1", "y": "2", "x": "3", "w": "4"}"#,
        ] {
            let ours: super::HeaderMap = from_str(doc).unwrap();
            let map: BTreeMap<String, String> = from_str(doc).unwrap();
            assert_eq!(ours.0, map.into_iter().collect::<Vec<_>>(), "{doc}");
        }
        for doc in [r#"{"a": "1", "b": 2}"#, r#"[]"#, r#"{"a": "1", "a": "2"}"#] {
            let ours = from_str::<super::HeaderMap>(doc).unwrap_err();
            let map = from_str::<BTreeMap<String, String>>(doc).unwrap_err();
            assert_eq!(ours, map, "{doc}");
        }
    }
}
