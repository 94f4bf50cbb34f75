//! Scores values typed on stdin, one per line, in three carriers (query `?q=`, form field,
//! JSON string) in `detect` mode, so a rule author sees what each value triggers:
//!
//! ```text
//! printf '%s\n' "please run c\${x:-a}t /etc/passwd" | \
//!     cargo run --release -p threat-score --example probe -- [--paranoia N]
//! ```
//!
//! A line: `score(query) score(form) score(json)  value  rules...` (rules of the query carrier,
//! with their paranoia level). `--header NAME` scores the value as that request header
//! instead (`user-agent`, `referer`, `cookie`...), `--path` as a path segment (percent-encoded).
//! `--query` takes the line as the raw query string (`user[$ne]=x&a=%252e`, sent as written),
//! `--body TYPE` as the raw body of a POST with that `Content-Type` (JSON documents, XML,
//! multipart, with each CR LF written as the four characters `\r\n`). `--header`, `--path`,
//! `--query` and `--body` print one score.

use std::io::BufRead;

use threat_score::{Config, Mode, Request};

fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paranoia = args
        .iter()
        .position(|a| a == "--paranoia")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(1u8);
    let Ok(engine) = (Config {
        paranoia_level: paranoia,
        mode: Mode::Detect,
        ..Config::default()
    })
    .compile() else {
        std::process::exit(2);
    };
    let h = |ct: &str| -> Vec<(String, String)> {
        let mut v = vec![("host".to_string(), "api.example".to_string())];
        if !ct.is_empty() {
            v.push(("content-type".to_string(), ct.to_string()));
        }
        v
    };
    let (host, form, json) = (
        h(""),
        h("application/x-www-form-urlencoded"),
        h("application/json"),
    );
    let header = args
        .iter()
        .position(|a| a == "--header")
        .and_then(|i| args.get(i + 1))
        .map(|h| h.to_ascii_lowercase());
    let path = args.iter().any(|a| a == "--path");
    let raw_query = args.iter().any(|a| a == "--query");
    let body_type = args
        .iter()
        .position(|a| a == "--body")
        .and_then(|i| args.get(i + 1))
        .map(|t| h(t));
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        if line.is_empty() {
            continue;
        }
        if raw_query || body_type.is_some() {
            let a = match &body_type {
                Some(hs) => {
                    let body = line.replace("\\r\\n", "\r\n");
                    engine.inspect(
                        &Request::new("POST", "/api/items")
                            .with_headers(hs)
                            .with_body(body.as_bytes()),
                    )
                }
                None => {
                    let uri = format!("/search?{line}");
                    engine.inspect(&Request::new("GET", &uri).with_headers(&host))
                }
            };
            let rules: Vec<String> = a
                .detections
                .iter()
                .map(|d| format!("{}@{}", d.rule, d.paranoia))
                .collect();
            println!("{:>3}  {}  {}", a.score, line, rules.join(" "));
            continue;
        }
        if header.is_some() || path {
            let mut hs = host.clone();
            if let Some(h) = &header {
                hs.push((h.clone(), line.clone()));
            }
            let uri = if path {
                format!("/files/{}", enc(&line))
            } else {
                "/".to_string()
            };
            let a = engine.inspect(&Request::new("GET", &uri).with_headers(&hs));
            let rules: Vec<String> = a
                .detections
                .iter()
                .map(|d| format!("{}@{}", d.rule, d.paranoia))
                .collect();
            println!("{:>3}  {}  {}", a.score, line, rules.join(" "));
            continue;
        }
        let uri = format!("/search?q={}", enc(&line));
        let q = engine.inspect(&Request::new("GET", &uri).with_headers(&host));
        let fb = format!("name=demo&description={}", enc(&line));
        let f = engine.inspect(
            &Request::new("POST", "/api/items")
                .with_headers(&form)
                .with_body(fb.as_bytes()),
        );
        let jb = format!(
            r#"{{"name":"demo","description":{}}}"#,
            serde_json::to_string(&line).unwrap_or_default()
        );
        let j = engine.inspect(
            &Request::new("POST", "/api/items")
                .with_headers(&json)
                .with_body(jb.as_bytes()),
        );
        let mut rules: Vec<String> = q
            .detections
            .iter()
            .map(|d| format!("{}@{}", d.rule, d.paranoia))
            .collect();
        for d in f.detections.iter().chain(j.detections.iter()) {
            let r = format!("{}@{}", d.rule, d.paranoia);
            if !rules.contains(&r) {
                rules.push(format!("{r}(body)"));
            }
        }
        println!(
            "{:>3} {:>3} {:>3}  {}  {}",
            q.score,
            f.score,
            j.score,
            line,
            rules.join(" ")
        );
    }
}
