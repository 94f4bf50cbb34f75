//! The request as a filter sees it.
//!
//! The glue fetches the whole header map with **one** host call and hands it over; properties
//! (source address, route name, peer principal, ...) are fetched only when a filter asks, through
//! a [`PropertySource`], and decoded into Rust types here (the host returns raw bytes: strings
//! as-is, integers as little-endian 64-bit, booleans as one byte).

use crate::filter::HeaderOps;
use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

/// Where properties come from: the proxy in production, a map in tests.
pub trait PropertySource {
    /// Raw bytes of the property at `path` (e.g. `["source", "address"]`), if set.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
}

/// A source with no properties at all.
pub struct NoProperties;

impl PropertySource for NoProperties {
    fn property(&self, _path: &[&str]) -> Option<Vec<u8>> {
        None
    }
}

/// Bytes from the host (or a decoder) as text: the bytes themselves when they are UTF-8
/// (nearly always; no copy, and core's validation runs a word at a time), else each invalid
/// sequence replaced by U+FFFD, as `String::from_utf8_lossy` does.
#[inline]
pub fn text_lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| replace_invalid(e.as_bytes()))
}

/// `bytes` (not UTF-8) with each invalid sequence replaced by U+FFFD, as
/// `String::from_utf8_lossy` replaces them, found with `from_utf8`'s own error (where the valid
/// prefix ends, how long the invalid sequence is): the lossy decoder's iterator was ~1 KB more
/// of every module for V8 to compile at each push (bench/README.md, "Module size and cold
/// start"). Linear: each byte is validated at most twice.
#[cold]
#[inline(never)]
fn replace_invalid(mut rest: &[u8]) -> String {
    let mut out = String::with_capacity(rest.len() + 2);
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = after
                    .get(e.error_len().unwrap_or(after.len())..)
                    .unwrap_or_default();
            }
        }
    }
}

/// Decode a string property.
pub fn prop_string(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes).ok()
}

/// Decode an integer property (little-endian 64-bit).
pub fn prop_i64(bytes: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

/// Decode a boolean property (one byte, non-zero is true).
pub fn prop_bool(bytes: &[u8]) -> Option<bool> {
    bytes.first().map(|b| *b != 0)
}

/// One HTTP request's headers plus on-demand properties.
///
/// Header names are lowercase (as Envoy and HTTP/2 give them); pseudo-headers `:method`,
/// `:path`, `:authority` and `:scheme` carry the request line.
pub struct RequestView {
    headers: Vec<(String, String)>,
    /// What the host said about this request: a view with edits applied keeps it.
    host: HostFacts,
    /// What is computed from the headers: a view with edits applied starts afresh.
    derived: FromHeaders,
}

/// A view's facts from the host rather than its headers, kept (cloned) by a view with edits
/// applied ([`RequestView::with_ops`]): a field here is carried over, never recomputed.
#[derive(Clone)]
struct HostFacts {
    /// Shared so a view with edits applied reads the same host.
    props: Rc<dyn PropertySource>,
    source: OnceCell<Option<SocketAddr>>,
}

/// A view's caches of what its headers say, computed on first use and started afresh by a
/// view with edits applied (the edits may change them, e.g. a rewritten `:path`): a field here
/// is never carried over.
#[derive(Default)]
struct FromHeaders {
    /// Decoded query parameters.
    query: OnceCell<Vec<(String, String)>>,
    /// The normalized path when it differs from [`RequestView::path`] (`None`: it is already
    /// normal), shared by every matcher of every filter.
    normalized: OnceCell<Option<String>>,
    /// Where [`RequestView::path`] ends in `:path` (at `?`, `#` or the end): every path
    /// matcher of every rule asks (50 rules of the bench policy, per request).
    path_end: OnceCell<usize>,
}

impl std::fmt::Debug for RequestView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestView")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl RequestView {
    /// A view over `headers` (names must already be lowercase) and `props`.
    pub fn new(headers: Vec<(String, String)>, props: Box<dyn PropertySource>) -> Self {
        Self::from_parts(
            headers,
            HostFacts {
                props: Rc::from(props),
                source: OnceCell::new(),
            },
        )
    }

    /// This request as the next filter sees it after `ops` (removals, then sets, then adds, as
    /// the glue applies them): the suite shows each member the request as the members before it
    /// left it, as separate filters would see it. What the host said is kept, not re-read;
    /// what the headers say is computed again on use.
    pub fn with_ops(&self, ops: &HeaderOps) -> RequestView {
        let mut headers = self.headers.clone();
        apply_ops(&mut headers, ops);
        Self::from_parts(headers, self.host.clone())
    }

    /// The one constructor: every view starts with nothing computed from its headers.
    fn from_parts(headers: Vec<(String, String)>, host: HostFacts) -> Self {
        Self {
            headers,
            host,
            derived: FromHeaders::default(),
        }
    }

    /// All headers, in the order the proxy gave them.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// Every value of header `name` (lowercase).
    pub fn header_values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `:method`, or `""` if missing.
    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or("")
    }

    /// `:path` as sent: path, query and all.
    pub fn raw_path(&self) -> &str {
        self.header(":path").unwrap_or("")
    }

    /// The path without query string or fragment, as sent (not decoded, not normalised).
    pub fn path(&self) -> &str {
        let raw = self.raw_path();
        let end = *self.derived.path_end.get_or_init(|| {
            raw.bytes()
                .position(|b| b == b'?' || b == b'#')
                .unwrap_or(raw.len())
        });
        raw.get(..end).unwrap_or(raw)
    }

    /// [`RequestView::path`] normalized ([`crate::path::normalize`]: unreserved escapes
    /// decoded, dot segments removed, slashes merged), so `//admin`, `/./admin`, `/%61dmin`
    /// and `/x/../admin` are all `/admin`. Computed once per request, on first use; an
    /// already-normal path costs one scan and no allocation.
    pub fn normalized_path(&self) -> &str {
        let normalized =
            self.derived
                .normalized
                .get_or_init(|| match crate::path::normalize(self.path()) {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(s) => Some(s),
                });
        normalized.as_deref().unwrap_or_else(|| self.path())
    }

    /// The path path matchers see: normalized unless `mode` asks for the raw path.
    pub fn match_path(&self, mode: crate::matcher::PathMatching) -> &str {
        match mode {
            crate::matcher::PathMatching::Normalized => self.normalized_path(),
            crate::matcher::PathMatching::Raw => self.path(),
        }
    }

    /// The raw query string (after `?`, before `#`), if any.
    pub fn query_string(&self) -> Option<&str> {
        let raw = self.raw_path();
        let start = raw.find('?')? + 1;
        let rest = &raw[start..];
        Some(&rest[..rest.find('#').unwrap_or(rest.len())])
    }

    /// Decoded query parameters (`+` and percent escapes decoded; invalid UTF-8 replaced).
    pub fn query_params(&self) -> &[(String, String)] {
        self.derived.query.get_or_init(|| {
            self.query_string()
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Every decoded value of query parameter `name`.
    pub fn query_values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.query_params()
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `:authority` (or `host`) without the port.
    pub fn host(&self) -> &str {
        let authority = self
            .header(":authority")
            .or_else(|| self.header("host"))
            .unwrap_or("");
        strip_port(authority)
    }

    /// `x-request-id` (Envoy sets it on every request unless told not to).
    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// The downstream peer address (`source.address`).
    pub fn source_addr(&self) -> Option<SocketAddr> {
        *self.host.source.get_or_init(|| {
            let text = prop_string(self.host.props.property(&["source", "address"])?)?;
            text.parse::<SocketAddr>()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0)))
        })
    }

    /// The downstream peer IP.
    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_addr().map(|a| a.ip())
    }

    /// The downstream peer port (`source.port`).
    pub fn source_port(&self) -> Option<u16> {
        match self.source_addr() {
            Some(a) if a.port() != 0 => Some(a.port()),
            _ => {
                let raw = self.host.props.property(&["source", "port"])?;
                prop_i64(&raw).and_then(|p| u16::try_from(p).ok())
            }
        }
    }

    /// The name of the route Envoy selected (`xds.route_name`, falling back to `route_name`).
    pub fn route_name(&self) -> Option<String> {
        self.string_property(&["xds", "route_name"])
            .or_else(|| self.string_property(&["route_name"]))
            .filter(|s| !s.is_empty())
    }

    /// The plugin's name as configured in Envoy (`plugin_name`).
    pub fn plugin_name(&self) -> Option<String> {
        self.string_property(&["plugin_name"])
    }

    /// The mTLS peer's identity: its URI SAN (an Istio SPIFFE id such as
    /// `spiffe://cluster.local/ns/default/sa/web`), or `None` without mTLS.
    pub fn peer_principal(&self) -> Option<String> {
        self.string_property(&["connection", "uri_san_peer_certificate"])
            .or_else(|| self.string_property(&["connection", "subject_peer_certificate"]))
            .filter(|s| !s.is_empty())
    }

    /// Any string property, for what the typed accessors do not cover.
    pub fn string_property(&self, path: &[&str]) -> Option<String> {
        prop_string(self.host.props.property(path)?)
    }

    /// Any raw property.
    pub fn raw_property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.host.props.property(path)
    }
}

/// Apply `ops` to a header list as Envoy applies the glue's calls: `remove` drops every value,
/// `set` replaces every value with one (in the first one's place, so a pseudo-header keeps its
/// position), `add` appends. Names are compared lowercase, as the host stores them.
pub fn apply_ops(headers: &mut Vec<(String, String)>, ops: &HeaderOps) {
    for name in &ops.remove {
        let name = name.to_ascii_lowercase();
        headers.retain(|(n, _)| *n != name);
    }
    for (name, value) in &ops.set {
        let name = name.to_ascii_lowercase();
        match headers.iter().position(|(n, _)| *n == name) {
            Some(first) => {
                if let Some(slot) = headers.get_mut(first) {
                    slot.1.clone_from(value);
                }
                let mut i = 0usize;
                headers.retain(|(n, _)| {
                    let keep = i <= first || *n != name;
                    i += 1;
                    keep
                });
            }
            None => headers.push((name, value.clone())),
        }
    }
    for (name, value) in &ops.add {
        headers.push((name.to_ascii_lowercase(), value.clone()));
    }
}

/// The header changes that turn `before` into `after`, for the header names in `touched` (the
/// only ones that can differ): `remove` for a name that is gone, `set` + `add`s for a name whose
/// values changed. Applied by the glue (removals, sets, adds) they give `after`'s values
/// whatever order the edits behind them were made in, which a plain concatenation of several
/// filters' [`HeaderOps`] does not (a later filter's removal would run before an earlier
/// filter's set). Cost: one pass over the headers per touched name.
pub fn diff_headers(
    before: &[(String, String)],
    after: &[(String, String)],
    touched: &[String],
) -> HeaderOps {
    let values = |list: &[(String, String)], name: &str| -> Vec<String> {
        list.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut ops = HeaderOps::default();
    for (i, name) in touched.iter().enumerate() {
        if touched[..i].contains(name) {
            continue;
        }
        let (old, new) = (values(before, name), values(after, name));
        if old == new {
            continue;
        }
        let mut new = new.into_iter();
        match new.next() {
            None => ops.remove(name.as_str()),
            Some(first) => {
                ops.set(name.as_str(), first);
                for v in new {
                    ops.add(name.as_str(), v);
                }
            }
        }
    }
    ops
}

/// `example.com:8080` -> `example.com`, `[::1]:80` -> `[::1]`, `example.com` unchanged.
pub fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rfind(':') {
        Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &authority[..i],
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::RequestBuilder;

    #[test]
    fn text_lossy_is_from_utf8_lossy() {
        for bytes in [
            &b"plain"[..],
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"latin-1 \xe9t\xe9",
            b"\xff\xfe",
            b"cut \xe2\x82",
            b"",
        ] {
            assert_eq!(
                super::text_lossy(bytes.to_vec()),
                String::from_utf8_lossy(bytes),
                "{bytes:?}"
            );
        }
        // Every sequence of up to three pieces among valid characters, lone continuation
        // bytes, truncated and overlong sequences, surrogates and bytes that never occur.
        let pieces: [&[u8]; 14] = [
            b"a",
            "\u{e9}".as_bytes(),
            "\u{20ac}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"\x80",
            b"\xbf",
            b"\xc3",
            b"\xe2\x82",
            b"\xf0\x9f\x98",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xfe",
            b"\xff",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let bytes = [a, b, c].concat();
                    assert_eq!(
                        super::text_lossy(bytes.clone()),
                        String::from_utf8_lossy(&bytes),
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn request_line_from_pseudo_headers() {
        let req = RequestBuilder::get("/a/b?x=1&y=two+words&x=%2F#frag")
            .header(":authority", "api.example.com:8443")
            .build();
        assert_eq!(req.method(), "GET");
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query_string(), Some("x=1&y=two+words&x=%2F"));
        assert_eq!(req.query_values("x").collect::<Vec<_>>(), ["1", "/"]);
        assert_eq!(req.query_values("y").next(), Some("two words"));
        assert_eq!(req.host(), "api.example.com");
    }

    #[test]
    fn normalized_path_is_computed_once_and_borrowed_when_normal() {
        let req = RequestBuilder::get("/x/..//%61dmin?next=/../y").build();
        assert_eq!(req.path(), "/x/..//%61dmin");
        assert_eq!(req.normalized_path(), "/admin");
        let first = req.normalized_path().as_ptr();
        assert_eq!(
            req.normalized_path().as_ptr(),
            first,
            "cached, not recomputed"
        );
        let normal = RequestBuilder::get("/api/v1?q=1").build();
        assert_eq!(
            normal.normalized_path().as_ptr(),
            normal.path().as_ptr(),
            "a normal path is the header's own bytes"
        );
    }

    #[test]
    fn headers_are_case_insensitive_via_lowercase_names() {
        let req = RequestBuilder::get("/")
            .header("X-Multi", "a")
            .header("x-multi", "b")
            .build();
        assert_eq!(req.header("x-multi"), Some("a"));
        assert_eq!(req.header_values("x-multi").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(req.header("missing"), None);
    }

    #[test]
    fn typed_properties() {
        let req = RequestBuilder::get("/")
            .source("[2001:db8::7]:4444")
            .property(&["xds", "route_name"], b"r1")
            .property(&["plugin_name"], b"policy")
            .property(
                &["connection", "uri_san_peer_certificate"],
                b"spiffe://td/ns/a/sa/b",
            )
            .header("x-request-id", "abc")
            .build();
        assert_eq!(req.source_ip().unwrap().to_string(), "2001:db8::7");
        assert_eq!(req.source_port(), Some(4444));
        assert_eq!(req.route_name().as_deref(), Some("r1"));
        assert_eq!(req.plugin_name().as_deref(), Some("policy"));
        assert_eq!(
            req.peer_principal().as_deref(),
            Some("spiffe://td/ns/a/sa/b")
        );
        assert_eq!(req.request_id(), Some("abc"));
    }

    #[test]
    fn port_falls_back_to_integer_property() {
        let req = RequestBuilder::get("/")
            .property(&["source", "address"], b"10.1.2.3")
            .property(&["source", "port"], &5555i64.to_le_bytes())
            .build();
        assert_eq!(req.source_ip().unwrap().to_string(), "10.1.2.3");
        assert_eq!(req.source_port(), Some(5555));
    }

    #[test]
    fn missing_everything_is_not_an_error() {
        let req = RequestBuilder::default().build();
        assert_eq!(req.method(), "");
        assert_eq!(req.path(), "");
        assert_eq!(req.query_string(), None);
        assert!(req.query_params().is_empty());
        assert_eq!(req.source_addr(), None);
        assert_eq!(req.peer_principal(), None);
        assert_eq!(req.host(), "");
    }

    #[test]
    fn edits_apply_like_the_host_and_the_net_change_reproduces_them() {
        use crate::filter::HeaderOps;
        let req = RequestBuilder::get("/a?k=1")
            .header("x-multi", "1")
            .header("x-multi", "2")
            .header("x-gone", "g")
            .build();
        let mut first = HeaderOps::default();
        first.set(":path", "/b");
        first.set("X-Multi", "3");
        first.add("x-new", "n");
        let mid = req.with_ops(&first);
        assert_eq!(mid.raw_path(), "/b");
        assert_eq!(mid.header_values("x-multi").collect::<Vec<_>>(), ["3"]);
        assert_eq!(
            mid.headers()[1].0,
            ":path",
            "a set keeps the header's place"
        );
        let mut second = HeaderOps::default();
        second.remove("x-new");
        second.remove("x-gone");
        second.add("x-multi", "4");
        let fin = mid.with_ops(&second);
        let touched: Vec<String> = first
            .touched_names()
            .chain(second.touched_names())
            .collect();
        let net = super::diff_headers(req.headers(), fin.headers(), &touched);
        let mut replay = req.headers().to_vec();
        super::apply_ops(&mut replay, &net);
        let sorted = |mut v: Vec<(String, String)>| {
            v.sort();
            v
        };
        assert_eq!(sorted(replay), sorted(fin.headers().to_vec()));
        assert_eq!(
            net.remove,
            ["x-gone"],
            "x-new never reached the host: nothing to do"
        );
    }

    #[test]
    fn a_view_with_edits_keeps_what_the_host_said_and_recomputes_what_the_headers_say() {
        use super::{PropertySource, RequestView};
        use crate::filter::HeaderOps;
        use std::cell::Cell;
        use std::rc::Rc;
        struct Counting(Rc<Cell<u32>>);
        impl PropertySource for Counting {
            fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
                self.0.set(self.0.get() + 1);
                (path == ["source", "address"]).then(|| b"10.0.0.1:5000".to_vec())
            }
        }
        let reads = Rc::new(Cell::new(0));
        let req = RequestView::new(
            vec![(":path".into(), "/a/../b?k=1".into())],
            Box::new(Counting(Rc::clone(&reads))),
        );
        let source = req.source_addr();
        assert_eq!(source, Some("10.0.0.1:5000".parse().unwrap()));
        assert_eq!(req.normalized_path(), "/b");
        assert_eq!(req.query_values("k").collect::<Vec<_>>(), ["1"]);
        assert_eq!(reads.get(), 1);

        let mut ops = HeaderOps::default();
        ops.set(":path", "/c/./d?k=2");
        let next = req.with_ops(&ops);
        assert_eq!(next.normalized_path(), "/c/d");
        assert_eq!(next.query_values("k").collect::<Vec<_>>(), ["2"]);
        assert_eq!(next.source_addr(), source);
        assert_eq!(reads.get(), 1, "the source address is kept, not read again");
    }

    #[test]
    fn strip_port_cases() {
        use super::strip_port;
        assert_eq!(strip_port("a.com:80"), "a.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("a.com"), "a.com");
        assert_eq!(strip_port("a.com:x"), "a.com:x");
    }

    #[test]
    fn invalid_percent_escapes_do_not_fail() {
        let req = RequestBuilder::get("/?a=%zz&b=%ff%fe").build();
        assert_eq!(req.query_values("a").next(), Some("%zz"));
        assert!(req.query_values("b").next().is_some());
    }
}
