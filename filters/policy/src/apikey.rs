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
    /// Key hashes and their consumers, sorted by hash (binary search: a SHA-256 digest is
    /// compared in a few 32-byte comparisons, and no hash table is instantiated for it).
    consumers: Vec<([u8; 32], String)>,
    /// `WWW-Authenticate` of a 401 (RFC 9110 section 11.6.1: a 401 must carry a challenge):
    /// scheme `ApiKey` with where the key goes, e.g. `ApiKey realm="api", header="x-api-key"`.
    pub challenge: String,
}

/// `ApiKey realm="api", header="..", query=".."` for the configured key locations; quoted
/// strings escape `"` and `\` (RFC 9110 section 5.6.4) and keep printable ASCII only (a
/// header value cannot carry control characters).
fn challenge(header: Option<&str>, query: Option<&str>) -> String {
    let mut out = String::from("ApiKey realm=\"api\"");
    for (param, value) in [(", header=\"", header), (", query=\"", query)] {
        if let Some(v) = value {
            out.push_str(param);
            quote_into(&mut out, v);
            out.push('"');
        }
    }
    out
}

/// `v`'s printable ASCII, with `\` and `"` escaped, appended to `out` (a quoted string's
/// content).
fn quote_into(out: &mut String, v: &str) {
    // Bytes: a non-ASCII character's bytes are all above `~`.
    for c in v.bytes().filter(|c| matches!(c, b' '..=b'~')) {
        if matches!(c, b'\\' | b'"') {
            out.push('\\');
        }
        out.push(char::from(c));
    }
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
        // Validate in order up to the first bad entry, then look for repeated hashes among the
        // entries before it: the error is whichever the entries, read in order, meet first.
        let mut hashes: Vec<([u8; 32], u32)> = Vec::with_capacity(cfg.keys.len());
        let mut first_bad = None;
        for (i, k) in cfg.keys.iter().enumerate() {
            let valid_name = !k.consumer.is_empty()
                && k.consumer.len() <= MAX_CONSUMER_LEN
                && k.consumer.bytes().all(|b| b.is_ascii_graphic());
            if !valid_name {
                first_bad = Some(key_error(
                    i,
                    "consumer",
                    format!("1 to {MAX_CONSUMER_LEN} visible ASCII characters, no spaces"),
                ));
                break;
            }
            let Some(hash) = decode_sha256(&k.sha256) else {
                first_bad = Some(key_error(
                    i,
                    "sha256",
                    "not a SHA-256 hash (64 hex digits)".into(),
                ));
                break;
            };
            // `keys` is at most `MAX_API_KEYS` long.
            hashes.push((hash, u32::try_from(i).unwrap_or(u32::MAX)));
        }
        heap_sort(&mut hashes);
        if let Some(i) = first_repeat(&hashes) {
            return Err(key_error(
                i,
                "sha256",
                "the same key is listed twice".into(),
            ));
        }
        if let Some(e) = first_bad {
            return Err(e);
        }
        let consumers = hashes
            .iter()
            .map(|(hash, i)| {
                let consumer = cfg.keys.get(*i as usize).map_or("", |k| &k.consumer);
                (*hash, consumer.to_string())
            })
            .collect();
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
                match self
                    .consumers
                    .binary_search_by(|(h, _)| hash_order(h, &hash))
                {
                    Ok(at) => self
                        .consumers
                        .get(at)
                        .map_or(KeyCheck::Invalid, |(_, c)| KeyCheck::Valid(c)),
                    Err(_) => KeyCheck::Invalid,
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

/// An error at `keys[i].field`.
#[inline(never)]
fn key_error(i: usize, field: &str, reason: String) -> ConfigError {
    ConfigError {
        path: format!("keys[{i}].{field}"),
        reason,
    }
}

/// Sort by hash, then index: in place, O(n log n), no allocation (a heap sort: one small
/// function instead of the standard library's sort instantiated for this type).
fn heap_sort(v: &mut [([u8; 32], u32)]) {
    fn sift_down(v: &mut [([u8; 32], u32)], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && before(&v[child], &v[child + 1]) {
                child += 1;
            }
            if !before(&v[root], &v[child]) {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift_down(v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

/// The order of two hashes (big-endian, as bytes compare): eight bytes a step, one copy (a
/// derived comparison of two `[u8; 32]` is 32 inline byte comparisons at each use).
#[inline(never)]
fn hash_order(a: &[u8; 32], b: &[u8; 32]) -> std::cmp::Ordering {
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_be_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_be_bytes(y.try_into().unwrap_or_default());
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

/// `a` sorts before `b`: by hash, then index.
fn before(a: &([u8; 32], u32), b: &([u8; 32], u32)) -> bool {
    hash_order(&a.0, &b.0).then(a.1.cmp(&b.1)).is_lt()
}

/// In `sorted` (by hash, then index), the smallest index whose hash an earlier index has.
fn first_repeat(sorted: &[([u8; 32], u32)]) -> Option<usize> {
    sorted
        .windows(2)
        .filter(|w| hash_order(&w[0].0, &w[1].0).is_eq())
        .map(|w| w[1].1 as usize)
        .min()
}

fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        // What `u8::from_str_radix(pair, 16)` accepts: two hex digits, or `+` and one.
        *out.get_mut(i)? = match *pair {
            [b'+', d] => nibble(d)?,
            [h, l] => nibble(h)? << 4 | nibble(l)?,
            _ => return None,
        };
    }
    Some(out)
}

/// A hex digit's value.
fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `:path` without every occurrence of query parameter `name` (compared after decoding, as
/// the key was read), other parameters byte-for-byte as sent; `None` if `name` is absent.
#[inline(never)]
pub fn remove_query_param(raw_path: &str, name: &str) -> Option<String> {
    // Byte scans for the ASCII delimiters (their offsets are char boundaries): std's char
    // searchers were most of this function's code.
    let (path, rest) = cut(raw_path, b'?')?;
    let (query, fragment) = match cut(rest, b'#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    // One pass: the kept parameters (empty ones dropped), joined by `&` after a `?`.
    let mut out = String::with_capacity(raw_path.len());
    out.push_str(path);
    let mut removed = false;
    let mut sep = '?';
    let mut rest = Some(query);
    while let Some(text) = rest {
        let (pair, next) = cut(text, b'&').map_or((text, None), |(p, n)| (p, Some(n)));
        rest = next;
        if pair.is_empty() {
            continue;
        }
        let raw_name = cut(pair, b'=').map_or(pair, |(n, _)| n);
        if decodes_to(raw_name, name) {
            removed = true;
            continue;
        }
        out.push(sep);
        out.push_str(pair);
        sep = '&';
    }
    if !removed {
        return None;
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

/// `text` split at the first `delim` (ASCII), which neither part keeps.
fn cut(text: &str, delim: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == delim)?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}

/// Whether `raw`, one `application/x-www-form-urlencoded` name, decodes to `name` the way the
/// request view decodes names (`form_urlencoded::parse`): `+` is a space, `%` and two hex
/// digits a byte, any other `%` itself, then UTF-8 with U+FFFD for invalid sequences. Written
/// out: the crate's iterators inlined here were ~1 KB of module (a test compares the two).
fn decodes_to(raw: &str, name: &str) -> bool {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).copied().and_then(nibble),
                b.get(i + 2).copied().and_then(nibble),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(c),
        }
        i += 1;
    }
    match std::str::from_utf8(&out) {
        Ok(decoded) => decoded == name,
        Err(_) => String::from_utf8_lossy(&out) == name,
    }
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

    fn spec(keys: &[(&str, String)]) -> ApiKeysSpec {
        ApiKeysSpec {
            header: Some("x-api-key".into()),
            query: None,
            required: false,
            consumer_header: "x-api-consumer".into(),
            keys: keys
                .iter()
                .map(|(c, h)| crate::config::ApiKeySpec {
                    consumer: c.to_string(),
                    sha256: h.clone(),
                })
                .collect(),
        }
    }

    fn hex_of(key: &str) -> String {
        sha2::Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The errors a key list gets are the ones a single pass in order meets first (a repeated
    /// hash at its second occurrence, a bad consumer or hash where it stands).
    #[test]
    fn key_list_errors_are_met_in_order() {
        let (a, b, c) = (hex_of("a"), hex_of("b"), hex_of("c"));
        type Case<'a> = (Vec<(&'a str, String)>, Option<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                vec![("x", a.clone()), ("y", b.clone()), ("z", c.clone())],
                None,
            ),
            (
                vec![("x", a.clone()), ("y", b.clone()), ("z", a.to_uppercase())],
                Some(("keys[2].sha256", "listed twice")),
            ),
            (
                vec![
                    ("x", b.clone()),
                    ("y", a.clone()),
                    ("bad name", c.clone()),
                    ("z", a.clone()),
                ],
                Some(("keys[2].consumer", "visible ASCII")),
            ),
            (
                vec![("x", b.clone()), ("y", b.clone()), ("bad name", c.clone())],
                Some(("keys[1].sha256", "listed twice")),
            ),
            (
                vec![("x", a.clone()), ("y", "00".into()), ("z", a.clone())],
                Some(("keys[1].sha256", "not a SHA-256")),
            ),
            (
                vec![
                    ("x", c.clone()),
                    ("y", a.clone()),
                    ("z", b.clone()),
                    ("w", a.clone()),
                    ("v", c.clone()),
                ],
                Some(("keys[3].sha256", "listed twice")),
            ),
        ];
        for (keys, want) in cases {
            let got = ApiKeys::compile(&spec(&keys)).err();
            match (got, want) {
                (None, None) => {}
                (Some(e), Some((path, why))) => {
                    assert_eq!(e.path, path, "{keys:?}");
                    assert!(e.reason.contains(why), "{keys:?}: {}", e.reason);
                }
                (got, want) => panic!("{keys:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Every configured key finds its consumer, and other keys find none, across list sizes
    /// (the sorted table's binary search), and the heap sort agrees with the standard sort.
    #[test]
    fn keys_are_found_in_the_sorted_table() {
        for n in [1usize, 2, 3, 7, 64, 301] {
            let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
            let keys: Vec<(&str, String)> = names
                .iter()
                .map(|c| (c.as_str(), hex_of(&format!("key-{c}"))))
                .collect();
            let compiled = ApiKeys::compile(&spec(&keys)).unwrap();
            for c in &names {
                let req = sdk_ext::testing::RequestBuilder::get("/")
                    .header("x-api-key", &format!("key-{c}"))
                    .build();
                assert_eq!(compiled.check(&req), KeyCheck::Valid(c), "{n} {c}");
            }
            let req = sdk_ext::testing::RequestBuilder::get("/")
                .header("x-api-key", "key-none")
                .build();
            assert_eq!(compiled.check(&req), KeyCheck::Invalid);
            let mut v: Vec<([u8; 32], u32)> = (0..n as u32)
                .map(|i| {
                    let mut h = [0u8; 32];
                    h[0] = (i.wrapping_mul(2_654_435_761) >> 24) as u8;
                    h[31] = (i % 3) as u8;
                    (h, i)
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            heap_sort(&mut v);
            assert_eq!(v, want, "{n}");
        }
    }

    /// Decode one `application/x-www-form-urlencoded` name with the crate: the reference.
    fn form_decode(raw: &str) -> String {
        form_urlencoded::parse(raw.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default()
    }

    /// `decodes_to` answers as the crate's decoding compared with the name, over names made of
    /// escapes (valid, short, invalid hex, invalid UTF-8), `+`, and plain and multi-byte text.
    #[test]
    fn names_decode_as_form_urlencoded_does() {
        let parts = [
            "a", "+", "%", "%2", "%2F", "%zz", "%C3%A9", "%C3", "%ff", "é", "%25", "_", "%5f",
            "%5F", " ",
        ];
        let mut names: Vec<String> = vec![String::new()];
        for a in parts {
            names.push(a.to_string());
            for b in parts {
                names.push(format!("{a}{b}"));
                for c in parts {
                    names.push(format!("{a}{b}{c}"));
                }
            }
        }
        let targets: Vec<String> = [
            "",
            "a",
            "a_",
            "api_key",
            " ",
            "%",
            "é",
            "\u{fffd}",
            "a\u{fffd}",
            "%2",
        ]
        .iter()
        .map(|t| t.to_string())
        .chain(names.iter().map(|n| form_decode(n)))
        .collect();
        for raw in &names {
            let decoded = form_decode(raw);
            assert!(decodes_to(raw, &decoded), "{raw}");
            for t in targets.iter().step_by(7) {
                assert_eq!(decodes_to(raw, t), decoded == *t, "{raw} {t}");
            }
        }
    }

    /// The removal before it was written as one pass (collect, count, join): the reference.
    fn reference_removal(raw_path: &str, name: &str) -> Option<String> {
        let (path, rest) = raw_path.split_once('?')?;
        let (query, fragment) = match rest.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (rest, None),
        };
        let is_key = |pair: &&str| form_decode(pair.split('=').next().unwrap_or("")) == name;
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

    /// Every path built from a few parts (keys, look-alikes, empty pairs, fragments) gives
    /// the reference's answer.
    #[test]
    fn query_param_removal_matches_the_reference() {
        let parts = [
            "api_key=s",
            "api%5Fkey",
            "x=1",
            "",
            "api_key",
            "api+key=2",
            "y=%2F",
            "k=#f",
            "api_key=#",
            "api_keys=1",
        ];
        let mut n = 0;
        for a in parts {
            for b in parts {
                for c in parts {
                    for path in [
                        format!("/p?{a}&{b}&{c}"),
                        format!("/p?{a}{b}#{c}"),
                        format!("/{a}?{b}&&{c}"),
                    ] {
                        assert_eq!(
                            remove_query_param(&path, "api_key"),
                            reference_removal(&path, "api_key"),
                            "{path}"
                        );
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 3000);
    }

    /// Every two-byte pair decodes as `u8::from_str_radix` (after UTF-8) decodes it.
    #[test]
    fn hex_pairs_decode_as_from_str_radix() {
        for h in 0..=255u8 {
            for l in 0..=255u8 {
                let want = std::str::from_utf8(&[h, l])
                    .ok()
                    .and_then(|t| u8::from_str_radix(t, 16).ok());
                let text = [[h, l]; 32].concat();
                let got = std::str::from_utf8(&text).ok().and_then(decode_sha256);
                match std::str::from_utf8(&text) {
                    Ok(_) => assert_eq!(got.map(|g| g[0]), want, "{h} {l}"),
                    Err(_) => assert_eq!(want, None, "{h} {l}"),
                }
            }
        }
    }

    /// The challenge as it was built before (filter, then two `replace`s), for every pair of
    /// locations over awkward characters.
    #[test]
    fn challenge_quotes_as_before() {
        let quote = |v: &str| {
            v.chars()
                .filter(|c| matches!(c, ' '..='~'))
                .collect::<String>()
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        };
        let reference = |h: Option<&str>, q: Option<&str>| {
            let mut out = String::from("ApiKey realm=\"api\"");
            if let Some(h) = h {
                out.push_str(&format!(", header=\"{}\"", quote(h)));
            }
            if let Some(q) = q {
                out.push_str(&format!(", query=\"{}\"", quote(q)));
            }
            out
        };
        let values = [
            None,
            Some(""),
            Some("x-api-key"),
            Some("a\"b\\c"),
            Some("é\u{7f}\t~ "),
            Some("\\\""),
        ];
        for h in values {
            for q in values {
                assert_eq!(challenge(h, q), reference(h, q), "{h:?} {q:?}");
            }
        }
    }
}
