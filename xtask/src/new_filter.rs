//! `cargo xtask new-filter NAME`: the whole kit of a new filter, from the example template, with
//! nothing to edit by hand:
//!
//! * `filters/NAME`: the crate (a workspace member by `filters/*`), its README (the template's,
//!   renamed), `config.json` for `cargo xtask up`;
//! * `istio/base/NAME.yaml`, listed in `istio/base/kustomization.yaml`: its WasmPlugin;
//! * in every overlay built on `../../base`: `NAME.patch.yaml` (the overlay's registry, an empty
//!   pin, and failing open in dev overlays), listed under `patchesJson6902`;
//! * `tests/tests/NAME.rs`: a real-Envoy test of the module, and the same checks in-process
//!   (`wasm_host`, milliseconds).
//!
//! `cargo xtask validate` finds its configuration parser from its entry point
//! (`export_http_filter!`), `up`/`up --plugins`/`package` find it by name. The pins are made by
//! `cargo xtask pin NAME` (it builds the module), as for every other filter.

use crate::package::{overlays, repository_of};
use anyhow::{bail, Context, Result};
use envoy_harness::workspace_root;
use std::path::Path;

pub fn new_filter(name: &str) -> Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!("filter name `{name}` must be lowercase letters, digits and `-`, starting with a letter");
    }
    let root = workspace_root();
    let src = root.join("filters/example");
    let dst = root.join("filters").join(name);
    let snake = name.replace('-', "_");
    let manifest = root.join("istio/base").join(format!("{name}.yaml"));
    let test = root.join("tests/tests").join(format!("{snake}.rs"));
    for p in [&dst, &manifest, &test] {
        if p.exists() {
            bail!("{} already exists", p.display());
        }
    }
    let camel: String = name
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let word = regex::Regex::new(r"\bexample\b").context("regex")?;
    // `filters/example` stays where the text says where this filter came from.
    const FROM: &str = "\u{0}template\u{0}";
    let rename = |text: &str| -> String {
        let text = text
            .replace(
                " `cargo xtask new-filter NAME` copies this crate to `filters/NAME`.",
                "",
            )
            .replace("`cargo xtask new-filter NAME` copies it.\n", "")
            .replace("ExampleFilter", &format!("{camel}Filter"))
            .replace("example_", &format!("{snake}_"))
            .replace(
                "The template filter: ",
                &format!("Made from the template filter ({FROM}): "),
            )
            .replace(
                "the template every filter in this workspace starts from.",
                &format!("made from the template filter ({FROM})."),
            );
        word.replace_all(&text, name)
            .replace(FROM, "`filters/example`")
    };
    copy_tree(&src, &dst, &rename)?;
    println!(
        "created {} (package `{name}`, filter type `{camel}Filter`)",
        dst.display()
    );

    // The WasmPlugin, in base.
    let config = std::fs::read_to_string(dst.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    std::fs::write(&manifest, base_manifest(name, &config))?;
    append_line(
        &root.join("istio/base/kustomization.yaml"),
        &format!("  - {name}.yaml"),
        "resources:",
    )?;
    println!(
        "created {} (listed in istio/base/kustomization.yaml)",
        manifest.display()
    );

    // An image patch in every overlay built on the base.
    for overlay in overlays(&root.join("istio"))? {
        let k = overlay.join("kustomization.yaml");
        let text = std::fs::read_to_string(&k)?;
        if !text.lines().any(|l| l.trim() == "- ../../base") {
            continue;
        }
        let dev = crate::package::is_dev_overlay(&overlay);
        let repo = overlay_repository(&overlay)?;
        let patch = overlay.join(format!("{name}.patch.yaml"));
        let mut body = format!(
            "# The image and its pin (digest): `cargo xtask pin` writes both; the registry/repository are yours.\n\
             - op: replace\n  path: /spec/url\n  value: {repo}/{name}\n\
             - op: add\n  path: /spec/sha256\n  value: \"\"\n"
        );
        if dev {
            body.push_str("# dev: a broken build must not block a developer.\n- op: replace\n  path: /spec/failStrategy\n  value: FAIL_OPEN\n");
        }
        std::fs::write(&patch, body)?;
        let entry = format!(
            "  - target:\n      group: extensions.istio.io\n      version: v1alpha1\n      kind: WasmPlugin\n      name: {name}\n    path: {name}.patch.yaml"
        );
        append_line(&k, &entry, "patchesJson6902:")?;
        println!(
            "created {} (listed in its kustomization.yaml)",
            patch.display()
        );
    }

    std::fs::write(&test, e2e_test(name, &snake))?;
    println!("created {}", test.display());
    println!("next: cargo xtask build {name}   # then `cargo xtask pin {name}` pins its image in the overlays");
    Ok(())
}

/// `oci://REGISTRY/PATH` the overlay's other images use (from its patches).
fn overlay_repository(overlay: &Path) -> Result<String> {
    for e in std::fs::read_dir(overlay)?.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(url) = line.trim().strip_prefix("value: oci://") {
                let repo = repository_of(url.trim().trim_matches('"'));
                if let Some((parent, _)) = repo.rsplit_once('/') {
                    return Ok(format!("oci://{parent}"));
                }
            }
        }
    }
    bail!(
        "{} sets no image in its patches: cannot tell its registry",
        overlay.display()
    )
}

/// Add `line` at the end of the top-level block `key` in a kustomization (adding the key at the
/// end of the file when it is absent).
fn append_line(kustomization: &Path, line: &str, key: &str) -> Result<()> {
    let text = std::fs::read_to_string(kustomization)
        .with_context(|| format!("reading {}", kustomization.display()))?;
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    match lines.iter().position(|l| l.trim_end() == key) {
        Some(at) => {
            let end = (at + 1..lines.len())
                .find(|&i| {
                    let l = &lines[i];
                    !l.is_empty() && !l.starts_with(' ') && !l.starts_with('-')
                })
                .unwrap_or(lines.len());
            // Before trailing blank lines of the block.
            let mut at = end;
            while at > 0 && lines[at - 1].trim().is_empty() {
                at -= 1;
            }
            lines.insert(at, line.to_string());
        }
        None => {
            lines.push(key.to_string());
            lines.push(line.to_string());
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(kustomization, out)?;
    Ok(())
}

fn base_manifest(name: &str, config: &serde_json::Value) -> String {
    format!(
        "# filters/{name}: made by `cargo xtask new-filter`. Base = production behaviour; each overlay sets\n\
         # the image and its pin (overlays/*/{name}.patch.yaml, `cargo xtask pin`).\n\
         apiVersion: extensions.istio.io/v1alpha1\n\
         kind: WasmPlugin\n\
         metadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/name: {name} # the filter crate; `cargo xtask validate` checks pluginConfig with it\n    app.kubernetes.io/part-of: proxy-wasm-filters\n\
         spec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n\
         \x20 url: oci://registry.example.com/proxy-wasm-filters/{name}\n\
         \x20 imagePullPolicy: IfNotPresent\n  type: HTTP\n\
         \x20 # Choose the phase and priority (istio/README.md, \"Phase and priority\").\n\
         \x20 phase: AUTHZ\n  priority: 0\n\
         \x20 # A filter that enforces must not silently stop: no module, no traffic.\n\
         \x20 failStrategy: FAIL_CLOSE\n\
         \x20 # filters/{name}/config.json; YAML takes the JSON as it is.\n\
         \x20 pluginConfig: {config}\n"
    )
}

fn e2e_test(name: &str, snake: &str) -> String {
    format!(
        r##"//! `{name}` in a real Envoy (made by `cargo xtask new-filter`, from the template's behaviour:
//! a response header, and a denial by request header). Extend it as the filter grows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::{{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry}};

const CONFIG: &str = r#"{{"deny": {{"header": {{"name": "x-deny"}}, "status": 403}}}}"#;

#[test]
fn serves_adds_its_header_and_denies() {{
    let echo = EchoServer::start("echo").unwrap();
    let filter = FilterEntry::wasm("{name}", modules::module("{name}").unwrap(), CONFIG);
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(filter)).unwrap();
    let client = Client::new();
    let ok = client.get(&envoy.url("/hello")).unwrap();
    assert_eq!(ok.status, 200, "{{ok:?}}");
    assert_eq!(ok.header("x-{name}-filter"), Some("active"));
    let denied = client
        .request("GET", &envoy.url("/hello"), &[("x-deny", "1")], b"")
        .unwrap();
    assert_eq!(denied.status, 403, "{{denied:?}}");
    assert_eq!(envoy.stat("wasmcustom.{snake}_requests_total"), 2);
    assert_eq!(envoy.stat("wasmcustom.{snake}_denied_total"), 1);
}}

/// The same module in-process (`wasm_host`): no Envoy, milliseconds, exact instruction counts.
#[test]
fn in_process_adds_its_header_and_denies() {{
    use wasm_host::{{Plugin, Request, RuntimeKind, Vm}};
    let wasm = std::fs::read(modules::module("{name}").unwrap()).unwrap();
    let mut vm = Vm::start(RuntimeKind::Wasmtime, &wasm, &Plugin::new("{name}", CONFIG)).unwrap();
    let ok = vm.http(&Request::new("GET", "/hello")).unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(wasm_host::header(&ok.response.headers, "x-{name}-filter"), Some(&b"active"[..]));
    let denied = vm.http(&Request::new("GET", "/hello").header("x-deny", "1")).unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(vm.state_ref().metric("{snake}_denied_total"), Some(1));
    assert!(denied.fuel > 0, "instructions the request cost: {{}}", denied.fuel);
}}
"##
    )
}

fn copy_tree(src: &Path, dst: &Path, edit: &dyn Fn(&str) -> String) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&from, &to, edit)?;
            }
        } else {
            let text = std::fs::read_to_string(&from)
                .with_context(|| format!("reading {}", from.display()))?;
            std::fs::write(&to, edit(&text))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_to_the_named_block_only() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("kustomization.yaml");
        std::fs::write(
            &k,
            "bases:\n  - ../../base\npatchesJson6902:\n  - target:\n      name: a\n    path: a.yaml\n",
        )
        .unwrap();
        append_line(
            &k,
            "  - target:\n      name: b\n    path: b.yaml",
            "patchesJson6902:",
        )
        .unwrap();
        append_line(&k, "  - x.yaml", "resources:").unwrap();
        assert_eq!(
            std::fs::read_to_string(&k).unwrap(),
            "bases:\n  - ../../base\npatchesJson6902:\n  - target:\n      name: a\n    path: a.yaml\n  - target:\n      name: b\n    path: b.yaml\nresources:\n  - x.yaml\n"
        );
        let k2 = dir.path().join("k2.yaml");
        std::fs::write(&k2, "namespace: x\nresources:\n  - a.yaml\n# end\n").unwrap();
        append_line(&k2, "  - b.yaml", "resources:").unwrap();
        assert_eq!(
            std::fs::read_to_string(&k2).unwrap(),
            "namespace: x\nresources:\n  - a.yaml\n  - b.yaml\n# end\n"
        );
    }
}
