//! `cargo xtask validate [PATH...]`: check WasmPlugin manifests before they reach a cluster.
//!
//! For every WasmPlugin rendered from each kustomization under `istio/` (or each PATH, a
//! kustomization directory or a YAML file):
//! 1. the Istio CRD's OpenAPI schema and CEL rules (`istio/schema/wasmplugin-crd.yaml`), as the
//!    API server would apply them;
//! 2. this project's rules: labelled with the filter it runs, `url` an `oci://` reference pinned by
//!    `sha256`, `failStrategy` and (for HTTP plugins) `phase` stated explicitly;
//! 3. `pluginConfig` through the filter's own configuration parser and `configure` (the code that
//!    runs in `on_configure`), so a config the filter would reject fails here, naming the field.
//!
//! Adding a filter: one line in [`filters`] (plus its crate in `xtask/Cargo.toml` with
//! `default-features = false`), and `istio/base/<name>.yaml` listed in `istio/base/kustomization.yaml`.

use crate::plugins::{self, PluginType, WasmPlugin, FILTER_LABEL};
use crate::schema::{CrdSchema, Violation};
use anyhow::{bail, Context, Result};
use envoy_harness::workspace_root;
use sdk_ext::config::parse_json;
use sdk_ext::network::{NetworkFilter, NetworkSetup};
use sdk_ext::shared::Services;
use sdk_ext::testing::recording_metrics;
use sdk_ext::{ConfigError, HttpFilter};
use std::path::{Path, PathBuf};

/// Checks one filter's `pluginConfig` with the filter's own parser.
pub struct FilterHook {
    pub name: &'static str,
    pub kind: PluginType,
    pub check: fn(&str) -> Result<(), ConfigError>,
}

/// A hook for an HTTP filter: parse as `F::Config` and run `F::configure`.
pub fn http<F: HttpFilter>() -> FilterHook {
    FilterHook {
        name: F::NAME,
        kind: PluginType::Http,
        check: |json| {
            let (mut metrics, _) = recording_metrics(F::NAME);
            F::configure(parse_json::<F::Config>(json.as_bytes())?, &mut metrics).map(|_| ())
        },
    }
}

/// A hook for a network filter: parse as `F::Config` and run `F::configure`.
pub fn network<F: NetworkFilter>() -> FilterHook {
    FilterHook {
        name: F::NAME,
        kind: PluginType::Network,
        check: |json| {
            let (mut metrics, _) = recording_metrics(F::NAME);
            let setup = NetworkSetup {
                metrics: &mut metrics,
                services: Services::local(),
            };
            F::configure(parse_json::<F::Config>(json.as_bytes())?, setup).map(|_| ())
        },
    }
}

/// Every filter whose manifests can be validated. One line per filter, e.g. when it lands:
/// ```text
/// http::<threat_score::ThreatScoreFilter>(),
/// ```
pub fn filters() -> Vec<FilterHook> {
    vec![
        http::<example::ExampleFilter>(),
        http::<router::RouterFilter>(),
        http::<policy::PolicyFilter>(),
        network::<tcp_guard::TcpGuard>(),
        http::<threat_score::ThreatScoreFilter>(),
    ]
}

/// A problem with one manifest.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Where the manifest came from (kustomization directory or file).
    pub source: String,
    /// `WasmPlugin NAME` or `document N`.
    pub object: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.object, self.message)
    }
}

/// The WasmPlugin schema shipped in `istio/schema/`.
pub fn wasm_plugin_schema() -> Result<CrdSchema> {
    let path = workspace_root().join("istio/schema/wasmplugin-crd.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(CrdSchema::from_crd_yaml(&text, "v1alpha1")?)
}

/// Schema, CEL rules and this project's rules for one document.
pub fn check_object(schema: &CrdSchema, object: &serde_json::Value) -> Vec<Violation> {
    let mut out = schema.validate(object);
    if !out.is_empty() {
        return out;
    }
    let plugin = WasmPlugin {
        object: object.clone(),
    };
    let mut rule = |path: &str, message: String| {
        out.push(Violation {
            path: path.into(),
            message,
        })
    };
    if plugin.filter().is_none() {
        rule(
            "metadata.labels",
            format!("metadata.labels: label `{FILTER_LABEL}` naming the filter is required"),
        );
    }
    if !plugin.url().starts_with("oci://") {
        rule(
            "spec.url",
            format!(
                "spec.url: must be an oci:// image reference, got {:?}",
                plugin.url()
            ),
        );
    }
    if plugin.sha256().is_empty() {
        rule("spec.sha256", "spec.sha256: the image must be pinned by its manifest digest (`cargo xtask package` writes it)".into());
    }
    if object["spec"]["failStrategy"].is_null() {
        rule(
            "spec.failStrategy",
            "spec.failStrategy: state it explicitly (FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD)".into(),
        );
    }
    if plugin.plugin_type() == PluginType::Http && object["spec"]["phase"].is_null() {
        rule(
            "spec.phase",
            "spec.phase: state it explicitly (AUTHN, AUTHZ or STATS)".into(),
        );
    }
    out
}

/// The filter's own parser on `pluginConfig`.
pub fn check_plugin_config(hooks: &[FilterHook], plugin: &WasmPlugin) -> Option<String> {
    let filter = plugin.filter()?;
    let Some(hook) = hooks.iter().find(|h| h.name == filter) else {
        return Some(format!(
            "no configuration parser registered for filter `{filter}` (add it to `filters()` in xtask/src/validate.rs)"
        ));
    };
    if hook.kind != plugin.plugin_type() {
        return Some(format!(
            "spec.type: filter `{filter}` is a {:?} filter, the manifest says {:?}",
            hook.kind,
            plugin.plugin_type()
        ));
    }
    (hook.check)(&plugin.plugin_config())
        .err()
        .map(|e| format!("spec.pluginConfig: {filter}: {e}"))
}

/// Validate every document from `path`; returns the findings and the number of WasmPlugins.
pub fn validate_path(
    schema: &CrdSchema,
    hooks: &[FilterHook],
    path: &Path,
) -> Result<(Vec<Finding>, usize)> {
    let source = path
        .strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string();
    let docs = plugins::load_documents(path)?;
    let mut findings = Vec::new();
    let mut count = 0;
    for (i, doc) in docs.iter().enumerate() {
        if doc["kind"] != "WasmPlugin" {
            continue;
        }
        count += 1;
        let object = match doc["metadata"]["name"].as_str() {
            Some(n) => format!("WasmPlugin {n}"),
            None => format!("document {}", i + 1),
        };
        let mut messages: Vec<String> = check_object(schema, doc)
            .into_iter()
            .map(|v| v.message)
            .collect();
        if messages.is_empty() {
            let plugin = WasmPlugin {
                object: doc.clone(),
            };
            messages.extend(check_plugin_config(hooks, &plugin));
        }
        findings.extend(messages.into_iter().map(|message| Finding {
            source: source.clone(),
            object: object.clone(),
            message,
        }));
    }
    // EnvoyFilters, and the early-data patch every NETWORK plugin needs under Istio.
    let plugins = plugins::wasm_plugins(&docs);
    for (object, v) in crate::envoy_filter::check(&docs, &plugins) {
        findings.push(Finding {
            source: source.clone(),
            object,
            message: format!("{}: {}", v.path, v.message),
        });
    }
    Ok((findings, count))
}

/// Kustomizations under `istio/`: `base` and each `overlays/*`.
pub fn default_targets() -> Result<Vec<PathBuf>> {
    let istio = workspace_root().join("istio");
    let mut targets = vec![istio.join("base")];
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(istio.join("overlays"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    overlays.sort();
    targets.extend(overlays);
    Ok(targets)
}

/// The command.
pub fn validate(args: &[String]) -> Result<()> {
    let targets: Vec<PathBuf> = if args.is_empty() {
        default_targets()?
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    let schema = wasm_plugin_schema()?;
    let hooks = filters();
    let mut all = Vec::new();
    for target in &targets {
        let (findings, count) = validate_path(&schema, &hooks, target)?;
        if count == 0 {
            all.push(Finding {
                source: target.display().to_string(),
                object: "-".into(),
                message: "no WasmPlugin found".into(),
            });
        }
        if findings.is_empty() && count > 0 {
            println!("ok   {} ({count} WasmPlugin)", target.display());
        }
        all.extend(findings);
    }
    warn_missing_manifests(&hooks)?;
    if !all.is_empty() {
        for f in &all {
            eprintln!("FAIL {f}");
        }
        bail!("{} problem(s) in WasmPlugin manifests", all.len());
    }
    Ok(())
}

/// A filter crate without `istio/base/<name>.yaml` or without a registered parser is a gap in the
/// kit, reported (not fatal, so filters can land before their manifests).
fn warn_missing_manifests(hooks: &[FilterHook]) -> Result<()> {
    for name in crate::build::filter_names()? {
        if !workspace_root()
            .join("istio/base")
            .join(format!("{name}.yaml"))
            .is_file()
        {
            println!("warning: filter `{name}` has no istio/base/{name}.yaml");
        }
        if !hooks.iter().any(|h| h.name == name) {
            println!("warning: filter `{name}` has no configuration parser in xtask/src/validate.rs filters()");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CrdSchema {
        wasm_plugin_schema().unwrap()
    }

    fn testdata(name: &str) -> Vec<serde_json::Value> {
        let path = workspace_root().join("istio/schema/testdata").join(name);
        plugins::parse_documents(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// istio/api's own accept cases: the schema and CEL rules pass them.
    #[test]
    fn agrees_with_istio_api_valid_examples() {
        let docs = testdata("wasm-valid.example.yaml");
        assert_eq!(docs.len(), 4);
        for doc in docs {
            let v = schema().validate(&doc);
            assert!(v.is_empty(), "{}: {v:?}", doc["metadata"]["name"]);
        }
    }

    /// istio/api's own reject cases: each fails with the message fragment the file expects.
    #[test]
    fn agrees_with_istio_api_invalid_examples() {
        let docs = testdata("wasm-invalid.example.yaml");
        assert_eq!(docs.len(), 15);
        for mut doc in docs {
            let expected = doc["_err"].as_str().unwrap().to_string();
            doc.as_object_mut().unwrap().remove("_err");
            let v = schema().validate(&doc);
            assert!(
                v.iter().any(|v| v.message.contains(&expected)),
                "{}: expected `{expected}`, got {v:?}",
                doc["metadata"]["name"]
            );
        }
    }

    fn good() -> serde_json::Value {
        json!({
            "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
            "metadata": {"name": "example", "labels": {FILTER_LABEL: "example"}},
            "spec": {"url": "oci://r.example/filters/example:0.1.0", "sha256": "a".repeat(64),
                     "phase": "AUTHZ", "failStrategy": "FAIL_CLOSE",
                     "pluginConfig": {"deny": {"header": {"name": "x-deny"}}}}
        })
    }

    #[test]
    fn unknown_fields_and_project_rules_are_reported() {
        assert!(check_object(&schema(), &good()).is_empty());
        let mut typo = good();
        typo["spec"]["failStrategey"] = json!("FAIL_OPEN");
        let v = check_object(&schema(), &typo);
        assert!(
            v.iter()
                .any(|v| v.message == "unknown field \"spec.failStrategey\""),
            "{v:?}"
        );
        let mut unpinned = good();
        unpinned["spec"].as_object_mut().unwrap().remove("sha256");
        unpinned["spec"]
            .as_object_mut()
            .unwrap()
            .remove("failStrategy");
        let v = check_object(&schema(), &unpinned);
        assert!(v.iter().any(|v| v.path == "spec.sha256"), "{v:?}");
        assert!(v.iter().any(|v| v.path == "spec.failStrategy"), "{v:?}");
    }

    #[test]
    fn plugin_config_goes_through_the_filters_own_parser() {
        let hooks = filters();
        let ok = WasmPlugin { object: good() };
        assert_eq!(check_plugin_config(&hooks, &ok), None);
        let mut bad = good();
        bad["spec"]["pluginConfig"]["deny"]["stauts"] = json!(403);
        let msg = check_plugin_config(&hooks, &WasmPlugin { object: bad }).unwrap();
        assert!(
            msg.contains("invalid configuration at `deny.stauts`: unknown field `stauts`"),
            "{msg}"
        );
        let mut regex = good();
        regex["spec"]["pluginConfig"]["deny"]["header"]["value"] = json!({"regex": "("});
        let msg = check_plugin_config(&hooks, &WasmPlugin { object: regex }).unwrap();
        assert!(msg.contains("deny.header.value.regex"), "{msg}");
        let mut unknown = good();
        unknown["metadata"]["labels"][FILTER_LABEL] = json!("nope");
        let msg = check_plugin_config(&hooks, &WasmPlugin { object: unknown }).unwrap();
        assert!(msg.contains("no configuration parser registered for filter `nope`"));
    }
}
