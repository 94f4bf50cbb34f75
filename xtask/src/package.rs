//! `cargo xtask package FILTER`: the filter's module as an OCI image that Istio's agent pulls, in
//! an OCI image layout (`target/oci/FILTER/`), and its manifest digest pinned in
//! `istio/base/FILTER.yaml` (`spec.sha256`).
//!
//! Format: the solo-io Wasm image spec's **compat** variant (`spec/spec-compat.md`), which
//! Istio's agent reads first (`pkg/wasm/imagefetcher.go`, `extractOCIStandardImage`):
//! * manifest `application/vnd.oci.image.manifest.v1+json` with annotation
//!   `module.wasm.image/variant: compat`;
//! * one layer `application/vnd.oci.image.layer.v1.tar+gzip` holding `plugin.wasm`;
//! * config `application/vnd.oci.image.config.v1+json` (`os: wasip1`, `architecture: wasm`).
//!
//! It is a plain OCI image, so every registry and tool (skopeo, crane, docker) handles it. The
//! image is a pure function of the module bytes (no timestamps; tar entries with mtime 0 and
//! uid/gid 0; gzip header without mtime), so the same module always has the same digest.

use anyhow::{bail, Context, Result};
use envoy_harness::workspace_root;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The file name Istio's agent looks for in the layer.
pub const WASM_FILE_NAME: &str = "plugin.wasm";

/// A content-addressed blob.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Blob {
    /// `sha256:<hex>`
    pub fn digest(&self) -> String {
        sha256_digest(&self.bytes)
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({ "mediaType": self.media_type, "digest": self.digest(), "size": self.bytes.len() })
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// An image: manifest, config and the single layer.
#[derive(Debug, Clone)]
pub struct WasmImage {
    pub manifest: Blob,
    pub config: Blob,
    pub layer: Blob,
}

impl WasmImage {
    /// Build the compat-variant image for `module`; `title` and `version` become annotations.
    pub fn new(module: &[u8], title: &str, version: &str) -> Result<Self> {
        let tar = tar_with_plugin(module)?;
        let diff_id = sha256_digest(&tar);
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&tar)?;
        let layer = Blob {
            media_type: LAYER_MEDIA_TYPE,
            bytes: gz.finish()?,
        };
        let config = Blob {
            media_type: CONFIG_MEDIA_TYPE,
            bytes: serde_json::to_vec(&json!({
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": { "type": "layers", "diff_ids": [diff_id] }
            }))?,
        };
        let mut layer_desc = layer.descriptor();
        layer_desc["annotations"] = json!({ "org.opencontainers.image.title": WASM_FILE_NAME });
        let manifest = Blob {
            media_type: MANIFEST_MEDIA_TYPE,
            bytes: serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": config.descriptor(),
                "layers": [layer_desc],
                "annotations": {
                    "module.wasm.image/variant": "compat",
                    "org.opencontainers.image.title": title,
                    "org.opencontainers.image.version": version
                }
            }))?,
        };
        Ok(Self {
            manifest,
            config,
            layer,
        })
    }

    /// The manifest digest: what Istio compares `spec.sha256` with for `oci://` URLs.
    pub fn digest(&self) -> String {
        self.manifest.digest()
    }

    /// Write an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/*`) tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)?;
        for blob in [&self.manifest, &self.config, &self.layer] {
            let hex = blob.digest().trim_start_matches("sha256:").to_string();
            std::fs::write(blobs.join(hex), &blob.bytes)?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut desc = self.manifest.descriptor();
        desc["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": INDEX_MEDIA_TYPE,
                "manifests": [desc]
            }))?,
        )?;
        Ok(())
    }

    /// Read back an image written by [`WasmImage::write_layout`].
    pub fn read_layout(dir: &Path) -> Result<Self> {
        let index: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("index.json"))
                .with_context(|| format!("{} is not an OCI image layout", dir.display()))?,
        )?;
        let blob = |digest: &str| -> Result<Vec<u8>> {
            let hex = digest
                .strip_prefix("sha256:")
                .with_context(|| format!("unsupported digest {digest}"))?;
            let bytes = std::fs::read(dir.join("blobs/sha256").join(hex))?;
            if sha256_digest(&bytes) != digest {
                bail!("blob {digest} in {} is corrupt", dir.display());
            }
            Ok(bytes)
        };
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .context("index.json has no manifest")?;
        let manifest_bytes = blob(manifest_digest)?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes)?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .context("manifest has no config")?;
        let layer_digest = manifest["layers"][0]["digest"]
            .as_str()
            .context("manifest has no layer")?;
        Ok(Self {
            manifest: Blob {
                media_type: MANIFEST_MEDIA_TYPE,
                bytes: manifest_bytes,
            },
            config: Blob {
                media_type: CONFIG_MEDIA_TYPE,
                bytes: blob(config_digest)?,
            },
            layer: Blob {
                media_type: LAYER_MEDIA_TYPE,
                bytes: blob(layer_digest)?,
            },
        })
    }
}

fn tar_with_plugin(module: &[u8]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, WASM_FILE_NAME, module)?;
    Ok(builder.into_inner()?)
}

/// Default layout directory for a filter.
pub fn layout_dir(filter: &str) -> PathBuf {
    workspace_root().join("target/oci").join(filter)
}

/// The crate version of `filters/<filter>` (image tag and annotation).
pub fn filter_version(filter: &str) -> Result<String> {
    let manifest = std::fs::read_to_string(
        workspace_root()
            .join("filters")
            .join(filter)
            .join("Cargo.toml"),
    )
    .with_context(|| format!("no filter `{filter}`"))?;
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = \""))
        .and_then(|rest| rest.split('"').next())
        .map(String::from)
        .with_context(|| format!("filters/{filter}/Cargo.toml has no version"))
}

/// Replace the `sha256:` value of the WasmPlugin in `manifest` (a YAML file), keeping the rest
/// of the file as it is. The line pinned is the `sha256:` at the indentation of `url:` (a
/// sibling in `spec`), so a `sha256` key inside `pluginConfig` is left alone. Returns whether
/// the file changed.
pub fn pin_digest(manifest: &Path, digest: &str) -> Result<bool> {
    let hex = digest.trim_start_matches("sha256:");
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let url_indents: Vec<usize> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("url:"))
        .map(indent_of)
        .collect();
    let [spec_indent] = url_indents.as_slice() else {
        bail!(
            "{} must have exactly one `url:` line (found {})",
            manifest.display(),
            url_indents.len()
        );
    };
    let mut found = 0;
    let pinned: Vec<String> = text
        .lines()
        .map(|line| {
            if indent_of(line) == *spec_indent && line.trim_start().starts_with("sha256:") {
                found += 1;
                // Quoted: an all-digit digest would otherwise be read as a number.
                return format!("{}sha256: \"{hex}\"", &line[..*spec_indent]);
            }
            line.to_string()
        })
        .collect();
    if found != 1 {
        bail!(
            "{} must have exactly one `sha256:` line beside `url:` to pin (found {found})",
            manifest.display()
        );
    }
    let mut out = pinned.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    let changed = out != text;
    if changed {
        std::fs::write(manifest, out)?;
    }
    Ok(changed)
}

/// `cargo xtask package FILTER [--module FILE] [--out DIR] [--manifests DIR] [--no-pin]`
pub fn package_command(args: &[String]) -> Result<()> {
    let mut filter = None;
    let mut module = None;
    let mut out = None;
    let mut manifests = workspace_root().join("istio");
    let mut pin = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--module" => module = Some(PathBuf::from(it.next().context("--module needs a file")?)),
            "--out" => out = Some(PathBuf::from(it.next().context("--out needs a directory")?)),
            "--manifests" => {
                manifests = PathBuf::from(it.next().context("--manifests needs a directory")?)
            }
            "--no-pin" => pin = false,
            other if filter.is_none() && !other.starts_with('-') => {
                filter = Some(other.to_string())
            }
            other => bail!("unexpected argument `{other}`\n{PACKAGE_USAGE}"),
        }
    }
    let filter = filter.context(PACKAGE_USAGE)?;
    let module = match module {
        Some(m) => m,
        None => crate::build::build_and_report(std::slice::from_ref(&filter))?
            .join(format!("{filter}.wasm")),
    };
    let bytes = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let version = filter_version(&filter)?;
    let image = WasmImage::new(&bytes, &filter, &version)?;
    let out = out.unwrap_or_else(|| layout_dir(&filter));
    image.write_layout(&out, &version)?;
    println!("image layout:    {} (tag {version})", out.display());
    println!(
        "module:          {} ({} bytes, {})",
        module.display(),
        bytes.len(),
        sha256_digest(&bytes)
    );
    println!("manifest digest: {}", image.digest());
    if pin {
        let manifest = manifests.join("base").join(format!("{filter}.yaml"));
        let changed = pin_digest(&manifest, &image.digest())?;
        println!(
            "pinned in {}{}",
            manifest.display(),
            if changed { "" } else { " (unchanged)" }
        );
    }
    Ok(())
}

const PACKAGE_USAGE: &str =
    "usage: cargo xtask package FILTER [--module FILE] [--out DIR] [--manifests DIR] [--no-pin]";

#[cfg(test)]
mod tests {
    use super::*;

    /// The `plugin.wasm` inside a compat-variant layer (`tar+gzip`), as Istio's agent extracts it.
    pub fn extract_plugin(layer: &[u8]) -> Result<Vec<u8>> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.path()?.file_name() == Some(std::ffi::OsStr::new(WASM_FILE_NAME)) {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut out)?;
                return Ok(out);
            }
        }
        bail!("{WASM_FILE_NAME} not found in the layer")
    }

    #[test]
    fn image_is_deterministic_and_in_the_compat_format() {
        let module = b"\0asm\x01\0\0\0 pretend module";
        let a = WasmImage::new(module, "f", "1.0.0").unwrap();
        let b = WasmImage::new(module, "f", "1.0.0").unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_ne!(
            a.digest(),
            WasmImage::new(b"\0asm\x01\0\0\0 other", "f", "1.0.0")
                .unwrap()
                .digest()
        );
        let m: serde_json::Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        assert_eq!(m["annotations"]["module.wasm.image/variant"], "compat");
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["digest"], a.layer.digest());
        assert_eq!(extract_plugin(&a.layer.bytes).unwrap(), module);
    }

    #[test]
    fn layout_round_trips_and_pin_rewrites_only_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let image = WasmImage::new(b"\0asm\x01\0\0\0", "f", "1.0.0").unwrap();
        image
            .write_layout(&dir.path().join("oci"), "1.0.0")
            .unwrap();
        let back = WasmImage::read_layout(&dir.path().join("oci")).unwrap();
        assert_eq!(back.digest(), image.digest());

        let yaml = dir.path().join("f.yaml");
        std::fs::write(
            &yaml,
            "spec:\n  url: oci://r/f:1\n  sha256: \"\"\n  phase: AUTHZ\n",
        )
        .unwrap();
        assert!(pin_digest(&yaml, &image.digest()).unwrap());
        let text = std::fs::read_to_string(&yaml).unwrap();
        let hex = image.digest().trim_start_matches("sha256:").to_string();
        assert_eq!(
            text,
            format!("spec:\n  url: oci://r/f:1\n  sha256: \"{hex}\"\n  phase: AUTHZ\n")
        );
        assert!(!pin_digest(&yaml, &image.digest()).unwrap());

        // A `sha256` inside pluginConfig is not the pin.
        let nested = dir.path().join("g.yaml");
        let doc = "spec:\n  url: oci://r/g:1\n  sha256: \"\"\n  pluginConfig:\n    keys:\n      - sha256: \"abc\"\n";
        std::fs::write(&nested, doc).unwrap();
        pin_digest(&nested, &image.digest()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&nested).unwrap(),
            doc.replace("sha256: \"\"", &format!("sha256: \"{hex}\""))
        );
    }
}
