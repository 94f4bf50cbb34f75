//! Protocol enforcement and protocol attacks (CRS 911/920/921/922): request-line and header
//! sanity (methods, versions, Host, Content-Length/Transfer-Encoding, Content-Type and
//! charset, Connection, Range, restricted headers and extensions), bad encodings (NUL bytes,
//! `%u` escapes, invalid UTF-8), smuggling and response splitting (request lines and CR/LF +
//! header shapes in values), LDAP filter injection, and multipart irregularities.
//!
//! Severities follow how often a violation is benign: clear violations are critical,
//! anomalies that real clients or infrastructure produce (IP literal Host, missing
//! Content-Length, odd Connection lists) are warnings that only block in combination.

use super::{Ctx, Findings};
use crate::detect::HasByte as _;
use crate::detect::Lit as _;
use crate::detect::Outlined as _;
use crate::extract::{BodyKind, ByteSet, Input, Prepared};
use crate::model::{Category, Severity, Source};

const P: Category = Category::Protocol;
const A: Category = Category::ProtocolAttack;

const METHODS_RFC: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
];

const CHARSETS: crate::detect::Words = crate::detect::Words::new(&[
    "utf-8",
    "iso-8859-1",
    "iso-8859-15",
    "windows-1252",
    "us-ascii",
]);

/// Request headers no ordinary client sends and that have served attacks (WebDAV conditions,
/// `Proxy` (httpoxy), method overrides). `Content-Range` is not one: partial `PUT`s
/// (resumable uploads) send it. A `match` (a switch on the length, then one comparison).
/// Also headers a framework trusts to change what it routes, set only inside it:
/// `X-Middleware-Subrequest` (Next.js skips its middleware, the authorization check, for
/// a request that carries it) and `X-Rewrite-Url` (Symfony's and Zend's path override: the
/// proxy's path rules see one path, the application serves another). `X-Original-Url` is
/// left out: IIS ARR and other proxies set it in front of applications.
fn restricted_header(name: &str) -> bool {
    matches!(
        name,
        "proxy"
            | "lock-token"
            | "if"
            | "x-http-method-override"
            | "x-method-override"
            | "x-http-method"
            | "request-range"
            | "translate"
            | "x-middleware-subrequest"
            | "x-rewrite-url"
    )
}

/// Whether `charset` (lowercase) is one of [`CHARSETS`]; outlined for its three callers.
#[inline(never)]
fn allowed_charset(charset: &str) -> bool {
    CHARSETS.iter().any(|c| *c == charset)
}

/// An RFC 9110 `tchar`: a byte of a token (a media type's type or subtype, a method).
fn tchar(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.as_bytes().iter().all(tchar)
}

/// Whether a Content-Type parameter value holds a media type of a body syntax that parsers
/// dispatch on: JSON or XML (`*/json`, `*/*+json`, `*/xml`, `*/*+xml`), a form
/// (`*/x-www-form-urlencoded`) or `multipart/*`. That is Content-Type confusion (CRS 921421,
/// paranoia 1): an application that looks for such a name anywhere in the header parses the
/// body with another parser than the declared type's. Any other `/` in a parameter
/// (`charset=/gar/bage`; SOAP 1.2's `action="http://tempuri.org/IService/Op"`, a JSON-LD
/// `profile` URL) names no parser and counts from paranoia 2 (CRS 921422). Each piece between
/// two `/` is read twice at most: linear.
fn names_body_syntax(v: &str) -> bool {
    let mut pieces = v.as_bytes().split(|&b| b == b'/');
    let Some(mut before) = pieces.next() else {
        return false;
    };
    pieces.any(|after| {
        let ty_len = before.iter().rev().take_while(|b| tchar(b)).count();
        let ty = &before[before.len() - ty_len..];
        let sub = &after[..after.iter().take_while(|b| tchar(b)).count()];
        before = after;
        !ty.is_empty()
            && (ty == b"multipart" && !sub.is_empty()
                || [&b"json"[..], b"xml", b"x-www-form-urlencoded"]
                    .iter()
                    .any(|s| {
                        sub == *s
                            || sub.len() > s.len()
                                && sub.ends_with(s)
                                && sub[sub.len() - s.len() - 1] == b'+'
                    }))
    })
}

/// An entry with one `*` matches the types that start with what comes before it and end
/// with what follows, with something in between (`application/*+json`,
/// `application/vnd.*+json`); others match exactly.
fn media_type_allowed(mt: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        if let Some((head, tail)) = a.split_once_char('*') {
            mt.len() > head.len() + tail.len() && mt.starts_with(head) && mt.ends_with(tail)
        } else {
            a == mt
        }
    })
}

/// Whether the request may carry a body: bytes of it arrived, or its framing announces some
/// (a `Transfer-Encoding`, a `Content-Length` other than `0`). The allow-lists of media types
/// and charsets (920420, 920480) exist so that no body reaches the application under a parser
/// the rules do not read; without a body there is nothing to parse, and clients send a
/// `Content-Type` on bodiless GETs and empty POSTs (axios's defaults, `text/html` from form
/// tools). The syntax and confusion checks still read such a header (they are attack shapes).
fn carries_body(p: &Prepared<'_>) -> bool {
    p.request.body.is_some_and(|b| !b.is_empty())
        || p.headers.transfer_encoding.is_some()
        || p.headers.content_length.is_some_and(|cl| cl != "0")
}

fn content_type_checks(p: &Prepared<'_>, ctx: &Ctx<'_>, out: &mut Findings) {
    if p.headers.content_type_repeated {
        out.hit_request(
            P,
            "protocol.multiple-content-type",
            Severity::Critical,
            1,
            Source::Header,
            "content-type",
        );
    }
    let Some(ct) = p.headers.content_type else {
        return;
    };
    let body = carries_body(p);
    let mut parts = ct.split_char(';');
    let mt = parts.next().unwrap_or_default().trim().ascii_lower();
    let valid_mt = mt
        .split_once_char('/')
        .is_some_and(|(t, s)| is_token(t) && is_token(s));
    // Only the media type is checked for stray syntax; parameter values may be quoted
    // strings holding anything (`action="urn:x#op"`).
    if !valid_mt || mt.has_any(b"({#@") {
        out.hit_request(
            P,
            "protocol.content-type-syntax",
            Severity::Critical,
            1,
            Source::Header,
            "content-type",
        );
    } else if body && !media_type_allowed(&mt, ctx.allowed_content_types) {
        out.hit_request(
            P,
            "protocol.content-type-not-allowed",
            Severity::Critical,
            1,
            Source::Header,
            "content-type",
        );
    }
    let mut charsets = 0;
    for param in parts {
        let Some((k, v)) = param.split_once_char('=') else {
            if !param.trim().is_empty() {
                out.hit_request(
                    P,
                    "protocol.content-type-syntax",
                    Severity::Critical,
                    1,
                    Source::Header,
                    "content-type",
                );
            }
            continue;
        };
        let k = k.trim().ascii_lower();
        let v = v.trim().trim_set(b"\"'").ascii_lower();
        if k == "charset" {
            charsets += 1;
            if body && !allowed_charset(&v) {
                out.hit_request(
                    P,
                    "protocol.charset-not-allowed",
                    Severity::Critical,
                    1,
                    Source::Header,
                    "content-type",
                );
            }
        }
        if v.has_lit("charset") {
            charsets += 2;
        }
        if !mt.starts_with("multipart/") && v.has_char('/') {
            out.hit_request(
                A,
                "protocol.content-type-confusion",
                Severity::Critical,
                if names_body_syntax(&v) { 1 } else { 2 },
                Source::Header,
                "content-type",
            );
        }
    }
    if charsets > 1 {
        out.hit_request(
            P,
            "protocol.multiple-charsets",
            Severity::Critical,
            1,
            Source::Header,
            "content-type",
        );
    }
}

fn header_checks(p: &Prepared<'_>, out: &mut Findings) {
    let req = &p.request;
    // Host.
    let h = &p.headers;
    match h.host() {
        None => out.hit_request(
            P,
            "protocol.missing-host",
            Severity::Critical,
            1,
            Source::Header,
            "host",
        ),
        Some(h) => {
            let h = crate::extract::trim_unicode(h);
            if h.is_empty() {
                out.hit_request(
                    P,
                    "protocol.empty-host",
                    Severity::Critical,
                    1,
                    Source::Header,
                    "host",
                );
            } else if host_is_ip(h) {
                out.hit_request(
                    P,
                    "protocol.host-is-ip",
                    Severity::Warning,
                    1,
                    Source::Header,
                    "host",
                );
            }
        }
    }
    // Content-Length / Transfer-Encoding.
    // Every copy, when there is one (none in most requests: no list to build).
    let cls: Vec<&str> = if h.content_length.is_some() {
        req.header_all("content-length").collect()
    } else {
        Vec::new()
    };
    if cls
        .iter()
        .any(|v| v.trim().is_empty() || !v.trim().bytes().all(|b| b.is_ascii_digit()))
    {
        out.hit_request(
            P,
            "protocol.invalid-content-length",
            Severity::Critical,
            1,
            Source::Header,
            "content-length",
        );
    }
    if cls.len() > 1
        && cls
            .iter()
            .any(|v| v.trim() != cls.first().map_or("", |f| f.trim()))
    {
        out.hit_request(
            A,
            "protocol.conflicting-content-length",
            Severity::Critical,
            1,
            Source::Header,
            "content-length",
        );
    }
    let te = h.transfer_encoding;
    if te.is_some() && !cls.is_empty() {
        out.hit_request(
            A,
            "protocol.cl-and-te",
            Severity::Critical,
            1,
            Source::Header,
            "transfer-encoding",
        );
    }
    if te.is_some_and(|t| !t.trim().eq_ignore_ascii_case("chunked")) {
        out.hit_request(
            A,
            "protocol.transfer-encoding",
            Severity::Critical,
            1,
            Source::Header,
            "transfer-encoding",
        );
    }
    let has_body = req.body.is_some_and(|b| !b.is_empty());
    let method = p.method;
    if (method == "GET" || method == "HEAD") && has_body {
        out.hit_request(
            P,
            "protocol.get-with-body",
            Severity::Critical,
            1,
            Source::Method,
            method,
        );
    }
    let http1 = req.protocol.is_some_and(|v| v.starts_with("HTTP/1"));
    if http1 && method == "POST" && cls.is_empty() && te.is_none() && !has_body {
        out.hit_request(
            P,
            "protocol.missing-content-length",
            Severity::Warning,
            1,
            Source::Header,
            "content-length",
        );
    }
    if has_body && h.content_type.is_none() && cls.iter().any(|v| v.trim() != "0") {
        out.hit_request(
            P,
            "protocol.body-without-content-type",
            Severity::Notice,
            1,
            Source::Header,
            "content-type",
        );
    }
    // Connection: repeated or conflicting options.
    if let Some(c) = h.connection {
        let opts: Vec<String> = c.split_char(',').map(|o| o.trim().ascii_lower()).collect();
        let dup = opts
            .iter()
            .enumerate()
            .any(|(i, o)| opts.iter().skip(i + 1).any(|x| x == o));
        let conflict = opts.iter().any(|o| o == "close") && opts.iter().any(|o| o == "keep-alive");
        if dup || conflict {
            out.hit_request(
                P,
                "protocol.connection-header",
                Severity::Critical,
                1,
                Source::Header,
                "connection",
            );
        }
    }
    // Range abuse: too many ranges, inverted ranges.
    if let Some(r) = h.range {
        let specs: Vec<&str> = r
            .trim()
            .strip_prefix("bytes=")
            .unwrap_or(r)
            .split_char(',')
            .collect();
        let inverted = specs.iter().any(|s| {
            s.trim()
                .split_once_char('-')
                .and_then(|(a, b)| {
                    Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
                })
                .is_some_and(|(a, b)| b < a)
        });
        if inverted || r.trim().starts_with("bytes=0-,") {
            out.hit_request(
                P,
                "protocol.range-invalid",
                Severity::Critical,
                1,
                Source::Header,
                "range",
            );
        }
        if specs.len() > 5 {
            out.hit_request(
                P,
                "protocol.range-too-many",
                Severity::Critical,
                2,
                Source::Header,
                "range",
            );
        }
    }
    for (name, value) in req.headers {
        if restricted_header(name) {
            out.hit_request(
                P,
                "protocol.restricted-header",
                Severity::Critical,
                1,
                Source::HeaderName,
                name,
            );
        }
        // One pass for CR, LF and NUL, eight bytes per step.
        if !name.starts_with(':') && super::has_cr_lf_nul(value.as_bytes()) {
            out.hit_request(
                A,
                "protocol.header-injection",
                Severity::Critical,
                1,
                Source::Header,
                name,
            );
        }
        // `$Version` opens with `$`: a value opening with another ASCII byte than
        // whitespace (every cookie header of a browser) has no `trim_start` to walk.
        if name == "cookie"
            && (value.as_bytes().first() == Some(&b'$')
                || !value
                    .as_bytes()
                    .first()
                    .is_some_and(|&b| b < 0x80 && !matches!(b, 9..=13 | b' ')))
            && value.trim_start().starts_with("$Version")
        {
            out.hit_request(
                A,
                "protocol.legacy-cookie",
                Severity::Critical,
                1,
                Source::Header,
                "cookie",
            );
        }
    }
}

/// Whether a trimmed `Host` value is an IP address literal (`10.0.0.1`, `[::1]:8080`). A
/// literal opens with `[`, a hex digit, `.` or `:` (whatever `]` and the port cut off, the
/// part parsed opens with the value's first byte, or is empty); a name opening with any other
/// byte (`shop.example.com`, nearly every `Host`) is read no further: the cuts below walked
/// it three times on every request (round 14). Test `host_screen_is_the_parse`.
fn host_is_ip(h: &str) -> bool {
    h.as_bytes()
        .first()
        .is_some_and(|&c| matches!(c, b'[' | b'.' | b':') || c.is_ascii_hexdigit())
        && host_literal(h)
}

/// [`host_is_ip`] without its screen.
fn host_literal(h: &str) -> bool {
    let bare = h
        .trim_start_set(b"[")
        .split_char(']')
        .next()
        .unwrap_or_default();
    let bare = if bare.count_char(':') == 1 {
        bare.split_char(':').next().unwrap_or(bare)
    } else {
        bare
    };
    // An address literal holds only hex digits, `.` and `:` (a name has other letters: no
    // parse needed).
    bare.bytes()
        .all(|c| c.is_ascii_hexdigit() || c == b'.' || c == b':')
        && bare.parse::<std::net::IpAddr>().is_ok()
}

/// `METHOD target HTTP/x.y` inside a value: a request smuggled in a parameter.
///
/// Runs for every argument, cookie and body value: no allocation (the last two words are
/// kept, case compared in place), the version word is checked first (most words fail it).
fn embedded_request_line(v: &str) -> bool {
    let mut before: [&str; 2] = ["", ""];
    for (n, w) in v.words().enumerate() {
        let version = w
            .as_bytes()
            .get(..5)
            .is_some_and(|h| h.eq_ignore_ascii_case(b"HTTP/"))
            && w.as_bytes().get(5).is_some_and(u8::is_ascii_digit);
        if n >= 2
            && version
            && METHODS_RFC
                .iter()
                .any(|m| m.eq_ignore_ascii_case(before[0]))
        {
            return true;
        }
        before = [before[1], w];
    }
    false
}

/// CR/LF followed by a header line, a status line or markup: response splitting.
///
/// Only the first CR/LF of a run is looked at: the rest of the run leads to the same text, and
/// re-trimming it from every position was quadratic (`\r\n` repeated).
fn response_splitting(v: &str) -> bool {
    let b = v.as_bytes();
    v.match_indices(['\r', '\n']).any(|(p, _)| {
        if p > 0 && matches!(b.get(p - 1), Some(b'\r' | b'\n')) {
            return false;
        }
        let rest = v.get(p + 1..).unwrap_or_default().trim_start_set(b"\r\n");
        let name_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-')
            .count();
        // A header line injects something only with a value (`Location: x`); a name and a
        // colon followed by nothing but line breaks (`location:%0A%0D`) sets no header
        // (CRS 921120 asks for a word after the colon as well).
        // The header must change what the response does (where it sends the browser, what
        // it stores, how the body is read or framed, what the page may run) or what a
        // forwarded request claims (its client, host, cookies). A line like
        // `Order: 123` or `list: !!seq [a, b]` in a text area or a YAML field is text.
        let name = rest.get(..name_len).unwrap_or_default().ascii_lower();
        let effective = matches!(
            name.as_str(),
            "location"
                | "refresh"
                | "set-cookie"
                | "set-cookie2"
                | "content-type"
                | "content-length"
                | "content-disposition"
                | "content-encoding"
                | "content-security-policy"
                | "transfer-encoding"
                | "link"
                | "x-xss-protection"
                | "x-frame-options"
                // Request splitting: headers a proxy or the application trusts for the
                // client's identity or the target (CRS 921160's list).
                | "cookie"
                | "host"
                | "via"
                | "forwarded"
                | "remote-addr"
                | "remote-ip"
                | "originating-ip"
                | "x-originating-ip"
                | "x-real-ip"
                | "authorization"
        ) || name.starts_with("access-control-")
            || name.starts_with("x-forwarded-");
        let header = effective
            && rest.get(name_len..).is_some_and(|r| {
                r.strip_prefix(':').is_some_and(|v| {
                    v.trim_start_set(b" \t")
                        .bytes()
                        .next()
                        .is_some_and(|c| c != b'\r' && c != b'\n')
                })
            });
        let lower = rest
            .get(..rest.len().min(16))
            .unwrap_or_default()
            .ascii_lower();
        header
            || lower.starts_with("http/")
            || lower.starts_with("<html")
            || lower.starts_with("<meta")
            || lower.starts_with("<script")
    })
}

/// LDAP filter syntax closing one filter and opening another: `)(uid=*`, `*)(|(`, `)!(sn=`.
fn ldap_injection(v: &str) -> bool {
    let compact: String = v.without_whitespace();
    let b = compact.as_bytes();
    // Whole, balanced filters (`(&(objectClass=user)(cn=x))`, a list of them
    // `(a=1)(&(b=2)(c=3))`, or one quoted in a sentence) are filters given as data; an
    // injection closes the application's filter first, so its parentheses go below zero
    // (`admin)(|(uid=*`) or stay open.
    let mut depth = 0i64;
    let mut negative = false;
    for &c in b {
        match c {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            negative = true;
            break;
        }
    }
    if !negative && depth == 0 {
        return false;
    }
    compact.match_indices(")").any(|(p, _)| {
        let mut j = p + 1;
        // `)(`, `)!(`, `)&(`, `)|(`: closing one filter and composing another.
        if matches!(b.get(j), Some(b'!' | b'&' | b'|')) {
            j += 1;
        }
        if b.get(j) != Some(&b'(') {
            return false;
        }
        j += 1;
        match b.get(j) {
            Some(b'|' | b'&' | b'!') => true,
            Some(c) if c.is_ascii_alphabetic() => {
                let attr_end = b
                    .get(j..)
                    .and_then(|r| {
                        r.iter().position(|c| {
                            !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b';' || *c == b'.')
                        })
                    })
                    .map(|e| j + e);
                attr_end.is_some_and(|e| {
                    matches!(b.get(e), Some(b'='))
                        || b.get(e..e + 2)
                            .is_some_and(|o| o == b">=" || o == b"<=" || o == b"~=")
                })
            }
            _ => false,
        }
    }) || compact.has_lit("(|(")
        || compact.has_lit("(&(")
        || compact.has_lit("*)(")
}

/// Whether the percent-encoded bytes of `raw` hold a UTF-8 lead byte followed by continuation
/// bytes that do not form a character (truncated `%E2%A3`, overlong `%C0%80`, a surrogate
/// `%ED%A0%80`), outside any word. Latin-1 and Windows-1252 text puts single high bytes
/// inside words (`se%F1or`, `caf%E9`, `%C1ngel`, `caf%E9%85` for "café…"), so an invalid run
/// that touches an ASCII letter, or a lone high byte (`%E0` for the French word "à"), is read
/// as legacy text; a lone `%C0`/`%C1` outside a word is an overlong lead.
fn broken_utf8_sequence(raw: &str) -> bool {
    let hex = |c: u8| char::from(c).to_digit(16);
    let b = raw.as_bytes();
    // Percent-decode into (byte, was it escaped); only escaped high bytes can be broken
    // UTF-8 here (raw high bytes were already read as UTF-8 by the extractor).
    let mut bytes: Vec<u8> = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match (
            c,
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                bytes.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
            }
            _ => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    let letter = |j: Option<&u8>| j.is_some_and(u8::is_ascii_alphabetic);
    let mut k = 0;
    while k < bytes.len() {
        if bytes.get(k).is_some_and(|c| *c < 0x80) {
            k += 1;
            continue;
        }
        let start = k;
        while bytes.get(k).is_some_and(|c| *c >= 0x80) {
            k += 1;
        }
        let run = bytes.get(start..k).unwrap_or_default();
        let lead_then_continuation = matches!(run, [0xC0..=0xF7, 0x80..=0xBF, ..]);
        // `%C0`/`%C1` start only overlong forms (`%C0%AF` for `/`); as Latin-1 they are
        // capital letters, which stand inside words.
        let overlong_lead = matches!(run, [0xC0 | 0xC1]);
        if (lead_then_continuation || overlong_lead)
            && std::str::from_utf8(run).is_err()
            && !letter(start.checked_sub(1).and_then(|p| bytes.get(p)))
            && !letter(bytes.get(k))
        {
            return true;
        }
    }
    false
}

/// Bytes a control character (`char::is_control`) is made of in UTF-8: C0, DEL, and the lead
/// byte of C1.
const CONTROL_BYTES: ByteSet = ByteSet::from_ranges(&[(0x00, 0x1F), (0x7F, 0x7F), (0xC2, 0xC2)]);

/// Response splitting spelled with characters whose low byte is CR or LF (U+560D, U+560A:
/// `%E5%98%8D%E5%98%8A`): a server that writes a header by keeping each character's low
/// byte (Java's `(byte) c`, Node.js' `latin1` writes) sends them as CR LF. The value is read
/// the way such a server writes it (every character from U+0100 on as its low byte), then
/// judged like a CR/LF in the value; only values holding such a CR or LF are read twice
/// (their last UTF-8 byte is 0x8A or 0x8D: the value's byte set screens them).
fn truncated_splitting(v: &str) -> bool {
    let wide_break = |c: char| u32::from(c) >= 0x100 && matches!(u32::from(c) & 0xFF, 0x0A | 0x0D);
    if !v.chars().any(wide_break) {
        return false;
    }
    let sent: String = v
        .chars()
        .map(|c| {
            if u32::from(c) >= 0x100 {
                char::from((u32::from(c) & 0xFF) as u8)
            } else {
                c
            }
        })
        .collect();
    response_splitting(&sent)
}

/// Every byte one of the byte-screened checks of [`value_checks_screened`] needs in a value
/// before it reads it: NUL, the control bytes, `0xEF` (U+FFFD), `/` (`HTTP/`), CR and LF,
/// `0x8A`/`0x8D` (a wide CR or LF), `(` (LDAP) and `|` (`unix:|`). A value holding none of
/// them (most: numbers, identifiers, words) passes every one of those checks.
const VALUE_CHECK_BYTES: ByteSet = ByteSet::from_ranges(&[
    (0x00, 0x1F),
    (0x7F, 0x7F),
    (0xC2, 0xC2),
    (0xEF, 0xEF),
    (b'/', b'/'),
    (0x8A, 0x8A),
    (0x8D, 0x8D),
    (b'(', b'('),
    (b'|', b'|'),
]);

fn value_checks(input: &Input, out: &mut Findings) {
    // Paranoia 2: `_method=DELETE` makes frameworks (Rails, Laravel, Symfony) run another
    // method than the one the proxy saw, the parameter twin of `X-HTTP-Method-Override`.
    if input.location.source == Source::Arg && input.location.name.eq_ignore_ascii_case("_method") {
        out.hit(input, P, "protocol.method-override", Severity::Critical, 2);
    }
    // One test of the value's byte set against the union of what the checks below screen
    // for, instead of each check's own tests (this runs for every value of the request: a
    // ~1 KB JSON or form body has about a hundred, nearly all without any such byte).
    if input.bytes.intersects(&VALUE_CHECK_BYTES) {
        value_checks_screened(input, out);
    }
}

/// The checks of [`value_checks`] that each first ask the value's byte set for one of
/// [`VALUE_CHECK_BYTES`].
fn value_checks_screened(input: &Input, out: &mut Findings) {
    let src = input.location.source;
    let v = &input.value;
    // Each check below first asks the value's byte set (`input.bytes`, computed once) for
    // the bytes it needs: most values have none of them.
    let set = &input.bytes;
    if src != Source::Body && src != Source::Filename && set.has(0) && v.has_char('\0') {
        out.hit(input, P, "protocol.null-byte", Severity::Critical, 1);
    }
    if matches!(
        src,
        Source::Arg | Source::ArgName | Source::Path | Source::Cookie
    ) && set.has(0xEF)
        && v.has_char('\u{FFFD}')
        && !input.raw.has_char('\u{FFFD}')
    {
        // Legacy clients percent-encode forms in Latin-1 (`%F1` for n-tilde): not an attack
        // by itself, so only from paranoia 2 (CRS's UTF-8 check 920250 is off by default).
        // A broken multi-byte sequence standing on its own is no Latin-1 text, though.
        let paranoia = if broken_utf8_sequence(&input.raw) {
            1
        } else {
            2
        };
        out.hit(
            input,
            P,
            "protocol.invalid-utf8",
            Severity::Critical,
            paranoia,
        );
    }
    // Control characters: C0 and DEL as bytes, C1 (U+0080-U+009F) after a 0xC2 lead byte.
    let maybe_control = set.intersects(&CONTROL_BYTES);
    if matches!(src, Source::Arg | Source::ArgName | Source::Path)
        && maybe_control
        && v.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        out.hit(input, P, "protocol.non-printable", Severity::Critical, 2);
    }
    if !matches!(
        src,
        Source::Arg | Source::ArgName | Source::Cookie | Source::Body | Source::Path
    ) {
        return;
    }
    // A request line needs `HTTP/`: the byte set first.
    if input.may_contain("http/") && embedded_request_line(v) {
        out.hit(input, A, "protocol.embedded-request", Severity::Critical, 1);
    }
    if (set.has(b'\r') || set.has(b'\n')) && v.has_any(b"\r\n") {
        if response_splitting(v) {
            out.hit(
                input,
                A,
                "protocol.response-splitting",
                Severity::Critical,
                1,
            );
        }
        match src {
            Source::ArgName | Source::Path => {
                out.hit(input, A, "protocol.newline-in-name", Severity::Critical, 1);
            }
            Source::Arg => out.hit(input, A, "protocol.newline-in-value", Severity::Critical, 2),
            _ => {}
        }
    }
    if (set.has(0x8A) || set.has(0x8D)) && truncated_splitting(v) {
        out.hit(
            input,
            A,
            "protocol.response-splitting",
            Severity::Critical,
            1,
        );
    }
    if input.bytes.has(b')') && input.bytes.has(b'(') && ldap_injection(v) {
        out.hit(input, A, "protocol.ldap-injection", Severity::Critical, 1);
    }
    if input.bytes.has(b'|') && input.lower_has("unix:") {
        out.hit(
            input,
            A,
            "protocol.proxy-unix-socket",
            Severity::Critical,
            1,
        );
    }
}

/// A quote, `=`, `\\` or control character in a part name or file name (bypass attempts on
/// multipart parsers), or a `;` that does not end an HTML character reference (`&acirc;`:
/// browsers write non-ASCII names that way).
fn odd_part_name(s: &str) -> bool {
    let b = s.as_bytes();
    let mut ref_start = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'&' => ref_start = Some(i),
            b';' => {
                if ref_start.is_none_or(|st| i <= st + 1) {
                    return true;
                }
                ref_start = None;
            }
            // An apostrophe inside a word (`O'Brien's CV.pdf`, `l'été.jpg`) is how people
            // name files; a quote next to anything else ends or opens a parameter.
            b'\''
                if i > 0
                    && b.get(i - 1)
                        .is_some_and(|&c| c.is_ascii_alphabetic() || c >= 0x80)
                    && b.get(i + 1)
                        .is_some_and(|&c| c.is_ascii_alphabetic() || c >= 0x80) => {}
            b'"' | b'=' | b'\'' | b'\\' => return true,
            c if c.is_ascii_control() => return true,
            c if c.is_ascii_alphanumeric() || c == b'#' => {}
            _ => ref_start = None,
        }
    }
    false
}

fn multipart_checks(p: &Prepared<'_>, out: &mut Findings) {
    let Some(m) = &p.multipart else {
        return;
    };
    for part in &m.parts {
        if let Some(ct) = &part.content_type {
            let charset = ct
                .split_char(';')
                .filter_map(|x| x.split_once_char('='))
                .find(|(k, _)| k.trim() == "charset")
                .map(|(_, v)| v.trim().trim_set(b"\"").to_string());
            if charset.is_some_and(|c| !allowed_charset(&c)) {
                out.hit_request(
                    Category::Multipart,
                    "multipart.charset",
                    Severity::Critical,
                    1,
                    Source::Body,
                    &part.name,
                );
            }
        }
        if part.transfer_encoding {
            out.hit_request(
                Category::Multipart,
                "multipart.transfer-encoding",
                Severity::Critical,
                1,
                Source::Body,
                &part.name,
            );
        }
        let odd = |s: &str| odd_part_name(s);
        if odd(&part.name) || part.filename.as_deref().is_some_and(odd) {
            out.hit_request(
                P,
                "protocol.multipart-name",
                Severity::Critical,
                1,
                Source::Body,
                &part.name,
            );
        } else if part.filename.as_deref().is_some_and(|f| f.has_char('\'')) {
            // Paranoia 2, as CRS 920121: an apostrophe inside a word of a file name
            // (`O'Brien's CV.pdf`), which parsers that split on quotes could misread.
            out.hit_request(
                P,
                "protocol.multipart-name-apostrophe",
                Severity::Critical,
                2,
                Source::Body,
                &part.name,
            );
        }
    }
    if m.malformed {
        out.hit_request(
            Category::Multipart,
            "multipart.malformed",
            Severity::Warning,
            1,
            Source::Body,
            "",
        );
    }
}

/// `host:port` (RFC 9112 3.2.3): a registered name or IPv4 address of unreserved characters
/// and escapes, or a bracketed IP literal, then a port of one to five digits. No user info,
/// no path.
fn authority_form(target: &str) -> bool {
    let Some((host, port)) = target.rsplit_once(':') else {
        return false;
    };
    let port_ok = (1..=5).contains(&port.len()) && port.bytes().all(|c| c.is_ascii_digit());
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(literal) => {
            !literal.is_empty()
                && literal
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'))
        }
        None => {
            !host.is_empty()
                && host.bytes().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'%')
                })
        }
    };
    port_ok && host_ok
}

pub(crate) fn scan(p: &Prepared<'_>, ctx: &Ctx<'_>, out: &mut Findings) {
    let method = p.method;
    if !is_token(method) || method.len() > 24 {
        out.hit_request(
            P,
            "protocol.request-line",
            Severity::Critical,
            1,
            Source::Method,
            method,
        );
    } else if !ctx.allowed_methods.iter().any(|m| m == method) {
        out.hit_request(
            P,
            "protocol.method-not-allowed",
            Severity::Critical,
            1,
            Source::Method,
            method,
        );
    }
    // A `charset` parameter in `Accept` outside the allowed charsets asks the server to answer
    // in an encoding of the client's choosing (UTF-7, UTF-16, EBCDIC `CP1026`), the way filters
    // are evaded on the response side.
    if p.headers.accept.is_some_and(|a| {
        // No `=`, no parameter (most `Accept` headers): nothing to lowercase.
        if !a.has_char('=') {
            return false;
        }
        let l = a.ascii_lower();
        l.match_indices("charset=").any(|(i, m)| {
            let v = l.get(i + m.len()..).unwrap_or_default();
            let v = v.split_first_any(b",; ").unwrap_or_default();
            !allowed_charset(v.trim_set(b"\"'"))
        })
    }) {
        out.hit_request(
            P,
            "protocol.accept-charset-parameter",
            Severity::Critical,
            1,
            Source::Header,
            "accept",
        );
    }
    let uri = p.uri;
    // Origin-form, `*` for `OPTIONS`, or authority-form for `CONNECT` (RFC 9112 3.2): the
    // three forms a server is sent. `CONNECT host:port` is a well-formed request line; whether
    // the method is allowed is the method check's finding, counted once (a forward proxy that
    // allows `CONNECT` must not see it refused for its request line).
    if !(uri.starts_with('/')
        || (uri == "*" && method == "OPTIONS")
        || (method == "CONNECT" && authority_form(uri)))
    {
        out.hit_request(
            P,
            "protocol.request-line",
            Severity::Critical,
            1,
            Source::Path,
            "",
        );
    }
    if let Some(v) = p.request.protocol {
        if !matches!(
            v,
            "HTTP/1.0" | "HTTP/1.1" | "HTTP/2" | "HTTP/2.0" | "HTTP/3" | "HTTP/3.0"
        ) {
            out.hit_request(
                P,
                "protocol.http-version",
                Severity::Critical,
                1,
                Source::Request,
                "",
            );
        }
    }
    header_checks(p, out);
    if p.body_kind != BodyKind::None || p.headers.content_type.is_some() {
        content_type_checks(p, ctx, out);
    }
    if p.flags.unicode_escape {
        out.hit_request(
            P,
            "protocol.iis-unicode-escape",
            Severity::Critical,
            1,
            Source::Request,
            "",
        );
    }
    if p.flags.invalid_percent {
        out.hit_request(
            P,
            "protocol.invalid-percent-encoding",
            Severity::Warning,
            1,
            Source::Request,
            "",
        );
    }
    if p.flags.multi_encoded {
        out.hit_request(
            P,
            "protocol.multiple-encoding",
            Severity::Warning,
            2,
            Source::Request,
            "",
        );
    }
    if p.flags.body_malformed {
        out.hit_request(
            P,
            "protocol.body-malformed",
            Severity::Warning,
            1,
            Source::Body,
            "",
        );
    }
    // Restricted extensions and editor backups in the path.
    // Compared with the lowercased extension (no lowercase copy of the whole path: `/` and
    // `~` have no case).
    let path = p.path.as_str();
    let last = path.rsplit_first('/').unwrap_or_default();
    if let Some(dot) = last.rfind_char('.') {
        let ext = last.get(dot..).unwrap_or_default().as_bytes();
        let lower_eq = |e: &String| {
            e.len() == ext.len()
                && e.bytes()
                    .zip(ext.iter())
                    .all(|(a, b)| a == b.to_ascii_lowercase())
        };
        if ctx.restricted_extensions.iter().any(lower_eq) {
            out.hit_request(
                P,
                "protocol.restricted-extension",
                Severity::Critical,
                1,
                Source::Path,
                "",
            );
        }
    }
    // Only a path with a `~` can have a segment ending in one (most have none: no split).
    if path.as_bytes().has_byte(b'~')
        && path
            .split_char('/')
            .any(|seg| seg.len() > 1 && seg.ends_with('~'))
    {
        out.hit_request(
            P,
            "protocol.backup-file",
            Severity::Critical,
            1,
            Source::Path,
            "",
        );
    }
    for input in &p.inputs {
        value_checks(input, out);
    }
    multipart_checks(p, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte screen of `value_checks` changes no finding: on values holding each
    /// character (every byte alone, and the multi-byte characters the checks look for) in
    /// every source and with every paranoia level, the screened checks find what running
    /// them all finds.
    #[test]
    fn value_check_screen_changes_no_finding() {
        use crate::extract::{Place, Text};
        use crate::model::CategorySet;
        let mut values: Vec<String> = (0u32..0x100)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        values.extend(
            [
                "GET /x HTTP/1.1",
                "x\r\nSet-Cookie: a=b",
                "\u{560d}\u{560a}Set-Cookie: a",
                "printer)(uid=*)",
                "unix:|x",
                "\u{fffd}",
                "\u{85}",
                "a\0b",
                "plain",
                "10.99",
                "",
            ]
            .map(String::from),
        );
        let sources = [
            Source::Arg,
            Source::ArgName,
            Source::Cookie,
            Source::Header,
            Source::Body,
            Source::Path,
            Source::Filename,
        ];
        let mut fired = std::collections::BTreeSet::new();
        for v in &values {
            for raw in [v.as_str(), "a\u{fffd}", "x"] {
                for (source, name) in sources.iter().flat_map(|&s| [(s, "q"), (s, "_method")]) {
                    let input = Input::new(
                        Place::new(source, Text::from(name)),
                        Text::from(raw),
                        Text::from(v.as_str()),
                        CategorySet::EMPTY,
                    );
                    for paranoia in 1..=4 {
                        let mut screened = Findings::new(paranoia, CategorySet::EMPTY);
                        value_checks(&input, &mut screened);
                        let mut all = Findings::new(paranoia, CategorySet::EMPTY);
                        if source == Source::Arg && name == "_method" {
                            all.hit(&input, P, "protocol.method-override", Severity::Critical, 2);
                        }
                        value_checks_screened(&input, &mut all);
                        let all = all.into_vec();
                        fired.extend(all.iter().map(|d| d.rule));
                        assert_eq!(
                            format!("{:?}", screened.into_vec()),
                            format!("{all:?}"),
                            "{v:?} {source:?} {name} PL{paranoia}"
                        );
                    }
                }
            }
        }
        // Each screened check fired on some sample: the samples reach every one of them
        // (each sample holding one trigger byte only), so a byte missing from the screen fails.
        for rule in [
            "protocol.null-byte",
            "protocol.invalid-utf8",
            "protocol.non-printable",
            "protocol.embedded-request",
            "protocol.response-splitting",
            "protocol.newline-in-name",
            "protocol.newline-in-value",
            "protocol.ldap-injection",
            "protocol.proxy-unix-socket",
            "protocol.method-override",
        ] {
            assert!(fired.contains(rule), "{rule} never fired");
        }
    }

    /// The first-byte screen of [`host_is_ip`] changes no answer: random hosts over the
    /// bytes literals and names are made of (and a few others), against the parse alone.
    #[test]
    fn host_screen_is_the_parse() {
        let pieces = [
            "[", "]", ":", ".", "0", "1", "9", "a", "f", "g", "z", "A", "F", "::1", "10", "255",
            "1.2.3.4", "fe80", "%", "-", "x", "example", ":80", "]:443", "\u{e9}",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state = crate::detect::xorshift(state);
            (state >> 33) as usize % n
        };
        let mut literals = 0;
        for _ in 0..50_000 {
            let mut h = String::new();
            for _ in 0..1 + next(5) {
                h.push_str(pieces[next(pieces.len())]);
            }
            let want = host_literal(&h);
            literals += usize::from(want);
            assert_eq!(host_is_ip(&h), want, "{h:?}");
        }
        for h in [
            "10.0.0.1",
            "[::1]",
            "[::1]:8080",
            "127.0.0.1:80",
            "::1",
            "]",
        ] {
            assert_eq!(host_is_ip(h), host_literal(h), "{h:?}");
        }
        assert!(host_is_ip("[::1]:8080") && !host_is_ip("shop.example.com"));
        assert!(literals > 100, "{literals}");
    }

    #[test]
    fn authority_form_is_host_and_port() {
        for t in [
            "www.example.org:443",
            "10.0.0.1:8080",
            "[::1]:443",
            "host_1:80",
        ] {
            assert!(authority_form(t), "{t}");
        }
        for t in [
            "www.example.org",
            "user@host:443",
            "host:443/x",
            "http://host:80",
            ":443",
            "host:",
            "host:123456",
            "[]:80",
            "host name:80",
        ] {
            assert!(!authority_form(t), "{t}");
        }
    }

    #[test]
    fn smuggling_and_splitting() {
        assert!(embedded_request_line("GET http://www.foo.bar HTTP/1.2"));
        assert!(!embedded_request_line("get the latest http guide"));
        assert!(response_splitting("foobar\r\nContent-Length: 0"));
        assert!(response_splitting("x\r\n\r\n<html>"));
        assert!(!response_splitting("line one\nline two"));
        assert!(!response_splitting("Hello,\nOrder: 123\nName: Ann"));
        assert!(!response_splitting("tags: !!str 123\nlist: !!seq [a, b]"));
        assert!(response_splitting("x\r\nSet-Cookie: admin=1"));
        assert!(!response_splitting("\n\rlocation:\n\r"));
        assert!(response_splitting("\n\rlocation: \t/evil"));
    }

    #[test]
    fn broken_utf8_is_not_legacy_text() {
        for raw in ["%E2%A3", "x=%C0%80", "%ED%A0%80", "a %F0%9F%98 b", "%c0"] {
            assert!(broken_utf8_sequence(raw), "{raw}");
        }
        // Latin-1 / Windows-1252 forms: single high bytes, or runs inside words.
        for raw in [
            "se%F1or",
            "caf%E9",
            "%C1ngel",
            "rendez-vous %E0 Paris",
            "caf%E9%85",
            "Gr%F6%DFe",
            "%E2%82%AC",
            "%93quoted%94",
        ] {
            assert!(!broken_utf8_sequence(raw), "{raw}");
        }
    }

    #[test]
    fn ldap() {
        for s in [
            "printer)(uid=*)",
            "*)!(sn=*",
            "admin)(|",
            "test)\t(\t|",
            "x))(&(objectClass=*",
            // Balanced at first, then a filter closes what the application opened.
            "(cn=a))(|(cn=*",
            "(cn=a)x)(uid=*",
        ] {
            assert!(ldap_injection(s), "{s}");
        }
        for s in [
            "(see note)(2)",
            "f(x)(y)",
            "call me (maybe)",
            "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:=8192))",
            // A list of complete filters: operands, nothing closed early.
            "(objectClass=person)(|(ou=sales)(ou=support))",
            "(mail=*@example.org) (!(accountDisabled=TRUE))",
            "use (objectClass=person)(|(ou=sales)(ou=support)) as the filter",
        ] {
            assert!(!ldap_injection(s), "{s}");
        }
    }

    #[test]
    fn media_types() {
        let allowed = vec![
            "application/json".to_string(),
            "application/*+json".to_string(),
        ];
        assert!(media_type_allowed("application/json", &allowed));
        assert!(media_type_allowed("application/ld+json", &allowed));
        assert!(!media_type_allowed("application/x-amf", &allowed));
    }
}
