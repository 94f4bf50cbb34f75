//! Envoy CPU per hostile request: the threat-score module (default config, block mode) in a
//! real Envoy in front of the echo upstream, each 64 KiB hostile body of
//! `threat_score::hostile::cases` sent ROUNDS times; the Envoy process's CPU time (user + system, from
//! `/proc/PID/stat`) divided by the requests. Indicative (a shared machine), not a test.
//!
//! ```text
//! cargo xtask build threat-score
//! cargo run --release -p envoy-harness --example hostile_cpu -- [ROUNDS]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measuring tool: fail loudly

use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry};

/// User + system CPU of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let echo = EchoServer::start("echo").unwrap();
    let filter = FilterEntry::wasm(
        "threat-score",
        modules::module("threat-score").unwrap(),
        "{}",
    );
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(filter)).unwrap();
    let client = Client::new();
    let url = envoy.url("/upload");
    let send = |ct: &str, body: &[u8]| {
        client
            .request(
                "POST",
                &url,
                &[("content-type", ct), ("host", "shop.example")],
                body,
            )
            .unwrap()
            .status
    };
    for _ in 0..20 {
        send("text/plain", b"warm up");
    }
    let per_request = |ct: &str, body: &[u8]| {
        let before = cpu_ticks(envoy.pid());
        let mut status = 0;
        for _ in 0..rounds {
            status = send(ct, body);
        }
        let ticks = cpu_ticks(envoy.pid()) - before;
        (ticks as f64 * 10.0 / rounds as f64, status)
    };
    let (ms, _) = per_request("text/plain", b"hello");
    println!(
        "{:>19} {:>9}: {ms:6.2} ms Envoy CPU/request",
        "small", "text"
    );
    for case in threat_score::hostile::cases() {
        let (ct, body) = case.body(64 * 1024);
        let (ms, status) = per_request(ct, &body);
        println!(
            "{:>19} {:>9}: {ms:6.2} ms Envoy CPU/request (status {status}, {} bytes)",
            case.name,
            case.carrier,
            body.len()
        );
    }
}
