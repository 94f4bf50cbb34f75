//! OCI round trip through a real registry: `cargo xtask package` writes the image and pins its
//! digest in the manifests, `cargo xtask push` pushes it to Debian's `docker-registry` on
//! loopback, and `skopeo` (an independent client) pulls it back: same manifest digest as the
//! pin, compat-variant media types, and the module bytes inside `plugin.wasm`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use envoy_harness::registry::Registry;
use std::process::Command;

fn skopeo(args: &[&str]) -> String {
    let (ok, out, err) = run(Command::new("skopeo").args(args));
    assert!(ok, "skopeo {args:?}: {err}");
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn pushed_image_pulls_back_with_the_pinned_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let istio = copy_istio(tmp.path());
    let module = envoy_harness::modules::module("example").unwrap();
    let module_bytes = std::fs::read(&module).unwrap();

    // Package: image layout + pin in (a copy of) the manifests.
    let layout = tmp.path().join("oci");
    let (ok, out, err) = run(xtask()
        .args(["package", "example", "--module"])
        .arg(&module)
        .arg("--out")
        .arg(&layout)
        .arg("--manifests")
        .arg(&istio));
    assert!(ok, "package: {out}\n{err}");
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("manifest digest: "))
        .unwrap()
        .trim()
        .to_string();
    let hex = digest.strip_prefix("sha256:").unwrap();

    // Push to a real registry.
    let registry = Registry::start().unwrap();
    let reference = format!("{}/proxy-wasm-filters/example:0.1.0", registry.host());
    let (ok, out, err) = run(xtask()
        .args(["push", "example", &reference, "--layout"])
        .arg(&layout));
    assert!(ok, "push: {out}\n{err}\nregistry log:\n{}", registry.log());
    assert!(out.contains(&format!("digest {digest}")), "{out}");

    // Pull back with skopeo: the registry serves the manifest with the pinned digest.
    let remote = format!("docker://{reference}");
    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &remote])).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]);
    assert_eq!(
        sha256_hex(raw.as_bytes()),
        hex,
        "raw manifest bytes hash to the digest"
    );
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"],
        "compat"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // By digest too (what a pinned reference pulls), into an OCI layout; unpack the layer as
    // Istio's agent does and compare the module.
    let pulled = tmp.path().join("pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!(
            "docker://{}/proxy-wasm-filters/example@{digest}",
            registry.host()
        ),
        &format!("oci:{}:pulled", pulled.display()),
    ]);
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = pulled
        .join("blobs/sha256")
        .join(layer_digest.strip_prefix("sha256:").unwrap());
    let unpacked = tmp.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let (ok, _, err) = run(Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(&unpacked));
    assert!(ok, "tar: {err}");
    let plugin = std::fs::read(unpacked.join("plugin.wasm")).unwrap();
    assert_eq!(plugin, module_bytes, "plugin.wasm is the module");

    // The manifests every overlay renders pin exactly this digest.
    for overlay in ["base", "overlays/dev", "overlays/prod"] {
        let docs = kustomize(&istio.join(overlay));
        let plugin = docs
            .iter()
            .find(|d| d["kind"] == "WasmPlugin" && d["metadata"]["name"] == "example")
            .unwrap();
        assert_eq!(plugin["spec"]["sha256"], hex, "{overlay}");
        assert!(plugin["spec"]["url"]
            .as_str()
            .unwrap()
            .starts_with("oci://"));
    }
    // And the pinned manifests still validate.
    let (ok, out, err) = run(xtask().arg("validate").arg(istio.join("overlays/dev")));
    assert!(ok, "{out}\n{err}");
    println!(
        "pushed {reference}, pulled back {digest}; plugin.wasm {} bytes",
        plugin.len()
    );
}
