//! Istio `WasmPlugin` manifests: load them (a kustomization rendered with `kubectl kustomize`, or
//! plain YAML), and turn them into the Envoy configuration istiod would push, so local runs use
//! exactly what production applies.
//!
//! Mapping (Istio 1.30, `pilot/pkg/model/extensions.go` and `pilot/pkg/networking/core/extension`):
//! * `pluginConfig` -> `configuration` as a `google.protobuf.StringValue` holding its JSON;
//! * `phase` + `priority` -> position in the HTTP filter chain: AUTHN plugins first, then AUTHZ,
//!   then STATS, then plugins with no phase (just before the router); within a phase, higher
//!   `priority` first and a plugin **without** `priority` last (istiod sorts it as `i32::MIN`,
//!   `PushContext.WasmPlugins`); istiod keeps ties in the order it lists the plugins
//!   (namespace, then creation), which a manifest does not carry: ties go by namespace/name;
//! * `failStrategy` -> `failure_policy` (`FAIL_CLOSE` is the default);
//! * `vmConfig.env` -> `vm_config.environment_variables` (`HOST` -> `host_env_keys`, else
//!   `key_values`), plus the keys istiod adds: `ISTIO_META_WASM_IMAGE_PULL_POLICY` (when
//!   `imagePullPolicy` is set), `ISTIO_META_WASM_IMAGE_PULL_SECRET` (when `imagePullSecret` is)
//!   and `ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION` (the API server's resourceVersion; locally a
//!   hash of the manifest, so an edit makes new VMs as a new resourceVersion does);
//! * `pluginName` -> `root_id` (empty when absent), and **no `vm_id`**: istiod sets none, so every
//!   plugin of a proxy shares one shared-data store (filters must namespace their keys);
//! * which plugins apply to the proxy ([`WasmPlugin::applies_to`]): `selector` against the
//!   workload's labels, `targetRefs` (a `Gateway` reference selects the pods labelled
//!   `gateway.networking.k8s.io/gateway-name: NAME`; other kinds need the Kubernetes API and are
//!   reported as not rendered), the plugin's namespace (the workload's own or the root
//!   namespace), and `match` (`mode` against the listener class, gateway = `CLIENT`, and
//!   `ports` against the listener's port), as `WasmPluginWrapper.MatchListener` does.
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

    /// `spec.priority`; `None` when absent (istiod then sorts the plugin last in its phase).
    pub fn priority(&self) -> Option<i64> {
        self.spec()["priority"].as_i64()
    }

    /// Whether istiod would attach this plugin to `listener` of `workload`; `Err` says why not.
    pub fn applies_to(&self, workload: &Workload, listener: &Listener) -> Result<(), String> {
        let ns = self.namespace();
        if !ns.is_empty() && ns != workload.namespace && ns != ROOT_NAMESPACE {
            return Err(format!(
                "namespace {ns} is neither the workload's ({}) nor the root namespace",
                workload.namespace
            ));
        }
        let spec = self.spec();
        let refs = spec["targetRefs"]
            .as_array()
            .cloned()
            .or_else(|| spec.get("targetRef").map(|r| vec![r.clone()]))
            .unwrap_or_default();
        if !refs.is_empty() {
            let gateway = workload.labels.get(GATEWAY_NAME_LABEL);
            let hit = refs.iter().any(|r| {
                r["kind"] == "Gateway" && r["name"].as_str() == gateway.map(String::as_str)
            });
            if !hit {
                return Err(format!(
                    "targetRefs {} select no Gateway named by the workload label {GATEWAY_NAME_LABEL} ({}); Service and GatewayClass references need the Kubernetes API and are not rendered locally",
                    Value::Array(refs),
                    gateway.map_or("none", String::as_str)
                ));
            }
        } else if let Some(labels) = spec["selector"]["matchLabels"].as_object() {
            for (k, v) in labels {
                if workload.labels.get(k).map(String::as_str) != v.as_str() {
                    return Err(format!(
                        "selector {k}={v} does not match the workload's labels"
                    ));
                }
            }
        }
        let Some(selectors) = spec["match"].as_array().filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        let matched = selectors.iter().any(|m| {
            let mode = match m["mode"].as_str() {
                None | Some("UNDEFINED") | Some("CLIENT_AND_SERVER") => true,
                Some(mode) => mode == listener.mode,
            };
            let ports = m["ports"].as_array().filter(|p| !p.is_empty());
            let port = ports.is_none_or(|ports| {
                ports
                    .iter()
                    .any(|p| p["number"].as_u64() == Some(u64::from(listener.port)))
            });
            mode && port
        });
        if matched {
            Ok(())
        } else {
            Err(format!(
                "match {} does not select the {} listener on port {}",
                spec["match"], listener.mode, listener.port
            ))
        }
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

    /// A stand-in for the API server's `resourceVersion`: a hash of the manifest's spec.
    fn local_resource_version(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.spec().to_string().hash(&mut h);
        format!("local-{:016x}", h.finish())
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
        let root_id = self.spec()["pluginName"].as_str().unwrap_or_default();
        // No `vm_id`: istiod sets none (plugins of one proxy share a VM key prefix and one
        // shared-data store).
        let mut vm_config = json!({
            "runtime": "envoy.wasm.runtime.v8",
            "code": { "local": { "filename": module.display().to_string() } }
        });
        let mut env = self
            .environment_variables()
            .unwrap_or_else(|| json!({"key_values": {}}));
        let kv = &mut env["key_values"];
        if let Some(policy) = self.spec()["imagePullPolicy"].as_str() {
            kv["ISTIO_META_WASM_IMAGE_PULL_POLICY"] = json!(policy);
        }
        if let Some(secret) = self.spec()["imagePullSecret"].as_str() {
            kv["ISTIO_META_WASM_IMAGE_PULL_SECRET"] = json!(secret);
        }
        kv["ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"] = json!(self.local_resource_version());
        vm_config["environment_variables"] = env;
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

/// istiod's root namespace (`meshConfig.rootNamespace` default): plugins there apply to every
/// namespace's workloads.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The label Istio puts on the pods of a Gateway API `Gateway` (what `targetRefs` selects).
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// The proxy `cargo xtask up --plugins` stands in for: by default Istio's ingress gateway
/// (`istio: ingressgateway` in `istio-system`), which the shipped manifests select.
#[derive(Debug, Clone)]
pub struct Workload {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            namespace: ROOT_NAMESPACE.into(),
            labels: BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]),
        }
    }
}

/// One listener of that proxy: the gateway port it stands for and its traffic mode (istiod
/// treats gateway listeners as `CLIENT`, `workloadModeForListenerClass`).
#[derive(Debug, Clone)]
pub struct Listener {
    pub port: u16,
    pub mode: &'static str,
}

impl Listener {
    pub fn gateway(port: u16) -> Self {
        Self {
            port,
            mode: "CLIENT",
        }
    }
}

/// Istio's order for the plugins of one type (HTTP chain or network chain): by phase, then
/// priority descending (absent = last), then namespace/name.
pub fn chain_order(plugins: &[WasmPlugin], kind: PluginType) -> Vec<&WasmPlugin> {
    let mut http: Vec<&WasmPlugin> = plugins.iter().filter(|p| p.plugin_type() == kind).collect();
    let prio = |p: &WasmPlugin| p.priority().unwrap_or(i64::from(i32::MIN));
    http.sort_by(|a, b| {
        a.phase()
            .cmp(&b.phase())
            .then(prio(b).cmp(&prio(a)))
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
            plugin("authz-unset", Some("AUTHZ"), None),
            plugin("authz-negative", Some("AUTHZ"), Some(-5)),
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
                "authz-negative",
                "authz-unset",
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
        let env = &c["vm_config"]["environment_variables"];
        assert_eq!(env["host_env_keys"], json!(["POD"]));
        assert_eq!(env["key_values"]["MODE"], "dev");
        assert!(env["key_values"]["ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"]
            .as_str()
            .unwrap()
            .starts_with("local-"));
        // istiod sets no vm_id (one shared-data store per proxy) and no root_id by default.
        assert!(c["vm_config"].get("vm_id").is_none());
        assert_eq!(
            plugin("q", None, None).envoy_typed_config(Path::new("/m"))["config"]["root_id"],
            ""
        );
        assert_eq!(c["vm_config"]["code"]["local"]["filename"], "/m/p.wasm");
        // FAIL_CLOSE is the default.
        assert_eq!(
            plugin("q", None, None).envoy_typed_config(Path::new("/m"))["config"]["failure_policy"],
            "FAIL_CLOSED"
        );
    }

    fn with_spec(name: &str, namespace: &str, spec: Value) -> WasmPlugin {
        WasmPlugin {
            object: json!({"kind": "WasmPlugin",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}),
        }
    }

    #[test]
    fn attaches_like_istiod_by_selector_target_refs_namespace_and_match() {
        let gw = Workload::default();
        let http = Listener::gateway(8080);
        let tcp = Listener::gateway(31400);
        let applies = |p: &WasmPlugin, l: &Listener| p.applies_to(&gw, l).is_ok();
        let ns = ROOT_NAMESPACE;
        let sel = json!({"matchLabels": {"istio": "ingressgateway"}});
        // No selector: every workload; a selector must match the labels.
        assert!(applies(&with_spec("a", ns, json!({})), &http));
        assert!(applies(
            &with_spec("a", ns, json!({"selector": sel})),
            &http
        ));
        let other = json!({"selector": {"matchLabels": {"app": "reviews"}}});
        assert!(!applies(&with_spec("a", ns, other), &http));
        // Another namespace than the workload's or the root namespace: not attached.
        assert!(!applies(&with_spec("a", "shop", json!({})), &http));
        // match.ports selects listeners; gateways are CLIENT mode.
        let ports = json!({"match": [{"ports": [{"number": 31400}]}]});
        assert!(applies(&with_spec("a", ns, ports.clone()), &tcp));
        assert!(!applies(&with_spec("a", ns, ports), &http));
        let server = json!({"match": [{"mode": "SERVER"}]});
        assert!(!applies(&with_spec("a", ns, server), &http));
        let client = json!({"match": [{"mode": "CLIENT"}, {"mode": "SERVER"}]});
        assert!(applies(&with_spec("a", ns, client), &http));
        // targetRefs: a Gateway selects its pods by label; without the label, not attached.
        let refs = json!({"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "edge"}]});
        let p = with_spec("a", ns, refs);
        let err = p.applies_to(&gw, &http).unwrap_err();
        assert!(err.contains("targetRefs"), "{err}");
        let mut edge = Workload::default();
        edge.labels
            .insert(GATEWAY_NAME_LABEL.to_string(), "edge".to_string());
        assert!(p.applies_to(&edge, &http).is_ok());
    }
}
