//! Offline validation of a custom resource against its CRD, the way the Kubernetes API server
//! does it: the structural OpenAPI v3 schema (types, enums, patterns, lengths, bounds, required
//! fields, unknown fields, list-map keys) and the `x-kubernetes-validations` CEL rules.
//!
//! Covers the keywords Istio's CRDs use; an unsupported keyword in the schema is reported as a
//! violation rather than silently ignored, so a newer CRD cannot weaken validation unnoticed.
//! Messages follow the API server's wording (`spec.url in body should be at least 1 chars long`),
//! which is what istio/api's test data (`istio/schema/testdata`) asserts.

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One failed check: where (`spec.vmConfig.env[0].name`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Errors loading a CRD.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("reading CRD: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("CRD has no version `{0}` with an openAPIV3Schema")]
    NoVersion(String),
}

/// The schema of one version of a CRD.
pub struct CrdSchema {
    pub group: String,
    pub kind: String,
    pub version: String,
    root: Value,
}

/// Keywords this validator understands; anything else in the schema is an error.
const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "description",
    "properties",
    "required",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "maxItems",
    "maxProperties",
    "items",
    "additionalProperties",
    "nullable",
    "format",
    "anyOf",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-int-or-string",
];

impl CrdSchema {
    /// Parse a CRD document and take `version`'s `openAPIV3Schema`.
    pub fn from_crd_yaml(text: &str, version: &str) -> Result<Self, SchemaError> {
        let crd: Value = serde_yaml_ng::from_str(text)?;
        let spec = &crd["spec"];
        let root = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == version)
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
            .filter(Value::is_object)
            .ok_or_else(|| SchemaError::NoVersion(version.to_string()))?;
        Ok(Self {
            group: spec["group"].as_str().unwrap_or_default().to_string(),
            kind: spec["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            version: version.to_string(),
            root,
        })
    }

    /// `group/version`, e.g. `extensions.istio.io/v1alpha1`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// Validate a whole object (apiVersion, kind, metadata.name, then the schema).
    pub fn validate(&self, object: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut v = Validator { out: &mut out };
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        if api_version != self.api_version() {
            v.push(
                "apiVersion",
                format!(
                    "apiVersion: Unsupported value: \"{api_version}\": supported values: \"{}\"",
                    self.api_version()
                ),
            );
        }
        if object["kind"] != self.kind.as_str() {
            v.push(
                "kind",
                format!("kind: Invalid value: expected \"{}\"", self.kind),
            );
        }
        match object["metadata"]["name"].as_str() {
            Some(name) if is_dns1123_subdomain(name) => {}
            Some(name) => v.push(
                "metadata.name",
                format!("metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"),
            ),
            None => v.push("metadata.name", "metadata.name: Required value".into()),
        }
        // The API server validates metadata itself (ObjectMeta); the CRD schema covers the rest.
        let mut body = object.clone();
        if let Some(map) = body.as_object_mut() {
            for k in ["apiVersion", "kind", "metadata"] {
                map.remove(k);
            }
        }
        v.node(&self.root, &body, "");
        out
    }
}

fn is_dns1123_subdomain(name: &str) -> bool {
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    name.len() <= 253
        && RE
            .get_or_init(|| {
                Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
                    .ok()
            })
            .as_ref()
            .is_some_and(|re| re.is_match(name))
}

struct Validator<'a> {
    out: &'a mut Vec<Violation>,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value as the API server quotes it in messages.
fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => format!("\"{other}\""),
    }
}

impl Validator<'_> {
    fn push(&mut self, path: &str, message: String) {
        self.out.push(Violation {
            path: path.to_string(),
            message,
        });
    }

    fn node(&mut self, schema: &Value, value: &Value, path: &str) {
        let Some(s) = schema.as_object() else {
            return;
        };
        for key in s.keys() {
            if !KNOWN_KEYWORDS.contains(&key.as_str()) {
                self.push(
                    path,
                    format!("{path}: schema keyword `{key}` is not supported by this validator"),
                );
            }
        }
        let shown = if path.is_empty() { "body" } else { path };
        if value.is_null() {
            if s.get("nullable") == Some(&Value::Bool(true)) {
                return;
            }
            if let Some(t) = s.get("type").and_then(Value::as_str) {
                self.push(
                    path,
                    format!("{shown} in body must be of type {t}: \"null\""),
                );
            }
            return;
        }
        if s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            if !(value.is_string() || json_type(value) == "integer") {
                self.push(
                    path,
                    format!("{shown} in body must be of type integer or string"),
                );
            }
            return;
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let actual = json_type(value);
            let ok = actual == t || (t == "number" && actual == "integer");
            if !ok {
                self.push(
                    path,
                    format!("{shown} in body must be of type {t}: \"{actual}\""),
                );
                return;
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                let list: Vec<String> = allowed.iter().map(quoted).collect();
                self.push(
                    path,
                    format!(
                        "{shown}: Unsupported value: {}: supported values: {}",
                        quoted(value),
                        list.join(", ")
                    ),
                );
            }
        }
        match value {
            Value::String(text) => self.string(s, text, path, shown),
            Value::Number(n) => self.number(s, n, path, shown),
            Value::Array(items) => self.array(s, items, path, shown),
            Value::Object(map) => self.object(s, map, path, shown),
            _ => {}
        }
        if let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) {
            for rule in rules {
                self.cel_rule(rule, value, path, shown);
            }
        }
    }

    fn string(&mut self, s: &Map<String, Value>, text: &str, path: &str, shown: &str) {
        let chars = text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if chars < min {
                self.push(
                    path,
                    format!("{shown} in body should be at least {min} chars long"),
                );
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if chars > max {
                self.push(
                    path,
                    format!("{shown} in body may not be longer than {max}"),
                );
            }
        }
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
            match Regex::new(pattern) {
                Ok(re) if re.is_match(text) => {}
                Ok(_) => self.push(path, format!("{shown} in body should match '{pattern}'")),
                Err(e) => self.push(
                    path,
                    format!("{shown}: schema pattern does not compile: {e}"),
                ),
            }
        }
    }

    fn number(&mut self, s: &Map<String, Value>, n: &serde_json::Number, path: &str, shown: &str) {
        let x = n.as_f64().unwrap_or(f64::NAN);
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            if x < min {
                self.push(
                    path,
                    format!("{shown} in body should be greater than or equal to {min}"),
                );
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            if x > max {
                self.push(
                    path,
                    format!("{shown} in body should be less than or equal to {max}"),
                );
            }
        }
        if s.get("format").and_then(Value::as_str) == Some("int32")
            && !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&x)
        {
            self.push(path, format!("{shown} in body must be of format int32"));
        }
    }

    fn array(&mut self, s: &Map<String, Value>, items: &[Value], path: &str, shown: &str) {
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                self.push(
                    path,
                    format!(
                        "{shown}: Too many: {}: must have at most {max} items",
                        items.len()
                    ),
                );
            }
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.node(item_schema, item, &format!("{path}[{i}]"));
            }
        }
        // `x-kubernetes-list-type: map`: items are keyed by the list-map keys; duplicates are refused.
        if s.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Vec<String> = keys.iter().map(|k| item[*k].to_string()).collect();
                if !seen.insert(key.clone()) {
                    let shown_key: Vec<String> = keys
                        .iter()
                        .zip(&key)
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    self.push(
                        &format!("{path}[{i}]"),
                        format!(
                            "{path}[{i}]: Duplicate value: map[string]interface {{}}{{{}}}",
                            shown_key.join(", ")
                        ),
                    );
                }
            }
        }
    }

    fn object(
        &mut self,
        s: &Map<String, Value>,
        map: &Map<String, Value>,
        path: &str,
        shown: &str,
    ) {
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    self.push(
                        &child(path, r),
                        format!("{}: Required value", child(path, r)),
                    );
                }
            }
        }
        if let Some(max) = s.get("maxProperties").and_then(Value::as_u64) {
            if map.len() as u64 > max {
                self.push(
                    path,
                    format!(
                        "{shown}: Too many: {}: must have at most {max} items",
                        map.len()
                    ),
                );
            }
        }
        let preserve = s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        let props = s.get("properties").and_then(Value::as_object);
        let additional = s.get("additionalProperties");
        for (k, v) in map {
            let p = child(path, k);
            if let Some(prop) = props.and_then(|props| props.get(k)) {
                self.node(prop, v, &p);
            } else if let Some(additional) = additional {
                self.node(additional, v, &p);
            } else if !preserve {
                // What `kubectl apply` reports with server-side strict field validation (the
                // default since Kubernetes 1.27); older servers silently drop the field instead.
                self.push(&p, format!("unknown field \"{p}\""));
            }
        }
    }

    fn cel_rule(&mut self, rule: &Value, value: &Value, path: &str, shown: &str) {
        let expr = rule["rule"].as_str().unwrap_or_default();
        let message = rule["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("failed rule: {expr}"));
        match crate::cel_rules::evaluate(expr, value) {
            Ok(true) => {}
            Ok(false) => self.push(
                path,
                format!(
                    "{shown}: Invalid value: \"{}\": {message}",
                    json_type(value)
                ),
            ),
            Err(e) => self.push(
                path,
                format!("{shown}: rule `{expr}` could not be evaluated: {e}"),
            ),
        }
    }
}
