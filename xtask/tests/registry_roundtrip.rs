//! OCI round trip through a real registry: `cargo xtask package` writes the image and pins its
//! digest in the dev overlay (never in prod), `cargo xtask push` pushes it to Debian's
//! `docker-registry` on loopback under a content-derived tag, and `skopeo` (an independent
//! client) pulls it back: same manifest digest as the pin, compat-variant media types, and the
//! module bytes inside `plugin.wasm`. A push that would move an existing tag to other content is
//! refused.

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
    let module = modules_dir().join("example.wasm");
    let module_bytes = std::fs::read(&module).unwrap();
    let prod_before =
        std::fs::read_to_string(istio.join("overlays/prod/router.patch.yaml")).unwrap();

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

    // Push to a real registry, without a tag: the tag is derived from the content.
    let registry = Registry::start().unwrap();
    let repo = format!("{}/proxy-wasm-filters/example", registry.host());
    let (ok, out, err) = run(xtask()
        .args(["push", "example", &repo, "--layout"])
        .arg(&layout));
    assert!(ok, "push: {out}\n{err}\nregistry log:\n{}", registry.log());
    assert!(out.contains(&format!("digest {digest}")), "{out}");
    assert!(
        out.contains(&format!("pinned reference: {repo}@{digest}")),
        "{out}"
    );
    let reference = format!("{repo}:0.1.0-{}", &hex[..12]);
    assert!(out.contains(&format!("pushed {reference}")), "{out}");

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
    let plugin_wasm = std::fs::read(unpacked.join("plugin.wasm")).unwrap();
    assert_eq!(plugin_wasm, module_bytes, "plugin.wasm is the module");

    // The dev overlay pins exactly this digest, by digest in the URL too; prod is untouched
    // (a dev build never touches prod: `cargo xtask pin` is the release step).
    let docs = kustomize(&istio.join("overlays/dev"));
    let example = plugin(&docs, "example");
    assert_eq!(example["spec"]["sha256"], hex);
    assert_eq!(
        example["spec"]["url"],
        format!("oci://localhost:5000/proxy-wasm-filters/example@{digest}")
    );
    assert_eq!(
        std::fs::read_to_string(istio.join("overlays/prod/router.patch.yaml")).unwrap(),
        prod_before
    );
    let (ok, out, err) = run(xtask()
        .arg("validate")
        .arg("--modules")
        .arg(modules_dir())
        .arg(istio.join("overlays/dev")));
    assert!(ok, "{out}\n{err}");

    // Tags never move: pushing the same image again is fine, other content under the same tag
    // is refused (the case: tcp-guard over example's tag), and the tag still serves
    // the pinned digest.
    let (ok, out, err) = run(xtask()
        .args(["push", "example", &reference, "--layout"])
        .arg(&layout));
    assert!(ok, "re-push: {out}\n{err}");
    let other = tmp.path().join("oci-tcp-guard");
    let (ok, out, err) = run(xtask()
        .args(["package", "tcp-guard", "--no-pin", "--module"])
        .arg(modules_dir().join("tcp-guard.wasm"))
        .arg("--out")
        .arg(&other));
    assert!(ok, "package tcp-guard: {out}\n{err}");
    let (ok, out, err) = run(xtask()
        .args(["push", "tcp-guard", &reference, "--layout"])
        .arg(&other));
    assert!(!ok, "moved a tag: {out}");
    assert!(
        err.contains(&format!(
            "refusing to move tag {reference}: it names {digest}"
        )),
        "{err}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &remote])).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    println!(
        "pushed {reference}, pulled back {digest}; plugin.wasm {} bytes",
        plugin_wasm.len()
    );
}
