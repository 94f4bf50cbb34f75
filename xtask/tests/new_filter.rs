//! `cargo xtask new-filter NAME` makes the whole kit with no hand edit: in a copy of the
//! workspace, the new filter builds, is pinned by `cargo xtask pin`, passes `cargo xtask
//! validate` (its parser found from the filter itself, its manifests in base and every overlay)
//! and is served by `cargo xtask up --plugins` from the dev overlay's rendering; its generated
//! e2e test (`tests/tests/NAME.rs`) compiles and passes against the built module.
//!
//! The copy lives at a fixed path with its own target directory (`target/new-filter-test/`), so
//! a run reuses the previous run's build of the dependencies: the first run compiles them once
//! (release for wasm, debug for the configuration checker and the e2e harness); later runs only
//! the new crate and its test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const NAME: &str = "hello-kit";

/// Copy the workspace's sources (not `target/`, `.git`, `.envoy-venv`) into `dst`.
fn copy_workspace(dst: &Path) {
    if dst.exists() {
        std::fs::remove_dir_all(dst).unwrap();
    }
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(workspace()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if ["target", ".git", ".envoy-venv", ".tools"].contains(&name.as_str()) {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst.join(&name));
        } else {
            std::fs::copy(e.path(), dst.join(&name)).unwrap();
        }
    }
}

/// The built `xtask`, working on `root` with `target` as its cargo target directory.
fn xtask_in(root: &Path, target: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.current_dir(root)
        .env("PROXY_WASM_WORKSPACE", root)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("FILTER_MODULES_DIR");
    if std::env::var_os("ENVOY_BIN").is_none() {
        c.env(
            "ENVOY_BIN",
            &envoy_harness::locate::envoy().unwrap().program,
        );
    }
    c
}

fn ok(cmd: &mut Command, what: &str) -> String {
    let (ok, out, err) = run(cmd);
    assert!(ok, "{what} failed:\n{out}\n{err}");
    out
}

#[test]
fn new_filter_builds_pins_validates_and_serves_with_no_hand_edit() {
    let base = workspace().join("target/new-filter-test");
    let root = base.join("ws");
    let target = base.join("target");
    copy_workspace(&root);

    let out = ok(
        xtask_in(&root, &target).args(["new-filter", NAME]),
        "new-filter",
    );
    println!("{out}");
    // The kit: crate with the template's README, manifests, overlay patches, e2e test.
    let readme =
        std::fs::read_to_string(root.join("filters").join(NAME).join("README.md")).unwrap();
    assert!(readme.starts_with(&format!("# {NAME}\n")), "{readme}");
    assert!(
        readme.contains("## Run and see") && readme.contains("x-hello-kit-filter"),
        "{readme}"
    );
    assert!(readme.contains("hello_kit_requests_total"), "{readme}");
    assert!(
        readme.contains("Made from the template filter (`filters/example`)")
            && !readme.contains("copies it"),
        "{readme}"
    );
    assert!(root.join("tests/tests/hello_kit.rs").is_file());
    for overlay in ["dev", "prod"] {
        assert!(root
            .join(format!("istio/overlays/{overlay}/{NAME}.patch.yaml"))
            .is_file());
    }

    // Build, then the release step pins it in the overlays that run it.
    let out = ok(xtask_in(&root, &target).args(["build", NAME]), "build");
    assert!(out.contains(&format!("{NAME} 0.1.0 (")), "{out}");
    let out = ok(xtask_in(&root, &target).args(["pin", NAME]), "pin");
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("manifest digest: "))
        .unwrap()
        .trim()
        .to_string();
    for overlay in ["dev", "prod"] {
        let docs = kustomize(&root.join("istio/overlays").join(overlay));
        let p = plugin(&docs, NAME);
        assert_eq!(
            p["spec"]["sha256"],
            digest.trim_start_matches("sha256:"),
            "{overlay}"
        );
        assert!(
            p["spec"]["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{NAME}@{digest}")),
            "{overlay}: {}",
            p["spec"]["url"]
        );
    }
    assert_eq!(
        plugin(&kustomize(&root.join("istio/overlays/dev")), NAME)["spec"]["failStrategy"],
        "FAIL_OPEN"
    );

    // Validate: schema, the new filter's own parser (found from its entry point) and the
    // deployment rules, in every overlay. (The other filters' pins are not compared here: the
    // copy has no git history, so their build identity differs from the committed pins.)
    let out = ok(
        xtask_in(&root, &target).args(["validate", "--no-pins", "--allow-placeholder-registry"]),
        "validate",
    );
    for (overlay, plugins) in [("dev", 6), ("prod", 5)] {
        let want = format!("istio/overlays/{overlay} ({plugins} WasmPlugin");
        assert!(
            out.lines()
                .any(|l| l.starts_with("ok") && l.contains(&want)),
            "no `ok ... {want}`:\n{out}"
        );
    }
    // Its pin is the image of what was built.
    // (In a directory named `dev`: a dev overlay's rendering, loopback registry allowed.)
    std::fs::create_dir_all(base.join("dev")).unwrap();
    let dev_only = base.join("dev/hello-kit.yaml");
    let docs = kustomize(&root.join("istio/overlays/dev"));
    std::fs::write(
        &dev_only,
        serde_yaml_ng::to_string(plugin(&docs, NAME)).unwrap(),
    )
    .unwrap();
    let modules = target.join("modules");
    ok(
        xtask_in(&root, &target)
            .args(["validate", "--modules"])
            .arg(&modules)
            .arg(&dev_only),
        "validate the new filter's pin",
    );

    // Serve it as the dev overlay renders it.
    let up = UpProcess::start(
        xtask_in(&root, &target)
            .args(["up", "--port", "0", "--admin-port", "0", "--plugins"])
            .arg(&dev_only)
            .arg("--modules")
            .arg(&modules),
    );
    let url = up.url();
    let client = envoy_harness::Client::new();
    let r = client.get(&format!("{url}hello")).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-hello-kit-filter"), Some("active"), "{r:?}");
    let denied = client
        .request("GET", &format!("{url}hello"), &[("x-deny", "1")], b"")
        .unwrap();
    assert_eq!(denied.status, 403, "{denied:?}");
    drop(up);

    // The generated e2e test compiles and passes against the module built above (as
    // `cargo xtask test` runs it: `$FILTER_MODULES_DIR` holds the final modules).
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut e2e = Command::new(cargo);
    e2e.current_dir(&root)
        .env("PROXY_WASM_WORKSPACE", &root)
        .env("CARGO_TARGET_DIR", &target)
        .env("FILTER_MODULES_DIR", &modules)
        .args([
            "test",
            "--quiet",
            "-p",
            "envoy-harness",
            "--test",
            "hello_kit",
        ]);
    if std::env::var_os("ENVOY_BIN").is_none() {
        e2e.env(
            "ENVOY_BIN",
            &envoy_harness::locate::envoy().unwrap().program,
        );
    }
    let out = ok(
        &mut e2e,
        "the generated e2e test (cargo test --test hello_kit)",
    );
    // Every test the template generated must run and pass (today one in real Envoy and one
    // in-process on wasm-host); the count comes from the generated file, not from here.
    let generated = std::fs::read_to_string(root.join("tests/tests/hello_kit.rs")).unwrap();
    let tests = generated.matches("#[test]").count();
    assert!(tests >= 1, "the generated e2e file has no test");
    assert!(
        out.contains(&format!("test result: ok. {tests} passed")),
        "{out}"
    );
}
