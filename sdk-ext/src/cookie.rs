//! Request cookies and a cookie matcher.
//!
//! Cookies are read from every `cookie` header (HTTP/1.1 sends one; HTTP/2 clients may send
//! one per cookie, RFC 9113 section 8.2.3) as `name=value` pairs separated by `;`. Values are
//! returned as sent, minus one pair of surrounding double quotes (RFC 6265 `cookie-value`); they
//! are not percent-decoded, because RFC 6265 does not define an encoding and applications
//! differ. Pairs without `=` are skipped.

use crate::config::ConfigError;
use crate::matcher::{compile_value, values_match, StringMatchSpec, StringMatcher};
use crate::view::RequestView;

/// Every `(name, value)` cookie pair in the request, in header order.
pub fn cookies(req: &RequestView) -> impl Iterator<Item = (&str, &str)> {
    pairs(req, "")
}

/// Every value of cookie `name` (names are case-sensitive, RFC 6265 section 5.4).
pub fn cookie_values<'a, 'n>(
    req: &'a RequestView,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    pairs(req, name)
        .filter(move |(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The pairs of the `cookie` headers that hold `screen`: a pair named `name` holds the name
/// as it is in the header, so a header without it has none and is not split into pairs (the
/// bench's two-cookie header cost the router's cookie rule ~2,200 Wasm operators per request
/// to parse). One iterator type for [`cookies`] (empty screen) and [`cookie_values`], so the
/// module holds one copy of the splitting.
fn pairs<'a, 'n>(
    req: &'a RequestView,
    screen: &'n str,
) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a, 'n> {
    req.header_values("cookie")
        .filter(move |h| holds(h.as_bytes(), screen.as_bytes()))
        .flat_map(parse_cookie_header)
}

/// Does `header` hold `name` anywhere? Its first byte found, then the rest compared: at most
/// `name.len()` compares per header byte, `name` being a configured cookie name (core's
/// substring search cost the router 1.9 KB of module).
#[inline(never)]
fn holds(header: &[u8], name: &[u8]) -> bool {
    name.is_empty()
        || header
            .windows(name.len())
            .any(|w| w.first() == name.first() && w == name)
}

/// The pairs of one `cookie` header value.
pub fn parse_cookie_header(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((name, value))
    })
}

/// Match a cookie: `{"name": "beta", "value": {"exact": "yes"}}`; without `value` the cookie
/// only has to be present. `invert: true` negates the result (so it matches a missing cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieMatchSpec {
    pub name: String,
    pub value: Option<StringMatchSpec>,
    pub invert: bool,
}

crate::matcher::named_match_spec!(CookieMatchSpec, name);

/// A compiled [`CookieMatchSpec`].
#[derive(Debug, Clone)]
pub struct CookieMatcher {
    name: String,
    value: Option<StringMatcher>,
    invert: bool,
}

impl CookieMatchSpec {
    /// Validate and compile; errors are relative (`name`, `value.regex`).
    pub fn compile(&self) -> Result<CookieMatcher, ConfigError> {
        let valid = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if self.name.is_empty() || !self.name.chars().all(valid) {
            return Err(ConfigError::new(
                "name",
                format!("`{}` is not a valid cookie name", self.name),
            ));
        }
        Ok(CookieMatcher {
            name: self.name.clone(),
            value: compile_value(&self.value)?,
            invert: self.invert,
        })
    }
}

impl CookieMatcher {
    /// The cookie name this matcher reads.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Does any value of the cookie match (or, inverted, none)?
    pub fn matches(&self, req: &RequestView) -> bool {
        values_match(&self.value, self.invert, cookie_values(req, &self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RequestBuilder;

    fn m(json: &str) -> CookieMatcher {
        crate::config::from_str::<CookieMatchSpec>(json)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn parses_pairs_across_headers_quotes_and_junk() {
        let req = RequestBuilder::get("/")
            .header("cookie", "a=1; b=\"two\";c=;  ;noeq; =x; d=x=y")
            .header("cookie", "a=3")
            .build();
        let all: Vec<_> = cookies(&req).collect();
        assert_eq!(
            all,
            [
                ("a", "1"),
                ("b", "two"),
                ("c", ""),
                ("d", "x=y"),
                ("a", "3")
            ]
        );
        assert_eq!(cookie_values(&req, "a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(
            cookie_values(&req, "A").next(),
            None,
            "names are case-sensitive"
        );
    }

    #[test]
    fn a_header_without_the_name_holds_no_such_cookie() {
        // The screen in `cookie_values` must never drop a value the full parse finds: every
        // header made of these pieces, every name, against the unscreened parse.
        let pieces = [
            "a", "b", "ab", "=", ";", " ", "\"", "1", "a=", "b=x", "\t", "é",
        ];
        let names = ["a", "b", "ab", "ba", "é", "a b", "=", ""];
        let mut headers = vec![String::new()];
        for _ in 0..4 {
            headers = headers
                .iter()
                .flat_map(|h| pieces.iter().map(move |p| format!("{h}{p}")))
                .collect();
        }
        for h in &headers {
            let req = RequestBuilder::get("/").header("cookie", h).build();
            for name in names {
                let all: Vec<_> = cookies(&req)
                    .filter(|(n, _)| *n == name)
                    .map(|(_, v)| v)
                    .collect();
                let screened: Vec<_> = cookie_values(&req, name).collect();
                assert_eq!(screened, all, "{h:?} {name:?}");
            }
        }
    }

    #[test]
    fn matcher_semantics() {
        let req = RequestBuilder::get("/")
            .header("cookie", "beta=yes; uid=42")
            .build();
        assert!(m(r#"{"name": "beta"}"#).matches(&req));
        assert!(m(r#"{"name": "beta", "value": {"exact": "yes"}}"#).matches(&req));
        assert!(!m(r#"{"name": "beta", "value": {"exact": "no"}}"#).matches(&req));
        assert!(!m(r#"{"name": "gamma"}"#).matches(&req));
        assert!(m(r#"{"name": "gamma", "invert": true}"#).matches(&req));
        assert!(!m(r#"{"name": "beta"}"#).matches(&RequestBuilder::get("/").build()));
    }

    #[test]
    fn spec_errors_name_fields() {
        for (json, path) in [
            (r#"{"name": ""}"#, "name"),
            (r#"{"name": "a b"}"#, "name"),
            (r#"{"name": "a", "value": {"regex": "("}}"#, "value.regex"),
        ] {
            let e = crate::config::from_str::<CookieMatchSpec>(json)
                .unwrap()
                .compile()
                .unwrap_err();
            assert_eq!(e.path, path, "{json}");
        }
    }
}
