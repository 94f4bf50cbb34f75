//! SNI patterns: exact host names and `*.suffix` wildcards, compiled once.
//!
//! Precedence is by specificity, not by order, so a JSON object (whose key order is not
//! meaningful) can map patterns to clusters: an exact name beats any wildcard, a longer
//! wildcard suffix beats a shorter one, and `*` alone (any SNI) comes last. `*.example.com`
//! matches `a.example.com` and `a.b.example.com` but not `example.com`. Matching is
//! case-insensitive and a trailing dot is ignored, in patterns and names alike.

use sdk_ext::ConfigError;
use std::collections::HashMap;

/// A set of patterns, each carrying a value (a cluster name, or `()` for allow lists) and the
/// pattern text (for log lines naming the rule).
#[derive(Debug, Clone)]
pub struct SniTable<T> {
    exact: HashMap<String, (String, T)>,
    /// `(".example.com", pattern, value)`, longest suffix first.
    suffixes: Vec<(String, String, T)>,
    any: Option<(String, T)>,
}

impl<T> Default for SniTable<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            suffixes: Vec::new(),
            any: None,
        }
    }
}

/// Normalise a host name or pattern: lowercase, without the one trailing dot of a
/// fully-qualified name.
fn normalise(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

fn valid_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl<T> SniTable<T> {
    /// Build from `(pattern, value)` pairs; `path` names the config field for errors
    /// (`sni.allow[2]`, `sni.routes.*.x`).
    pub fn compile(
        entries: impl IntoIterator<Item = (String, T, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = Self::default();
        for (pattern, value, path) in entries {
            let p = normalise(&pattern);
            if p == "*" {
                if table.any.is_some() {
                    return Err(ConfigError::new(path, "`*` given twice"));
                }
                table.any = Some((pattern, value));
            } else if let Some(suffix) = p.strip_prefix("*.") {
                if !valid_host(suffix) {
                    return Err(ConfigError::new(
                        path,
                        format!("`{pattern}`: a wildcard is `*.` followed by a host name"),
                    ));
                }
                let key = format!(".{suffix}");
                if table.suffixes.iter().any(|(s, _, _)| *s == key) {
                    return Err(ConfigError::new(path, format!("`{pattern}` given twice")));
                }
                table.suffixes.push((key, pattern, value));
            } else {
                if !valid_host(&p) {
                    return Err(ConfigError::new(
                        path,
                        format!("`{pattern}` is not a host name, `*.suffix` or `*`"),
                    ));
                }
                if table.exact.insert(p, (pattern.clone(), value)).is_some() {
                    return Err(ConfigError::new(path, format!("`{pattern}` given twice")));
                }
            }
        }
        table
            .suffixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(table)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty() && self.any.is_none()
    }

    /// The most specific pattern matching `name`: `(pattern as configured, value)`.
    pub fn lookup(&self, name: &str) -> Option<(&str, &T)> {
        let name = normalise(name);
        if let Some((p, v)) = self.exact.get(&name) {
            return Some((p, v));
        }
        self.suffixes
            .iter()
            .find(|(suffix, _, _)| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
            .map(|(_, p, v)| (p.as_str(), v))
            .or_else(|| self.any.as_ref().map(|(p, v)| (p.as_str(), v)))
    }

    /// Every value (for defining per-value metrics).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.exact
            .values()
            .map(|(_, v)| v)
            .chain(self.suffixes.iter().map(|(_, _, v)| v))
            .chain(self.any.iter().map(|(_, v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> SniTable<String> {
        SniTable::compile(
            entries
                .iter()
                .enumerate()
                .map(|(i, (p, v))| (p.to_string(), v.to_string(), format!("t[{i}]"))),
        )
        .unwrap()
    }

    #[test]
    fn most_specific_pattern_wins_regardless_of_order() {
        let t = table(&[
            ("*", "any"),
            ("*.example.com", "wild"),
            ("*.b.example.com", "wild-b"),
            ("a.example.com", "exact"),
        ]);
        let got = |n: &str| t.lookup(n).map(|(_, v)| v.as_str());
        assert_eq!(got("a.example.com"), Some("exact"));
        assert_eq!(got("A.Example.COM."), Some("exact"));
        assert_eq!(got("x.example.com"), Some("wild"));
        assert_eq!(got("x.y.example.com"), Some("wild"));
        assert_eq!(got("x.b.example.com"), Some("wild-b"));
        assert_eq!(got("b.example.com"), Some("wild"));
        assert_eq!(got("example.com"), Some("any"));
        assert_eq!(got("notexample.com"), Some("any"));
        assert_eq!(t.lookup("x.example.com").unwrap().0, "*.example.com");
    }

    #[test]
    fn wildcard_needs_a_label_before_the_suffix() {
        let t = table(&[("*.example.com", "w")]);
        assert!(t.lookup("example.com").is_none());
        assert!(t.lookup("badexample.com").is_none());
    }

    #[test]
    fn bad_patterns_name_their_path() {
        for bad in [
            "a.*.com",
            "*example.com",
            "a b",
            "",
            ".",
            "a..b",
            "**.x",
            "*.a..b",
        ] {
            let err =
                SniTable::compile([(bad.to_string(), (), "sni.allow[0]".to_string())]).unwrap_err();
            assert_eq!(err.path, "sni.allow[0]", "{bad}");
        }
        let dup = SniTable::compile([
            ("a.com".to_string(), (), "x[0]".to_string()),
            ("A.com".to_string(), (), "x[1]".to_string()),
        ])
        .unwrap_err();
        assert_eq!(dup.path, "x[1]");
    }
}
