//! The anchor threat-score is compared with (bench scenario `modsecurity-crs`, `cargo xtask
//! corpus --engine modsecurity`): Debian's nginx + ModSecurity + CRS answers as configured.
//! Passes carry the echo's `x-upstream`, denials the 403 the corpus replay classifies as blocked,
//! PUT/PATCH/DELETE are allowed at PL1, and nginx alone (the server's own cost) blocks nothing.

use envoy_harness::corpus::{classify, replay_one, send_raw, Outcome, Row};
use envoy_harness::nginx::{Nginx, NginxOptions, BLOCK_ERROR};
use std::time::Duration;

fn row(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Row {
    Row::request(method, uri, headers, body)
}

const HOST: (&str, &str) = ("Host", "shop.example.com");

#[test]
fn crs_at_pl1_blocks_attacks_and_passes_rest_calls() {
    let nginx = Nginx::start(NginxOptions::crs(1)).unwrap();
    let outcome = |r: &Row| replay_one(nginx.addr(), r, BLOCK_ERROR).outcome;
    let json = ("Content-Type", "application/json");
    assert_eq!(
        outcome(&row("GET", "/api/items?id=7&sort=asc", &[HOST], "")),
        Outcome::Passed
    );
    for method in ["PUT", "PATCH", "DELETE"] {
        assert_eq!(
            outcome(&row(method, "/api/items/7", &[HOST, json], r#"{"qty":2}"#)),
            Outcome::Passed,
            "{method} is allowed (tx.allowed_methods)"
        );
    }
    assert_eq!(
        outcome(&row(
            "GET",
            "/api/items?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
            &[HOST],
            ""
        )),
        Outcome::Blocked
    );
    // The body is read and inspected before the echo answers.
    assert_eq!(
        outcome(&row(
            "POST",
            "/api/notes",
            &[HOST, json],
            r#"{"note":"<script>alert(1)</script>"}"#
        )),
        Outcome::Blocked,
        "{}",
        nginx.log()
    );
    assert!(nginx.log().contains("id \"949110\""), "{}", nginx.log());
}

#[test]
fn nginx_alone_passes_everything_it_can_parse() {
    let nginx = Nginx::start(NginxOptions::alone()).unwrap();
    let attack = row(
        "GET",
        "/api/items?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        &[HOST],
        "",
    );
    let resp = send_raw(
        nginx.addr(),
        &envoy_harness::corpus::raw_request(&attack),
        false,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(classify(resp.as_ref(), BLOCK_ERROR), Outcome::Passed);
    assert!(nginx.accepted_connections().unwrap() >= 1);
}
