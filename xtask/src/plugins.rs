//! Istio `WasmPlugin` manifests: load them (a kustomization rendered with `kubectl kustomize`, or
//! plain YAML), and turn them into the Envoy configuration istiod would push, so local runs use
//! exactly what production applies.
//!
//! Mapping (Istio 1.30, `pilot/pkg/model/extensions.go` and `pilot/pkg/networking/core/extension`):
//! * `pluginConfig` -> `configuration` as a `google.protobuf.StringValue` holding its JSON;
//! * `phase` + `priority` -> position in the HTTP filter chain: AUTHN plugins first, then AUTHZ,
//!   then STATS, then plugins with no phase (just before the router); within a phase, higher
//!   `priority` first, ties by namespace/name;
//! * `failStrategy` -> `failure_policy` (`FAIL_CLOSE` is the default);
//! * `vmConfig.env` -> `vm_config.environment_variables` (`HOST` -> `host_env_keys`, else
//!   `key_values`);
//! * `pluginName` -> `root_id`.
//!
//! The module is the local build of the filter named by the label [`FILTER_LABEL`], not the
//! image behind `url`: locally there is no registry to pull from (the registry round trip is
//! tested separately).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The label that says which filter crate (`filters/<name>`) a WasmPlugin runs.
pub const FILTER_LABEL: &str = "app.kubernetes.io/name";

/// `spec.phase`, in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Authn,
    Authz,
    Stats,
    Unspecified,
}

/// `spec.failStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailStrategy {
    Close,
    Open,
    Reload,
}

/// `spec.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginType {
    Http,
    Network,
}

/// One WasmPlugin document.
#[derive(Debug, Clone)]
pub struct WasmPlugin {
    pub object: Value,
}

impl WasmPlugin {
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
    }

    /// The filter crate this plugin runs (label [`FILTER_LABEL`]).
    pub fn filter(&self) -> Option<&str> {
        self.object["metadata"]["labels"][FILTER_LABEL].as_str()
    }

    fn spec(&self) -> &Value {
        &self.object["spec"]
    }

    pub fn phase(&self) -> Phase {
        match self.spec()["phase"].as_str() {
            Some("AUTHN") => Phase::Authn,
            Some("AUTHZ") => Phase::Authz,
            Some("STATS") => Phase::Stats,
            _ => Phase::Unspecified,
        }
    }

    pub fn priority(&self) -> i64 {
        self.spec()["priority"].as_i64().unwrap_or(0)
    }

    pub fn fail_strategy(&self) -> FailStrategy {
        match self.spec()["failStrategy"].as_str() {
            Some("FAIL_OPEN") => FailStrategy::Open,
            Some("FAIL_RELOAD") => FailStrategy::Reload,
            _ => FailStrategy::Close,
        }
    }

    pub fn plugin_type(&self) -> PluginType {
        match self.spec()["type"].as_str() {
            Some("NETWORK") => PluginType::Network,
            _ => PluginType::Http,
        }
    }

    /// `pluginConfig` as the JSON text the filter receives (empty when absent).
    pub fn plugin_config(&self) -> String {
        match &self.spec()["pluginConfig"] {
            Value::Null => String::new(),
            v => v.to_string(),
        }
    }

    /// `spec.url`
    pub fn url(&self) -> &str {
        self.spec()["url"].as_str().unwrap_or_default()
    }

    /// `spec.sha256` (empty when absent).
    pub fn sha256(&self) -> &str {
        self.spec()["sha256"].as_str().unwrap_or_default()
    }

    /// `vm_config.environment_variables` for `vmConfig.env`.
    pub fn environment_variables(&self) -> Option<Value> {
        let env = self.spec()["vmConfig"]["env"].as_array()?;
        let mut host_keys = Vec::new();
        let mut key_values = BTreeMap::new();
        for e in env {
            let Some(name) = e["name"].as_str() else {
                continue;
            };
            if e["valueFrom"] == "HOST" {
                host_keys.push(name.to_string());
            } else {
                key_values.insert(
                    name.to_string(),
                    e["value"].as_str().unwrap_or_default().to_string(),
                );
            }
        }
        Some(json!({ "host_env_keys": host_keys, "key_values": key_values }))
    }

    /// The `envoy.extensions.filters.http.wasm.v3.Wasm` istiod would send for this plugin, with
    /// the agent's rewrite of the remote source to a local file (`module`).
    pub fn envoy_typed_config(&self, module: &Path) -> Value {
        let name = self.name();
        let root_id = self.spec()["pluginName"].as_str().unwrap_or(name);
        let mut vm_config = json!({
            "vm_id": name,
            "runtime": "envoy.wasm.runtime.v8",
            "code": { "local": { "filename": module.display().to_string() } }
        });
        if let Some(env) = self.environment_variables() {
            vm_config["environment_variables"] = env;
        }
        let type_url = match self.plugin_type() {
            PluginType::Http => "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            PluginType::Network => {
                "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
            }
        };
        json!({
            "@type": type_url,
            "config": {
                "name": name,
                "root_id": root_id,
                "failure_policy": match self.fail_strategy() {
                    FailStrategy::Close => "FAIL_CLOSED",
                    FailStrategy::Open => "FAIL_OPEN",
                    FailStrategy::Reload => "FAIL_RELOAD",
                },
                "vm_config": vm_config,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": self.plugin_config()
                }
            }
        })
    }
}

/// Istio's order for the plugins of one type (HTTP chain or network chain): by phase, then
/// priority descending, then namespace/name.
pub fn chain_order(plugins: &[WasmPlugin], kind: PluginType) -> Vec<&WasmPlugin> {
    let mut http: Vec<&WasmPlugin> = plugins.iter().filter(|p| p.plugin_type() == kind).collect();
    http.sort_by(|a, b| {
        a.phase()
            .cmp(&b.phase())
            .then(b.priority().cmp(&a.priority()))
            .then(a.namespace().cmp(b.namespace()))
            .then(a.name().cmp(b.name()))
    });
    http
}

/// Every document in `path`: a kustomization directory (rendered with `kubectl kustomize`) or a
/// YAML file. Null documents (empty `---` sections) are skipped.
pub fn load_documents(path: &Path) -> Result<Vec<Value>> {
    let text = if path.is_dir() {
        kustomize(path)?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    parse_documents(&text).with_context(|| format!("parsing YAML from {}", path.display()))
}

/// Split multi-document YAML into JSON values.
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// The WasmPlugins among `docs`.
pub fn wasm_plugins(docs: &[Value]) -> Vec<WasmPlugin> {
    docs.iter()
        .filter(|d| d["kind"] == "WasmPlugin")
        .map(|d| WasmPlugin { object: d.clone() })
        .collect()
}

/// `kubectl kustomize DIR` (Debian `kubernetes-client`; installed by `setup.sh`).
pub fn kustomize(dir: &Path) -> Result<String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .context("running `kubectl kustomize` (install kubectl: ./setup.sh)")?;
    if !out.status.success() {
        bail!(
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, phase: Option<&str>, priority: Option<i64>) -> WasmPlugin {
        let mut spec = json!({"url": "oci://r/x"});
        if let Some(p) = phase {
            spec["phase"] = json!(p);
        }
        if let Some(p) = priority {
            spec["priority"] = json!(p);
        }
        WasmPlugin {
            object: json!({"kind": "WasmPlugin", "metadata": {"name": name}, "spec": spec}),
        }
    }

    #[test]
    fn chain_follows_phase_then_priority_descending_then_name() {
        let plugins = vec![
            plugin("none", None, Some(1000)),
            plugin("stats", Some("STATS"), None),
            plugin("authz-low", Some("AUTHZ"), Some(1)),
            plugin("authz-high", Some("AUTHZ"), Some(10)),
            plugin("authn-b", Some("AUTHN"), None),
            plugin("authn-a", Some("AUTHN"), None),
        ];
        let order: Vec<&str> = chain_order(&plugins, PluginType::Http)
            .iter()
            .map(|p| p.name())
            .collect();
        assert_eq!(
            order,
            [
                "authn-a",
                "authn-b",
                "authz-high",
                "authz-low",
                "stats",
                "none"
            ]
        );
    }

    #[test]
    fn renders_config_failure_policy_and_env_like_istiod() {
        let p = WasmPlugin {
            object: json!({"kind": "WasmPlugin", "metadata": {"name": "p"}, "spec": {
                "url": "oci://r/x", "failStrategy": "FAIL_OPEN", "pluginName": "root",
                "pluginConfig": {"a": [1, 2]},
                "vmConfig": {"env": [{"name": "POD", "valueFrom": "HOST"}, {"name": "MODE", "value": "dev"}]}
            }}),
        };
        let tc = p.envoy_typed_config(Path::new("/m/p.wasm"));
        let c = &tc["config"];
        assert_eq!(c["failure_policy"], "FAIL_OPEN");
        assert_eq!(c["root_id"], "root");
        assert_eq!(c["configuration"]["value"], r#"{"a":[1,2]}"#);
        assert_eq!(
            c["vm_config"]["environment_variables"],
            json!({"host_env_keys": ["POD"], "key_values": {"MODE": "dev"}})
        );
        assert_eq!(c["vm_config"]["code"]["local"]["filename"], "/m/p.wasm");
        // FAIL_CLOSE is the default.
        assert_eq!(
            plugin("q", None, None).envoy_typed_config(Path::new("/m"))["config"]["failure_policy"],
            "FAIL_CLOSED"
        );
    }
}
