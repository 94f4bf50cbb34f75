//! `cargo xtask push FILTER REF`: push the image `cargo xtask package FILTER` wrote to a registry
//! with `oci-client` (the ORAS project's Rust OCI distribution client), byte for byte, so the
//! digest in the registry is the one pinned in the manifests.
//!
//! Credentials: `$OCI_USERNAME` / `$OCI_PASSWORD` (basic auth or token exchange), else
//! anonymous. Plain HTTP for loopback registries (`localhost`, `127.*`) or with `--plain-http`.

use crate::package::{layout_dir, WasmImage, MANIFEST_MEDIA_TYPE};
use anyhow::{bail, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::path::PathBuf;

/// Push `image` to `reference`; returns the manifest digest the registry reports.
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
    let digest = push(&image, reference, plain_http)?;
    let repo = reference
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(reference.as_str(), |(repo, _)| repo);
    println!("pushed {reference}");
    println!("digest {digest}");
    println!(
        "url: oci://{reference}   sha256: {}",
        digest.trim_start_matches("sha256:")
    );
    println!("pinned reference: {repo}@{digest}");
    Ok(())
}

const PUSH_USAGE: &str =
    "usage: cargo xtask push FILTER REGISTRY/REPO[:TAG] [--layout DIR] [--plain-http]";
