//! A small JSON parser for plugin configurations: text in, a [`Json`] tree out.
//!
//! Why not serde_json: the configuration is read once, at configure time, but its reader is
//! part of every module, and module size is cold-start time (V8 compiles the whole module
//! eagerly). `serde_json` plus one derived deserializer per configuration struct was ~90 KB of
//! code in policy and router and ~180 KB in the suite (bench/README.md, "Module size and cold
//! start"); this parser and the typed reader on top of it ([`crate::config::Node`]) are one
//! copy for every filter.
//!
//! It accepts RFC 8259 JSON as `serde_json` does (the tests compare both on the same documents,
//! hand-picked and 20,000 mutated ones), nesting at most [`MAX_DEPTH`] (serde_json's recursion
//! limit), with two deliberate differences. **Duplicate member names** are refused: `serde_json`
//! keeps the last duplicate silently, so a repeated key in a configuration would drop the first
//! value without a word; here it is an error naming the path. Numbers are kept as their text, so
//! integers of any size are read exactly and nothing is rounded before the reader says what it
//! wants; a number beyond `f64`'s range (`1e400`), which `serde_json` refuses while parsing, is
//! refused when the reader reads it (every configuration value is read).
//!
//! Errors carry the JSON path of what was being read (`rules[1].match`, `$` for the document)
//! and a reason.

use crate::config::{cat, ConfigError};
use std::borrow::Cow;

/// Deepest nesting accepted: 127 containers, as serde_json (its recursion limit of 128 refuses
/// the 128th).
pub const MAX_DEPTH: usize = 127;

/// A parsed JSON value. Objects keep their members in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number as written (valid JSON number syntax).
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object (`None` for other values or a missing member).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is and, for scalars, the value itself, as error messages say
    /// it: ``string `abc` ``, ``integer `5` ``, ``floating point `1.5` ``, `a map`, ...
    pub fn describe(&self) -> String {
        // The kind and the value's text, joined once.
        let (kind, text) = match self {
            Json::Null => ("null", None),
            Json::Bool(true) => ("boolean", Some(Cow::Borrowed("true"))),
            Json::Bool(false) => ("boolean", Some(Cow::Borrowed("false"))),
            Json::Number(n) if n.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                ("integer", Some(Cow::Borrowed(n.as_str())))
            }
            Json::Number(n) => ("floating point", Some(Cow::Borrowed(n.as_str()))),
            Json::String(s) => ("string", Some(clip(s))),
            Json::Array(_) => ("a sequence", None),
            Json::Object(_) => ("a map", None),
        };
        match text {
            Some(text) => cat(&[kind, " `", &text, "`"]),
            None => kind.to_string(),
        }
    }
}

/// A parsed document that is dropped in one place. Without a `Drop` of its own a `Json` tree
/// is dropped by glue compiled into every crate that drops one (a parsed configuration in each
/// filter's `on_configure`, JWT claims in policy and router): ~250 bytes each (module size).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document(std::mem::ManuallyDrop<Json>);

impl Document {
    pub(crate) fn new(json: Json) -> Self {
        Self(std::mem::ManuallyDrop::new(json))
    }
}

impl std::ops::Deref for Document {
    type Target = Json;
    fn deref(&self) -> &Json {
        &self.0
    }
}

impl Drop for Document {
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: the only place the field is dropped, and it is not used after.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.0) }
    }
}

/// At most 64 bytes of a string for an error message (on a character boundary).
fn clip(s: &str) -> Cow<'_, str> {
    if s.len() <= 64 {
        return Cow::Borrowed(s);
    }
    let mut end = 64;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(cat(&[&s[..end], "..."]))
}

/// One step of the path being parsed.
enum Seg {
    Key(String),
    Index(usize),
}

/// Parse a complete JSON document (surrounding whitespace allowed).
pub fn parse(bytes: &[u8]) -> Result<Json, ConfigError> {
    let mut p = Parser {
        b: bytes,
        i: 0,
        path: Vec::new(),
        error: None,
    };
    p.ws();
    let parsed = p.value().and_then(|v| {
        p.ws();
        if p.i < p.b.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    });
    parsed.map_err(|Failed| {
        p.error
            .take()
            .unwrap_or_else(|| ConfigError::new("$", "internal error: no error recorded"))
    })
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    path: Vec<Seg>,
    /// The error that stopped the parse (the first: every error returns at once).
    error: Option<ConfigError>,
}

/// The parser's `Err`: the error itself is in [`Parser::error`]. A zero-sized `Err` keeps each
/// `Result` the size of its value; a `ConfigError` (two `String`s) in every `Result` was moved
/// through every step of the parser, which was ~1 KB more code for V8 to compile in every
/// module (bench/README.md, "Module size and cold start").
struct Failed;

impl Parser<'_> {
    /// Record the error at the current path; the marker to return.
    fn err(&mut self, reason: &str) -> Failed {
        let mut path = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Seg::Index(i) => {
                    path.push('[');
                    crate::config::push_decimal(&mut path, *i as u64);
                    path.push(']');
                }
            }
        }
        if path.is_empty() {
            path.push('$');
        }
        self.error = Some(ConfigError::new(path, reason));
        Failed
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eof(&mut self, what: &str) -> Failed {
        self.err(&cat(&["EOF while parsing ", what]))
    }

    fn value(&mut self) -> Result<Json, Failed> {
        match self.peek() {
            None => Err(self.eof("a value")),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't' | b'f' | b'n') => self.literal(),
            Some(_) => Err(self.err("expected value")),
        }
    }

    /// `true`, `false` or `null` (the cursor on its first letter; one call site, not three
    /// inlined copies).
    fn literal(&mut self) -> Result<Json, Failed> {
        let (word, v): (&[u8], Json) = match self.peek() {
            Some(b't') => (b"true", Json::Bool(true)),
            Some(b'f') => (b"false", Json::Bool(false)),
            _ => (b"null", Json::Null),
        };
        let end = (self.i + word.len()).min(self.b.len());
        if &self.b[self.i..end] == word {
            self.i = end;
            Ok(v)
        } else if word.starts_with(&self.b[self.i..end]) {
            Err(self.eof("a value"))
        } else {
            Err(self.err("expected value"))
        }
    }

    fn enter(&mut self) -> Result<(), Failed> {
        if self.path.len() >= MAX_DEPTH {
            return Err(self.err("recursion limit exceeded"));
        }
        self.i += 1;
        self.ws();
        Ok(())
    }

    fn array(&mut self) -> Result<Json, Failed> {
        self.enter()?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.path.push(Seg::Index(items.len()));
            let v = self.value()?;
            self.path.pop();
            items.push(v);
            if self.separator(b']', "expected `,` or `]`", "a list")? {
                return Ok(Json::Array(items));
            }
        }
    }

    /// After an element or a member: `,` (not followed by `close`: no trailing comma) gives
    /// `false`, `close` gives `true`; anything else is an error about the container (`what`).
    fn separator(&mut self, close: u8, expected: &str, what: &str) -> Result<bool, Failed> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(close) {
                    return Err(self.err("trailing comma"));
                }
                Ok(false)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(true)
            }
            Some(_) => Err(self.err(expected)),
            None => Err(self.eof(what)),
        }
    }

    fn object(&mut self) -> Result<Json, Failed> {
        self.enter()?;
        let mut members: Vec<(String, Json)> = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Object(members));
        }
        loop {
            match self.peek() {
                Some(b'"') => {}
                Some(_) => return Err(self.err("key must be a string")),
                None => return Err(self.eof("an object")),
            }
            let key = self.string()?;
            self.path.push(Seg::Key(key));
            self.ws();
            match self.peek() {
                Some(b':') => self.i += 1,
                Some(_) => return Err(self.err("expected `:`")),
                None => return Err(self.eof("an object")),
            }
            self.ws();
            let v = self.value()?;
            let Some(Seg::Key(key)) = self.path.pop() else {
                return Err(self.err("internal error: path out of step"));
            };
            // Small objects (nearly all) are checked as they grow; large ones once, sorted.
            if members.len() < 32 && members.iter().any(|(k, _)| *k == key) {
                return Err(self.duplicate(key));
            }
            members.push((key, v));
            if self.separator(b'}', "expected `,` or `}`", "an object")? {
                if members.len() > 32 {
                    if let Some(key) = first_duplicate(&members) {
                        return Err(self.duplicate(key));
                    }
                }
                return Ok(Json::Object(members));
            }
        }
    }

    fn duplicate(&mut self, key: String) -> Failed {
        let reason = cat(&["duplicate key `", &key, "`"]);
        self.path.push(Seg::Key(key));
        self.err(&reason)
    }

    fn number(&mut self) -> Result<Json, Failed> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while let Some(b'0'..=b'9') = p.peek() {
                p.i += 1;
            }
            p.i - from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            None => return Err(self.eof("a value")),
            Some(_) => return Err(self.err("invalid number")),
        }
        // A fraction or an exponent needs at least one digit.
        let some_digits = |p: &mut Self| match digits(p) {
            0 if p.peek().is_none() => Err(p.eof("a value")),
            0 => Err(p.err("invalid number")),
            _ => Ok(()),
        };
        if self.peek() == Some(b'.') {
            self.i += 1;
            some_digits(self)?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            some_digits(self)?;
        }
        // Only ASCII digits, signs, `.` and exponents were consumed, so the text is UTF-8 (a
        // lossy conversion linked its whole machinery for nothing).
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or_default();
        Ok(Json::Number(text.to_owned()))
    }

    /// A string starting at the `"` under the cursor; escapes decoded.
    fn string(&mut self) -> Result<String, Failed> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.eof("a string"));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.eof("a string"));
                    };
                    self.i += 1;
                    let simple = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    out.push(simple);
                }
                0x00..=0x1f => {
                    return Err(self
                        .err("control character (\\u0000-\\u001F) found while parsing a string"))
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid unicode code point"))
    }

    // Over the digits present (up to four): a loop of four was unrolled four times.
    fn hex4(&mut self) -> Result<u32, Failed> {
        let end = (self.i + 4).min(self.b.len());
        let mut n = 0u32;
        for &c in self.b.get(self.i..end).unwrap_or_default() {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.err("invalid escape")),
            };
            n = n * 16 + u32::from(d);
        }
        if end - self.i < 4 {
            return Err(self.eof("a string"));
        }
        self.i = end;
        Ok(n)
    }

    /// `\uXXXX` (cursor after the `u`), with a following `\uXXXX` for a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, Failed> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(if self.i + 2 > self.b.len() {
                        self.eof("a string")
                    } else {
                        self.err("unexpected end of hex escape")
                    });
                }
                self.i += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.err("lone leading surrogate in hex escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.err("lone leading surrogate in hex escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid unicode code point"))
    }
}

/// A key that occurs twice among `members`, found with a small open-addressing table of
/// member indices (FNV-1a of the key; a generic sort or hash set would add its own
/// monomorphised copy to every module).
fn first_duplicate(members: &[(String, Json)]) -> Option<String> {
    let cap = (members.len() * 2).next_power_of_two();
    let mut slots: Vec<usize> = vec![usize::MAX; cap];
    for (i, (key, _)) in members.iter().enumerate() {
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        // Truncation is the point: the low bits pick the slot.
        #[allow(clippy::cast_possible_truncation)]
        let mut at = (hash as usize) & (cap - 1);
        loop {
            match slots[at] {
                usize::MAX => {
                    slots[at] = i;
                    break;
                }
                j if members[j].0 == *key => return Some(key.clone()),
                _ => at = (at + 1) & (cap - 1),
            }
        }
    }
    None
}

/// Write `s` as a JSON string literal (quotes included), escaping as serde_json does: `"`,
/// `\`, and control characters (`\n`, `\t`, ... or `\u00XX`).
// Over bytes into the string's buffer: every byte to escape is ASCII, so the bytes between
// escapes are whole characters (decoding and re-encoding each `char`, or copying the runs with
// their boundary checks, was twice the code).
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.push(b'"');
    for &b in s.as_bytes() {
        let short = match b {
            b'"' | b'\\' => b,
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => b'u',
            _ => {
                bytes.push(b);
                continue;
            }
        };
        bytes.push(b'\\');
        bytes.push(short);
        if short == b'u' {
            for digit in [
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ] {
                bytes.push(digit);
            }
        }
    }
    bytes.push(b'"');
    // UTF-8 still (whole characters of `out` and `s`, ASCII between them): never the default.
    *out = String::from_utf8(bytes).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's view of the same text, in this module's tree form.
    fn from_serde(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(a) => Json::Array(a.iter().map(from_serde).collect()),
            serde_json::Value::Object(o) => {
                Json::Object(o.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect())
            }
        }
    }

    /// Our tree with object members sorted (serde_json's map is sorted) and numbers as
    /// serde_json prints them.
    fn normalized(v: &Json) -> Json {
        match v {
            Json::Number(n) => {
                let parsed: serde_json::Value = serde_json::from_str(n).unwrap();
                Json::Number(parsed.to_string())
            }
            Json::Array(a) => Json::Array(a.iter().map(normalized).collect()),
            Json::Object(o) => {
                let mut members: Vec<_> =
                    o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect();
                members.sort_by(|a, b| a.0.cmp(&b.0));
                Json::Object(members)
            }
            other => other.clone(),
        }
    }

    /// Accepts and refuses the same documents as serde_json, and reads them alike.
    #[test]
    fn agrees_with_serde_json() {
        let cases: &[&[u8]] = &[
            b"{}",
            b"  {\"a\": 1}  ",
            b"[]",
            b"[1, 2.5, -3, 0, -0, 1e3, 1E-2, 2.5e+7, -0.0]",
            b"\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
            b"\"caf\xc3\xa9\"",
            b"{\"a\": [true, false, null, {\"b\": \"c\"}]}",
            b"123456789012345678901234567890",
            b"",
            b"   ",
            b"{",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{a: 1}",
            b"[1 2]",
            b"01",
            b"1.",
            b"1.e3",
            b"-",
            b"+1",
            b".5",
            b"1e",
            b"tru",
            b"truth",
            b"nul",
            b"\"abc",
            b"\"a\x01b\"",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"\"\\ud800\"",
            b"\"\\ud800\\u0041\"",
            b"\"\\udc00\"",
            b"\"\xff\"",
            b"{} {}",
            b"[1] x",
            b"NaN",
            b"Infinity",
            b"{\"a\":{\"b\":[{\"c\":}]}}",
            b"\xef\xbb\xbf{}",
        ];
        for case in cases {
            let ours = parse(case);
            let theirs = serde_json::from_slice::<serde_json::Value>(case);
            let text = String::from_utf8_lossy(case);
            match (&ours, &theirs) {
                (Ok(o), Ok(t)) => assert_eq!(normalized(o), from_serde(t), "{text}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{text}: ours {ours:?}, serde_json {theirs:?}"),
            }
        }
        let deep_ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(deep_ok.as_bytes()).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&deep_ok).is_ok());
        assert!(parse(deep.as_bytes()).is_err());
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
    }

    /// The same on many mutated documents (a deterministic stand-in for a fuzzer: byte flips,
    /// JSON-significant insertions, deletions and truncations of realistic configurations).
    /// Duplicate keys are the one intended difference.
    #[test]
    fn agrees_with_serde_json_on_mutations() {
        let seeds: &[&str] = &[
            r#"{"rules": [{"name": "a", "match": {"paths": [{"prefix": "/x"}]}, "action": "deny"}]}"#,
            r#"{"weights": [{"tag": "a", "percent": 33.33}, {"tag": "b", "percent": 6.667e1}], "n": -0}"#,
            r#"{"s": "\u00e9\ud83d\ude00 \"q\" \\ \/", "t": true, "f": false, "z": null, "e": [], "o": {}}"#,
            r#"[1, [2, [3, [4, {"k": [5e-3, -7.25E+2]}]]]]"#,
        ];
        const ALPHABET: &[u8] = b"{}[]:,\"\\ \n0123456789-+.eEtrufalsn\x00\x1f\x7f\xc3\xa9\xff";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for seed in seeds {
            for _ in 0..5000 {
                let mut doc = seed.as_bytes().to_vec();
                for _ in 0..=(next() % 3) {
                    let at = (next() as usize) % (doc.len() + 1);
                    let byte = ALPHABET[(next() as usize) % ALPHABET.len()];
                    match next() % 4 {
                        0 if at < doc.len() => doc[at] = byte,
                        1 => doc.insert(at, byte),
                        2 if at < doc.len() => {
                            doc.remove(at);
                        }
                        _ => doc.truncate(at),
                    }
                }
                let ours = parse(&doc);
                let theirs = serde_json::from_slice::<serde_json::Value>(&doc);
                let text = String::from_utf8_lossy(&doc);
                match (&ours, &theirs) {
                    (Ok(o), Ok(t)) => assert_eq!(normalized(o), from_serde(t), "{text}"),
                    (Err(e), Ok(_)) if e.reason.starts_with("duplicate key") => {}
                    // Kept as text here; refused by the reader when read as a number.
                    (Ok(_), Err(e)) if e.to_string().starts_with("number out of range") => {}
                    (Err(_), Err(_)) => {}
                    _ => panic!("{text}: ours {ours:?}, serde_json {theirs:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 20_000);
        // A number out of f64's range: serde_json refuses the document, the reader the value.
        assert!(parse(b"[5e430]").is_ok());
        assert_eq!(
            crate::config::from_str::<Vec<f64>>("[5e430]")
                .unwrap_err()
                .reason,
            "number `5e430` out of range"
        );
    }

    #[test]
    fn errors_name_the_path() {
        let e = parse(br#"{"rules": [{"a": 1}, {"b": [1, }]}"#).unwrap_err();
        assert_eq!(e.path, "rules[1].b[1]");
        assert_eq!(e.reason, "expected value");
        let e = parse(br#"{"rules": [{"a": 1}, {"b": 2,}]}"#).unwrap_err();
        assert_eq!(e.path, "rules[1]");
        assert_eq!(e.reason, "trailing comma");
        let e = parse(b"{").unwrap_err();
        assert_eq!(e.path, "$");
        let e = parse(br#"{"a": "x\qy"}"#).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.reason.as_str()),
            ("a", "invalid escape")
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse(br#"{"deny": {"status": 403, "status": 404}}"#).unwrap_err();
        assert_eq!(e.path, "deny.status");
        assert_eq!(e.reason, "duplicate key `status`");
        assert!(parse(br#"[{"a": 1}, {"a": 2}]"#).is_ok());
        let many: Vec<String> = (0..40).map(|i| format!("\"k{}\": 1", i % 39)).collect();
        let e = parse(format!("{{\"m\": {{{}}}}}", many.join(",")).as_bytes()).unwrap_err();
        assert_eq!(e.path, "m.k0");
        assert_eq!(e.reason, "duplicate key `k0`");
        let distinct: Vec<String> = (0..2000).map(|i| format!("\"k{i}\": {i}")).collect();
        let doc = format!("{{{}}}", distinct.join(","));
        assert!(parse(doc.as_bytes()).is_ok());
        let doc = format!("{{{}, \"k1999\": 0}}", distinct.join(","));
        assert_eq!(
            parse(doc.as_bytes()).unwrap_err().reason,
            "duplicate key `k1999`"
        );
    }

    #[test]
    fn numbers_keep_their_text() {
        assert_eq!(
            parse(b"18446744073709551616").unwrap(),
            Json::Number("18446744073709551616".into())
        );
        assert_eq!(parse(b"-0.50").unwrap(), Json::Number("-0.50".into()));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\ncr\rtab\t",
            "\u{0}\u{1f}\u{7f}",
            "é😀",
            "\u{8}\u{c}",
            "a\u{1}b\u{1f}\u{7f}\"é\\\u{10}😀\n",
            "\"\"\\",
        ] {
            let mut ours = String::new();
            write_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap(), "{s:?}");
            assert_eq!(parse(ours.as_bytes()).unwrap(), Json::String(s.into()));
        }
        for b in 0u8..=0x7f {
            let s = format!("x{}y", char::from(b));
            let mut ours = String::new();
            write_str(&mut ours, &s);
            assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{b}");
        }
    }
}
