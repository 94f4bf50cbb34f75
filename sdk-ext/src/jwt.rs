//! JWT claims as Istio forwards them.
//!
//! Istio's `RequestAuthentication` with `outputPayloadToHeader: <header>` verifies the token and
//! writes its payload, base64url-encoded JSON, into `<header>`. Filters read claims from there
//! instead of verifying signatures themselves.
//!
//! **Trust:** Envoy's `jwt_authn` overwrites that header only when a valid token is present; a
//! request *without* a token passes a client-supplied header through unless the mesh requires a
//! token (`AuthorizationPolicy` with `requestPrincipals`). Filters that match on claims should
//! document this and, where a token is optional, strip the header at the edge.

use crate::config::ConfigError;
use crate::matcher::{StringMatchSpec, StringMatcher};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

/// Upper bound on the encoded payload we decode (a hostile header cannot make us parse MiBs).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// Decoded claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(Value);

impl Claims {
    /// Decode a header value: base64url (padded or not) or standard base64 of a JSON object; a
    /// full compact JWT (`header.payload.signature`) is accepted too (its payload is used).
    /// Returns `None` for anything else.
    pub fn from_header_value(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.len() > MAX_PAYLOAD_BYTES {
            return None;
        }
        let payload = match value.split('.').collect::<Vec<_>>().as_slice() {
            [_, p, _] => *p,
            _ => value,
        };
        let trimmed = payload.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
            .ok()?;
        match serde_json::from_slice::<Value>(&bytes).ok()? {
            v @ Value::Object(_) => Some(Self(v)),
            _ => None,
        }
    }

    /// Build from a JSON object (tests).
    pub fn from_json(v: Value) -> Self {
        Self(v)
    }

    /// A claim by name; dots descend into objects (`realm_access.roles`).
    pub fn get(&self, path: &str) -> Option<&Value> {
        if let Some(v) = self.0.get(path) {
            return Some(v);
        }
        path.split('.').try_fold(&self.0, |v, k| v.get(k))
    }

    /// A claim's string values: a string is one value, except `scope`/`scp` which are
    /// space-separated lists (RFC 8693); an array yields its string members; numbers and
    /// booleans are their JSON text.
    pub fn values(&self, path: &str) -> Vec<String> {
        let space_list = matches!(path, "scope" | "scp");
        let one = |v: &Value| -> Vec<String> {
            match v {
                Value::String(s) if space_list => s.split_whitespace().map(String::from).collect(),
                Value::String(s) => vec![s.clone()],
                Value::Number(n) => vec![n.to_string()],
                Value::Bool(b) => vec![b.to_string()],
                _ => vec![],
            }
        };
        match self.get(path) {
            Some(Value::Array(items)) => items.iter().flat_map(one).collect(),
            Some(v) => one(v),
            None => vec![],
        }
    }
}

/// Match a claim: `{"claim": "sub", "value": {"exact": "alice"}}`; without `value` the claim
/// only has to be present. For list claims (`aud` arrays, `scope`), any member may match:
/// `{"claim": "scope", "value": {"exact": "admin"}}` is scope membership.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClaimMatchSpec {
    pub claim: String,
    #[serde(default)]
    pub value: Option<StringMatchSpec>,
    #[serde(default)]
    pub invert: bool,
}

/// A compiled [`ClaimMatchSpec`].
#[derive(Debug, Clone)]
pub struct ClaimMatcher {
    claim: String,
    value: Option<StringMatcher>,
    invert: bool,
}

impl ClaimMatchSpec {
    pub fn compile(&self) -> Result<ClaimMatcher, ConfigError> {
        if self.claim.is_empty() {
            return Err(ConfigError::new("claim", "must not be empty"));
        }
        let value = self
            .value
            .as_ref()
            .map(|v| v.compile().map_err(|e| e.within("value")))
            .transpose()?;
        Ok(ClaimMatcher {
            claim: self.claim.clone(),
            value,
            invert: self.invert,
        })
    }
}

impl ClaimMatcher {
    /// Does the request's claims set match? No claims (no or undecodable header) never matches
    /// a non-inverted matcher.
    pub fn matches(&self, claims: Option<&Claims>) -> bool {
        let hit = claims.is_some_and(|c| {
            let values = c.values(&self.claim);
            match &self.value {
                None => c.get(&self.claim).is_some(),
                Some(m) => values.iter().any(|v| m.matches(v)),
            }
        });
        hit != self.invert
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn claims() -> Claims {
        let payload = json!({"iss": "https://auth.example.com", "sub": "alice", "aud": ["api", "web"],
                             "scope": "read write admin", "realm": {"roles": ["ops"]}, "n": 7});
        Claims::from_header_value(&encode(&payload)).unwrap()
    }

    fn m(json: &str) -> ClaimMatcher {
        serde_json::from_str::<ClaimMatchSpec>(json)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn decodes_istio_payload_header_and_full_jwts() {
        let c = claims();
        assert_eq!(c.values("sub"), ["alice"]);
        assert_eq!(c.values("aud"), ["api", "web"]);
        assert_eq!(c.values("scope"), ["read", "write", "admin"]);
        assert_eq!(c.values("realm.roles"), ["ops"]);
        assert_eq!(c.values("n"), ["7"]);
        let jwt = format!("eyJhbGciOiJub25lIn0.{}.sig", encode(&json!({"sub": "bob"})));
        assert_eq!(
            Claims::from_header_value(&jwt).unwrap().values("sub"),
            ["bob"]
        );
        let padded =
            base64::engine::general_purpose::URL_SAFE.encode(json!({"sub": "c"}).to_string());
        assert!(Claims::from_header_value(&padded).is_some());
    }

    #[test]
    fn garbage_is_no_claims() {
        for bad in ["", "!!!", "e30", "WzFd", &"A".repeat(MAX_PAYLOAD_BYTES + 1)] {
            // e30 = "{}" is an object, allowed; WzFd = "[1]" is not
            let got = Claims::from_header_value(bad);
            if bad == "e30" {
                assert!(got.is_some());
            } else {
                assert!(got.is_none(), "{bad}");
            }
        }
    }

    #[test]
    fn claim_matchers() {
        let c = claims();
        assert!(m(r#"{"claim": "sub", "value": {"exact": "alice"}}"#).matches(Some(&c)));
        assert!(m(r#"{"claim": "aud", "value": {"exact": "web"}}"#).matches(Some(&c)));
        assert!(m(r#"{"claim": "scope", "value": {"exact": "admin"}}"#).matches(Some(&c)));
        assert!(!m(r#"{"claim": "scope", "value": {"exact": "adm"}}"#).matches(Some(&c)));
        assert!(m(r#"{"claim": "iss", "value": {"prefix": "https://auth."}}"#).matches(Some(&c)));
        assert!(m(r#"{"claim": "realm.roles"}"#).matches(Some(&c)));
        assert!(!m(r#"{"claim": "missing"}"#).matches(Some(&c)));
        assert!(!m(r#"{"claim": "sub"}"#).matches(None));
        assert!(m(r#"{"claim": "sub", "invert": true}"#).matches(None));
    }

    #[test]
    fn spec_errors_name_fields() {
        let e = serde_json::from_str::<ClaimMatchSpec>(r#"{"claim": ""}"#)
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(e.path, "claim");
        let e =
            serde_json::from_str::<ClaimMatchSpec>(r#"{"claim": "s", "value": {"regex": "("}}"#)
                .unwrap()
                .compile()
                .unwrap_err();
        assert_eq!(e.path, "value.regex");
    }
}
