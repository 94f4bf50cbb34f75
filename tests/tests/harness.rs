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

/// A misspelled stat must fail the test, not read as 0 (an `== 0` check would pass on any
/// typo).
#[test]
fn a_missing_stat_fails_instead_of_reading_zero() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr())).unwrap();
    assert_eq!(envoy.stat("http.ingress.downstream_rq_total"), 0);
    assert_eq!(
        envoy.try_stat("http.ingress.downstream_rq_totl").unwrap(),
        None
    );
    let typo = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        envoy.stat("http.ingress.downstream_rq_totl")
    }));
    let message = typo.expect_err("a missing stat panics");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("no stat `http.ingress.downstream_rq_totl`")
            && text.contains("http.ingress.downstream_rq_total"),
        "{text}"
    );
}
