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

use threat_score::{Config, DetectorKind, Request};

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
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "--ungated" {
            ungated = true;
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
