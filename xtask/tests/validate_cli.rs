//! `cargo xtask validate`: passes on the committed manifests; fails, naming the problem, on a
//! misspelt field and on a pluginConfig the filter's own parser rejects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

#[test]
fn committed_manifests_pass() {
    let (ok, out, err) = run(xtask().arg("validate"));
    assert!(ok, "validate failed:\n{out}\n{err}");
    for target in ["istio/base", "istio/overlays/dev", "istio/overlays/prod"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("ok") && l.contains(target)),
            "{target} not reported ok:\n{out}"
        );
    }
}

#[test]
fn a_wrong_field_fails_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    edit(
        &istio.join("base/example.yaml"),
        "failStrategy: FAIL_CLOSE",
        "failStrategey: FAIL_CLOSE",
    );
    let (ok, out, err) = run(xtask().arg("validate").arg(istio.join("overlays/prod")));
    assert!(!ok, "validate accepted a misspelt field:\n{out}");
    assert!(
        err.contains("WasmPlugin example: unknown field \"spec.failStrategey\""),
        "{err}"
    );
}

#[test]
fn a_wrong_enum_value_fails_like_the_api_server() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    edit(
        &istio.join("base/example.yaml"),
        "phase: AUTHZ",
        "phase: AUTHORIZATION",
    );
    let (ok, _, err) = run(xtask().arg("validate").arg(istio.join("base")));
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
        &istio.join("base/example.yaml"),
        "status: 403",
        "stauts: 403",
    );
    let (ok, out, err) = run(xtask().arg("validate").arg(istio.join("overlays/prod")));
    assert!(!ok, "validate accepted a config the filter rejects:\n{out}");
    assert!(
        err.contains("spec.pluginConfig: example: invalid configuration at `deny.stauts`: unknown field `stauts`"),
        "{err}"
    );
    // The dev overlay replaces pluginConfig (no deny rule), so it stays valid: the check runs on
    // what each overlay renders, not on the base file alone.
    let (ok, out, err) = run(xtask().arg("validate").arg(istio.join("overlays/dev")));
    assert!(ok, "{out}\n{err}");
}
