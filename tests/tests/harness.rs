//! The harness itself under load: the echo upstream must answer parallel keep-alive traffic
//! through Envoy without stalls (hot-swap, rate-limit and benchmark tests rely on it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_harness::{Client, EchoServer, Envoy, EnvoyConfig};

#[test]
fn echo_upstream_serves_parallel_keepalive_clients_through_two_workers() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).concurrency(2)).unwrap();
    let url = envoy.url("/load");
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = Client::new();
                let mut statuses = Vec::new();
                for i in 0..100 {
                    let body = format!("t{t}-{i}");
                    let r = client
                        .request("POST", &url, &[("x-n", &body)], body.as_bytes())
                        .unwrap();
                    assert_eq!(r.json()["body"], body, "answer belongs to another request");
                    statuses.push(r.status);
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let bad: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert_eq!(statuses.len(), 1600);
    assert!(
        bad.is_empty(),
        "{} of 1600 failed: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
}
