//! Instruction counts per detector for one value, for finding what a kind of value costs
//! (run under callgrind; the measured work is in `measured`, so start-up is not counted):
//!
//! ```text
//! cargo build --profile profiling -p threat-score --example detector_cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/dc.out --toggle-collect='*detector_cost*measured*' \
//!     target/profiling/examples/detector_cost arg 'blue running shoes' rce
//! grep summary: /tmp/dc.out
//! ```
//!
//! `detector_cost WHERE VALUE [all|none|DETECTOR] [ROUNDS]`: WHERE is `arg` (a query argument
//! `q`), `path`, or a header name (`user-agent`). Each round prepares the request and runs the
//! chosen detectors (`none`: extraction and decoding only) through `Engine::run_detector`; the
//! difference between a detector's count and `none` is what that detector costs.

use threat_score::{Config, DetectorKind, Engine, Prepared, Request};

#[inline(never)]
fn prepare<'r>(engine: &Engine, req: &Request<'r>) -> Prepared<'r> {
    engine.prepare(req)
}

#[inline(never)]
fn measured(engine: &Engine, req: &Request<'_>, kinds: &[DetectorKind], rounds: usize) -> usize {
    let mut found = 0;
    for _ in 0..rounds {
        let p = prepare(engine, req);
        for &kind in kinds {
            found += engine.run_detector(kind, &p).len();
        }
    }
    found
}

#[inline(never)]
fn warm_up(engine: &Engine, req: &Request<'_>) -> usize {
    let p = prepare(engine, req);
    DetectorKind::ALL
        .iter()
        .map(|&kind| engine.run_detector(kind, &p).len())
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(place), Some(value)) = (args.first(), args.get(1)) else {
        eprintln!("usage: detector_cost arg|path|HEADER VALUE [all|none|DETECTOR] [ROUNDS]");
        std::process::exit(2);
    };
    let kinds: Vec<DetectorKind> = match args.get(2).map(String::as_str).unwrap_or("all") {
        "all" => DetectorKind::ALL.to_vec(),
        "none" => Vec::new(),
        name => DetectorKind::ALL
            .iter()
            .copied()
            .filter(|k| k.name() == name)
            .collect(),
    };
    let rounds = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(10);
    let engine = match Config::default().compile() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("config: {e}");
            std::process::exit(2);
        }
    };
    let mut headers = vec![("host".to_string(), "shop.example.com".to_string())];
    let uri = match place.as_str() {
        "arg" => {
            let mut enc = String::from("/search?q=");
            for b in value.bytes() {
                if b.is_ascii_alphanumeric() {
                    enc.push(char::from(b));
                } else {
                    enc.push_str(&format!("%{b:02X}"));
                }
            }
            enc
        }
        "path" => value.clone(),
        name => {
            headers.push((name.to_string(), value.clone()));
            "/".to_string()
        }
    };
    let req = Request::new("GET", &uri).with_headers(&headers);
    // One pass outside the measured function: word sets sort themselves on first use.
    let _ = std::hint::black_box(warm_up(&engine, &req));
    let found = measured(&engine, &req, &kinds, rounds);
    println!("{found} detections over {rounds} rounds");
}
