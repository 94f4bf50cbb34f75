//! Istio `EnvoyFilter`s that network plugins need, as `cargo xtask up --plugins` renders them and
//! `cargo xtask validate` checks them.
//!
//! istiod renders a gateway's `tcp_proxy` without `max_early_data_bytes`, so `tcp_proxy` stops
//! reading the downstream until its upstream connects, and a network filter before it that holds
//! the connection to inspect the first bytes (tcp-guard) never receives any. The fix ships as an
//! EnvoyFilter (`istio/base/tcp-guard-early-data.yaml`) that MERGEs `max_early_data_bytes` into
//! that `tcp_proxy`. Locally, `up --plugins` renders the TCP listener as istiod does (no early
//! data) and applies exactly this kind of patch when the manifests contain one; other
//! EnvoyFilter patches are reported as not rendered (istiod's patch engine is not reproduced).

use crate::plugins::{Listener, PluginType, WasmPlugin, Workload};
use crate::schema::Violation;
use serde_json::Value;

/// The network filter the patch targets.
pub const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const TCP_PROXY_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/// One `configPatches` entry that MERGEs into a listener's `tcp_proxy`.
#[derive(Debug, Clone)]
pub struct TcpProxyPatch {
    /// `EnvoyFilter NAME configPatches[i]`, for messages.
    pub origin: String,
    /// `match.listener.portNumber`; `None`: every listener.
    pub port: Option<u16>,
    /// `match.context` (`GATEWAY`, `SIDECAR_INBOUND`, `SIDECAR_OUTBOUND`, `ANY`; absent = ANY).
    pub context: String,
    /// `workloadSelector.labels`.
    pub selector: serde_json::Map<String, Value>,
    /// `patch.value.typed_config` without `@type`: fields merged into `tcp_proxy`'s config.
    pub merge: serde_json::Map<String, Value>,
}

impl TcpProxyPatch {
    /// Whether istiod would apply the patch to `listener` of `workload` (a gateway).
    pub fn applies_to(&self, workload: &Workload, listener: &Listener) -> bool {
        let context = matches!(self.context.as_str(), "" | "ANY" | "GATEWAY");
        let port = self.port.is_none_or(|p| p == listener.port);
        let selected = self
            .selector
            .iter()
            .all(|(k, v)| workload.labels.get(k).map(String::as_str) == v.as_str());
        context && port && selected
    }

    /// Merge into a rendered listener's `tcp_proxy` (proto MERGE: fields set by the patch win).
    pub fn apply(&self, listener: &mut Value) {
        for chain in listener["filter_chains"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for filter in chain["filters"].as_array_mut().into_iter().flatten() {
                if filter["name"] == TCP_PROXY {
                    if let Some(tc) = filter["typed_config"].as_object_mut() {
                        for (k, v) in &self.merge {
                            tc.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
    }
}

/// The EnvoyFilters among `docs`: the `tcp_proxy` MERGE patches, and a note for every other
/// patch (not rendered locally).
pub fn tcp_proxy_patches(docs: &[Value]) -> (Vec<TcpProxyPatch>, Vec<String>) {
    let mut patches = Vec::new();
    let mut notes = Vec::new();
    for doc in docs.iter().filter(|d| d["kind"] == "EnvoyFilter") {
        let name = doc["metadata"]["name"].as_str().unwrap_or("?");
        let spec = &doc["spec"];
        for (i, p) in spec["configPatches"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let origin = format!("EnvoyFilter {name} configPatches[{i}]");
            match parse_patch(spec, p, &origin) {
                Ok(patch) => patches.push(patch),
                Err(why) => notes.push(format!("{origin}: not rendered locally ({why})")),
            }
        }
    }
    (patches, notes)
}

fn parse_patch(spec: &Value, p: &Value, origin: &str) -> Result<TcpProxyPatch, String> {
    if p["applyTo"] != "NETWORK_FILTER" || p["patch"]["operation"] != "MERGE" {
        return Err(format!(
            "only applyTo NETWORK_FILTER with operation MERGE is rendered, got {} / {}",
            p["applyTo"], p["patch"]["operation"]
        ));
    }
    let m = &p["match"];
    if m["listener"]["filterChain"]["filter"]["name"] != TCP_PROXY {
        return Err(format!("the patch must match the filter {TCP_PROXY}"));
    }
    let tc = &p["patch"]["value"]["typed_config"];
    if tc["@type"] != TCP_PROXY_TYPE {
        return Err(format!(
            "patch.value.typed_config.@type must be {TCP_PROXY_TYPE}"
        ));
    }
    let mut merge = tc.as_object().cloned().unwrap_or_default();
    merge.remove("@type");
    let port = match &m["listener"]["portNumber"] {
        Value::Null => None,
        v => Some(
            v.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| format!("{origin}: match.listener.portNumber {v} is not a port"))?,
        ),
    };
    Ok(TcpProxyPatch {
        origin: origin.to_string(),
        port,
        context: m["context"].as_str().unwrap_or_default().to_string(),
        selector: spec["workloadSelector"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
        merge,
    })
}

/// `cargo xtask validate`'s rules for EnvoyFilters and network plugins, over one rendering:
/// every EnvoyFilter patch is one `up --plugins` can render (so what is tested locally is what
/// is shipped), and every NETWORK WasmPlugin's listener gets `tcp_proxy.max_early_data_bytes`
/// from a patch that selects the same workload and port (without it a filter that inspects the
/// first bytes sees none under Istio). Returns (object, violation) pairs.
pub fn check(docs: &[Value], plugins: &[WasmPlugin]) -> Vec<(String, Violation)> {
    let mut out = Vec::new();
    let (patches, notes) = tcp_proxy_patches(docs);
    for note in notes {
        let (object, message) = note.split_once(": ").unwrap_or(("EnvoyFilter", &note));
        out.push((
            object.to_string(),
            Violation {
                path: "spec.configPatches".into(),
                message: message.to_string(),
            },
        ));
    }
    for p in &patches {
        let bytes = p.merge.get("max_early_data_bytes").and_then(Value::as_u64);
        if bytes.is_none_or(|b| b == 0) {
            out.push((
                p.origin.clone(),
                Violation {
                    path: "patch.value.typed_config.max_early_data_bytes".into(),
                    message: "must be a positive number of bytes".into(),
                },
            ));
        }
    }
    for plugin in plugins
        .iter()
        .filter(|p| p.plugin_type() == PluginType::Network)
    {
        let workload = Workload {
            namespace: plugin.namespace().to_string(),
            labels: plugin.object["spec"]["selector"]["matchLabels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
        };
        let ports: Vec<u16> = plugin.object["spec"]["match"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["number"].as_u64().and_then(|n| u16::try_from(n).ok()))
            .collect();
        let covered = |port: Option<u16>| {
            patches.iter().any(|p| {
                p.merge.contains_key("max_early_data_bytes")
                    && p.selector
                        .iter()
                        .all(|(k, v)| workload.labels.get(k).map(String::as_str) == v.as_str())
                    && match (p.port, port) {
                        (None, _) => true,
                        (Some(a), Some(b)) => a == b,
                        (Some(_), None) => false,
                    }
            })
        };
        let missing: Vec<String> = if ports.is_empty() {
            (!covered(None))
                .then(|| "every port".to_string())
                .into_iter()
                .collect()
        } else {
            ports
                .iter()
                .filter(|p| !covered(Some(**p)))
                .map(|p| format!("port {p}"))
                .collect()
        };
        if !missing.is_empty() {
            out.push((
                format!("WasmPlugin {}", plugin.name()),
                Violation {
                    path: "spec.match".into(),
                    message: format!(
                        "no EnvoyFilter sets tcp_proxy max_early_data_bytes for this NETWORK plugin's workload on {} (istiod renders tcp_proxy without it, so the filter sees no bytes; see istio/base/tcp-guard-early-data.yaml)",
                        missing.join(", ")
                    ),
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envoy_filter(port: Value, operation: &str, bytes: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
            "metadata": {"name": "ed", "namespace": "istio-system"},
            "spec": {"workloadSelector": {"labels": {"istio": "ingressgateway"}},
                "configPatches": [{"applyTo": "NETWORK_FILTER",
                    "match": {"context": "GATEWAY", "listener": {"portNumber": port,
                        "filterChain": {"filter": {"name": TCP_PROXY}}}},
                    "patch": {"operation": operation, "value": {"typed_config": {
                        "@type": TCP_PROXY_TYPE, "max_early_data_bytes": bytes}}}}]}})
    }

    fn network_plugin(port: u16) -> WasmPlugin {
        WasmPlugin {
            object: json!({"kind": "WasmPlugin",
                "metadata": {"name": "tcp-guard", "namespace": "istio-system"},
                "spec": {"type": "NETWORK",
                    "selector": {"matchLabels": {"istio": "ingressgateway"}},
                    "match": [{"ports": [{"number": port}]}]}}),
        }
    }

    #[test]
    fn merges_early_data_into_the_matching_gateway_listener_only() {
        let docs = [envoy_filter(json!(31400), "MERGE", json!(65536))];
        let (patches, notes) = tcp_proxy_patches(&docs);
        assert!(notes.is_empty(), "{notes:?}");
        let gw = Workload::default();
        assert!(patches[0].applies_to(&gw, &Listener::gateway(31400)));
        assert!(!patches[0].applies_to(&gw, &Listener::gateway(8443)));
        let mut listener = json!({"filter_chains": [{"filters": [
            {"name": "wasm"},
            {"name": TCP_PROXY, "typed_config": {"@type": TCP_PROXY_TYPE, "cluster": "c"}}]}]});
        patches[0].apply(&mut listener);
        let tc = &listener["filter_chains"][0]["filters"][1]["typed_config"];
        assert_eq!(tc["max_early_data_bytes"], 65536);
        assert_eq!(tc["cluster"], "c");
    }

    #[test]
    fn a_network_plugin_without_a_matching_early_data_patch_is_refused() {
        let plugin = network_plugin(31400);
        let ok = [envoy_filter(json!(31400), "MERGE", json!(65536))];
        assert!(check(&ok, std::slice::from_ref(&plugin)).is_empty());
        // No EnvoyFilter, or one for another port: refused, naming the port.
        let v = check(&[], std::slice::from_ref(&plugin));
        assert!(v[0].1.message.contains("port 31400"), "{v:?}");
        let v = check(
            &[envoy_filter(json!(15443), "MERGE", json!(65536))],
            std::slice::from_ref(&plugin),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        // A patch this project cannot render, or zero bytes: refused too.
        let v = check(&[envoy_filter(json!(31400), "REPLACE", json!(65536))], &[]);
        assert!(v[0].1.message.contains("not rendered locally"), "{v:?}");
        let v = check(&[envoy_filter(json!(31400), "MERGE", json!(0))], &[]);
        assert!(v[0].1.message.contains("positive"), "{v:?}");
    }
}
