//! `cargo xtask up`: the main job. Build every filter and serve them, in `filters/` order, in
//! a local Envoy in front of an echo upstream, until Ctrl-C. Network filters
//! (`[package.metadata.filter] kind = "network"`) go in a TCP listener (`--tcp-port`) before
//! `tcp_proxy` to a TCP echo upstream instead of the HTTP chain.

use crate::build::build_and_report;
use anyhow::{bail, Context, Result};
use envoy_harness::tcp::{network_wasm_typed_config, tcp_proxy_listener};
use envoy_harness::{
    locate, workspace_root, EchoServer, Envoy, EnvoyConfig, HttpFilter, TcpEchoServer,
};

pub fn up(args: &[String]) -> Result<()> {
    let mut port = 10000u16;
    let mut admin_port = 9901u16;
    let mut tcp_port = 10001u16;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().context("--port needs a value")?.parse()?,
            "--admin-port" => {
                admin_port = it.next().context("--admin-port needs a value")?.parse()?
            }
            "--tcp-port" => tcp_port = it.next().context("--tcp-port needs a value")?.parse()?,
            other => {
                bail!("unknown option `{other}` (options: --port P, --admin-port P, --tcp-port P)")
            }
        }
    }
    let modules = build_and_report(&[])?;
    let envoy_bin = locate::envoy()?;
    println!("using {}", envoy_bin.describe());
    let echo = EchoServer::start("echo")?;
    let mut config = EnvoyConfig::new(echo.addr());
    config.http_port = port;
    config.admin_port = admin_port;
    let network = crate::build::network_filter_names()?;
    let mut names = Vec::new();
    let mut tcp_filters = Vec::new();
    for name in crate::build::filter_names()? {
        // Each filter's local configuration lives next to its code.
        let cfg_path = workspace_root()
            .join("filters")
            .join(&name)
            .join("config.json");
        let cfg = std::fs::read_to_string(&cfg_path).unwrap_or_else(|_| "{}".into());
        if network.contains(&name) {
            let module = modules.join(format!("{name}.wasm"));
            tcp_filters.push(serde_json::json!({
                "name": name,
                "typed_config": network_wasm_typed_config(&name, &module, &cfg)
            }));
            continue;
        }
        config = config.filter(HttpFilter::wasm(
            &name,
            modules.join(format!("{name}.wasm")),
            cfg,
        ));
        names.push(name);
    }
    let tcp_echo = TcpEchoServer::start("tcp-echo")?;
    if !tcp_filters.is_empty() {
        config = config.cluster("tcp_upstream", tcp_echo.addr());
        config.extra_listeners.push(tcp_proxy_listener(
            "tcp",
            tcp_port,
            tcp_filters,
            "tcp_upstream",
        ));
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
    println!("Ctrl-C stops Envoy.");
    let status = envoy.wait()?;
    drop(echo);
    drop(tcp_echo);
    bail!("Envoy exited with {status}")
}
