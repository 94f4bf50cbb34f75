//! `cargo xtask up`: the main job. Build every filter and serve them in a local Envoy in front of
//! an echo upstream, until Ctrl-C. Network filters (`[package.metadata.filter] kind = "network"`,
//! or WasmPlugins with `type: NETWORK`) go in a TCP listener (`--tcp-port`) before `tcp_proxy` to
//! a TCP echo upstream instead of the HTTP chain.
//!
//! * Without `--plugins`: every filter, in `filters/` order, with `filters/<name>/config.json`.
//! * `--plugins DIR|FILE`: the WasmPlugins of a kustomization (e.g. `istio/overlays/dev`) or a
//!   YAML file, rendered as istiod would (see [`crate::plugins`]).
//! * `--watch`: poll sources, configs and manifests; rebuild and swap changed HTTP filters'
//!   modules and configs into the running Envoy through ECDS, without restarting it.
//! * `--modules DIR`: serve prebuilt `DIR/<filter>.wasm` instead of building (with `--watch`, a
//!   changed file in DIR is swapped in).
//! * `--xff-trusted-hops N`: trust N proxies in front of this Envoy to append to
//!   `X-Forwarded-For` (default 0: the client's header never becomes `source.address`).

use crate::build::{build_and_report, filter_names, network_filter_names};
use crate::watch::{Served, Watcher};
use anyhow::{bail, Context, Result};
use envoy_harness::tcp::tcp_proxy_listener;
use envoy_harness::{locate, EchoServer, Envoy, EnvoyConfig, TcpEchoServer};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `cargo xtask up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub port: u16,
    pub admin_port: u16,
    pub tcp_port: u16,
    pub plugins: Option<PathBuf>,
    pub modules: Option<PathBuf>,
    pub watch: bool,
    pub poll: Duration,
    pub xff_trusted_hops: u32,
}

const USAGE: &str = "usage: cargo xtask up [--port P] [--admin-port P] [--tcp-port P] [--plugins DIR|FILE] [--modules DIR] [--watch] [--poll-ms MS] [--xff-trusted-hops N]";

fn parse(args: &[String]) -> Result<UpOptions> {
    let mut o = UpOptions {
        port: 10000,
        admin_port: 9901,
        tcp_port: 10001,
        plugins: None,
        modules: None,
        watch: false,
        poll: Duration::from_millis(1000),
        xff_trusted_hops: 0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--port" => o.port = value()?.parse()?,
            "--admin-port" => o.admin_port = value()?.parse()?,
            "--tcp-port" => o.tcp_port = value()?.parse()?,
            "--plugins" => o.plugins = Some(PathBuf::from(value()?)),
            "--modules" => o.modules = Some(PathBuf::from(value()?)),
            "--watch" => o.watch = true,
            "--poll-ms" => o.poll = Duration::from_millis(value()?.parse()?),
            "--xff-trusted-hops" => o.xff_trusted_hops = value()?.parse()?,
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    Ok(o)
}

pub fn up(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--global-ratelimit") {
        return crate::up_global::up(args);
    }
    let o = parse(args)?;
    if o.modules.is_none() {
        build_and_report(&[])?;
    }
    let envoy_bin = locate::envoy()?;
    println!("using {}", envoy_bin.describe());
    let mut watcher = Watcher::new(Served {
        filters: filter_names()?,
        network: network_filter_names()?,
        plugins: o.plugins.clone(),
        modules: o.modules.clone(),
    })?;
    let chain = watcher.desired()?;
    let tcp_filters = watcher.network_filters()?;
    let echo = EchoServer::start("echo")?;
    let mut config = EnvoyConfig::new(echo.addr());
    config.http_port = o.port;
    config.admin_port = o.admin_port;
    config.xff_num_trusted_hops = o.xff_trusted_hops;
    let names: Vec<String> = chain.iter().map(|f| f.name().to_string()).collect();
    let network: Vec<String> = tcp_filters
        .iter()
        .filter_map(|f| f["name"].as_str().map(String::from))
        .collect();
    for f in chain {
        config = config.filter(f);
    }
    let tcp_echo = TcpEchoServer::start("tcp-echo")?;
    if !tcp_filters.is_empty() {
        config = config.cluster("tcp_upstream", tcp_echo.addr());
        config.extra_listeners.push(tcp_proxy_listener(
            "tcp",
            o.tcp_port,
            tcp_filters,
            "tcp_upstream",
        ));
    }
    let mut envoy = Envoy::start(config)?;
    watcher.started(&envoy);
    println!();
    match &o.plugins {
        Some(p) => println!(
            "Envoy is serving WasmPlugins [{}] from {} in front of an echo upstream.",
            names.join(", "),
            p.display()
        ),
        None => println!(
            "Envoy is serving filters [{}] in front of an echo upstream.",
            names.join(", ")
        ),
    }
    println!("  URL:    {}", envoy.url("/"));
    println!("  admin:  {}", envoy.admin_url("/"));
    println!("  log:    {}", envoy.dir().join("envoy.log").display());
    println!("  pid:    {}", envoy.pid());
    println!();
    println!("Try:");
    println!("  curl -i {}", envoy.url("/hello"));
    println!("  curl -i -H 'x-deny: 1' {}", envoy.url("/hello"));
    println!(
        "  curl -s {} | grep -E '^(example|policy|router|threat|tcp_guard)'",
        envoy.admin_url("/stats/prometheus")
    );
    if !network.is_empty() {
        let tcp = envoy.listener("tcp");
        println!();
        println!(
            "Network filters [{}] guard TCP {tcp} in front of a TCP echo upstream.",
            network.join(", ")
        );
        println!(
            "  printf 'hello' | nc -q1 {} {}     # upstream=tcp-echo, then hello",
            tcp.ip(),
            tcp.port()
        );
        println!(
            "  printf 'GET / HTTP/1.1\\r\\n\\r\\n' | nc -q1 {} {}   # closed: http1 not allowed",
            tcp.ip(),
            tcp.port()
        );
        println!(
            "  nc -q1 -s 127.0.0.2 {} {} </dev/null   # closed: source.deny",
            tcp.ip(),
            tcp.port()
        );
    }
    println!();
    if o.watch {
        println!(
            "Watching {} for changes (every {:?}); HTTP filter edits are rebuilt and swapped in live{}.",
            watcher.watched_description(),
            o.poll,
            if network.is_empty() {
                ""
            } else {
                " (network filters are inline in the TCP listener: restart to change them)"
            }
        );
    }
    println!("Ctrl-C stops Envoy.");
    let status = if o.watch {
        watcher.run(&mut envoy, o.poll)?
    } else {
        envoy.wait()?
    };
    drop(echo);
    drop(tcp_echo);
    bail!("Envoy exited with {status}")
}
