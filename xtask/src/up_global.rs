//! `cargo xtask up --global-ratelimit`: policy's global rate limits, live. Starts Debian's
//! `redis-server`, the rate-limit service of `tests/src/ratelimit.rs` with
//! `filters/policy/examples/global/ratelimit-config.yaml` (envoyproxy/ratelimit's format), and
//! two Envoys on consecutive ports running the policy filter with
//! `filters/policy/examples/global/policy.json`, so a limit visibly holds across replicas.
//! Options: `--port P` (first Envoy; the second is P+1), `--admin-port P` (likewise),
//! `--modules DIR` (prebuilt modules instead of building).

use crate::build::{build_and_report, modules_dir};
use anyhow::{bail, Context, Result};
use envoy_harness::ratelimit::{cluster_json, DomainConfig, RateLimitServer};
use envoy_harness::redis::RedisServer;
use envoy_harness::{locate, workspace_root, EchoServer, Envoy, EnvoyConfig, FilterEntry};
use std::path::PathBuf;

const USAGE: &str =
    "usage: cargo xtask up --global-ratelimit [--port P] [--admin-port P] [--modules DIR]";

/// The service's limits: the example configuration, in envoyproxy/ratelimit's YAML format.
pub fn example_limits() -> Result<DomainConfig> {
    let path = workspace_root().join("filters/policy/examples/global/ratelimit-config.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The policy configuration of both Envoys.
pub fn example_policy() -> Result<String> {
    let path = workspace_root().join("filters/policy/examples/global/policy.json");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

pub fn up(args: &[String]) -> Result<()> {
    let (mut port, mut admin_port, mut modules) = (10000u16, 9901u16, None::<PathBuf>);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--global-ratelimit" => {}
            "--port" => port = value()?.parse()?,
            "--admin-port" => admin_port = value()?.parse()?,
            "--modules" => modules = Some(PathBuf::from(value()?)),
            other => bail!("unknown option `{other}` with --global-ratelimit\n{USAGE}"),
        }
    }
    let module = match modules {
        Some(dir) => dir.join("policy.wasm"),
        None => {
            build_and_report(&["policy".to_string()]).map(|_| modules_dir().join("policy.wasm"))?
        }
    };
    println!("using {}", locate::envoy()?.describe());
    let limits = example_limits()?;
    let policy = example_policy()?;
    let redis = RedisServer::start()?;
    let rls = RateLimitServer::start(vec![limits], redis.addr())?;
    let echo = EchoServer::start("echo")?;
    let mut envoys = Vec::new();
    for i in 0..2u16 {
        let mut cfg = EnvoyConfig::new(echo.addr()).filter(FilterEntry::wasm(
            "policy",
            module.clone(),
            policy.clone(),
        ));
        cfg.http_port = port + i;
        cfg.admin_port = admin_port + i;
        cfg.extra_clusters
            .push(cluster_json("ratelimit", rls.addr()));
        envoys.push(Envoy::start(cfg)?);
    }
    println!();
    println!(
        "Redis {} <- rate-limit service {} <- two Envoys running policy:",
        redis.addr(),
        rls.addr()
    );
    for e in &envoys {
        println!(
            "  URL: {}   admin: {}   log: {}",
            e.url("/"),
            e.admin_url("/"),
            e.dir().join("envoy.log").display()
        );
    }
    println!();
    println!("Limits: filters/policy/examples/global/ratelimit-config.yaml (10 per minute per client IP on /api)");
    println!("Policy: filters/policy/examples/global/policy.json");
    println!();
    println!("Try (10 admitted in total across both Envoys, then 429):");
    println!(
        "  for i in $(seq 1 8); do curl -s -o /dev/null -w '%{{http_code}} ' {}; curl -s -o /dev/null -w '%{{http_code}} ' {}; done; echo",
        envoys[0].url("/api"),
        envoys[1].url("/api")
    );
    println!(
        "  curl -s {} | grep ratelimit_global",
        envoys[0].admin_url("/stats/prometheus")
    );
    println!();
    println!("Ctrl-C stops everything.");
    let status = envoys[0].wait()?;
    drop(rls);
    drop(redis);
    bail!("Envoy exited with {status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_limits_and_policy_load() {
        let limits = example_limits().unwrap();
        assert_eq!(limits.domain, "edge");
        let policy: serde_json::Value = serde_json::from_str(&example_policy().unwrap()).unwrap();
        assert_eq!(policy["rules"][0]["rate_limit"]["global"]["domain"], "edge");
    }
}
