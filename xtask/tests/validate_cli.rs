//! `cargo xtask validate`: passes on the committed manifests, every pin included; fails, naming
//! the problem and the file, on a misspelt field, a pluginConfig the filter's own parser
//! rejects, a stale or movable pin, and, outside dev overlays, the template filter, a
//! placeholder or loopback registry and a demo key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

const OVERLAYS: [&str; 4] = [
    "istio/overlays/dev",
    "istio/overlays/dev-suite",
    "istio/overlays/prod",
    "istio/overlays/prod-suite",
];

fn validate() -> std::process::Command {
    let mut c = xtask();
    c.arg("validate").arg("--modules").arg(modules_dir());
    c
}

/// Every committed pin is the image `cargo xtask package` builds from this checkout. The
/// committed prod overlays name the placeholder registry, which only the flag lets through.
#[test]
fn committed_manifests_pass_pins_included() {
    let (ok, out, err) = run(validate().arg("--allow-placeholder-registry"));
    assert!(ok, "validate failed:\n{out}\n{err}");
    for target in OVERLAYS {
        assert!(
            out.lines().any(|l| l.starts_with("ok")
                && l.contains(target)
                && l.contains("pins match this checkout")),
            "{target} not reported ok:\n{out}"
        );
    }
    // Without the flag, the placeholder registry (and nothing else) stops the prod overlays.
    let (ok, _, err) = run(&mut validate());
    assert!(!ok);
    let fails: Vec<&str> = err.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(!fails.is_empty(), "{err}");
    for l in &fails {
        assert!(
            l.contains("/prod") && l.contains("registry `registry.example.com` is a placeholder"),
            "{l}"
        );
    }
}

#[test]
fn a_wrong_field_fails_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    edit(
        &istio.join("base/policy.yaml"),
        "failStrategy: FAIL_CLOSE",
        "failStrategey: FAIL_CLOSE",
    );
    let (ok, out, err) = run(xtask()
        .args(["validate", "--no-pins"])
        .arg(istio.join("overlays/dev")));
    assert!(!ok, "validate accepted a misspelt field:\n{out}");
    assert!(
        err.contains("WasmPlugin policy: unknown field \"spec.failStrategey\""),
        "{err}"
    );
}

#[test]
fn a_wrong_enum_value_fails_like_the_api_server() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    edit(
        &istio.join("base/router.yaml"),
        "phase: AUTHZ",
        "phase: AUTHORIZATION",
    );
    let (ok, _, err) = run(xtask()
        .args(["validate", "--no-pins"])
        .arg(istio.join("overlays/dev")));
    assert!(!ok);
    assert!(
        err.contains("spec.phase: Unsupported value: \"AUTHORIZATION\": supported values: \"UNSPECIFIED_PHASE\", \"AUTHN\", \"AUTHZ\", \"STATS\""),
        "{err}"
    );
}

#[test]
fn a_plugin_config_the_filter_rejects_fails_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    edit(
        &istio.join("base/router.yaml"),
        "        tag: canary\n      - name: beta-cookie",
        "        tagg: canary\n      - name: beta-cookie",
    );
    let (ok, out, err) = run(xtask()
        .args(["validate", "--no-pins", "--allow-placeholder-registry"])
        .arg(istio.join("overlays/prod")));
    assert!(!ok, "validate accepted a config the filter rejects:\n{out}");
    assert!(
        err.contains("spec.pluginConfig: router: invalid configuration at `rules[0].tagg`: unknown field `tagg`"),
        "{err}"
    );
    // The dev overlay replaces the router's rules, so it stays valid: the check runs on what
    // each overlay renders, not on the base file alone.
    let (ok, out, err) = run(xtask()
        .args(["validate", "--no-pins"])
        .arg(istio.join("overlays/dev")));
    assert!(ok, "{out}\n{err}");
}

/// A pin that is not this checkout's image fails, naming the file and the command; a tag URL
/// fails as movable; `cargo xtask pin` repairs both.
#[test]
fn a_stale_or_movable_pin_fails_and_pin_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    let patch = istio.join("overlays/prod/router.patch.yaml");
    let text = std::fs::read_to_string(&patch).unwrap();
    let hex = text
        .split("router@sha256:")
        .nth(1)
        .unwrap()
        .chars()
        .take(64)
        .collect::<String>();
    let stale = "0".repeat(64);
    std::fs::write(&patch, text.replace(&hex, &stale)).unwrap();
    let (ok, _, err) = run(validate()
        .arg("--allow-placeholder-registry")
        .arg(istio.join("overlays/prod")));
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "stale pin in {}: it pins sha256:{stale}, but `cargo xtask package router` builds sha256:{hex}",
            patch.display()
        )) && err.contains("run `cargo xtask pin`"),
        "{err}"
    );

    let tcp = istio.join("overlays/dev/tcp-guard.patch.yaml");
    let text = std::fs::read_to_string(&tcp).unwrap();
    let at = text.find("tcp-guard@sha256:").unwrap();
    let tagged = format!(
        "{}tcp-guard:0.1.0{}",
        &text[..at],
        &text[at + "tcp-guard@sha256:".len() + 64..]
    );
    std::fs::write(&tcp, tagged).unwrap();
    let (ok, _, err) = run(validate().arg(istio.join("overlays/dev")));
    assert!(!ok);
    assert!(
        err.contains("tcp-guard:0.1.0\" can move under the pin: name the image by digest"),
        "{err}"
    );

    // The release step puts both back (from the same modules, no rebuild here).
    let (ok, out, err) = run(xtask()
        .args(["pin", "--manifests"])
        .arg(&istio)
        .arg("--modules")
        .arg(modules_dir())
        .args(["router", "tcp-guard"]));
    assert!(ok, "pin: {out}\n{err}");
    let docs = kustomize(&istio.join("overlays/prod"));
    assert_eq!(plugin(&docs, "router")["spec"]["sha256"], hex.as_str());
    let (ok, out, err) = run(validate()
        .arg("--allow-placeholder-registry")
        .arg(istio.join("overlays/prod"))
        .arg(istio.join("overlays/dev")));
    assert!(ok, "{out}\n{err}");
}

/// Outside dev overlays: the template filter, a loopback registry (even with
/// --allow-placeholder-registry) and the demo API key are refused; a real registry passes.
#[test]
fn non_dev_overlays_refuse_template_loopback_and_demo_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    let prod = istio.join("overlays/prod");
    // Your registry: prod passes.
    for f in std::fs::read_dir(&prod).unwrap() {
        let p = f.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            text.replace("registry.example.com", "registry.corp.internal:5000"),
        )
        .unwrap();
    }
    let (ok, out, err) = run(validate().arg(&prod));
    assert!(ok, "{out}\n{err}");

    // The template filter, copied in from dev.
    std::fs::copy(
        istio.join("overlays/dev/example.yaml"),
        prod.join("example.yaml"),
    )
    .unwrap();
    edit(
        &prod.join("kustomization.yaml"),
        "bases:\n  - ../../base\n",
        "bases:\n  - ../../base\nresources:\n  - example.yaml\n",
    );
    edit(
        &prod.join("router.patch.yaml"),
        "registry.corp.internal:5000",
        "localhost:5000",
    );
    std::fs::write(
        prod.join("policy.patch.yaml"),
        std::fs::read_to_string(prod.join("policy.patch.yaml")).unwrap()
            + "- op: add\n  path: /spec/pluginConfig/api_keys/keys/-\n  value: {consumer: ops, sha256: \"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\"}\n",
    )
    .unwrap();
    let (ok, _, err) = run(validate().arg("--allow-placeholder-registry").arg(&prod));
    assert!(!ok);
    for want in [
        "WasmPlugin example: metadata.labels: the template filter `example` runs only in dev overlays",
        "WasmPlugin router: spec.url: registry `localhost` is loopback: the istio-agent in each pod fetches the module itself",
        "WasmPlugin policy: spec.pluginConfig: the demo API key `secret` (filters/policy/README.md) is for dev overlays only",
    ] {
        assert!(err.contains(want), "no `{want}` in:\n{err}");
    }
}
