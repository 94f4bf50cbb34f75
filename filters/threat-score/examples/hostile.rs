//! Hostile-input cost probe: runs `Engine::inspect` on repeated-token bodies of growing size
//! and prints the wall time per request (indicative; the linear-time test counts instructions).
//!
//! ```text
//! cargo run --release -p threat-score --example hostile [-- --write DIR | GEN CARRIER SIZE [REPEAT]]
//! ```
//! `--write DIR` also writes each 64 KiB body to `DIR/<name>.<carrier>` for replay through Envoy.

use std::time::Instant;
use threat_score::{Config, Request};

fn main() {
    if let Err(e) = run() {
        eprintln!("hostile: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write = args
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1));
    let engine = Config::default()
        .compile()
        .map_err(|e| format!("default config: {e}"))?;
    if let [name, carrier, size, rest @ ..] = args.as_slice() {
        // One case: `hostile GEN CARRIER SIZE [REPEAT]` (once for callgrind; repeated for a
        // sampling profiler, e.g. the module built for wasm32-wasip1 under `node --cpu-prof`).
        let repeat: usize = match rest {
            [] => 1,
            [n] => n.parse().map_err(|e| format!("repeat `{n}`: {e}"))?,
            _ => return Err("usage: hostile [GEN text|json SIZE [REPEAT]]".into()),
        };
        let case = threat_score::hostile::case(name, carrier)
            .ok_or_else(|| format!("unknown generator `{name}` in carrier `{carrier}`"))?;
        let size = size.parse().map_err(|e| format!("size `{size}`: {e}"))?;
        let (ct, body) = case.body(size);
        let headers = upload_headers(ct);
        let req = upload(&headers, &body);
        for _ in 1..repeat {
            std::hint::black_box(engine.inspect(std::hint::black_box(&req)));
        }
        println!("{:?}", engine.inspect(&req).score);
        return Ok(());
    }
    for case in threat_score::hostile::cases() {
        let (name, carrier) = (case.name, case.carrier);
        let mut line = format!("{name:>19} {carrier:>9}");
        let mut prev = 0.0;
        for size in [4096usize, 16384, 65536] {
            let (ct, body) = case.body(size);
            let headers = upload_headers(ct);
            let req = upload(&headers, &body);
            let start = Instant::now();
            let n = if size < 65536 { 5 } else { 1 };
            for _ in 0..n {
                std::hint::black_box(engine.inspect(&req));
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            line += &format!(" {size:>6}B {us:>10.0}us");
            if prev > 0.0 {
                line += &format!(" (x{:.1})", us / prev);
            }
            prev = us;
            if size == 65536 {
                if let Some(dir) = write {
                    let p = format!("{dir}/{}.{carrier}", name.replace(['/', ' '], "_"));
                    std::fs::write(&p, &body).map_err(|e| format!("writing {p}: {e}"))?;
                }
            }
        }
        println!("{line}");
    }
    Ok(())
}

/// The headers every hostile body is sent with: a host and the body's content type.
fn upload_headers(content_type: &str) -> Vec<(String, String)> {
    vec![
        ("host".to_string(), "example.com".to_string()),
        ("content-type".to_string(), content_type.to_string()),
    ]
}

/// The request a hostile body is sent as: `POST /upload`.
fn upload<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> Request<'a> {
    Request::new("POST", "/upload")
        .with_headers(headers)
        .with_body(body)
}
