//! What Envoy's HTTP connection manager does to a request before the first filter sees it, for
//! the configuration every Envoy rendered here uses (`envoy_harness::render`): HTTP/1.1 codec,
//! `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT`,
//! `use_remote_address: true`, `preserve_external_request_id: true`.
//!
//! It is a model, not Envoy: it turns a corpus row (raw request line, headers, body) into the
//! header map and body a filter receives, or into the answer Envoy gives before any filter
//! runs. The cross-runtime test compares its results with a real Envoy row by row, so where the
//! model is wrong the test names the row.

use crate::host::Request;

/// Envoy answered before any filter ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontReply {
    pub status: u16,
    pub reason: &'static str,
}

const KNOWN_METHODS: &[&str] = &[
    "DELETE",
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "COPY",
    "LOCK",
    "MKCOL",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "SEARCH",
    "UNLOCK",
    "BIND",
    "REBIND",
    "UNBIND",
    "ACL",
    "REPORT",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
    "M-SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PATCH",
    "PURGE",
    "MKCALENDAR",
    "LINK",
    "UNLINK",
    "SOURCE",
];

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn reject(reason: &'static str) -> FrontReply {
    FrontReply {
        status: 400,
        reason,
    }
}

/// Percent-decode the unreserved characters (`A-Za-z0-9-._~`) of a path and upper-case the hex
/// of the other escapes: the part of Chromium's URL path canonicalization (Envoy's
/// `normalize_path`) that changes bytes. Dot segments are resolved separately.
fn canonical_escapes(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (h(b[i + 1]), h(b[i + 2])) {
                let c = (hi * 16 + lo) as u8;
                if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                    out.push(c as char);
                } else {
                    out.push('%');
                    out.push((b[i + 1] as char).to_ascii_uppercase());
                    out.push((b[i + 2] as char).to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        let c = b[i];
        // Chromium escapes these in paths; everything else printable is kept.
        if c <= 0x20 || c >= 0x7f || b"\"<>`{}".contains(&c) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(c as char);
        }
        i += 1;
    }
    out
}

/// RFC 3986 section 5.2.4 (remove dot segments), as Envoy's normalization does.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate().skip(1) {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut prev = false;
    for c in path.chars() {
        if c == '/' && prev {
            continue;
        }
        prev = c == '/';
        out.push(c);
    }
    out
}

/// Envoy's `Http::Utility::isValidRefererValue` (with `http_allow_partial_urls_in_referer`, on
/// by default): an absolute URL that `http_parser_parse_url` accepts, without fragment or
/// userinfo; else a relative reference whose first segment has no `:` and whose other bytes are
/// RFC 3986 query characters.
fn valid_referer(value: &str) -> bool {
    if let Some(url) = parse_url(value.as_bytes()) {
        return !url.fragment && !url.userinfo;
    }
    let mut seen_slash = false;
    for c in value.bytes() {
        match c {
            b':' if !seen_slash => return false,
            b':' => {}
            b'/' => seen_slash = true,
            c if c.is_ascii_alphanumeric() || b"?@-._~%!$&'()*+,;=".contains(&c) => {}
            _ => return false,
        }
    }
    true
}

/// What Envoy's `Utility::Url::initialize` needs from `http_parser_parse_url` (nodejs
/// http-parser built with `HTTP_PARSER_STRICT`, not CONNECT): the URL parses and has a scheme or
/// a host. Checked against Envoy 1.40 with every Referer of the dev corpora and the edge cases
/// of the unit test below (a `_` in a host name is refused: the strict build).
struct ParsedUrl {
    fragment: bool,
    userinfo: bool,
}

fn parse_url(buf: &[u8]) -> Option<ParsedUrl> {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        Start,
        Schema,
        SchemaSlash,
        SchemaSlashSlash,
        ServerStart,
        Server,
        ServerWithAt,
        Path,
        QueryStart,
        Query,
        FragmentStart,
        Fragment,
    }
    // http-parser's IS_URL_CHAR in Envoy's strict build: visible ASCII but `#` and `?`.
    let url_char = |c: u8| (0x21..0x7f).contains(&c) && c != b'#' && c != b'?';
    let mark = |c: u8| b"-_.!~*'()".contains(&c);
    let userinfo_char = |c: u8| c.is_ascii_alphanumeric() || mark(c) || b"%;:&=+$,".contains(&c);
    if buf.is_empty() {
        return None;
    }
    let (mut schema, mut host, mut fragment) = (false, None::<(usize, usize)>, false);
    let mut found_at = false;
    let mut s = S::Start;
    for (i, &c) in buf.iter().enumerate() {
        s = match s {
            S::Start if c == b'/' || c == b'*' => S::Path,
            S::Start if c.is_ascii_alphabetic() => S::Schema,
            S::Schema if c.is_ascii_alphabetic() => S::Schema,
            S::Schema if c == b':' => S::SchemaSlash,
            S::SchemaSlash if c == b'/' => S::SchemaSlashSlash,
            S::SchemaSlashSlash if c == b'/' => S::ServerStart,
            S::ServerWithAt if c == b'@' => return None,
            S::ServerStart | S::Server | S::ServerWithAt => match c {
                b'/' => S::Path,
                b'?' => S::QueryStart,
                b'@' => S::ServerWithAt,
                c if userinfo_char(c) || c == b'[' || c == b']' => S::Server,
                _ => return None,
            },
            S::Path if url_char(c) => S::Path,
            S::Path if c == b'?' => S::QueryStart,
            S::Path if c == b'#' => S::FragmentStart,
            S::QueryStart | S::Query if url_char(c) || c == b'?' => S::Query,
            S::QueryStart | S::Query if c == b'#' => S::FragmentStart,
            S::FragmentStart if url_char(c) || c == b'?' => S::Fragment,
            S::FragmentStart if c == b'#' => S::FragmentStart,
            S::Fragment if url_char(c) || c == b'?' || c == b'#' => S::Fragment,
            _ => return None,
        };
        match s {
            S::Schema => schema = true,
            S::Server | S::ServerWithAt => {
                found_at |= s == S::ServerWithAt;
                host = Some(host.map_or((i, i + 1), |(start, _)| (start, i + 1)));
            }
            S::Fragment => fragment = true,
            _ => {}
        }
    }
    if schema && host.is_none() {
        return None;
    }
    let mut userinfo = false;
    if let Some((start, end)) = host {
        userinfo = parse_host(&buf[start..end], found_at)?;
    }
    if !schema && host.is_none() {
        return None;
    }
    Some(ParsedUrl { fragment, userinfo })
}

/// http-parser's `http_parse_host`: `[userinfo@]host[:port]` with a host name or a bracketed
/// IPv6 address and a port up to 65535. Returns whether there was userinfo.
fn parse_host(buf: &[u8], found_at: bool) -> Option<bool> {
    #[derive(Clone, Copy, PartialEq)]
    enum H {
        UserinfoStart,
        Userinfo,
        HostStart,
        Host,
        V6Start,
        V6,
        V6End,
        V6ZoneStart,
        V6Zone,
        PortStart,
        Port,
    }
    let host_char = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
    let userinfo_char = |c: u8| c.is_ascii_alphanumeric() || b"-_.!~*'()%;:&=+$,".contains(&c);
    let mut s = if found_at {
        H::UserinfoStart
    } else {
        H::HostStart
    };
    let mut userinfo = false;
    let mut port: u32 = 0;
    for &c in buf {
        s = match s {
            H::Userinfo | H::UserinfoStart if c == b'@' => H::HostStart,
            H::Userinfo | H::UserinfoStart if userinfo_char(c) => H::Userinfo,
            H::HostStart if c == b'[' => H::V6Start,
            H::HostStart if host_char(c) => H::Host,
            H::Host if host_char(c) => H::Host,
            H::Host | H::V6End if c == b':' => H::PortStart,
            H::V6 if c == b']' => H::V6End,
            H::V6 | H::V6Start if c.is_ascii_hexdigit() || c == b':' || c == b'.' => H::V6,
            H::V6 if c == b'%' => H::V6ZoneStart,
            H::V6Zone if c == b']' => H::V6End,
            H::V6Zone | H::V6ZoneStart if c.is_ascii_alphanumeric() || b"%.-_~".contains(&c) => {
                H::V6Zone
            }
            H::Port | H::PortStart if c.is_ascii_digit() => {
                port = port.saturating_mul(10).saturating_add(u32::from(c - b'0'));
                H::Port
            }
            _ => return None,
        };
        userinfo |= s == H::Userinfo;
    }
    match s {
        H::HostStart
        | H::V6Start
        | H::V6
        | H::V6ZoneStart
        | H::V6Zone
        | H::PortStart
        | H::Userinfo
        | H::UserinfoStart => None,
        _ if port > 0xffff => None,
        _ => Some(userinfo),
    }
}

/// De-chunk a `Transfer-Encoding: chunked` body; `None` when it is malformed.
fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

/// The filter's view of a raw request (`method`, request-target `uri`, `version`, headers in
/// order, body), or Envoy's own answer.
pub fn filter_input(
    method: &str,
    uri: &str,
    version: &str,
    headers: &[(String, String)],
    body: &[u8],
    request_index: usize,
) -> Result<Request, FrontReply> {
    let version = if version.is_empty() {
        "HTTP/1.1"
    } else {
        version
    };
    if version == "HTTP/1.0" {
        // ENVOY: HTTP/1.0 is refused unless `accept_http_10` is set (not in the rendered config).
        return Err(FrontReply {
            status: 426,
            reason: "HTTP/1.0 not accepted",
        });
    }
    if version != "HTTP/1.1" {
        return Err(reject("unsupported HTTP version"));
    }
    // ENVOY's HTTP/1 codec knows a fixed list of methods (http-parser's); others are refused.
    if !KNOWN_METHODS.contains(&method) {
        return Err(reject("unknown method"));
    }
    let mut map: Vec<(String, Vec<u8>)> = Vec::new();
    let mut authority: Option<String> = None;
    let mut chunked = false;
    let mut has_length = false;
    // ENVOY's codec ends a header line at a bare CR too: what follows it is the next header
    // line (a response-splitting attempt never reaches the filter inside one value).
    let mut expanded: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let mut parts = value.split('\r');
        expanded.push((name.clone(), parts.next().unwrap_or_default().to_string()));
        for line in parts {
            match line.split_once(':') {
                Some((n, v)) => expanded.push((n.to_string(), v.to_string())),
                None => return Err(reject("invalid header line")),
            }
        }
    }
    for (name, value) in &expanded {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(reject("invalid header name"));
        }
        if value
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t' && b != b'\r') || b == 0x7f)
        {
            return Err(reject("invalid header value"));
        }
        let lname = name.to_ascii_lowercase();
        let value = value.trim_matches(|c| c == ' ' || c == '\t').to_string();
        match lname.as_str() {
            "host" => {
                if authority.is_none() {
                    authority = Some(value);
                }
                continue;
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(FrontReply {
                        status: 501,
                        reason: "unsupported transfer encoding",
                    });
                }
                chunked = true;
                continue;
            }
            "content-length" => {
                has_length = true;
                continue;
            }
            // ENVOY's connection manager drops a Referer that is not a URI reference
            // (`Http::Utility::isValidRefererValue`): the filter never sees it.
            "referer" if !valid_referer(&value) => continue,
            // Hop-by-hop headers the codec consumes.
            "connection" | "keep-alive" | "proxy-connection" | "upgrade" | "te" => continue,
            _ => {}
        }
        map.push((lname, value.into_bytes()));
    }
    // Absolute-form request targets give the authority and path.
    let mut target = uri.to_string();
    for scheme in ["http://", "https://"] {
        if let Some(rest) = uri.strip_prefix(scheme) {
            let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            authority = Some(auth.to_string());
            target = if path.is_empty() {
                "/".into()
            } else {
                path.to_string()
            };
        }
    }
    if chunked && has_length {
        // ENVOY: both framings at once is refused (request smuggling).
        return Err(reject("content-length with transfer-encoding"));
    }
    // ENVOY's HTTP/1 codec refuses a request target with bytes outside visible ASCII.
    if uri.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(reject("invalid request target character"));
    }
    if method == "CONNECT" {
        // Authority-form: reaches the filters with `:authority` and no `:path`.
        let mut req = Request::new("CONNECT", "/");
        req.headers = vec![
            (":authority".into(), uri.as_bytes().to_vec()),
            (":method".into(), b"CONNECT".to_vec()),
        ];
        req.headers.extend(map);
        req.headers
            .push(("x-forwarded-proto".into(), b"http".to_vec()));
        req.headers.push((
            "x-request-id".into(),
            format!("00000000-0000-4000-8000-{request_index:012x}").into_bytes(),
        ));
        return Ok(req);
    }
    if target == "*" {
        // `OPTIONS *` matches no route.
        return Err(FrontReply {
            status: 404,
            reason: "no route for *",
        });
    }
    // The rendered Envoys run with Istio's `http_reject_path_with_fragment: false`: a
    // fragment is stripped, not refused.
    if let Some(i) = target.find('#') {
        target.truncate(i);
    }
    if !target.starts_with('/') && target != "*" {
        return Err(reject("invalid request target"));
    }
    let Some(authority) = authority.filter(|a| !a.is_empty()) else {
        return Err(reject("missing host"));
    };
    let (path, query) = match target.find('?') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target.as_str(), ""),
    };
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(FrontReply {
            status: 307,
            reason: "escaped slash redirected",
        });
    }
    let normalized = merge_slashes(&remove_dot_segments(&canonical_escapes(path)));
    let body = if chunked {
        match dechunk(body) {
            Some(b) => b,
            None => return Err(reject("malformed chunked body")),
        }
    } else {
        // A declared length shorter than the body ends the request there (the rest is the
        // next request on the connection, answered after this one), as the replay sends it.
        let end = envoy_harness::corpus::declared_length(headers, body.len()).unwrap_or(body.len());
        body.get(..end).unwrap_or(body).to_vec()
    };

    let mut all = vec![
        (":authority".to_string(), authority.into_bytes()),
        (
            ":path".to_string(),
            format!("{normalized}{query}").into_bytes(),
        ),
        (":method".to_string(), method.as_bytes().to_vec()),
        (":scheme".to_string(), b"http".to_vec()),
    ];
    all.extend(map);
    if !body.is_empty() {
        if chunked {
            all.push(("transfer-encoding".into(), b"chunked".to_vec()));
        } else {
            all.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
    }
    // use_remote_address: the connection's address is appended to X-Forwarded-For. ENVOY: for a
    // loopback peer it appends the node's own address (its first non-loopback interface), which
    // this model does not know: comparisons leave X-Forwarded-For out.
    match all.iter_mut().find(|(k, _)| k == "x-forwarded-for") {
        Some((_, v)) => v.extend_from_slice(b",127.0.0.1"),
        None => all.push(("x-forwarded-for".into(), b"127.0.0.1".to_vec())),
    }
    all.retain(|(k, _)| k != "x-forwarded-proto");
    all.push(("x-forwarded-proto".into(), b"http".to_vec()));
    if !all.iter().any(|(k, _)| k == "x-request-id") {
        let id = format!("00000000-0000-4000-8000-{request_index:012x}");
        all.push(("x-request-id".into(), id.into_bytes()));
    }
    let mut req = Request::new(method, "/");
    req.headers = all;
    req.body = if body.is_empty() { None } else { Some(body) };
    let proto = if version == "HTTP/1.0" {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    req = req.property(&["request", "protocol"], proto.as_bytes());
    Ok(req)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_are_normalized_like_envoy() {
        assert_eq!(remove_dot_segments("/a/./b/../c"), "/a/c");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(remove_dot_segments("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(merge_slashes("//a///b"), "/a/b");
        assert_eq!(canonical_escapes("/%61%2e%3c x"), "/a.%3C%20x");
    }

    #[test]
    fn escaped_slashes_redirect_and_bad_versions_reject() {
        let h = vec![("Host".to_string(), "h".to_string())];
        assert_eq!(
            filter_input("GET", "/a%2Fb", "", &h, b"", 0)
                .unwrap_err()
                .status,
            307
        );
        assert_eq!(
            filter_input("GET", "/", "HTTP/2.5", &h, b"", 0)
                .unwrap_err()
                .status,
            400
        );
        let r = filter_input("GET", "http://x.test/p?q=1", "", &[], b"", 0).unwrap();
        assert_eq!(
            crate::header(&r.headers, ":authority"),
            Some(&b"x.test"[..])
        );
        assert_eq!(crate::header(&r.headers, ":path"), Some(&b"/p?q=1"[..]));
    }

    #[test]
    fn referers_are_kept_or_dropped_as_envoy_does() {
        // Envoy's own unit test cases (test/common/http/utility_test.cc).
        for ok in [
            "http://www.example.com",
            "http://www.example.com/foo?bar=xyz",
            "/resource.html",
            "resource.html",
            "foo/bar/resource.html",
            "https://a.test:8443/p?q=<x>",
            "",
        ] {
            assert!(valid_referer(ok), "{ok}");
        }
        for bad in [
            "mal  formed/path/resource.html",
            "htp:/www.malformed.com",
            "http://www.example.com/?foo=bar#fragment",
            "foo=bar#fragment",
            "http://user:pw@a.test/",
            "cat /etc/passwd",
            "www.github.com<script>",
            "http://a.test:99999/",
            "http://a_b.test/",
        ] {
            assert!(!valid_referer(bad), "{bad}");
        }
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n").unwrap(), b"abc");
        assert!(dechunk(b"zz\r\n").is_none());
    }
}
