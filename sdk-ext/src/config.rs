//! Typed JSON configuration.
//!
//! Filters describe their configuration as `serde` structs with `#[serde(deny_unknown_fields)]`
//! and compile it into runtime form once, in `on_configure`. Every error carries the JSON path
//! of the offending field (`rules[2].match.path.regex`) and a reason, so the line in Envoy's log
//! is enough to fix the manifest.

use serde::de::DeserializeOwned;
use std::fmt;

/// A configuration error: where (JSON path, `$` for the document itself) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// JSON path of the offending field, e.g. `deny.status` or `rules[0].paths[1].regex`.
    pub path: String,
    /// Human-readable reason.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration at `{}`: {}",
            self.path, self.reason
        )
    }
}

impl ConfigError {
    /// An error at `path` (use `$` for the whole document).
    pub fn new(path: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Prefix the path with a parent field, so nested validators can report relative paths:
    /// `ConfigError::new("regex", ..).within("rules[0].path")` has path `rules[0].path.regex`.
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.path = join_path(parent, &self.path);
        self
    }
}

/// Join a parent path and a child path (`a` + `b` = `a.b`, `a` + `[0]` = `a[0]`, `$` is empty).
pub fn join_path(parent: &str, child: &str) -> String {
    match (parent, child) {
        ("" | "$", c) => c.to_string(),
        (p, "" | "$") => p.to_string(),
        (p, c) if c.starts_with('[') => format!("{p}{c}"),
        (p, c) => format!("{p}.{c}"),
    }
}

/// Parse `bytes` as JSON into `T`. Empty or whitespace-only input is read as `{}` so a filter
/// whose fields all have defaults can run with no configuration at all.
///
/// The error path is found from where serde_json stopped ([`path_at`]), not by wrapping the
/// deserializer (`serde_path_to_error`): a wrapper is instantiated again for every config type's
/// visitor, and measured, it was ~80 KB of the policy module and ~190 KB of the suite. The
/// paths are the same (`config::tests` compares them with `serde_path_to_error`'s).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|err| {
        let msg = err.to_string();
        // An enum written as `{"variant": ..}`: the key names a variant, not a member.
        let key_is_member = !msg.starts_with("unknown variant");
        let path = path_at(
            text,
            offset_of(text, err.line(), err.column()),
            key_is_member,
        );
        ConfigError::new(path, strip_position(&msg))
    })
}

/// Byte offset of serde_json's 1-based `line` and `column` (0 for errors without a position).
fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let line_start = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(line.saturating_sub(2))
        .map_or(0, |(i, _)| i + 1);
    if line == 1 {
        column.min(text.len())
    } else {
        (line_start + column).min(text.len())
    }
}

/// One open container while scanning.
enum Frame {
    /// `key`: the member being read; `value`: past its `:`.
    Object {
        key: Option<String>,
        value: bool,
    },
    Array {
        index: usize,
    },
}

/// The JSON path (`rules[0].match.paths[1]`, `$` for the document) of what is being read at byte
/// `offset` of `text`: the containers open there, with the member name or index in each. A
/// member name counts from its key on, so an unknown field is named by its own path; with
/// `key_is_member` false, a key not yet followed by its `:` is left out (an enum's variant).
pub fn path_at(text: &[u8], offset: usize, key_is_member: bool) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    let end = offset.min(text.len());
    while i < end {
        match text[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                value: false,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { value, .. }) = stack.last_mut() {
                    *value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, value }) => {
                    *key = None;
                    *value = false;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i = start;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, value: false }) = stack.last_mut() {
                    let raw = &text[start..i.min(text.len())];
                    *key = Some(unescape_key(raw));
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !key_is_member {
        if let Some(Frame::Object { key, value: false }) = stack.last_mut() {
            *key = None;
        }
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    if path.is_empty() {
        "$".to_string()
    } else {
        path
    }
}

/// A member name's text: JSON escapes decoded (invalid ones kept as written).
fn unescape_key(raw: &[u8]) -> String {
    let quoted = [b"\"".as_slice(), raw, b"\""].concat();
    serde_json::from_slice::<String>(&quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

/// serde_json appends " at line L column C"; the JSON path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// Collects validation errors so one pass over the config can report the first one found
/// with its full path. Helpers for common checks keep validators short.
pub fn non_empty(path: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        Err(ConfigError::new(path, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Validate an HTTP status code for a local reply.
pub fn http_status(path: &str, status: u16) -> Result<u16, ConfigError> {
    if (200..=599).contains(&status) {
        Ok(status)
    } else {
        Err(ConfigError::new(
            path,
            format!("{status} is not an HTTP status between 200 and 599"),
        ))
    }
}

/// Validate a header name (lowercase token characters, as HTTP/2 requires) and return it.
pub fn header_name(path: &str, name: &str) -> Result<String, ConfigError> {
    let lower = name.to_ascii_lowercase();
    let valid_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if lower.is_empty() {
        return Err(ConfigError::new(path, "header name must not be empty"));
    }
    let body = lower.strip_prefix(':').unwrap_or(&lower);
    if body.is_empty() || !body.chars().all(valid_token) {
        return Err(ConfigError::new(
            path,
            format!("`{name}` is not a valid HTTP header name"),
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        status: u16,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        #[allow(dead_code)]
        rules: Vec<Inner>,
    }

    #[test]
    fn empty_config_means_all_defaults() {
        let cfg: Outer = parse_json(b"  ").unwrap();
        assert!(cfg.rules.is_empty());
    }

    #[test]
    fn unknown_field_names_path_and_reason() {
        let err = parse_json::<Outer>(br#"{"rules":[{"status":1},{"stauts":2}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[1].stauts");
        assert!(
            err.reason.contains("unknown field `stauts`"),
            "{}",
            err.reason
        );
        assert!(
            !err.reason.contains("line"),
            "position noise kept: {}",
            err.reason
        );
    }

    #[test]
    fn wrong_type_names_path() {
        let err = parse_json::<Outer>(br#"{"rules":[{"status":"x"}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[0].status");
        assert!(err.reason.contains("invalid type"), "{}", err.reason);
    }

    #[test]
    fn malformed_json_is_reported_at_document_root() {
        let err = parse_json::<Outer>(b"{").unwrap_err();
        assert_eq!(err.path, "$");
        assert!(err.to_string().starts_with("invalid configuration at `$`"));
    }

    /// The path found from serde_json's error position equals the path `serde_path_to_error`
    /// tracks while deserializing (what this crate used before), on every kind of error.
    #[test]
    fn paths_agree_with_serde_path_to_error() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Doc {
            #[serde(default)]
            rules: Vec<Rule>,
            #[serde(default)]
            mode: Option<Mode>,
            #[serde(default)]
            map: std::collections::BTreeMap<String, Rule>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Rule {
            status: u16,
            #[serde(default)]
            names: Vec<String>,
            #[serde(default)]
            inner: Option<Box<Rule>>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "lowercase")]
        #[allow(dead_code)]
        enum Mode {
            Block,
            Tag,
            Weighted { percent: u8 },
        }
        let cases: &[&str] = &[
            r#"{"rules": [{"status": 1}, {"stauts": 2}]}"#,
            r#"{"rules": [{"status": 1}, {"status": "x"}]}"#,
            r#"{"rules": [{"status": 1}, {"status": 70000}]}"#,
            r#"{"rules": [{"status": 1}, {}]}"#,
            r#"{"rules": [{"status": 1, "names": ["a", 3]}]}"#,
            r#"{"rules": [{"status": 1, "inner": {"status": 2, "inner": {"status": -1}}}]}"#,
            r#"{"mode": "blok"}"#,
            r#"{"mode": 3}"#,
            r#"{"mode": {"weighted": {"percent": 300}}}"#,
            r#"{"mode": {"weighted": {"pct": 3}}}"#,
            r#"{"mode": {"wieghted": {"percent": 3}}}"#,
            "{\n  \"map\": {\n    \"a,b\": {\"status\": 1},\n    \"c\\\"d\": {\"status\": true}\n  }\n}",
            r#"{"rules": [{"status": 1}, {"status": 2, "names": ["x"],}]}"#,
            r#"{"rules": [{"status": 1}, {"status": 4x}]}"#,
            r#"{"unknown": {"deep": [1, 2]}}"#,
            r#"[1]"#,
            r#"{"rules": {"status": 1}}"#,
            r#"{"rules": [{"status": 1}"#,
        ];
        for case in cases {
            let ours = parse_json::<Doc>(case.as_bytes()).unwrap_err();
            let de = &mut serde_json::Deserializer::from_str(case);
            let theirs = serde_path_to_error::deserialize::<_, Doc>(de).unwrap_err();
            let path = theirs.path().to_string();
            // `?` is its "unknown member" (a syntax error where a key should be): ours names
            // the enclosing value instead.
            let path = path.trim_end_matches(".?").to_string();
            let path = if path == "." || path == "?" {
                "$".to_string()
            } else {
                path
            };
            let inner = theirs.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                // Broken JSON: ours may name the member whose value holds the bad token where
                // theirs stops at the enclosing value.
                assert!(
                    path == "$" || ours.path.starts_with(&path),
                    "{case}: {ours} vs {path}"
                );
            } else {
                assert_eq!(ours.path, path, "{case}: {ours}");
            }
            assert_eq!(ours.reason, strip_position(&inner.to_string()), "{case}");
        }
    }

    #[test]
    fn paths_join_like_json_paths() {
        assert_eq!(join_path("rules[0]", "path"), "rules[0].path");
        assert_eq!(join_path("rules", "[3]"), "rules[3]");
        assert_eq!(join_path("$", "x"), "x");
        let e = ConfigError::new("regex", "bad").within("rules[0].path");
        assert_eq!(e.path, "rules[0].path.regex");
    }

    #[test]
    fn status_and_header_name_checks() {
        assert!(http_status("s", 403).is_ok());
        assert_eq!(http_status("s", 99).unwrap_err().path, "s");
        assert_eq!(header_name("h", "X-Deny").unwrap(), "x-deny");
        assert!(header_name("h", "bad header").is_err());
        assert!(header_name("h", "").is_err());
        assert!(non_empty("n", "").is_err());
    }
}
