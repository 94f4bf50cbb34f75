//! API keys: configured as SHA-256 hashes with a consumer name, so manifests hold no secrets.
//!
//! The key is read from a header (first) or a query parameter, hashed, and looked up. Whatever
//! the outcome, the key is removed before the upstream (header dropped, query parameter cut out
//! of `:path`) and any client-supplied copy of the consumer header is dropped, so the upstream
//! can trust that header.

use crate::config::{ApiKeysSpec, MAX_API_KEYS, MAX_CONSUMER_LEN};
use sdk_ext::config::header_name;
use sdk_ext::{ConfigError, HeaderOps, RequestView};
use sha2::Digest;
use std::collections::HashMap;

/// What the request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck<'a> {
    /// A known key: the consumer's name.
    Valid(&'a str),
    /// A key that matches no configured hash.
    Invalid,
    /// No key (or an empty one).
    Missing,
}

/// Compiled API-key settings.
#[derive(Debug)]
pub struct ApiKeys {
    header: Option<String>,
    query: Option<String>,
    pub required: bool,
    pub consumer_header: String,
    consumers: HashMap<[u8; 32], String>,
    /// `WWW-Authenticate` of a 401 (RFC 9110 section 11.6.1: a 401 must carry a challenge):
    /// scheme `ApiKey` with where the key goes, e.g. `ApiKey realm="api", header="x-api-key"`.
    pub challenge: String,
}

/// `ApiKey realm="api", header="..", query=".."` for the configured key locations; quoted
/// strings escape `"` and `\` (RFC 9110 section 5.6.4) and keep printable ASCII only (a
/// header value cannot carry control characters).
fn challenge(header: Option<&str>, query: Option<&str>) -> String {
    let quote = |v: &str| {
        v.chars()
            .filter(|c| matches!(c, ' '..='~'))
            .collect::<String>()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    let mut out = String::from("ApiKey realm=\"api\"");
    if let Some(h) = header {
        out.push_str(&format!(", header=\"{}\"", quote(h)));
    }
    if let Some(q) = query {
        out.push_str(&format!(", query=\"{}\"", quote(q)));
    }
    out
}

impl ApiKeys {
    /// Validate `cfg`; error paths are relative to `api_keys`.
    pub fn compile(cfg: &ApiKeysSpec) -> Result<Self, ConfigError> {
        let header = cfg
            .header
            .as_deref()
            .map(|h| header_name("header", h))
            .transpose()?;
        if let Some(q) = &cfg.query {
            if q.is_empty() {
                return Err(ConfigError::new("query", "must not be empty"));
            }
        }
        if header.is_none() && cfg.query.is_none() {
            return Err(ConfigError::new(
                "$",
                "set `header` or `query` (or both): where the key is read from",
            ));
        }
        let consumer_header = header_name("consumer_header", &cfg.consumer_header)?;
        if consumer_header.starts_with(':') || Some(&consumer_header) == header.as_ref() {
            return Err(ConfigError::new(
                "consumer_header",
                "must be a regular header other than the key's header",
            ));
        }
        if cfg.keys.len() > MAX_API_KEYS {
            return Err(ConfigError::new(
                "keys",
                format!("{} keys; at most {MAX_API_KEYS}", cfg.keys.len()),
            ));
        }
        let mut consumers = HashMap::with_capacity(cfg.keys.len());
        for (i, k) in cfg.keys.iter().enumerate() {
            let at = |f: &str| format!("keys[{i}].{f}");
            let valid_name = !k.consumer.is_empty()
                && k.consumer.len() <= MAX_CONSUMER_LEN
                && k.consumer.bytes().all(|b| b.is_ascii_graphic());
            if !valid_name {
                return Err(ConfigError::new(
                    at("consumer"),
                    format!("1 to {MAX_CONSUMER_LEN} visible ASCII characters, no spaces"),
                ));
            }
            let hash = decode_sha256(&k.sha256).ok_or_else(|| {
                ConfigError::new(at("sha256"), "not a SHA-256 hash (64 hex digits)")
            })?;
            if consumers.insert(hash, k.consumer.clone()).is_some() {
                return Err(ConfigError::new(
                    at("sha256"),
                    "the same key is listed twice",
                ));
            }
        }
        Ok(Self {
            challenge: challenge(header.as_deref(), cfg.query.as_deref()),
            header,
            query: cfg.query.clone(),
            required: cfg.required,
            consumer_header,
            consumers,
        })
    }

    /// Look the request's key up.
    pub fn check(&self, req: &RequestView) -> KeyCheck<'_> {
        let from_header = self.header.as_deref().and_then(|h| req.header(h));
        let from_query = || {
            self.query
                .as_deref()
                .and_then(|q| req.query_values(q).next())
        };
        match from_header.or_else(from_query).filter(|k| !k.is_empty()) {
            None => KeyCheck::Missing,
            Some(key) => {
                let hash: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
                match self.consumers.get(&hash) {
                    Some(c) => KeyCheck::Valid(c),
                    None => KeyCheck::Invalid,
                }
            }
        }
    }

    /// Remove the key and any client-supplied consumer header before the upstream.
    pub fn strip(&self, req: &RequestView, ops: &mut HeaderOps) {
        ops.remove(self.consumer_header.as_str());
        if let Some(h) = &self.header {
            if req.header(h).is_some() {
                ops.remove(h.as_str());
            }
        }
        if let Some(q) = &self.query {
            if let Some(path) = remove_query_param(req.raw_path(), q) {
                ops.set(":path", path);
            }
        }
    }
}

fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// `:path` without every occurrence of query parameter `name` (compared after decoding, as
/// the key was read), other parameters byte-for-byte as sent; `None` if `name` is absent.
pub fn remove_query_param(raw_path: &str, name: &str) -> Option<String> {
    let (path, rest) = raw_path.split_once('?')?;
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let is_key = |pair: &&str| {
        let raw_name = pair.split('=').next().unwrap_or("");
        form_decode(raw_name) == name
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !is_key(p))
        .collect();
    if kept.len() == query.split('&').filter(|p| !p.is_empty()).count() {
        return None;
    }
    let mut out = path.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

/// Decode one `application/x-www-form-urlencoded` name the way the request view does.
fn form_decode(raw: &str) -> String {
    form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_param_removal_keeps_the_rest_verbatim() {
        let cases = [
            ("/a?api_key=s&x=1", Some("/a?x=1")),
            ("/a?x=%2F&api_key=s&y=2", Some("/a?x=%2F&y=2")),
            ("/a?api_key=s", Some("/a")),
            ("/a?api%5Fkey=s&api_key=t", Some("/a")),
            ("/a?api_key", Some("/a")),
            ("/a?x=1#frag", None),
            ("/a?api_key=1#f", Some("/a#f")),
            ("/a", None),
            ("/a?api_keys=1", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                remove_query_param(input, "api_key").as_deref(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn sha256_hex_decoding() {
        let ok = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
        assert!(decode_sha256(ok).is_some());
        assert!(decode_sha256(&ok.to_uppercase()).is_some());
        assert!(decode_sha256(&ok[1..]).is_none());
        assert!(decode_sha256(&ok.replace('2', "g")).is_none());
        assert!(decode_sha256(&"é".repeat(32)).is_none());
    }
}
