//! The request as the engine sees it: borrowed, plain data that the glue fills from Envoy
//! (`get_http_request_headers`, `get_http_request_body`) and tests build by hand.

use crate::detect::Outlined as _;

/// A view of one HTTP request. Header names must be lowercase (Envoy delivers them so);
/// HTTP/2-style pseudo headers (`:method`, `:path`, `:authority`) may be present and are used
/// when `method`/`uri` are empty or the `host` header is missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// The method as sent (`GET`, ...). Empty: taken from `:method`.
    pub method: &'a str,
    /// Path and query exactly as sent (may be percent-encoded or malformed). Empty: taken from
    /// `:path`.
    pub uri: &'a str,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`... when known (Envoy's `request.protocol` property).
    /// Some checks (missing `Content-Length`) apply to HTTP/1 only.
    pub protocol: Option<&'a str>,
    /// Header pairs in arrival order, lowercase names; repeated headers appear repeatedly.
    pub headers: &'a [(String, String)],
    /// The body, or its first bytes when `body_truncated`; `None` when not buffered (yet).
    pub body: Option<&'a [u8]>,
    /// The glue stopped buffering before the end of the body (its size limit).
    pub body_truncated: bool,
}

impl<'a> Request<'a> {
    /// A request with a method and URI and nothing else (builder start, mostly for tests).
    pub fn new(method: &'a str, uri: &'a str) -> Request<'a> {
        Request {
            method,
            uri,
            ..Request::default()
        }
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: &'a [(String, String)]) -> Request<'a> {
        self.headers = headers;
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: &'a [u8]) -> Request<'a> {
        self.body = Some(body);
        self
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name`.
    pub fn header_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The method, falling back to `:method`.
    pub fn effective_method(&self) -> &'a str {
        if self.method.is_empty() {
            self.header(":method").unwrap_or_default()
        } else {
            self.method
        }
    }

    /// The URI, falling back to `:path`.
    pub fn effective_uri(&self) -> &'a str {
        if self.uri.is_empty() {
            self.header(":path").unwrap_or_default()
        } else {
            self.uri
        }
    }

    /// `host`, falling back to `:authority`.
    pub fn host(&self) -> Option<&'a str> {
        self.header("host").or_else(|| self.header(":authority"))
    }

    /// The media type of `content-type`, lowercase, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|ct| {
            ct.split_char(';')
                .next()
                .unwrap_or_default()
                .trim()
                .ascii_lower()
        })
    }
}
