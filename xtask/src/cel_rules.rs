//! Evaluate a CRD's `x-kubernetes-validations` rules with a CEL interpreter (the `cel` crate),
//! `self` bound to the value the rule is attached to.
//!
//! Kubernetes adds functions to CEL; the ones Istio's CRDs use are provided here with the API
//! server's semantics: `isURL(s)` (Go's `url.ParseRequestURI` succeeds: an absolute URL or an
//! absolute path) and `url(s).getScheme()`.

use cel::extractors::This;
use cel::{Context, Program};
use serde_json::Value;
use std::sync::Arc;

/// Why a rule could not be evaluated (as opposed to evaluating to false).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("does not parse: {0}")]
    Parse(String),
    #[error("evaluation failed: {0}")]
    Execution(String),
    #[error("evaluates to {0:?}, not a boolean")]
    NotBoolean(String),
}

/// Evaluate `rule` with `self` = `value`.
pub fn evaluate(rule: &str, value: &Value) -> Result<bool, RuleError> {
    let program = Program::compile(rule).map_err(|e| RuleError::Parse(e.to_string()))?;
    let mut ctx = Context::default();
    ctx.add_variable("self", value.clone())
        .map_err(|e| RuleError::Execution(e.to_string()))?;
    ctx.add_function("isURL", is_url)
        .map_err(|e| RuleError::Execution(e.to_string()))?;
    ctx.add_function("url", |s: Arc<String>| s)
        .map_err(|e| RuleError::Execution(e.to_string()))?;
    ctx.add_function("getScheme", get_scheme)
        .map_err(|e| RuleError::Execution(e.to_string()))?;
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(RuleError::NotBoolean(format!("{other:?}"))),
        Err(e) => Err(RuleError::Execution(e.to_string())),
    }
}

/// Kubernetes' `isURL`: true if Go's `url.ParseRequestURI` accepts the string, i.e. it is an
/// absolute URL (scheme and a valid rest) or an absolute path.
fn is_url(s: Arc<String>) -> bool {
    if s.starts_with('/') {
        return !s.contains(char::is_whitespace);
    }
    // Go rejects invalid percent-escapes, which the `url` crate tolerates.
    if !valid_escapes(&s) {
        return false;
    }
    url::Url::parse(&s).is_ok()
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.is_some_and(u8::is_ascii_hexdigit);
            if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// `url(s).getScheme()`: the scheme, or "" for a path.
fn get_scheme(This(s): This<Arc<String>>) -> String {
    match url::Url::parse(&s) {
        Ok(u) => u.scheme().to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL_RULE: &str = r#"isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) && url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])"#;

    #[test]
    fn url_rule_matches_the_api_server() {
        let cases = [
            ("oci://ghcr.io/a/b:1", true),
            ("http://test", true),
            ("file:///opt/filters/x.wasm", true),
            ("test", true),
            ("ghcr.io/a/b:1", true),
            ("fake://example.com", false),
            ("#%blah$#@", false),
            ("", false),
        ];
        for (url, ok) in cases {
            assert_eq!(evaluate(URL_RULE, &json!(url)).unwrap(), ok, "{url}");
        }
    }

    #[test]
    fn has_all_and_ternaries_work_on_objects() {
        let one_of = "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1";
        assert!(evaluate(one_of, &json!({"selector": {}})).unwrap());
        assert!(!evaluate(one_of, &json!({"selector": {}, "targetRefs": []})).unwrap());
        let keys = r#"self.all(key, !key.contains("*"))"#;
        assert!(evaluate(keys, &json!({"app": "x"})).unwrap());
        assert!(!evaluate(keys, &json!({"app*": "x"})).unwrap());
        let env = r#"(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)"#;
        assert!(evaluate(env, &json!({"name": "a", "value": "v"})).unwrap());
        assert!(!evaluate(
            env,
            &json!({"name": "a", "valueFrom": "HOST", "value": "v"})
        )
        .unwrap());
    }

    #[test]
    fn a_broken_rule_is_an_error_not_a_pass() {
        assert!(evaluate("self.(", &json!({})).is_err());
        assert!(evaluate("1 + 1", &json!({})).is_err());
    }
}
