//! `cargo xtask up`: the main job. Build every filter and serve them, in `filters/` order, in
//! a local Envoy in front of an echo upstream, until Ctrl-C.

use crate::build::build_and_report;
use anyhow::{bail, Context, Result};
use envoy_harness::{locate, workspace_root, EchoServer, Envoy, EnvoyConfig, HttpFilter};

pub fn up(args: &[String]) -> Result<()> {
    let mut port = 10000u16;
    let mut admin_port = 9901u16;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().context("--port needs a value")?.parse()?,
            "--admin-port" => {
                admin_port = it.next().context("--admin-port needs a value")?.parse()?
            }
            other => bail!("unknown option `{other}` (options: --port P, --admin-port P)"),
        }
    }
    let modules = build_and_report(&[])?;
    let envoy_bin = locate::envoy()?;
    println!("using {}", envoy_bin.describe());
    let echo = EchoServer::start("echo")?;
    let mut config = EnvoyConfig::new(echo.addr());
    config.http_port = port;
    config.admin_port = admin_port;
    let mut names = Vec::new();
    for name in crate::build::filter_names()? {
        // Each filter's local configuration lives next to its code.
        let cfg_path = workspace_root()
            .join("filters")
            .join(&name)
            .join("config.json");
        let cfg = std::fs::read_to_string(&cfg_path).unwrap_or_else(|_| "{}".into());
        config = config.filter(HttpFilter::wasm(
            &name,
            modules.join(format!("{name}.wasm")),
            cfg,
        ));
        names.push(name);
    }
    let mut envoy = Envoy::start(config)?;
    println!();
    println!(
        "Envoy is serving filters [{}] in front of an echo upstream.",
        names.join(", ")
    );
    println!("  URL:    {}", envoy.url("/"));
    println!("  admin:  {}", envoy.admin_url("/"));
    println!("  log:    {}", envoy.dir().join("envoy.log").display());
    println!();
    println!("Try:");
    println!("  curl -i {}", envoy.url("/hello"));
    println!("  curl -i -H 'x-deny: 1' {}", envoy.url("/hello"));
    println!(
        "  curl -s {} | grep -E '^(example|policy|router|threat)'",
        envoy.admin_url("/stats/prometheus")
    );
    println!();
    println!("Ctrl-C stops Envoy.");
    let status = envoy.wait()?;
    drop(echo);
    bail!("Envoy exited with {status}")
}
