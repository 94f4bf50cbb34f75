//! `cargo xtask new-filter NAME`: start a filter from the example template.

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
    if dst.exists() {
        bail!("{} already exists", dst.display());
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
    copy_tree(&src, &dst, &|text| {
        text.replace("name = \"example\"", &format!("name = \"{name}\""))
            .replace("ExampleFilter", &format!("{camel}Filter"))
            .replace("x-example-filter", &format!("x-{name}-filter"))
            .replace("`example`", &format!("`{name}`"))
            .replace(
                "recording_metrics(\"example\")",
                &format!("recording_metrics(\"{name}\")"),
            )
            .replace(
                "example_requests_total",
                &format!("{}_requests_total", name.replace('-', "_")),
            )
            .replace(
                "example_denied_total",
                &format!("{}_denied_total", name.replace('-', "_")),
            )
    })?;
    std::fs::write(
        dst.join("README.md"),
        format!(
            "# {name}\n\nTODO: what this filter does and why.\n\n## Build\n\n```sh\ncargo xtask build {name}\n```\n\n\
             ## Configuration\n\nSee `src/lib.rs` (`Config`). Local runs (`cargo xtask up`) use `config.json`.\n\n\
             ## Metrics\n\n- `{m}_requests_total`\n- `{m}_denied_total`\n",
            m = name.replace('-', "_")
        ),
    )?;
    println!(
        "created {} (package `{name}`, filter type `{camel}Filter`)",
        dst.display()
    );
    println!("build it with: cargo xtask build {name}");
    Ok(())
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
