//! Render an Envoy bootstrap (JSON, which Envoy reads as YAML) for a chain of HTTP filters.
//!
//! Wasm filters are delivered through **file-based ECDS** by default: the HTTP filter entry
//! names a `config_discovery` source that watches `<dir>/ecds/`, and each filter's
//! `TypedExtensionConfig` lives in its own file there. This is the mechanism Istio uses to push
//! a `WasmPlugin`, so tests exercise it, and a live update is an atomic rename of that file.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `PluginConfig.failure_policy`: what Envoy does when the VM is unavailable (load failure or
/// crash). Closed answers 503; open skips the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    FailClosed,
    FailOpen,
}

/// One entry of the rendered Envoy config's HTTP filter chain (`http_filters`, before the
/// router, which is always last). Not to be confused with `sdk_ext::HttpFilter`, the trait a
/// filter's logic implements.
#[derive(Debug, Clone)]
pub enum FilterEntry {
    /// A proxy-wasm module with its JSON configuration string.
    Wasm {
        name: String,
        module: PathBuf,
        config: String,
        failure: FailurePolicy,
    },
    /// A native Envoy filter, e.g. `envoy.filters.http.rbac`, with its typed config.
    Native { name: String, typed_config: Value },
    /// Any typed config (e.g. a Wasm filter rendered from an Istio `WasmPlugin`), delivered
    /// through file-based ECDS like [`FilterEntry::Wasm`] (inline with `.inline_filters()`).
    Discovered { name: String, typed_config: Value },
}

impl FilterEntry {
    /// A Wasm filter named `name` running `module` with `config` (JSON text), fail-closed.
    pub fn wasm(name: &str, module: impl Into<PathBuf>, config: impl Into<String>) -> Self {
        Self::Wasm {
            name: name.to_string(),
            module: module.into(),
            config: config.into(),
            failure: FailurePolicy::FailClosed,
        }
    }

    /// A native Envoy filter.
    pub fn native(name: &str, typed_config: Value) -> Self {
        Self::Native {
            name: name.to_string(),
            typed_config,
        }
    }

    /// Set the failure policy of a Wasm filter.
    #[must_use]
    pub fn failure(mut self, policy: FailurePolicy) -> Self {
        if let Self::Wasm { failure, .. } = &mut self {
            *failure = policy;
        }
        self
    }

    /// A filter with a ready-made typed config, delivered through ECDS.
    pub fn discovered(name: &str, typed_config: Value) -> Self {
        Self::Discovered {
            name: name.to_string(),
            typed_config,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Wasm { name, .. } | Self::Native { name, .. } | Self::Discovered { name, .. } => {
                name
            }
        }
    }

    /// The filter's `typed_config`.
    pub fn typed_config(&self) -> Value {
        match self {
            Self::Native { typed_config, .. } | Self::Discovered { typed_config, .. } => {
                typed_config.clone()
            }
            Self::Wasm {
                name,
                module,
                config,
                failure,
            } => wasm_typed_config(name, module, config, *failure),
        }
    }
}

/// `envoy.extensions.filters.http.wasm.v3.Wasm` for a module and its configuration.
pub fn wasm_typed_config(name: &str, module: &Path, config: &str, failure: FailurePolicy) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": name,
            "root_id": name,
            "failure_policy": match failure {
                FailurePolicy::FailClosed => "FAIL_CLOSED",
                FailurePolicy::FailOpen => "FAIL_OPEN",
            },
            "vm_config": {
                "vm_id": name,
                "runtime": "envoy.wasm.runtime.v8",
                "code": { "local": { "filename": module.display().to_string() } }
            },
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": config
            }
        }
    })
}

/// The ECDS file content (a discovery response) carrying one filter's config.
pub fn ecds_resource(name: &str, typed_config: Value, version: u64) -> Value {
    json!({
        "version_info": version.to_string(),
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": name,
            "typed_config": typed_config
        }]
    })
}

/// Runtime overrides Istio's sidecars and gateways apply, so local Envoys treat edge cases of
/// traffic as production does. `http_reject_path_with_fragment: false`: a `#fragment` in the
/// request target is stripped instead of answered with 400 (Envoy's default rejects it; Istio
/// turns that off, see envoyproxy/envoy#20985).
static ISTIO_RUNTIME: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || json!({ "envoy.reloadable_features.http_reject_path_with_fragment": false }),
);

/// What Envoy should run.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    /// Worker threads (`--concurrency`).
    pub concurrency: u32,
    /// HTTP filters in order; the router is appended.
    pub filters: Vec<FilterEntry>,
    /// Upstream clusters (name, address); the first is the default route's target.
    pub clusters: Vec<(String, SocketAddr)>,
    /// Replaces the default `virtual_hosts` (one host `*`, prefix `/` to the first cluster).
    pub virtual_hosts: Option<Value>,
    /// Deliver Wasm filters through file-based ECDS (default) or inline in the listener.
    pub ecds: bool,
    /// Extra listeners, verbatim (e.g. TCP listeners with network filters).
    pub extra_listeners: Vec<Value>,
    /// Extra clusters, verbatim (e.g. an HTTP/2 cluster for a gRPC service,
    /// [`crate::ratelimit::cluster_json`]).
    pub extra_clusters: Vec<Value>,
    /// Whether to create the HTTP listener named `http`.
    pub http_listener: bool,
    /// `-l` log level.
    pub log_level: String,
    /// Log level of Envoy's `wasm` component only (`--component-log-level wasm:LEVEL`), which
    /// is also the level filters log at: `debug` shows per-request decisions without Envoy's
    /// own per-request debug lines.
    pub wasm_log_level: Option<String>,
    /// Port of the HTTP listener (0: any free port).
    pub http_port: u16,
    /// Port of the admin interface (0: any free port).
    pub admin_port: u16,
    /// `xff_num_trusted_hops` of the HTTP connection manager: how many proxies in front of
    /// this Envoy append to `X-Forwarded-For` and are trusted to. 0 (default): the client's
    /// `X-Forwarded-For` is never believed; `source.address` is the connection's peer.
    pub xff_num_trusted_hops: u32,
    /// Render the connection manager's path normalization (`normalize_path`,
    /// `merge_slashes`, `path_with_escaped_slashes_action`). On by default; tests turn it off
    /// to prove the filters' own normalization.
    pub normalize_paths: bool,
    /// Extra environment variables for the Envoy process (e.g. libfaketime's `LD_PRELOAD` to
    /// move its wall clock in a test). Empty by default: Envoy inherits the test's environment.
    pub env: Vec<(String, String)>,
}

/// What the connection manager does with `%2F`/`%5C` (escaped slashes) in a path: unescape
/// them and redirect the client to the unescaped path, so every hop (client, Envoy, filters,
/// upstream) sees the same path and no two of them disagree about where segments end.
pub const ESCAPED_SLASHES_ACTION: &str = "UNESCAPE_AND_REDIRECT";

impl EnvoyConfig {
    /// An HTTP listener in front of one upstream cluster named `upstream`.
    pub fn new(upstream: SocketAddr) -> Self {
        Self {
            concurrency: 1,
            filters: Vec::new(),
            clusters: vec![("upstream".into(), upstream)],
            virtual_hosts: None,
            ecds: true,
            extra_listeners: Vec::new(),
            extra_clusters: Vec::new(),
            http_listener: true,
            log_level: "info".into(),
            wasm_log_level: None,
            http_port: 0,
            admin_port: 0,
            xff_num_trusted_hops: 0,
            normalize_paths: true,
            env: Vec::new(),
        }
    }

    /// Filters log at `level` (e.g. `debug`, where per-request decisions are), Envoy at
    /// [`EnvoyConfig::log_level`].
    #[must_use]
    pub fn wasm_log_level(mut self, level: &str) -> Self {
        self.wasm_log_level = Some(level.to_string());
        self
    }

    /// Start Envoy with `key=value` in its environment.
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Trust `n` proxies in front of this Envoy to append to `X-Forwarded-For`.
    #[must_use]
    pub fn xff_num_trusted_hops(mut self, n: u32) -> Self {
        self.xff_num_trusted_hops = n;
        self
    }

    /// Leave paths as the client sent them (no `normalize_path`, `merge_slashes` or
    /// escaped-slash handling), as an Envoy configured without them would.
    #[must_use]
    pub fn raw_paths(mut self) -> Self {
        self.normalize_paths = false;
        self
    }

    /// The connection manager's settings that decide what filters may trust: the source
    /// address (never from a client's `X-Forwarded-For` unless hops are trusted) and the path.
    pub fn trust_settings(&self) -> Value {
        let mut v = json!({
            "use_remote_address": true,
            "xff_num_trusted_hops": self.xff_num_trusted_hops,
            // With use_remote_address every loopback client is external, and Envoy would
            // replace its `x-request-id`. A client's id is kept for tracing (it decides
            // nothing; replies echo it only when it looks like an id).
            "preserve_external_request_id": true,
        });
        if self.normalize_paths {
            v["normalize_path"] = json!(true);
            v["merge_slashes"] = json!(true);
            v["path_with_escaped_slashes_action"] = json!(ESCAPED_SLASHES_ACTION);
        }
        v
    }

    #[must_use]
    pub fn filter(mut self, f: FilterEntry) -> Self {
        self.filters.push(f);
        self
    }

    #[must_use]
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    #[must_use]
    pub fn cluster(mut self, name: &str, addr: SocketAddr) -> Self {
        self.clusters.push((name.to_string(), addr));
        self
    }

    #[must_use]
    pub fn virtual_hosts(mut self, vhosts: Value) -> Self {
        self.virtual_hosts = Some(vhosts);
        self
    }

    /// Put Wasm filters inline in the listener instead of ECDS (a bad config then stops Envoy
    /// from starting at all).
    #[must_use]
    pub fn inline_filters(mut self) -> Self {
        self.ecds = false;
        self
    }

    /// Path of the ECDS file for filter `name` under `dir`.
    pub fn ecds_path(dir: &Path, name: &str) -> PathBuf {
        dir.join("ecds").join(format!("{name}.json"))
    }

    /// The bootstrap, plus the ECDS files to write (path, content).
    pub fn render(&self, dir: &Path) -> (Value, Vec<(PathBuf, Value)>) {
        let mut ecds_files = Vec::new();
        let mut http_filters: Vec<Value> = Vec::new();
        for f in &self.filters {
            match f {
                FilterEntry::Wasm { name, .. } | FilterEntry::Discovered { name, .. }
                    if self.ecds =>
                {
                    let path = Self::ecds_path(dir, name);
                    ecds_files.push((path.clone(), ecds_resource(name, f.typed_config(), 1)));
                    http_filters.push(json!({
                        "name": name,
                        "config_discovery": {
                            "config_source": {
                                "resource_api_version": "V3",
                                "path_config_source": {
                                    "path": path.display().to_string(),
                                    "watched_directory": { "path": dir.join("ecds").display().to_string() }
                                }
                            },
                            "type_urls": [f.typed_config()["@type"].clone()]
                        }
                    }));
                }
                _ => {
                    http_filters.push(json!({ "name": f.name(), "typed_config": f.typed_config() }))
                }
            }
        }
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }));
        let default_cluster = self
            .clusters
            .first()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let virtual_hosts = self.virtual_hosts.clone().unwrap_or_else(|| {
            json!([{
                "name": "default",
                "domains": ["*"],
                "routes": [{ "name": "default", "match": { "prefix": "/" },
                             "route": { "cluster": default_cluster, "timeout": "30s" } }]
            }])
        });
        let mut listeners = Vec::new();
        if self.http_listener {
            let mut hcm = json!({
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "ingress",
                "route_config": { "name": "local", "virtual_hosts": virtual_hosts },
                "http_filters": http_filters
            });
            if let (Some(obj), Value::Object(trust)) = (hcm.as_object_mut(), self.trust_settings())
            {
                obj.extend(trust);
            }
            listeners.push(json!({
                "name": "http",
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": self.http_port } },
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm
                }]}]
            }));
        }
        listeners.extend(self.extra_listeners.iter().cloned());
        let mut clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|(name, addr)| {
                json!({
                    "name": name,
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": name,
                        "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": {
                            "address": addr.ip().to_string(), "port_value": addr.port() } } } }] }]
                    }
                })
            })
            .collect();
        clusters.extend(self.extra_clusters.iter().cloned());
        let bootstrap = json!({
            "node": { "id": "envoy-harness", "cluster": "envoy-harness" },
            "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": self.admin_port } } },
            "static_resources": { "listeners": listeners, "clusters": clusters },
            "layered_runtime": { "layers": [{ "name": "istio-like", "static_layer": ISTIO_RUNTIME.clone() }] }
        });
        (bootstrap, ecds_files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecds_filters_reference_their_file_and_router_is_last() {
        let cfg = EnvoyConfig::new("127.0.0.1:9".parse().unwrap())
            .filter(FilterEntry::wasm("a", "/m/a.wasm", "{}"))
            .filter(FilterEntry::native(
                "envoy.filters.http.rbac",
                json!({"@type": "x"}),
            ));
        let (boot, files) = cfg.render(Path::new("/tmp/d"));
        let chain = &boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"];
        assert_eq!(chain[0]["name"], "a");
        assert_eq!(
            chain[0]["config_discovery"]["config_source"]["path_config_source"]["path"],
            "/tmp/d/ecds/a.json"
        );
        assert_eq!(chain[1]["name"], "envoy.filters.http.rbac");
        assert_eq!(chain[2]["name"], "envoy.filters.http.router");
        assert_eq!(files.len(), 1);
        let res = &files[0].1["resources"][0];
        assert_eq!(res["name"], "a");
        assert_eq!(
            res["typed_config"]["config"]["configuration"]["value"],
            "{}"
        );
        assert_eq!(
            res["typed_config"]["config"]["failure_policy"],
            "FAIL_CLOSED"
        );
    }

    #[test]
    fn connection_manager_trusts_no_client_address_and_normalizes_paths() {
        let hcm = |cfg: &EnvoyConfig| {
            let (boot, _) = cfg.render(Path::new("/tmp/d"));
            boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"]
                .clone()
        };
        let default = hcm(&EnvoyConfig::new("127.0.0.1:9".parse().unwrap()));
        assert_eq!(default["use_remote_address"], true);
        assert_eq!(default["xff_num_trusted_hops"], 0);
        assert_eq!(default["preserve_external_request_id"], true);
        assert_eq!(default["normalize_path"], true);
        assert_eq!(default["merge_slashes"], true);
        assert_eq!(
            default["path_with_escaped_slashes_action"],
            ESCAPED_SLASHES_ACTION
        );
        let raw = hcm(&EnvoyConfig::new("127.0.0.1:9".parse().unwrap())
            .xff_num_trusted_hops(2)
            .raw_paths());
        assert_eq!(raw["use_remote_address"], true);
        assert_eq!(raw["xff_num_trusted_hops"], 2);
        assert!(raw.get("normalize_path").is_none());
        assert!(raw.get("merge_slashes").is_none());
    }

    #[test]
    fn inline_mode_embeds_the_wasm_config() {
        let cfg = EnvoyConfig::new("127.0.0.1:9".parse().unwrap())
            .filter(FilterEntry::wasm("a", "/m/a.wasm", "{}").failure(FailurePolicy::FailOpen))
            .inline_filters();
        let (boot, files) = cfg.render(Path::new("/tmp/d"));
        assert!(files.is_empty());
        let f = &boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"][0];
        assert_eq!(f["typed_config"]["config"]["failure_policy"], "FAIL_OPEN");
    }
}
