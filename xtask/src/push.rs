//! `cargo xtask push FILTER REF`: push the image `cargo xtask package FILTER` wrote to a registry
//! with `oci-client` (the ORAS project's Rust OCI distribution client), byte for byte, so the
//! digest in the registry is the one pinned in the manifests.
//!
//! Credentials: `$OCI_USERNAME` / `$OCI_PASSWORD` (basic auth or token exchange), else
//! anonymous. Plain HTTP for loopback registries (`localhost`, `127.*`) or with `--plain-http`.
//!
//! Tags never move: without a tag the image is pushed under a content-derived one,
//! `<version>-<first 12 hex digits of the manifest digest>`; with a tag that already names other
//! content the push is refused before anything is written, so pods that pull the tag keep
//! getting the pinned image. (The check and the manifest upload are two requests: a registry
//! with immutable tags, e.g. Harbor's or ECR's tag immutability, closes the race between them.)
//! `REPO@sha256:...` pushes by digest, which must be the packaged image's.

use crate::package::{layout_dir, WasmImage, MANIFEST_MEDIA_TYPE};
use anyhow::{bail, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::path::PathBuf;

/// Whether a manifest request failed because the tag or repository does not exist.
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

/// `reference` with the content-derived tag `<version>-<12 hex of digest>` when it has neither
/// a tag nor a digest.
pub fn with_content_tag(reference: &str, version: &str, digest: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || last.contains('@') {
        return reference.to_string();
    }
    let hex = digest.trim_start_matches("sha256:");
    format!("{reference}:{version}-{}", &hex[..hex.len().min(12)])
}

/// Push `image` to `reference`; returns the manifest digest the registry reports. Refuses to
/// move a tag that names other content.
pub fn push(image: &WasmImage, reference: &str, plain_http: bool) -> Result<String> {
    let reference: Reference = reference
        .parse()
        .with_context(|| format!("`{reference}` is not an image reference"))?;
    let registry = reference.resolve_registry().to_string();
    let host = registry.split(':').next().unwrap_or_default();
    let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
    let protocol = if plain_http || loopback {
        ClientProtocol::HttpsExcept(vec![registry.clone()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let auth = match (std::env::var("OCI_USERNAME"), std::env::var("OCI_PASSWORD")) {
        (Ok(u), Ok(p)) => RegistryAuth::Basic(u, p),
        _ => RegistryAuth::Anonymous,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        client
            .auth(&reference, &auth, RegistryOperation::Push)
            .await
            .with_context(|| format!("authenticating to {registry}"))?;
        if let Some(digest) = reference.digest() {
            if digest != image.digest() {
                bail!(
                    "{reference} names digest {digest}, but the packaged image is {}",
                    image.digest()
                );
            }
        } else {
            match client.fetch_manifest_digest(&reference, &auth).await {
                Ok(existing) if existing == image.digest() => {}
                Ok(existing) => bail!(
                    "refusing to move tag {reference}: it names {existing}, this image is {}. \
                     Tags here are immutable (pods that pull the tag would get other bytes than \
                     the pin); push without a tag for a content-derived one, or choose a new tag",
                    image.digest()
                ),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("checking whether {reference} exists"))
                }
            }
        }
        for blob in [&image.config, &image.layer] {
            client
                .push_blob(&reference, blob.bytes.clone(), &blob.digest())
                .await
                .with_context(|| format!("pushing blob {} to {registry}", blob.digest()))?;
        }
        client
            .push_manifest_raw(
                &reference,
                image.manifest.bytes.clone(),
                MANIFEST_MEDIA_TYPE
                    .parse()
                    .context("manifest media type header")?,
            )
            .await
            .with_context(|| format!("pushing manifest to {reference}"))?;
        let remote = client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .with_context(|| format!("reading back the digest of {reference}"))?;
        if remote != image.digest() {
            bail!(
                "{reference} has digest {remote} after the push, expected {}",
                image.digest()
            );
        }
        Ok(remote)
    })
}

/// `cargo xtask push FILTER REF [--layout DIR] [--plain-http]`
pub fn push_command(args: &[String]) -> Result<()> {
    let mut positional = Vec::new();
    let mut layout = None;
    let mut plain_http = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--layout" => {
                layout = Some(PathBuf::from(
                    it.next().context("--layout needs a directory")?,
                ))
            }
            "--plain-http" => plain_http = true,
            other if !other.starts_with('-') => positional.push(other.to_string()),
            other => bail!("unexpected argument `{other}`\n{PUSH_USAGE}"),
        }
    }
    let [filter, reference] = positional.as_slice() else {
        bail!(PUSH_USAGE);
    };
    let layout = layout.unwrap_or_else(|| layout_dir(filter));
    let image = WasmImage::read_layout(&layout)
        .with_context(|| format!("run `cargo xtask package {filter}` first"))?;
    let version = crate::package::filter_version(filter)?;
    let reference = &with_content_tag(reference, &version, &image.digest());
    let digest = push(&image, reference, plain_http)?;
    let repo = crate::package::repository_of(reference);
    println!("pushed {reference}");
    println!("digest {digest}");
    println!("pinned reference: {repo}@{digest}");
    println!(
        "url: oci://{repo}@{digest}   sha256: {}",
        digest.trim_start_matches("sha256:")
    );
    Ok(())
}

const PUSH_USAGE: &str =
    "usage: cargo xtask push FILTER REGISTRY/REPO[:TAG|@sha256:DIGEST] [--layout DIR] [--plain-http]";

#[cfg(test)]
mod tests {
    use super::with_content_tag;

    #[test]
    fn a_reference_without_tag_gets_a_content_derived_one() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            with_content_tag("localhost:5000/f/example", "0.1.0", &d),
            "localhost:5000/f/example:0.1.0-abababababab"
        );
        assert_eq!(
            with_content_tag("r/f/example:v1", "0.1.0", &d),
            "r/f/example:v1"
        );
        let by_digest = format!("r/f/example@{d}");
        assert_eq!(with_content_tag(&by_digest, "0.1.0", &d), by_digest);
    }
}
