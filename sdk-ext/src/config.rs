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
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." || path == "?" {
            "$".to_string()
        } else {
            path
        };
        ConfigError::new(path, strip_position(&err.into_inner().to_string()))
    })
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
