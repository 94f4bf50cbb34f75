//! JWT claims, from where Envoy's `jwt_authn` filter puts them after verifying a token.
//!
//! **Default: dynamic metadata.** A `jwt_authn` provider with `payload_in_metadata: KEY`
//! verifies the token's signature, issuer, audience and expiry, then stores the payload as a
//! `google.protobuf.Struct` under `metadata.filter_metadata["envoy.filters.http.jwt_authn"][KEY]`
//! (read here from the `metadata` property, which Envoy serializes as protobuf).
//! A client cannot write dynamic metadata, and a missing, unsigned, forged or expired token
//! leaves nothing there, so claims read from it are claims of a verified token. Istio's
//! `RequestAuthentication` uses the key `payload` (this module's default; istio/istio
//! `EnvoyJwtFilterPayload`; releases before 1.2x used the issuer); plain Envoy uses whatever the
//! provider's `payload_in_metadata` says.
//!
//! **Opt-in: a header** (`payload_header`), for deployments where a trusted hop writes the
//! payload into a header (Istio's `outputPayloadToHeader`). Only the payload form is accepted
//! (base64 of a JSON object): a full compact JWT (`header.payload.signature`) is refused, since
//! accepting it would mean trusting a token nobody verified. `jwt_authn` overwrites that header
//! only when a valid token is present, so the edge must remove client copies of it (or require
//! a token) before this filter can trust it.

use crate::config::{header_name, ConfigError, FromJson, Node};
use crate::json::Json;
use crate::matcher::{compile_value, StringMatchSpec, StringMatcher};
use crate::view::RequestView;

/// Upper bound on the encoded payload we decode (a hostile header cannot make us parse MiBs).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
/// Upper bound on the serialized dynamic metadata we read claims from.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// Nesting depth past which a metadata payload is refused (no unbounded recursion).
pub const MAX_DEPTH: usize = 32;
/// `jwt_authn`'s dynamic metadata namespace.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";
/// Default `payload_in_metadata` key.
pub const DEFAULT_METADATA_KEY: &str = "payload";

/// Where claims come from, as users write it (a filter's `jwt` object). `{}` (or no `jwt` at
/// all) reads `jwt_authn`'s metadata under `payload`.
///
/// ```json
/// {"metadata_key": "payload"}              // the provider's payload_in_metadata
/// {"payload_header": "x-jwt-payload"}          // opt-in, payload form only
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtSourceSpec {
    /// The provider's `payload_in_metadata` key. Default `payload` (what Istio sets).
    pub metadata_key: Option<String>,
    /// The metadata namespace. Default `envoy.filters.http.jwt_authn`.
    pub metadata_namespace: Option<String>,
    /// Read the payload from this header instead of metadata (explicit opt-in; payload form
    /// only, never a compact JWT).
    pub payload_header: Option<String>,
}

impl FromJson for JwtSourceSpec {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        crate::read_object!(node => Self {
            metadata_key: opt("metadata_key"),
            metadata_namespace: opt("metadata_namespace"),
            payload_header: opt("payload_header"),
        })
    }
}

/// A compiled [`JwtSourceSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSource {
    /// `metadata.filter_metadata[namespace][key]`.
    Metadata { namespace: String, key: String },
    /// A header holding the base64 payload (lowercase name).
    Header(String),
}

impl Default for ClaimSource {
    fn default() -> Self {
        Self::Metadata {
            namespace: JWT_AUTHN_NAMESPACE.into(),
            key: DEFAULT_METADATA_KEY.into(),
        }
    }
}

impl JwtSourceSpec {
    /// Validate. Errors name the field (`payload_header`, `metadata_key`).
    pub fn compile(&self) -> Result<ClaimSource, ConfigError> {
        if let Some(h) = &self.payload_header {
            for (field, set) in [
                ("metadata_key", self.metadata_key.is_some()),
                ("metadata_namespace", self.metadata_namespace.is_some()),
            ] {
                if set {
                    return Err(ConfigError::new(
                        field,
                        "claims come either from metadata or from `payload_header`, not both",
                    ));
                }
            }
            return Ok(ClaimSource::Header(header_name("payload_header", h)?));
        }
        let nonempty = |field: &str, v: &Option<String>, default: &str| match v {
            Some(s) if s.is_empty() => Err(ConfigError::new(field, "must not be empty")),
            Some(s) => Ok(s.clone()),
            None => Ok(default.to_string()),
        };
        Ok(ClaimSource::Metadata {
            namespace: nonempty(
                "metadata_namespace",
                &self.metadata_namespace,
                JWT_AUTHN_NAMESPACE,
            )?,
            key: nonempty("metadata_key", &self.metadata_key, DEFAULT_METADATA_KEY)?,
        })
    }
}

impl ClaimSource {
    /// The request's verified claims, if any.
    pub fn claims(&self, req: &RequestView) -> Option<Claims> {
        match self {
            Self::Header(h) => req.header(h).and_then(Claims::from_payload_header),
            // The whole `metadata` property, not a path into it: Envoy serializes a message
            // as protobuf (typed), but a map-valued path (`metadata.filter_metadata.ns.key`)
            // as an untyped pair list where the string "abcdefgh" and a number look alike.
            Self::Metadata { namespace, key } => req
                .raw_property(&["metadata"])
                .and_then(|bytes| Claims::from_metadata(&bytes, namespace, key)),
        }
    }

    /// The header this source reads, if it is a header.
    pub fn header(&self) -> Option<&str> {
        match self {
            Self::Header(h) => Some(h),
            Self::Metadata { .. } => None,
        }
    }
}

/// Unpadded base64 (RFC 4648) with `c62` and `c63` as the last two symbols (`-` `_` for
/// base64url, section 5; `+` `/` for standard base64, section 4), as the `base64` crate's
/// `URL_SAFE_NO_PAD` and `STANDARD_NO_PAD` engines decode it: any byte outside the alphabet
/// (`=` included), a length of 4n+1 symbols, or set bits after the last whole byte make it
/// `None`.
///
/// Why not the crate: its general-purpose engine is ~4.6 KB of Wasm code in every module
/// that links the matchers, for this one call per claims header. `jwt::tests` checks this
/// decoder against the crate on every input of up to 3 symbols and on generated ones.
fn base64_decode(text: &[u8], c62: u8, c63: u8) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            _ if c == c62 => 62,
            _ if c == c63 => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // What is left is the last symbol's bits below the last byte: canonical encodings zero them.
    (acc == 0).then_some(out)
}

/// Decoded claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(crate::json::Document);

impl Claims {
    /// Decode a payload header: base64url (padded or not) or standard base64 of a JSON object.
    /// A compact JWT (`header.payload.signature`) is **not** a payload and gives `None`, as
    /// does anything else that is not a JSON object.
    pub fn from_payload_header(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.len() > MAX_PAYLOAD_BYTES || value.contains('.') {
            return None;
        }
        let trimmed = value.trim_end_matches('=');
        let bytes = base64_decode(trimmed.as_bytes(), b'-', b'_')
            .or_else(|| base64_decode(trimmed.as_bytes(), b'+', b'/'))?;
        // The configuration's parser: strict RFC 8259, and a payload with a duplicate claim is
        // refused (no claims) rather than read as whichever copy a parser keeps.
        match crate::json::parse(&bytes).ok()? {
            v @ Json::Object(_) => Some(Self(crate::json::Document::new(v))),
            _ => None,
        }
    }

    /// The payload `jwt_authn` stored under `filter_metadata[namespace][key]`, from the
    /// request's dynamic metadata as Envoy serializes it (`envoy.config.core.v3.Metadata`,
    /// protobuf). `None` when absent, not an object, malformed, larger than
    /// [`MAX_METADATA_BYTES`] or nested deeper than [`MAX_DEPTH`].
    pub fn from_metadata(bytes: &[u8], namespace: &str, key: &str) -> Option<Self> {
        if bytes.len() > MAX_METADATA_BYTES {
            return None;
        }
        let fields = pb::filter_metadata(bytes, namespace)?;
        match pb::decode_struct(fields, 0)? {
            Json::Object(members) => match members.into_iter().find(|(k, _)| k == key)?.1 {
                v @ Json::Object(_) => Some(Self(crate::json::Document::new(v))),
                _ => None,
            },
            _ => None,
        }
    }

    /// Build from a JSON object (tests).
    pub fn from_json(v: Json) -> Self {
        Self(crate::json::Document::new(v))
    }

    /// A claim by name; dots descend into objects (`realm_access.roles`).
    pub fn get(&self, path: &str) -> Option<&Json> {
        if let Some(v) = self.0.get(path) {
            return Some(v);
        }
        path.split('.').try_fold(&*self.0, |v, k| v.get(k))
    }

    /// A claim's string values: a string is one value, except `scope`/`scp` which are
    /// space-separated lists (RFC 8693); an array yields its string members; numbers and
    /// booleans are their JSON text (a payload header's numbers as written, metadata's
    /// doubles in their shortest form: `7`, `1.5`).
    pub fn values(&self, path: &str) -> Vec<String> {
        let space_list = matches!(path, "scope" | "scp");
        let one = |v: &Json| -> Vec<String> {
            match v {
                Json::String(s) if space_list => s.split_whitespace().map(String::from).collect(),
                Json::String(s) => vec![s.clone()],
                Json::Number(n) => vec![n.clone()],
                Json::Bool(b) => vec![b.to_string()],
                _ => vec![],
            }
        };
        match self.get(path) {
            Some(Json::Array(items)) => items.iter().flat_map(one).collect(),
            Some(v) => one(v),
            None => vec![],
        }
    }
}

/// Match a claim: `{"claim": "sub", "value": {"exact": "alice"}}`; without `value` the claim
/// only has to be present. For list claims (`aud` arrays, `scope`), any member may match:
/// `{"claim": "scope", "value": {"exact": "admin"}}` is scope membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMatchSpec {
    pub claim: String,
    pub value: Option<StringMatchSpec>,
    pub invert: bool,
}

crate::matcher::named_match_spec!(ClaimMatchSpec, claim);

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
        Ok(ClaimMatcher {
            claim: self.claim.clone(),
            value: compile_value(&self.value)?,
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

/// Just enough protobuf to read a `google.protobuf.Struct` (the wire format is stable:
/// `Struct{map<string, Value> fields = 1}`, `Value{null=1, number=2, string=3, bool=4,
/// struct=5, list=6}`, `ListValue{repeated Value values = 1}`). No dependency, bounded depth.
mod pb {
    use super::MAX_DEPTH;
    use crate::json::Json;

    struct Reader<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    impl<'a> Reader<'a> {
        fn new(buf: &'a [u8]) -> Self {
            Self { buf, pos: 0 }
        }

        fn done(&self) -> bool {
            self.pos >= self.buf.len()
        }

        fn varint(&mut self) -> Option<u64> {
            let mut v: u64 = 0;
            for shift in (0..64).step_by(7) {
                let b = *self.buf.get(self.pos)?;
                self.pos += 1;
                v |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Some(v);
                }
            }
            None
        }

        fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
            let end = self.pos.checked_add(n)?;
            let out = self.buf.get(self.pos..end)?;
            self.pos = end;
            Some(out)
        }

        /// (field number, wire type)
        fn tag(&mut self) -> Option<(u64, u8)> {
            let t = self.varint()?;
            Some((t >> 3, (t & 7) as u8))
        }

        fn len_delimited(&mut self) -> Option<&'a [u8]> {
            let n = usize::try_from(self.varint()?).ok()?;
            self.bytes(n)
        }

        fn skip(&mut self, wire: u8) -> Option<()> {
            match wire {
                0 => self.varint().map(|_| ()),
                1 => self.bytes(8).map(|_| ()),
                2 => self.len_delimited().map(|_| ()),
                5 => self.bytes(4).map(|_| ()),
                _ => None,
            }
        }
    }

    /// The `Struct` bytes of `Metadata.filter_metadata[namespace]` (field 1, a map of
    /// namespace to `Struct`); other namespaces are skipped undecoded.
    pub(super) fn filter_metadata<'a>(buf: &'a [u8], namespace: &str) -> Option<&'a [u8]> {
        let mut r = Reader::new(buf);
        while !r.done() {
            match r.tag()? {
                (1, 2) => {
                    let mut entry = Reader::new(r.len_delimited()?);
                    let (mut name, mut value) = (None, None);
                    while !entry.done() {
                        match entry.tag()? {
                            (1, 2) => name = Some(entry.len_delimited()?),
                            (2, 2) => value = Some(entry.len_delimited()?),
                            (_, wire) => entry.skip(wire)?,
                        }
                    }
                    if name == Some(namespace.as_bytes()) {
                        return Some(value.unwrap_or_default());
                    }
                }
                (_, wire) => r.skip(wire)?,
            }
        }
        None
    }

    pub(super) fn decode_struct(buf: &[u8], depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut r = Reader::new(buf);
        let mut members: Vec<(String, Json)> = Vec::new();
        while !r.done() {
            match r.tag()? {
                (1, 2) => {
                    let entry = r.len_delimited()?;
                    let (k, v) = decode_entry(entry, depth)?;
                    // A protobuf map keeps the last entry of a key.
                    match members.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => members.push((k, v)),
                    }
                }
                (_, wire) => r.skip(wire)?,
            }
        }
        Some(Json::Object(members))
    }

    fn decode_entry(buf: &[u8], depth: usize) -> Option<(String, Json)> {
        let mut r = Reader::new(buf);
        let (mut key, mut value) = (String::new(), Json::Null);
        while !r.done() {
            match r.tag()? {
                (1, 2) => key = String::from_utf8(r.len_delimited()?.to_vec()).ok()?,
                (2, 2) => value = decode_value(r.len_delimited()?, depth)?,
                (_, wire) => r.skip(wire)?,
            }
        }
        Some((key, value))
    }

    fn decode_value(buf: &[u8], depth: usize) -> Option<Json> {
        let mut r = Reader::new(buf);
        let mut value = Json::Null;
        while !r.done() {
            value = match r.tag()? {
                (1, 0) => r.varint().map(|_| Json::Null)?,
                (2, 1) => {
                    let raw: [u8; 8] = r.bytes(8)?.try_into().ok()?;
                    number(f64::from_le_bytes(raw))
                }
                (3, 2) => Json::String(String::from_utf8(r.len_delimited()?.to_vec()).ok()?),
                (4, 0) => Json::Bool(r.varint()? != 0),
                (5, 2) => decode_struct(r.len_delimited()?, depth + 1)?,
                (6, 2) => decode_list(r.len_delimited()?, depth + 1)?,
                (_, wire) => {
                    r.skip(wire)?;
                    continue;
                }
            };
        }
        Some(value)
    }

    fn decode_list(buf: &[u8], depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut r = Reader::new(buf);
        let mut items = Vec::new();
        while !r.done() {
            match r.tag()? {
                (1, 2) => items.push(decode_value(r.len_delimited()?, depth)?),
                (_, wire) => r.skip(wire)?,
            }
        }
        Some(Json::Array(items))
    }

    /// Struct numbers are doubles; whole numbers become JSON integers, so a claim `7` reads
    /// as `7` from metadata just as from a payload header. Others are written with the fewest
    /// decimals (up to 17) that give the same double back (`1.5`, `0.1`); a double that needs
    /// more (or an exponent, `1e-20`) is `null`: no string matcher can name it anyway.
    fn number(f: f64) -> Json {
        number_text(f).map_or(Json::Null, Json::Number)
    }

    /// The JSON text of a Struct number (see [`number`]).
    pub(super) fn number_text(f: f64) -> Option<String> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if f.fract() == 0.0 && f.abs() <= EXACT {
            // Lossless: |f| <= 2^53 and whole.
            #[allow(clippy::cast_possible_truncation)]
            return Some((f as i64).to_string());
        }
        decimal(f)
    }

    /// `f` as the shortest `[-]int.frac` with at most 17 decimals that divides back to `f`
    /// exactly (IEEE division is correctly rounded, so that text parses back to `f`). Integer
    /// arithmetic only: no float formatting code in the module.
    fn decimal(f: f64) -> Option<String> {
        if !f.is_finite() {
            return None;
        }
        let mut scale = 1.0f64;
        for decimals in 1..=17usize {
            scale *= 10.0;
            let scaled = (f * scale).round();
            if scaled.abs() >= 9.0e18 {
                return None;
            }
            if scaled / scale == f {
                // |scaled| < 9e18: exact in i64.
                #[allow(clippy::cast_possible_truncation)]
                let n = scaled as i64;
                let digits = format!("{:0>width$}", n.unsigned_abs(), width = decimals + 1);
                let (int, frac) = digits.split_at(digits.len() - decimals);
                let sign = if n < 0 { "-" } else { "" };
                return Some(format!("{sign}{int}.{frac}"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::{json, Value};

    /// The decoder agrees with the `base64` crate's two unpadded engines on every string of
    /// up to 3 symbols over an alphabet with each symbol class and some outsiders (`=`, `.`,
    /// space, a non-ASCII byte), and on 20,000 generated strings of up to 40 symbols.
    #[test]
    fn base64_decoding_agrees_with_the_base64_crate() {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let symbols: &[u8] = b"AQZagz09-_+/=. \xc3";
        let check = |t: &[u8]| {
            assert_eq!(
                base64_decode(t, b'-', b'_'),
                URL_SAFE_NO_PAD.decode(t).ok(),
                "{t:?}"
            );
            assert_eq!(
                base64_decode(t, b'+', b'/'),
                STANDARD_NO_PAD.decode(t).ok(),
                "{t:?}"
            );
        };
        check(b"");
        for &a in symbols {
            check(&[a]);
            for &b in symbols {
                check(&[a, b]);
                for &c in symbols {
                    check(&[a, b, c]);
                }
            }
        }
        let alphabet: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=";
        let mut x = 0x2545_f491u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 41) as usize;
            // Mostly valid base64url (every 8th string may hold any symbol of the list).
            let span = if next() % 8 == 0 { alphabet.len() } else { 64 };
            let t: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() as usize) % span])
                .collect();
            check(&t);
        }
        // Valid encodings of random bytes round-trip.
        for n in 0..64 {
            let data: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            let text = URL_SAFE_NO_PAD.encode(&data);
            assert_eq!(base64_decode(text.as_bytes(), b'-', b'_'), Some(data));
        }
    }

    fn encode(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn claims() -> Claims {
        let payload = json!({"iss": "https://auth.example.com", "sub": "alice", "aud": ["api", "web"],
                             "scope": "read write admin", "realm": {"roles": ["ops"]}, "n": 7});
        Claims::from_payload_header(&encode(&payload)).unwrap()
    }

    fn m(json: &str) -> ClaimMatcher {
        crate::config::from_str::<ClaimMatchSpec>(json)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn decodes_payload_headers_but_never_a_compact_jwt() {
        let c = claims();
        assert_eq!(c.values("sub"), ["alice"]);
        assert_eq!(c.values("aud"), ["api", "web"]);
        assert_eq!(c.values("scope"), ["read", "write", "admin"]);
        assert_eq!(c.values("realm.roles"), ["ops"]);
        assert_eq!(c.values("n"), ["7"]);
        let jwt = format!("eyJhbGciOiJub25lIn0.{}.sig", encode(&json!({"sub": "bob"})));
        assert_eq!(Claims::from_payload_header(&jwt), None);
        let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", encode(&json!({"sub": "bob"})));
        assert_eq!(Claims::from_payload_header(&unsigned), None);
        let padded =
            base64::engine::general_purpose::URL_SAFE.encode(json!({"sub": "c"}).to_string());
        assert!(Claims::from_payload_header(&padded).is_some());
    }

    #[test]
    fn source_defaults_to_jwt_authn_metadata_and_header_is_opt_in() {
        let src = |j: &str| {
            crate::config::from_str::<JwtSourceSpec>(j)
                .unwrap()
                .compile()
        };
        assert_eq!(src("{}").unwrap(), ClaimSource::default());
        assert_eq!(
            src(r#"{"metadata_key": "https://idp"}"#).unwrap(),
            ClaimSource::Metadata {
                namespace: JWT_AUTHN_NAMESPACE.into(),
                key: "https://idp".into()
            }
        );
        assert_eq!(
            src(r#"{"payload_header": "X-Jwt"}"#).unwrap(),
            ClaimSource::Header("x-jwt".into())
        );
        let e = src(r#"{"payload_header": "x", "metadata_key": "k"}"#).unwrap_err();
        assert_eq!(e.path, "metadata_key");
        assert_eq!(
            src(r#"{"metadata_key": ""}"#).unwrap_err().path,
            "metadata_key"
        );
    }

    #[test]
    fn metadata_payload_decodes_like_the_json_payload() {
        let payload = json!({"sub": "alice", "aud": ["api", "web"], "n": 7,
            "ok": true, "realm": {"roles": ["ops"]}, "none": null, "f": 1.5});
        let bytes = crate::testing::metadata_bytes(&json!({
            "other.filter": {"x": 1},
            JWT_AUTHN_NAMESPACE: {"not-ours": "x", "payload": payload}}));
        let c = Claims::from_metadata(&bytes, JWT_AUTHN_NAMESPACE, "payload").unwrap();
        assert_eq!(c.values("sub"), ["alice"]);
        assert_eq!(c.values("aud"), ["api", "web"]);
        assert_eq!(c.values("n"), ["7"]);
        assert_eq!(c.values("ok"), ["true"]);
        assert_eq!(c.values("realm.roles"), ["ops"]);
        assert_eq!(c.values("f"), ["1.5"]);
        assert!(c.get("none").is_some_and(|v| *v == Json::Null));
        assert_eq!(
            Claims::from_metadata(&bytes, JWT_AUTHN_NAMESPACE, "other"),
            None
        );
        assert_eq!(
            Claims::from_metadata(&bytes, JWT_AUTHN_NAMESPACE, "not-ours"),
            None
        );
        assert_eq!(
            Claims::from_metadata(&bytes, "other.filter", "payload"),
            None
        );
        // Truncated, garbage and over-deep inputs are no claims, never a panic.
        for cut in 0..bytes.len() {
            let _ = Claims::from_metadata(&bytes[..cut], JWT_AUTHN_NAMESPACE, "payload");
        }
        assert_eq!(Claims::from_metadata(&[0xff, 0xff, 0xff], "a", "b"), None);
        let mut deep = json!("x");
        for _ in 0..(MAX_DEPTH + 2) {
            deep = json!({ "a": deep });
        }
        let deep = crate::testing::metadata_bytes(&json!({JWT_AUTHN_NAMESPACE: {"k": deep}}));
        assert_eq!(Claims::from_metadata(&deep, JWT_AUTHN_NAMESPACE, "k"), None);
    }

    /// Metadata doubles read as the text serde_json (ryu) wrote for them, without float
    /// formatting code.
    #[test]
    fn metadata_numbers_read_as_their_shortest_text() {
        for f in [
            1.5,
            0.1,
            -0.5,
            123.456,
            3.25,
            1e-5,
            0.3,
            2.675,
            -1234.5678,
            1.0 / 3.0,
        ] {
            let ours = super::pb::number_text(f);
            let theirs = serde_json::Number::from_f64(f).unwrap().to_string();
            assert_eq!(ours.as_deref(), Some(theirs.as_str()), "{f}");
        }
        assert_eq!(super::pb::number_text(7.0).as_deref(), Some("7"));
        assert_eq!(super::pb::number_text(1e-20), None);
        assert_eq!(super::pb::number_text(f64::NAN), None);
    }

    #[test]
    fn garbage_is_no_claims() {
        for bad in ["", "!!!", "e30", "WzFd", &"A".repeat(MAX_PAYLOAD_BYTES + 1)] {
            // e30 = "{}" is an object, allowed; WzFd = "[1]" is not
            let got = Claims::from_payload_header(bad);
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
        let e = crate::config::from_str::<ClaimMatchSpec>(r#"{"claim": ""}"#)
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(e.path, "claim");
        let e =
            crate::config::from_str::<ClaimMatchSpec>(r#"{"claim": "s", "value": {"regex": "("}}"#)
                .unwrap()
                .compile()
                .unwrap_err();
        assert_eq!(e.path, "value.regex");
    }
}
