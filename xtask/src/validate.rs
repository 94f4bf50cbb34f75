//! `cargo xtask validate [PATH...]`: check WasmPlugin manifests before they reach a cluster.
//!
//! For every WasmPlugin rendered from each overlay under `istio/overlays/` (or each PATH, a
//! kustomization directory or a YAML file; `istio/base` is not deployed on its own):
//! 1. the Istio CRD's OpenAPI schema and CEL rules (`istio/schema/wasmplugin-crd.yaml`), as the
//!    API server would apply them;
//! 2. this project's rules: labelled with the filter it runs, `url` an `oci://` reference pinned by
//!    `sha256`, `failStrategy` and (for HTTP plugins) `phase` stated explicitly;
//! 3. `pluginConfig` through the filter's own configuration parser and `configure` (the code that
//!    runs in `on_configure`), so a config the filter would reject fails here, naming the field;
//! 4. the pin: `url` names the image by digest (`oci://REPO@sha256:...`, a tag can move) equal to
//!    `sha256`, and that digest is the image `cargo xtask package` builds from this checkout; a
//!    stale pin names the file to update and the command that does it (`cargo xtask pin`);
//! 5. outside dev overlays (`dev`, `dev-*`, `*-dev`): no template filter (`example`), no
//!    placeholder or loopback registry, no known demo API key.
//!
//! Parsers are found from the filters themselves ([`crate::config_check`]): nothing to register.

use crate::config_check::{Checker, Verdict};
use crate::package::{self as pkg, is_dev_overlay, url_digest, WasmImage};
use crate::plugins::{self, PluginType, WasmPlugin, FILTER_LABEL};
use crate::schema::{CrdSchema, Violation};
use anyhow::{bail, Context, Result};
use envoy_harness::workspace_root;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
        rule("spec.sha256", "spec.sha256: the image must be pinned by its manifest digest (`cargo xtask pin` writes it)".into());
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

/// The filter's own parser on `pluginConfig` (see [`crate::config_check`]).
pub fn check_plugin_config(checker: &Checker, plugin: &WasmPlugin) -> Option<String> {
    let filter = plugin.filter()?;
    let Some(entry) = checker.filter(filter) else {
        return Some(format!(
            "metadata.labels: no filter module `{filter}` (filters/{filter} with `export_http_filter!` or `export_network_filter!`)"
        ));
    };
    if entry.kind != plugin.plugin_type() {
        return Some(format!(
            "spec.type: filter `{filter}` is a {:?} filter, the manifest says {:?}",
            entry.kind,
            plugin.plugin_type()
        ));
    }
    match checker.check(filter, &plugin.plugin_config()) {
        Ok(Verdict::Accepted) => None,
        Ok(Verdict::Rejected(e)) => Some(format!("spec.pluginConfig: {filter}: {e}")),
        Ok(Verdict::NoSuchFilter) => Some(format!("metadata.labels: no filter module `{filter}`")),
        Err(e) => Some(format!("checking spec.pluginConfig: {e:#}")),
    }
}

/// Validate every document from `path` (with the pin and deployment rules in `options`, pins
/// when `pins` is given); returns the findings and the number of WasmPlugins.
fn validate_target(
    schema: &CrdSchema,
    checker: &Checker,
    path: &Path,
    options: &Options,
    mut pins: Option<&mut Pins>,
    notes: &mut Vec<String>,
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
            messages.extend(check_plugin_config(checker, &plugin));
            messages.extend(check_delivery(
                path,
                &plugin,
                options,
                pins.as_deref_mut(),
                notes,
            ));
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

/// The overlays under `istio/overlays/`: what gets applied (`istio/base` only through them).
pub fn default_targets() -> Result<Vec<PathBuf>> {
    pkg::overlays(&workspace_root().join("istio"))
}

/// What `validate` checks besides schema and parsers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Prebuilt modules (`DIR/<filter>.wasm`) to compute the expected pins from; default
    /// `$FILTER_MODULES_DIR`, else `cargo xtask build`.
    pub modules: Option<PathBuf>,
    /// Skip the pin check (schema, parsers and deployment rules only).
    pub no_pins: bool,
    /// Report placeholder registries in non-dev overlays as a note instead of a failure (the
    /// test command: this checkout cannot know your registry).
    pub allow_placeholder_registry: bool,
}

/// API keys this project ships for demos (READMEs, `config.json`, the dev overlay): refused
/// outside dev overlays, as plaintext or as the SHA-256 the filters take.
pub const DEMO_KEYS: &[(&str, &str)] = &[("secret", "filters/policy/README.md")];

/// Placeholder, reserved (RFC 2606/6761) or loopback registry hosts.
fn registry_problem(url: &str) -> Option<String> {
    let rest = url.strip_prefix("oci://").unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let reserved = ["example.com", "example.net", "example.org"];
    let placeholder = reserved
        .iter()
        .any(|r| host == *r || host.ends_with(&format!(".{r}")))
        || [".example", ".invalid", ".test"]
            .iter()
            .any(|t| host.ends_with(t));
    let loopback = host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "[::1]";
    if placeholder {
        Some(format!(
            "registry `{host}` is a placeholder: set your registry"
        ))
    } else if loopback {
        Some(format!(
            "registry `{host}` is loopback: the istio-agent in each pod fetches the module itself, \
             so it would look in the pod (see istio/README.md, registries)"
        ))
    } else {
        None
    }
}

/// Strings in `value` (recursively) that are a demo key or its SHA-256.
fn demo_keys_in(value: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) => {
                for (key, source) in DEMO_KEYS {
                    let hash = pkg::sha256_digest(key.as_bytes());
                    if s == key || s == hash.trim_start_matches("sha256:") {
                        found.push(format!("the demo API key `{key}` ({source})"));
                    }
                }
            }
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    found
}

/// The expected image digest per filter, computed once from the modules.
struct Pins {
    modules: Option<PathBuf>,
    digests: BTreeMap<String, Result<String, String>>,
}

impl Pins {
    fn expected(&mut self, filter: &str) -> Result<String, String> {
        if let Some(d) = self.digests.get(filter) {
            return d.clone();
        }
        let result = (|| -> Result<String> {
            let dir = match &self.modules {
                Some(d) => d.clone(),
                None => crate::build::build_and_report(&[filter.to_string()])?,
            };
            let path = dir.join(format!("{filter}.wasm"));
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(WasmImage::new(&bytes, filter, &pkg::filter_version(filter)?)?.digest())
        })()
        .map_err(|e| format!("{e:#}"));
        self.digests.insert(filter.to_string(), result.clone());
        result
    }
}

/// Pin and deployment rules for one rendered plugin of `target`.
fn check_delivery(
    target: &Path,
    plugin: &WasmPlugin,
    options: &Options,
    pins: Option<&mut Pins>,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(filter) = plugin.filter() else {
        return out;
    };
    let site = || {
        pkg::pin_site(target, plugin.name())
            .map(|s| s.path().display().to_string())
            .unwrap_or_else(|_| target.display().to_string())
    };
    let dev = if target.is_dir() {
        is_dev_overlay(target)
    } else {
        target.parent().is_some_and(is_dev_overlay)
    };
    if !dev {
        if filter == "example" {
            out.push(
                "metadata.labels: the template filter `example` runs only in dev overlays \
                 (it exists to be copied: `cargo xtask new-filter NAME`)"
                    .to_string(),
            );
        }
        if let Some(problem) = registry_problem(plugin.url()) {
            let msg = format!("spec.url: {problem} in {}", site());
            if options.allow_placeholder_registry && !problem.contains("loopback") {
                notes.push(format!(
                    "{}: WasmPlugin {}: {msg}",
                    target.display(),
                    plugin.name()
                ));
            } else {
                out.push(msg);
            }
        }
        for demo in demo_keys_in(&plugin.object["spec"]["pluginConfig"]) {
            out.push(format!(
                "spec.pluginConfig: {demo} is for dev overlays only; put your own keys' SHA-256 here"
            ));
        }
    }
    let Some(pins) = pins else { return out };
    let hex = plugin.sha256();
    let Some(url_pin) = url_digest(plugin.url()) else {
        out.push(format!(
            "spec.url: {:?} can move under the pin: name the image by digest (`oci://REPO@sha256:...`); \
             `cargo xtask pin` writes it in {}",
            plugin.url(),
            site()
        ));
        return out;
    };
    if url_pin.trim_start_matches("sha256:") != hex {
        out.push(format!(
            "spec.sha256 {hex:?} differs from the digest in spec.url ({url_pin}); `cargo xtask pin` rewrites both in {}",
            site()
        ));
        return out;
    }
    match pins.expected(filter) {
        Ok(expected) if expected == url_pin => {}
        Ok(expected) => out.push(format!(
            "stale pin in {}: it pins {url_pin}, but `cargo xtask package {filter}` builds {expected} \
             from this checkout; run `cargo xtask pin` (the release step, istio/README.md) and commit",
            site()
        )),
        Err(e) => out.push(format!("cannot compute the pin of `{filter}`: {e}")),
    }
    out
}

/// The command: `validate [--modules DIR] [--no-pins] [--allow-placeholder-registry] [PATH...]`.
pub fn validate(args: &[String]) -> Result<()> {
    let mut options = Options::default();
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--modules" => {
                options.modules = Some(PathBuf::from(
                    it.next().context("--modules needs a directory")?,
                ))
            }
            "--no-pins" => options.no_pins = true,
            "--allow-placeholder-registry" => options.allow_placeholder_registry = true,
            other if other.starts_with('-') => bail!("unexpected argument `{other}`"),
            other => paths.push(PathBuf::from(other)),
        }
    }
    validate_with(&paths, &options)
}

/// Validate `paths` (default: every overlay) with `options`.
pub fn validate_with(paths: &[PathBuf], options: &Options) -> Result<()> {
    let targets: Vec<PathBuf> = if paths.is_empty() {
        default_targets()?
    } else {
        paths.to_vec()
    };
    let schema = wasm_plugin_schema()?;
    let checker = Checker::build()?;
    let mut pins = Pins {
        modules: options
            .modules
            .clone()
            .or_else(|| std::env::var_os("FILTER_MODULES_DIR").map(PathBuf::from)),
        digests: BTreeMap::new(),
    };
    let mut all = Vec::new();
    let mut notes = Vec::new();
    for target in &targets {
        let pins = (!options.no_pins).then_some(&mut pins);
        let (findings, count) =
            validate_target(&schema, &checker, target, options, pins, &mut notes)?;
        if count == 0 {
            all.push(Finding {
                source: target.display().to_string(),
                object: "-".into(),
                message: "no WasmPlugin found".into(),
            });
        }
        if findings.is_empty() && count > 0 {
            println!(
                "ok   {} ({count} WasmPlugin{})",
                target.display(),
                if options.no_pins {
                    ", pins not checked"
                } else {
                    ", pins match this checkout"
                }
            );
        }
        all.extend(findings);
    }
    for n in &notes {
        println!("note {n} (accepted: --allow-placeholder-registry)");
    }
    warn_missing_manifests()?;
    if !all.is_empty() {
        for f in &all {
            eprintln!("FAIL {f}");
        }
        bail!("{} problem(s) in WasmPlugin manifests", all.len());
    }
    Ok(())
}

/// A filter crate that no manifest under `istio/` runs (label `app.kubernetes.io/name`) is a gap
/// in the kit: reported, not fatal (the benchmark's `noop` has none on purpose).
fn warn_missing_manifests() -> Result<()> {
    let mut labelled = String::new();
    let mut stack = vec![workspace_root().join("istio")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)?.flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name() != Some(std::ffi::OsStr::new("schema")) {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                labelled.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    for name in crate::build::filter_names()? {
        if !labelled.contains(&format!("{FILTER_LABEL}: {name} ")) {
            println!("warning: filter `{name}` has no WasmPlugin under istio/");
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
        let hooks = Checker::build().unwrap();
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
        assert!(msg.contains("no filter module `nope`"), "{msg}");
    }

    #[test]
    fn placeholder_loopback_and_demo_keys_are_recognised() {
        for (url, problem) in [
            (
                "oci://registry.example.com/f/p@sha256:ab",
                Some("placeholder"),
            ),
            ("oci://example.org/f/p", Some("placeholder")),
            ("oci://registry.invalid:5000/f/p", Some("placeholder")),
            ("oci://localhost:5000/f/p", Some("loopback")),
            ("oci://127.0.0.1:5000/f/p", Some("loopback")),
            ("oci://registry.corp.internal/f/p", None),
            ("oci://ghcr.io/org/p@sha256:ab", None),
            ("oci://myexample.com/f/p", None),
        ] {
            let got = registry_problem(url);
            match problem {
                Some(word) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(word)),
                    "{url}: {got:?}"
                ),
                None => assert_eq!(got, None, "{url}"),
            }
        }
        let hash = pkg::sha256_digest(b"secret");
        let config = json!({"api_keys": {"keys": [{"consumer": "c", "sha256": hash.trim_start_matches("sha256:")}]}});
        assert_eq!(demo_keys_in(&config).len(), 1);
        assert!(demo_keys_in(&json!({"keys": [{"sha256": "ab".repeat(32)}]})).is_empty());
    }
}
