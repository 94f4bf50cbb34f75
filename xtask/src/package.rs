//! `cargo xtask package FILTER`: the filter's module as an OCI image that Istio's agent pulls, in
//! an OCI image layout (`target/oci/FILTER/`), and its manifest digest pinned in the dev overlays
//! (`url: oci://REPO@sha256:...` and `spec.sha256`). `cargo xtask pin` is the release step: it
//! packages every module and pins it in every overlay, prod included.
//!
//! Format: the solo-io Wasm image spec's **compat** variant (`spec/spec-compat.md`), which
//! Istio's agent reads first (`pkg/wasm/imagefetcher.go`, `extractOCIStandardImage`):
//! * manifest `application/vnd.oci.image.manifest.v1+json` with annotation
//!   `module.wasm.image/variant: compat`;
//! * one layer `application/vnd.oci.image.layer.v1.tar+gzip` holding `plugin.wasm`;
//! * config `application/vnd.oci.image.config.v1+json` (`os: wasip1`, `architecture: wasm`).
//!
//! It is a plain OCI image, so every registry and tool (skopeo, crane, docker) handles it. The
//! image is a pure function of the module bytes, name and version (no timestamps; tar entries
//! with mtime 0, uid/gid 0, no user/group names; gzip header with mtime 0 and OS "unknown";
//! miniz_oxide's deflate at a fixed level, its version pinned by `Cargo.lock`), so the same
//! module always has the same digest, on any machine.

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

/// `REGISTRY/REPO` of an image reference (with or without `oci://`), without its tag or digest.
pub fn repository_of(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    }
}

/// The `sha256:<hex>` digest an `oci://REPO@sha256:<hex>` URL names, if any.
pub fn url_digest(url: &str) -> Option<&str> {
    url.rsplit_once('@').map(|(_, d)| d)
}

/// The image URL that pins `digest`: `url`'s repository, addressed by digest.
pub fn pinned_url(url: &str, digest: &str) -> String {
    format!("{}@{digest}", repository_of(url))
}

/// Where an overlay sets a WasmPlugin's image, the file `pin` rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSite {
    /// A JSON 6902 patch (listed under `patchesJson6902`/`patches`) with a `/spec/url` op.
    Patch(PathBuf),
    /// A WasmPlugin resource of the overlay itself (listed under `resources`).
    Resource(PathBuf),
}

impl PinSite {
    pub fn path(&self) -> &Path {
        match self {
            PinSite::Patch(p) | PinSite::Resource(p) => p,
        }
    }
}

/// The file in `overlay` (a kustomization directory) that sets the image of WasmPlugin `plugin`.
pub fn pin_site(overlay: &Path, plugin: &str) -> Result<PinSite> {
    let kpath = overlay.join("kustomization.yaml");
    let k: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(&kpath).with_context(|| format!("reading {}", kpath.display()))?,
    )
    .with_context(|| format!("parsing {}", kpath.display()))?;
    for key in ["patchesJson6902", "patches"] {
        for entry in k[key].as_array().into_iter().flatten() {
            let (Some(name), Some(file)) =
                (entry["target"]["name"].as_str(), entry["path"].as_str())
            else {
                continue;
            };
            if name != plugin {
                continue;
            }
            let file = overlay.join(file);
            let ops: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&file)?)
                .with_context(|| format!("parsing {}", file.display()))?;
            if ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op["path"] == "/spec/url"))
            {
                return Ok(PinSite::Patch(file));
            }
        }
    }
    for entry in k["resources"].as_array().into_iter().flatten() {
        let Some(file) = entry.as_str() else { continue };
        let file = overlay.join(file);
        if !file.is_file() {
            continue;
        }
        let docs = crate::plugins::parse_documents(&std::fs::read_to_string(&file)?)?;
        if docs
            .iter()
            .any(|d| d["kind"] == "WasmPlugin" && d["metadata"]["name"] == plugin)
        {
            return Ok(PinSite::Resource(file));
        }
    }
    bail!(
        "{} sets no image for WasmPlugin `{plugin}`: add a JSON 6902 patch with \
         `- {{op: replace, path: /spec/url, value: oci://REGISTRY/REPO}}` for it (see istio/README.md)",
        overlay.display()
    )
}

/// Pin `digest` at `site`: the URL becomes `REPO@digest` and `sha256` the digest's hex; the rest
/// of the file is kept as it is. The result is parsed back and checked. Returns whether the
/// file changed.
pub fn pin_at(site: &PinSite, digest: &str) -> Result<bool> {
    let hex = digest.trim_start_matches("sha256:");
    let file = site.path();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let out = match site {
        PinSite::Patch(_) => pin_patch_text(&text, digest),
        PinSite::Resource(_) => pin_resource_text(&text, digest),
    }
    .with_context(|| format!("pinning {}", file.display()))?;
    // Check what the edit means, not only what it looks like.
    let (url, sha) = match site {
        PinSite::Patch(_) => {
            let ops: serde_json::Value = serde_yaml_ng::from_str(&out)?;
            let value = |path: &str| {
                ops.as_array()
                    .and_then(|ops| ops.iter().find(|op| op["path"] == path))
                    .map(|op| op["value"].clone())
                    .unwrap_or_default()
            };
            (value("/spec/url"), value("/spec/sha256"))
        }
        PinSite::Resource(_) => {
            let doc: serde_json::Value = serde_yaml_ng::from_str(&out)?;
            (doc["spec"]["url"].clone(), doc["spec"]["sha256"].clone())
        }
    };
    let url = url.as_str().unwrap_or_default();
    if url_digest(url) != Some(digest) || sha != hex {
        bail!(
            "pinning {} went wrong (url {url:?}, sha256 {sha}); nothing written",
            file.display()
        );
    }
    let changed = out != text;
    if changed {
        std::fs::write(file, out)?;
    }
    Ok(changed)
}

/// The `value:` line of the op whose `path:` is `op_path`, in a JSON 6902 patch list (one op
/// per `- ` item, its keys on the item's lines).
fn op_value_line(lines: &[String], op_path: &str) -> Option<usize> {
    let item = |l: &str| l.trim_start().starts_with("- ");
    let at = lines
        .iter()
        .position(|l| l.trim_start_matches(['-', ' ']).trim() == format!("path: {op_path}"))?;
    let start = (0..=at).rev().find(|&i| item(&lines[i]))?;
    let end = (at + 1..lines.len())
        .find(|&i| item(&lines[i]))
        .unwrap_or(lines.len());
    (start..end).find(|&i| {
        lines[i]
            .trim_start_matches(['-', ' '])
            .starts_with("value:")
    })
}

fn replace_value(line: &str, value: &str) -> String {
    let at = line.find("value:").unwrap_or(0);
    format!("{}value: {value}", &line[..at])
}

fn pin_patch_text(text: &str, digest: &str) -> Result<String> {
    let hex = digest.trim_start_matches("sha256:");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let url_line = op_value_line(&lines, "/spec/url").context("no `/spec/url` op with a value")?;
    let url = lines[url_line]
        .split_once("value:")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    lines[url_line] = replace_value(&lines[url_line], &pinned_url(&url, digest));
    match op_value_line(&lines, "/spec/sha256") {
        Some(i) => lines[i] = replace_value(&lines[i], &format!("\"{hex}\"")),
        None => {
            lines.push("- op: add".into());
            lines.push("  path: /spec/sha256".into());
            lines.push(format!("  value: \"{hex}\""));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}

/// Rewrite `url:` and `sha256:` of a WasmPlugin resource: the lines at the indentation of
/// `url:` (siblings in `spec`), so a `sha256` inside `pluginConfig` is left alone.
fn pin_resource_text(text: &str, digest: &str) -> Result<String> {
    let hex = digest.trim_start_matches("sha256:");
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let url_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("url:"))
        .map(|(i, _)| i)
        .collect();
    let [url_at] = url_lines.as_slice() else {
        bail!(
            "must have exactly one `url:` line (found {})",
            url_lines.len()
        );
    };
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let spec_indent = indent_of(&lines[*url_at]);
    let pad = " ".repeat(spec_indent);
    let url = lines[*url_at]
        .trim_start()
        .trim_start_matches("url:")
        .trim()
        .trim_matches('"')
        .to_string();
    lines[*url_at] = format!("{pad}url: {}", pinned_url(&url, digest));
    let sha: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            indent_of(&lines[i]) == spec_indent && lines[i].trim_start().starts_with("sha256:")
        })
        .collect();
    match sha.as_slice() {
        [] => lines.insert(url_at + 1, format!("{pad}sha256: \"{hex}\"")),
        [i] => lines[*i] = format!("{pad}sha256: \"{hex}\""),
        _ => bail!("has {} `sha256:` lines beside `url:`", sha.len()),
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Overlays under `manifests/overlays/` (directories with a `kustomization.yaml`), sorted.
pub fn overlays(manifests: &Path) -> Result<Vec<PathBuf>> {
    let dir = manifests.join("overlays");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Whether an overlay is for development (name `dev`, `dev-*` or `*-dev`): only those may use
/// the template filter, loopback or placeholder registries and demo keys.
pub fn is_dev_overlay(overlay: &Path) -> bool {
    let name = overlay
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == "dev" || name.starts_with("dev-") || name.ends_with("-dev")
}

/// Pin `image` for `filter` in every WasmPlugin of `overlay` that runs it. Prints each file.
pub fn pin_overlay(overlay: &Path, filter: &str, digest: &str) -> Result<usize> {
    let docs = crate::plugins::load_documents(overlay)?;
    let mut n = 0;
    for plugin in crate::plugins::wasm_plugins(&docs) {
        if plugin.filter() != Some(filter) {
            continue;
        }
        let site = pin_site(overlay, plugin.name())?;
        let changed = pin_at(&site, digest)?;
        println!(
            "pinned {filter} {digest} in {}{}",
            site.path().display(),
            if changed { "" } else { " (unchanged)" }
        );
        n += 1;
    }
    Ok(n)
}

/// Package `filter` from `module`: the image and its layout in `out` (default
/// `target/oci/FILTER`). Prints what it wrote.
pub fn package_module(filter: &str, module: &Path, out: Option<PathBuf>) -> Result<WasmImage> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let version = filter_version(filter)?;
    let image = WasmImage::new(&bytes, filter, &version)?;
    let out = out.unwrap_or_else(|| layout_dir(filter));
    image.write_layout(&out, &version)?;
    println!("image layout:    {} (tag {version})", out.display());
    println!(
        "module:          {} ({} bytes, {})",
        module.display(),
        bytes.len(),
        sha256_digest(&bytes)
    );
    println!("manifest digest: {}", image.digest());
    Ok(image)
}

/// `cargo xtask package FILTER [--module FILE] [--out DIR] [--manifests DIR] [--overlay NAME]... [--no-pin]`
pub fn package_command(args: &[String]) -> Result<()> {
    let mut filter = None;
    let mut module = None;
    let mut out = None;
    let mut manifests = workspace_root().join("istio");
    let mut pin = true;
    let mut only_overlays = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--module" => module = Some(PathBuf::from(it.next().context("--module needs a file")?)),
            "--out" => out = Some(PathBuf::from(it.next().context("--out needs a directory")?)),
            "--manifests" => {
                manifests = PathBuf::from(it.next().context("--manifests needs a directory")?)
            }
            "--overlay" => only_overlays.push(it.next().context("--overlay needs a name")?.clone()),
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
    let image = package_module(&filter, &module, out)?;
    if pin {
        // A dev build pins the dev overlays only; other overlays change with `cargo xtask pin`.
        let targets: Vec<PathBuf> = if only_overlays.is_empty() {
            overlays(&manifests)?
                .into_iter()
                .filter(|o| is_dev_overlay(o))
                .collect()
        } else {
            only_overlays
                .iter()
                .map(|o| manifests.join("overlays").join(o))
                .collect()
        };
        for overlay in targets {
            pin_overlay(&overlay, &filter, &image.digest())?;
        }
    }
    Ok(())
}

const PACKAGE_USAGE: &str = "usage: cargo xtask package FILTER [--module FILE] [--out DIR] [--manifests DIR] [--overlay NAME]... [--no-pin]";

/// `cargo xtask pin [--manifests DIR] [--modules DIR] [--overlay NAME]... [FILTER...]`: the
/// release step. Builds every module (or FILTER...), packages each, and pins its digest in every
/// overlay (or each `--overlay`) that runs it, so `cargo xtask validate` agrees with this checkout.
pub fn pin_command(args: &[String]) -> Result<()> {
    let mut manifests = workspace_root().join("istio");
    let mut modules = None;
    let mut only_overlays = Vec::new();
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--manifests" => {
                manifests = PathBuf::from(it.next().context("--manifests needs a directory")?)
            }
            "--modules" => {
                modules = Some(PathBuf::from(
                    it.next().context("--modules needs a directory")?,
                ))
            }
            "--overlay" => only_overlays.push(it.next().context("--overlay needs a name")?.clone()),
            other if !other.starts_with('-') => filters.push(other.to_string()),
            other => bail!("unexpected argument `{other}`\n{PIN_USAGE}"),
        }
    }
    let overlays: Vec<PathBuf> = if only_overlays.is_empty() {
        overlays(&manifests)?
    } else {
        only_overlays
            .iter()
            .map(|o| manifests.join("overlays").join(o))
            .collect()
    };
    // The filters the overlays run (or those asked for).
    let mut wanted = filters.clone();
    if wanted.is_empty() {
        for overlay in &overlays {
            for p in crate::plugins::wasm_plugins(&crate::plugins::load_documents(overlay)?) {
                if let Some(f) = p.filter() {
                    if !wanted.iter().any(|w| w == f) {
                        wanted.push(f.to_string());
                    }
                }
            }
        }
        wanted.sort();
    }
    let modules = match modules {
        Some(m) => m,
        None => crate::build::build_and_report(&wanted)?,
    };
    let mut pinned = 0;
    for filter in &wanted {
        let image = package_module(filter, &modules.join(format!("{filter}.wasm")), None)?;
        for overlay in &overlays {
            pinned += pin_overlay(overlay, filter, &image.digest())?;
        }
    }
    println!(
        "{pinned} pin(s) in {} overlay(s) match this checkout; commit them with the change",
        overlays.len()
    );
    Ok(())
}

const PIN_USAGE: &str =
    "usage: cargo xtask pin [--manifests DIR] [--modules DIR] [--overlay NAME]... [FILTER...]";

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

        let digest = image.digest();
        let hex = digest.trim_start_matches("sha256:").to_string();

        // A WasmPlugin resource: url and sha256 beside it; a `sha256` in pluginConfig stays.
        let doc =
            "spec:\n  url: oci://r/g:1\n  pluginConfig:\n    keys:\n      - sha256: \"abc\"\n";
        let out = pin_resource_text(doc, &digest).unwrap();
        assert_eq!(
            out,
            format!("spec:\n  url: oci://r/g@{digest}\n  sha256: \"{hex}\"\n  pluginConfig:\n    keys:\n      - sha256: \"abc\"\n")
        );
        assert_eq!(pin_resource_text(&out, &digest).unwrap(), out);

        // A JSON 6902 patch: the url op's value and the sha256 op (added when missing).
        let patch = "# registry\n- op: replace\n  path: /spec/url\n  value: oci://localhost:5000/f/example:0.1.0\n- op: replace\n  path: /spec/failStrategy\n  value: FAIL_OPEN\n";
        let out = pin_patch_text(patch, &digest).unwrap();
        assert_eq!(
            out,
            format!("# registry\n- op: replace\n  path: /spec/url\n  value: oci://localhost:5000/f/example@{digest}\n- op: replace\n  path: /spec/failStrategy\n  value: FAIL_OPEN\n- op: add\n  path: /spec/sha256\n  value: \"{hex}\"\n")
        );
        let other = format!("sha256:{}", "1".repeat(64));
        let again = pin_patch_text(&out, &other).unwrap();
        assert!(again.contains(&format!("example@{other}")));
        assert!(again.contains(&format!("value: \"{}\"", "1".repeat(64))));
        assert_eq!(again.matches("/spec/sha256").count(), 1);
    }

    #[test]
    fn references_and_overlay_kinds() {
        assert_eq!(repository_of("oci://r:5000/a/b:0.1.0"), "oci://r:5000/a/b");
        assert_eq!(
            repository_of("oci://r:5000/a/b@sha256:ab"),
            "oci://r:5000/a/b"
        );
        assert_eq!(repository_of("r:5000/a/b"), "r:5000/a/b");
        assert_eq!(url_digest("oci://r/a@sha256:ab"), Some("sha256:ab"));
        assert_eq!(url_digest("oci://r/a:1"), None);
        assert!(is_dev_overlay(Path::new("istio/overlays/dev")));
        assert!(is_dev_overlay(Path::new("istio/overlays/dev-suite")));
        assert!(!is_dev_overlay(Path::new("istio/overlays/prod")));
        assert!(!is_dev_overlay(Path::new("istio/overlays/devious")));
    }
}
