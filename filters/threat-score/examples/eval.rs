//! Native corpus evaluation and micro benchmark for the threat-score engine.
//!
//! ```text
//! cargo run --release -p threat-score --example eval -- [--paranoia N] [--show-misses CAT]
//!     [--show-blocked CAT] [--bench] FILE.jsonl...
//! ```
//!
//! Each row of the shared corpus format (`../shared/README.md`) becomes a [`Request`] the way
//! the Envoy glue builds it (lowercase header names, URI as sent, body bytes) and is inspected
//! with the default configuration at the given paranoia level. The table counts, per
//! category: `attack` rows whose paranoia is at most N and how many were blocked, `no-match`
//! rows blocked (CRS expects that rule not to fire; many are benign), and `benign` rows passed.
//! `--bench` times the decoding stage and each detector separately over all rows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use threat_score::{Config, DetectorKind, Request, Verdict};

#[derive(serde::Deserialize)]
struct Row {
    id: String,
    category: String,
    #[serde(default)]
    paranoia: u8,
    expect: String,
    method: String,
    uri: String,
    #[serde(default)]
    version: String,
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
}

#[derive(Default)]
struct Tally {
    rows: usize,
    attack: usize,
    attack_blocked: usize,
    attack_pl1: usize,
    attack_pl1_blocked: usize,
    nomatch: usize,
    nomatch_blocked: usize,
    benign: usize,
    benign_passed: usize,
}

struct Args {
    paranoia: u8,
    show_misses: Option<String>,
    show_blocked: Option<String>,
    bench: bool,
    files: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        paranoia: 1,
        show_misses: None,
        show_blocked: None,
        bench: false,
        files: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--paranoia" => {
                args.paranoia = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--paranoia needs 1..=4")?;
            }
            "--show-misses" => args.show_misses = Some(it.next().ok_or("--show-misses CAT")?),
            "--show-blocked" => args.show_blocked = Some(it.next().ok_or("--show-blocked CAT")?),
            "--bench" => args.bench = true,
            "-h" | "--help" => {
                return Err(
                    "usage: eval [--paranoia N] [--show-misses CAT|all] [--show-blocked CAT|all] [--bench] FILE.jsonl..."
                        .into(),
                )
            }
            _ => args.files.push(a),
        }
    }
    if args.files.is_empty() {
        return Err("no corpus files given".into());
    }
    Ok(args)
}

fn short(s: &str, n: usize) -> String {
    let s: String = s.chars().take(n).collect();
    s.escape_debug().to_string()
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let cfg = Config {
        paranoia_level: args.paranoia,
        ..Config::default()
    };
    let engine = match cfg.compile() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("config: {e}");
            std::process::exit(2);
        }
    };
    let mut rows = Vec::new();
    for f in &args.files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{f}: {e}");
                std::process::exit(2);
            }
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Row>(line) {
                Ok(r) => rows.push(r),
                Err(e) => eprintln!("{f}:{}: skipped: {e}", n + 1),
            }
        }
    }

    // Requests as the glue builds them.
    let prepared_rows: Vec<Prepped<'_>> = rows
        .iter()
        .map(|r| {
            let headers = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            (headers, r)
        })
        .collect();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let started = Instant::now();
    for h in &prepared_rows {
        let r = h.1;
        let req = request(h);
        let a = engine.inspect(&req);
        let blocked = a.verdict == Verdict::Block;
        let t = tallies.entry(r.category.clone()).or_default();
        for t in [t, &mut total] {
            t.rows += 1;
            match r.expect.as_str() {
                "attack" if r.paranoia <= args.paranoia => {
                    t.attack += 1;
                    t.attack_blocked += usize::from(blocked);
                    if r.paranoia == 1 {
                        t.attack_pl1 += 1;
                        t.attack_pl1_blocked += usize::from(blocked);
                    }
                }
                "no-match" => {
                    t.nomatch += 1;
                    t.nomatch_blocked += usize::from(blocked);
                }
                "benign" => {
                    t.benign += 1;
                    t.benign_passed += usize::from(!blocked);
                }
                _ => {}
            }
        }
        let wanted = |sel: &Option<String>| {
            sel.as_deref()
                .is_some_and(|c| c == "all" || c == r.category)
        };
        let is_attack = r.expect == "attack" && r.paranoia <= args.paranoia;
        if (is_attack && !blocked && wanted(&args.show_misses))
            || (!is_attack && r.expect != "attack" && blocked && wanted(&args.show_blocked))
        {
            let rules: Vec<String> = a
                .detections
                .iter()
                .map(|d| format!("{}@{}", d.rule, d.location))
                .collect();
            let hdrs: Vec<String> = h
                .0
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "host" | "accept" | "user-agent" | "accept-language" | "accept-encoding"
                    )
                })
                .map(|(k, v)| format!("{k}: {}", short(v, 80)))
                .collect();
            println!(
                "{} {} {} | {} | {} | score={} {:?}",
                r.id,
                r.method,
                short(&r.uri, 160),
                hdrs.join(" ; "),
                short(&r.body, 200),
                a.score,
                rules
            );
        }
    }
    let elapsed = started.elapsed();

    println!();
    println!(
        "paranoia {} | attack rows: paranoia <= {} | default config, mode block",
        args.paranoia, args.paranoia
    );
    println!(
        "| category | rows | attack blocked | % | of which PL1 blocked | no-match blocked | benign passed |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let pct = |a: usize, b: usize| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.1}", 100.0 * a as f64 / b as f64)
        }
    };
    let frac = |a: usize, b: usize| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{a}/{b}")
        }
    };
    for (cat, t) in tallies
        .iter()
        .chain(std::iter::once((&"**total**".to_string(), &total)))
    {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            cat,
            t.rows,
            frac(t.attack_blocked, t.attack),
            pct(t.attack_blocked, t.attack),
            frac(t.attack_pl1_blocked, t.attack_pl1),
            frac(t.nomatch_blocked, t.nomatch),
            if t.benign == 0 {
                "-".to_string()
            } else {
                format!(
                    "{}/{} ({}%)",
                    t.benign_passed,
                    t.benign,
                    pct(t.benign_passed, t.benign)
                )
            },
        );
    }
    println!(
        "\n{} rows in {:.1} ms: {:.1} us/request (whole engine, native, release)",
        prepared_rows.len(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / prepared_rows.len().max(1) as f64
    );

    if args.bench {
        bench(&engine, &prepared_rows);
    }
}

type Prepped<'a> = (Vec<(String, String)>, &'a Row);

fn request<'a>(h: &'a Prepped<'a>) -> Request<'a> {
    let (headers, r) = h;
    Request {
        method: &r.method,
        uri: &r.uri,
        protocol: (!r.version.is_empty()).then_some(r.version.as_str()),
        headers,
        body: Some(r.body.as_bytes()),
        body_truncated: false,
    }
}

/// Times decoding and each detector separately, best of several passes to damp noise.
fn bench(engine: &threat_score::Engine, rows: &[Prepped<'_>]) {
    const PASSES: usize = 5;
    let n = rows.len().max(1) as f64;
    let mut best_prepare = Duration::MAX;
    for _ in 0..PASSES {
        let t = Instant::now();
        for h in rows {
            std::hint::black_box(engine.prepare(&request(h)));
        }
        best_prepare = best_prepare.min(t.elapsed());
    }
    let prepared: Vec<_> = rows.iter().map(|h| engine.prepare(&request(h))).collect();
    let mut best_total = Duration::MAX;
    for _ in 0..PASSES {
        let t = Instant::now();
        for h in rows {
            std::hint::black_box(engine.inspect(&request(h)));
        }
        best_total = best_total.min(t.elapsed());
    }
    println!(
        "\nmicro benchmark: mean us per request over {} rows (best of {PASSES} passes)",
        rows.len()
    );
    println!("| stage | us/request |");
    println!("| --- | ---: |");
    println!(
        "| decode + extract | {:.2} |",
        best_prepare.as_secs_f64() * 1e6 / n
    );
    let mut slowest = ("", 0.0f64);
    for &kind in DetectorKind::ALL {
        let mut best = Duration::MAX;
        for _ in 0..PASSES {
            let t = Instant::now();
            for p in &prepared {
                std::hint::black_box(engine.run_detector(kind, p));
            }
            best = best.min(t.elapsed());
        }
        let us = best.as_secs_f64() * 1e6 / n;
        if us > slowest.1 {
            slowest = (kind.name(), us);
        }
        println!("| {} | {:.2} |", kind.name(), us);
    }
    println!(
        "| **inspect (all)** | {:.2} |",
        best_total.as_secs_f64() * 1e6 / n
    );
    println!(
        "slowest detector: {} at {:.2} us/request",
        slowest.0, slowest.1
    );
}
