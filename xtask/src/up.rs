//! `cargo xtask up`: the main job. Build every filter and serve them in a local Envoy in front of
//! an echo upstream, until Ctrl-C. Network filters (`[package.metadata.filter] kind = "network"`,
//! or WasmPlugins with `type: NETWORK`) go in a TCP listener (`--tcp-port`) before `tcp_proxy` to
//! a TCP echo upstream instead of the HTTP chain.
//!
//! * Without `--plugins`: every filter, in `filters/` order, with `filters/<name>/config.json`.
//! * `--plugins DIR|FILE`: the WasmPlugins of a kustomization (e.g. `istio/overlays/dev`) or a
//!   YAML file, rendered as istiod would (see [`crate::plugins`]) for the proxy this Envoy stands
//!   in for: by default Istio's ingress gateway (`--workload-labels istio=ingressgateway`, in
//!   `istio-system`), its HTTP listener standing for gateway port 8080 (`--http-gateway-port`)
//!   and its TCP listener for 31400 (`--tcp-gateway-port`), with 2 workers (`--concurrency`;
//!   Istio's default proxy concurrency without CPU limits). Only plugins istiod would attach
//!   there are served (`selector`, `targetRefs`, `match`); the others are listed with the reason.
//!   The TCP listener's `tcp_proxy` is rendered as istiod renders it, **without**
//!   `max_early_data_bytes`, unless an EnvoyFilter in the manifests MERGEs it (see
//!   [`crate::envoy_filter`]); a TCP echo upstream is started for every cluster a network
//!   plugin's `sni.routes` or `default_cluster` names, so SNI routing can be tried locally.
//! * `--watch`: poll sources, configs and manifests; rebuild and swap changed HTTP filters'
//!   modules and configs into the running Envoy through ECDS, without restarting it.
//! * `--modules DIR`: serve prebuilt `DIR/<filter>.wasm` instead of building (with `--watch`, a
//!   changed file in DIR is swapped in).
//! * `--xff-trusted-hops N`: trust N proxies in front of this Envoy to append to
//!   `X-Forwarded-For` (default 0: the client's header never becomes `source.address`).

use crate::build::{build_and_report, filter_names, network_filter_names};
use crate::plugins::{Listener, Workload};
use crate::watch::{Served, Watcher};
use anyhow::{bail, Context, Result};
use envoy_harness::tcp::tcp_proxy_listener;
use envoy_harness::{locate, EchoServer, Envoy, EnvoyConfig, TcpEchoServer};
use serde_json::Value;
use std::collections::BTreeMap;
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
    pub workload_labels: Option<String>,
    pub http_gateway_port: u16,
    pub tcp_gateway_port: u16,
    pub concurrency: Option<u32>,
    pub xff_trusted_hops: u32,
}

const USAGE: &str = "usage: cargo xtask up [--port P] [--admin-port P] [--tcp-port P] [--plugins DIR|FILE] [--modules DIR] [--watch] [--poll-ms MS] [--workload-labels k=v,..] [--http-gateway-port P] [--tcp-gateway-port P] [--concurrency N] [--xff-trusted-hops N]";

fn parse(args: &[String]) -> Result<UpOptions> {
    let mut o = UpOptions {
        port: 10000,
        admin_port: 9901,
        tcp_port: 10001,
        plugins: None,
        modules: None,
        watch: false,
        poll: Duration::from_millis(1000),
        workload_labels: None,
        http_gateway_port: 8080,
        tcp_gateway_port: 31400,
        concurrency: None,
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
            "--workload-labels" => o.workload_labels = Some(value()?.clone()),
            "--http-gateway-port" => o.http_gateway_port = value()?.parse()?,
            "--tcp-gateway-port" => o.tcp_gateway_port = value()?.parse()?,
            "--concurrency" => o.concurrency = Some(value()?.parse()?),
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
    let mut workload = Workload::default();
    if let Some(labels) = &o.workload_labels {
        workload.labels = parse_labels(labels)?;
    }
    let mut watcher = Watcher::new(Served {
        filters: filter_names()?,
        network: network_filter_names()?,
        plugins: o.plugins.clone(),
        modules: o.modules.clone(),
        workload,
        http_listener: Listener::gateway(o.http_gateway_port),
        tcp_listener: Listener::gateway(o.tcp_gateway_port),
    })?;
    let chain = watcher.desired()?;
    let tcp_filters = watcher.network_filters()?;
    let not_rendered = watcher.not_rendered()?;
    let patches = watcher.tcp_proxy_patches()?;
    let echo = EchoServer::start("echo")?;
    let mut config = EnvoyConfig::new(echo.addr());
    config.http_port = o.port;
    config.admin_port = o.admin_port;
    config.concurrency = o
        .concurrency
        .unwrap_or(if o.plugins.is_some() { 2 } else { 1 });
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
    let mut routed_echoes = Vec::new();
    if !tcp_filters.is_empty() {
        config = config.cluster("tcp_upstream", tcp_echo.addr());
        for cluster in routed_clusters(&tcp_filters) {
            let server = TcpEchoServer::start(&cluster)?;
            config = config.cluster(&cluster, server.addr());
            routed_echoes.push(server);
        }
        let mut listener = tcp_proxy_listener("tcp", o.tcp_port, tcp_filters, "tcp_upstream");
        if o.plugins.is_some() {
            // As istiod renders it: no early data, unless an EnvoyFilter adds it.
            strip_early_data(&mut listener);
            for p in &patches {
                p.apply(&mut listener);
                println!("applied {} to the TCP listener's tcp_proxy", p.origin);
            }
        }
        config.extra_listeners.push(listener);
    }
    let mut envoy = Envoy::start(config)?;
    watcher.started(&envoy);
    for n in &not_rendered {
        println!("not rendered: {n}");
    }
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
    drop(routed_echoes);
    bail!("Envoy exited with {status}")
}

/// `k=v,k2=v2` (workload labels).
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>> {
    text.split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--workload-labels: `{kv}` is not key=value"))
        })
        .collect()
}

/// Remove `max_early_data_bytes` from a listener's `tcp_proxy` (istiod does not set it).
fn strip_early_data(listener: &mut Value) {
    for chain in listener["filter_chains"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        for f in chain["filters"].as_array_mut().into_iter().flatten() {
            if f["name"] == crate::envoy_filter::TCP_PROXY {
                if let Some(tc) = f["typed_config"].as_object_mut() {
                    tc.remove("max_early_data_bytes");
                }
            }
        }
    }
}

/// Clusters the network filters' configurations route to (`sni.routes` values and
/// `default_cluster`), other than `tcp_upstream`: each gets its own TCP echo upstream.
fn routed_clusters(filters: &[Value]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for f in filters {
        let text = f["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap_or_default();
        let Ok(config) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let routes = config["sni"]["routes"].as_object().into_iter().flatten();
        for cluster in routes
            .map(|(_, c)| c)
            .chain(std::iter::once(&config["default_cluster"]))
            .filter_map(Value::as_str)
        {
            if cluster != "tcp_upstream" {
                out.insert(cluster.to_string());
            }
        }
    }
    out.into_iter().collect()
}
