//! Dumps what every detector finds in every row of corpus files, one line per row and
//! paranoia level, so two builds (or the gates on and off) can be compared with `diff`:
//!
//! ```text
//! cargo run --release -p threat-score --example detections -- [--ungated] FILE.jsonl... > a.txt
//! ```
//!
//! Each row becomes a [`Request`] the way `eval` builds it; each detector runs on its own
//! (`Engine::run_detector`, or `run_detector_ungated` with `--ungated`), so nothing stops at a
//! threshold. A line: `id<TAB>paranoia<TAB>rule@source:name ...` (sorted).
//!
//! `--inspect` dumps the whole engine instead ([`threat_score::Engine::inspect`], as the glue
//! calls it): per row and paranoia level, modes `detect`, `block` (which stops at the
//! threshold) and `tag` (the body inspected apart, `inspect_body`), the headers phase (no body)
//! and the whole request, each as score, verdict,
//! detections in their order and limit hits. For changes to the engine's per-request path
//! (which `run_detector` alone does not take).

use threat_score::{Config, DetectorKind, Mode, Request};

#[derive(serde::Deserialize)]
struct Row {
    id: String,
    method: String,
    uri: String,
    #[serde(default)]
    version: String,
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
}

fn main() {
    let mut ungated = false;
    let mut inspect = false;
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "--ungated" {
            ungated = true;
        } else if a == "--inspect" {
            inspect = true;
        } else {
            files.push(a);
        }
    }
    let mut rows = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            eprintln!("{f}: cannot read");
            std::process::exit(2);
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Row>(line) {
                Ok(r) => rows.push(r),
                Err(e) => eprintln!("{f}: skipped a row: {e}"),
            }
        }
    }
    if inspect {
        dump_inspect(&rows);
        return;
    }
    for paranoia in 1..=4u8 {
        let Ok(engine) = (Config {
            paranoia_level: paranoia,
            ..Config::default()
        })
        .compile() else {
            std::process::exit(2);
        };
        for r in &rows {
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect();
            let req = Request {
                method: &r.method,
                uri: &r.uri,
                protocol: (!r.version.is_empty()).then_some(r.version.as_str()),
                headers: &headers,
                body: Some(r.body.as_bytes()),
                body_truncated: false,
            };
            let p = engine.prepare(&req);
            let mut found: Vec<String> = Vec::new();
            for &kind in DetectorKind::ALL {
                let ds = if ungated {
                    engine.run_detector_ungated(kind, &p)
                } else {
                    engine.run_detector(kind, &p)
                };
                for d in ds {
                    found.push(format!(
                        "{}@{:?}:{}",
                        d.rule, d.location.source, d.location.name
                    ));
                }
            }
            found.sort();
            println!("{}\t{paranoia}\t{}", r.id, found.join(" "));
        }
    }
}

/// `--inspect`: the assessment of every row, paranoia level, mode and phase.
fn dump_inspect(rows: &[Row]) {
    for paranoia in 1..=4u8 {
        for mode in [Mode::Detect, Mode::Block, Mode::Tag] {
            let Ok(engine) = (Config {
                paranoia_level: paranoia,
                mode,
                ..Config::default()
            })
            .compile() else {
                std::process::exit(2);
            };
            for r in rows {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                    .collect();
                let mut req = Request {
                    method: &r.method,
                    uri: &r.uri,
                    protocol: (!r.version.is_empty()).then_some(r.version.as_str()),
                    headers: &headers,
                    body: None,
                    body_truncated: false,
                };
                let head = engine.inspect(&req);
                req.body = Some(r.body.as_bytes());
                // Tag mode inspects the body apart and merges it with the headers phase.
                let whole = if mode == Mode::Tag {
                    engine.inspect_body(&req, &head)
                } else {
                    engine.inspect(&req)
                };
                for (phase, a) in [("head", head), ("whole", whole)] {
                    let found: Vec<String> = a
                        .detections
                        .iter()
                        .map(|d| format!("{}@{:?}:{}", d.rule, d.location.source, d.location.name))
                        .collect();
                    println!(
                        "{}\t{paranoia}\t{mode:?}\t{phase}\t{}\t{:?}\t{:?}\t{}",
                        r.id,
                        a.score,
                        a.verdict,
                        a.limit_hits,
                        found.join(" ")
                    );
                }
            }
        }
    }
}
