//! Native driver of the filters' logic on the benchmark's request mix, for profiling with
//! instruction counts (repeatable on a noisy machine) or `perf`:
//!
//! ```text
//! cargo build --release -p bench --example profile_filters
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/profile_filters threat-score 200
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -60
//! ```
//!
//! `profile_filters FILTER [ROUNDS] [--request I]` runs ROUNDS passes over the 40-request mix
//! (or over its request I only)
//! (`bench::workload::mix`), each request through the glue's own lifecycle state machine
//! (`sdk_ext::lifecycle::HttpStream`, which `sdk_ext::proxy` executes): the header vector handed
//! to a fresh `RequestView` (as `get_http_request_headers` delivers it), the request headers, the
//! whole body in one callback at end of stream, the body reads the machine asks for, and the
//! response headers unless the filter replied. Host services are counted
//! instead of called: per request it prints the metric updates (`increment_metric`), shared-data
//! reads and writes, clock reads and header edits each filter asks of the host, which is what the
//! Wasm build turns into host calls. FILTER: policy, router, threat-score, suite, noop.

use bench::workload;
use sdk_ext::config::parse_json;
use sdk_ext::lifecycle::{HttpStream, Step, Then};
use sdk_ext::metrics::{MetricKind, MetricSink};
use sdk_ext::shared::{Clock, MemoryStore, SharedStore, StoreError, SystemClock};
use sdk_ext::testing::FakeProperties;
use sdk_ext::{HttpFilter, Metrics, RequestView, Services, Setup};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

/// Host calls the filter asked for, by kind.
#[derive(Default)]
struct HostCalls {
    metric_updates: Cell<u64>,
    shared_gets: Cell<u64>,
    shared_sets: Cell<u64>,
    clock_reads: Cell<u64>,
    header_edits: Cell<u64>,
    body_reads: Cell<u64>,
    replies: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

struct CountingSink(Rc<HostCalls>);

impl MetricSink for CountingSink {
    fn define(&self, _: MetricKind, _: &str) -> Option<u32> {
        Some(0)
    }
    fn increment(&self, _: u32, _: i64) {
        bump(&self.0.metric_updates, 1);
    }
    fn record(&self, _: u32, _: u64) {
        bump(&self.0.metric_updates, 1);
    }
}

struct CountingStore(MemoryStore, Rc<HostCalls>);

impl SharedStore for CountingStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        bump(&self.1.shared_gets, 1);
        self.0.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        bump(&self.1.shared_sets, 1);
        self.0.set(key, value, cas)
    }
}

struct CountingClock(Rc<HostCalls>);

impl Clock for CountingClock {
    fn now_nanos(&self) -> u64 {
        bump(&self.0.clock_reads, 1);
        SystemClock.now_nanos()
    }
}

/// A workload request as the glue sees it: Envoy's header map (pseudo-headers first, the
/// headers Envoy adds) and the body.
struct Input {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn inputs() -> Vec<Input> {
    workload::mix()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers = vec![
                (":authority".to_string(), "127.0.0.1:10000".to_string()),
                (":path".to_string(), r.path.clone()),
                (":method".to_string(), r.method.clone()),
                (":scheme".to_string(), "http".to_string()),
            ];
            headers.extend(
                r.headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.clone())),
            );
            if !r.body.is_empty() {
                headers.push(("content-length".into(), r.body.len().to_string()));
            }
            headers.push(("x-forwarded-proto".into(), "http".into()));
            headers.push((
                "x-request-id".into(),
                format!("3f1c2a9e-5b7d-4c1e-9a2b-{i:012}"),
            ));
            Input {
                headers,
                body: r.body.into_bytes(),
            }
        })
        .collect()
}

fn props() -> Box<FakeProperties> {
    let mut p = FakeProperties::default();
    p.0.insert("source.address".into(), b"127.0.0.1:50000".to_vec());
    p.0.insert("request.protocol".into(), b"HTTP/1.1".to_vec());
    Box::new(p)
}

fn config(root: &std::path::Path, name: &str) -> String {
    let p = root.join("bench/configs").join(format!("{name}.json"));
    std::fs::read_to_string(&p).unwrap_or_else(|_| "{}".into())
}

/// One request through `f`'s lifecycle, as `sdk_ext::proxy` runs it. Returns the status of a
/// local reply.
fn one<F: HttpFilter>(f: &Rc<F>, input: &Input, calls: &HostCalls) -> Option<u16> {
    let view = RequestView::new(input.headers.clone(), props());
    let mut stream = HttpStream::new(Rc::clone(f));
    let step = stream.on_request_headers(view, input.body.is_empty());
    let mut replied = execute(&mut stream, step, &input.body, calls);
    if replied.is_none() && !input.body.is_empty() {
        let step = stream.on_request_body(input.body.len(), true);
        replied = execute(&mut stream, step, &input.body, calls);
    }
    if replied.is_some() {
        return replied;
    }
    let step = stream.on_response_headers();
    execute(&mut stream, step, &input.body, calls)
}

/// What the glue does with `step` (and the steps it leads to), with a host that accepts every
/// call: edits and body reads are counted, a reply ends the request.
fn execute<F: HttpFilter>(
    stream: &mut HttpStream<F>,
    mut step: Step,
    body: &[u8],
    calls: &HostCalls,
) -> Option<u16> {
    loop {
        if let Some(edits) = step.edits.take() {
            let ops = std::hint::black_box(edits.ops);
            bump(
                &calls.header_edits,
                (ops.remove.len() + ops.set.len() + ops.add.len()) as u64,
            );
        }
        step = match step.then {
            Then::Continue | Then::Pause | Then::Reset => return None,
            Then::Reply(r) => {
                bump(&calls.replies, 1);
                return Some(r.status);
            }
            Then::ReadBody(len) => {
                bump(&calls.body_reads, 1);
                stream.on_body_read(body[..len.min(body.len())].to_vec())
            }
            Then::NoBody => stream.on_body_read(Vec::new()),
            // A gRPC callout holds the request on a service outside this profile: it ends here.
            Then::Call(_) | Then::ReadCallAnswer(_) | Then::Resume | Then::Unsupported(_) => {
                return None
            }
        };
    }
}

/// The measured loop (callgrind: `--toggle-collect=*profile_filters*measured*`).
#[inline(never)]
fn measured<F: HttpFilter>(f: &Rc<F>, inputs: &[&Input], rounds: usize, calls: &HostCalls) {
    for _ in 0..rounds {
        for input in inputs {
            std::hint::black_box(one(f, input, calls));
        }
    }
}

fn drive<F: HttpFilter>(json: &str, rounds: usize) -> Result<(), String> {
    let calls = Rc::new(HostCalls::default());
    let mut metrics = Metrics::new(F::NAME, Rc::new(CountingSink(Rc::clone(&calls))));
    let services = Services {
        shared: Rc::new(CountingStore(MemoryStore::default(), Rc::clone(&calls))),
        clock: Rc::new(CountingClock(Rc::clone(&calls))),
    };
    let cfg = parse_json::<F::Config>(json.as_bytes()).map_err(|e| e.to_string())?;
    let setup = Setup {
        metrics: &mut metrics,
        services,
    };
    let f = Rc::new(F::configure(cfg, setup).map_err(|e| e.to_string())?);
    let inputs = inputs();
    let mut replies = std::collections::BTreeMap::new();
    for input in &inputs {
        let status = one(&f, input, &calls).unwrap_or(200);
        *replies.entry(status).or_insert(0u32) += 1;
    }
    for c in [
        &calls.metric_updates,
        &calls.shared_gets,
        &calls.shared_sets,
        &calls.clock_reads,
        &calls.header_edits,
        &calls.body_reads,
        &calls.replies,
    ] {
        c.set(0);
    }
    // `--request I`: only the mix's request I (0-based) in the measured loop, for per-request
    // instruction counts (`--toggle-collect=*profile_filters*measured*`).
    let only = std::env::args()
        .skip_while(|a| a != "--request")
        .nth(1)
        .and_then(|i| i.parse::<usize>().ok());
    let selected: Vec<&Input> = match only {
        Some(i) => inputs.get(i).into_iter().collect(),
        None => inputs.iter().collect(),
    };
    let started = Instant::now();
    measured(&f, &selected, rounds, &calls);
    let elapsed = started.elapsed();
    let n = (rounds * selected.len()).max(1) as f64;
    let per = |c: &Cell<u64>| c.get() as f64 / n;
    println!("filter {}: statuses over the mix {replies:?}", F::NAME);
    println!(
        "native time {:.2} us/request ({} requests; wall clock, indicative only)",
        elapsed.as_secs_f64() * 1e6 / n,
        n
    );
    println!(
        "per request asked of the host: {:.2} metric updates, {:.2} shared-data gets, {:.2} sets, {:.2} clock reads, {:.2} header edits, {:.2} body reads, {:.2} local replies",
        per(&calls.metric_updates),
        per(&calls.shared_gets),
        per(&calls.shared_sets),
        per(&calls.clock_reads),
        per(&calls.header_edits),
        per(&calls.body_reads),
        per(&calls.replies),
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("suite");
    let rounds = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(200);
    let root = envoy_harness::workspace_root();
    let scenario = bench::scenario::Inputs {
        modules_dir: root.join("target/modules"),
        root: root.clone(),
    };
    let result = match name {
        "policy" => drive::<policy::PolicyFilter>(&config(&root, "policy"), rounds),
        "router" => drive::<router::RouterFilter>(&config(&root, "router"), rounds),
        "threat-score" => {
            drive::<threat_score::ThreatScoreFilter>(&config(&root, "threat-score"), rounds)
        }
        "noop" => drive::<noop::NoopFilter>("{}", rounds),
        "suite" => match bench::scenario::suite_config(&scenario) {
            Ok(json) => drive::<suite::SuiteFilter>(&json, rounds),
            Err(e) => Err(format!("{e:#}")),
        },
        other => Err(format!(
            "unknown filter `{other}` (policy, router, threat-score, suite, noop)"
        )),
    };
    if let Err(e) = result {
        eprintln!("profile_filters: {e}");
        std::process::exit(1);
    }
}
