//! The proxy-wasm filter: [`ThreatScoreFilter`] turns each request into an engine
//! [`Request`], runs [`Engine::inspect`] once (after the body when it is inspected) and applies
//! the verdict. Everything here is plain Rust over `sdk_ext` types; the host calls live in
//! `sdk_ext::proxy`.
//!
//! Metrics (each prefixed `threat_score_`, `wasmcustom.` in Envoy's `/stats`):
//!
//! | metric | counts requests ... |
//! | --- | --- |
//! | `requests_total` | inspected |
//! | `blocked_total` | answered 403 (mode `block`) |
//! | `tagged_total` | forwarded with `x-threat-score` / `x-threat-categories` (mode `tag`) |
//! | `detected_total` | over the threshold but forwarded unchanged (mode `detect`) |
//! | `category_<cat>_total` | with a counted detection of that category (any score, any mode) |
//! | `limit_<limit>_total` | that went past that limit (whatever its `on_exceed`) |
//! | `stripped_total` | that arrived with a client copy of the headers the filter owns |

use crate::config::{Config, Mode};
use crate::engine::Engine;
use crate::model::{Assessment, Category, LimitKind, Verdict};
use crate::request::Request;
use sdk_ext::{
    BodyChunk, ConfigError, Counter, Decision, HeaderOps, HttpFilter, LocalReply, RequestView,
    Setup,
};

/// Request header carrying the score to the upstream (mode `tag`).
pub const SCORE_HEADER: &str = "x-threat-score";
/// Request header carrying the comma-separated categories to the upstream (mode `tag`).
pub const CATEGORIES_HEADER: &str = "x-threat-categories";
/// `error` code in the 403 body; lets clients and the corpus replay tell this filter's
/// refusals from any other 403.
pub const BLOCK_ERROR: &str = "threat_detected";

/// Every limit kind, in a stable order (metric definition order).
const LIMITS: [LimitKind; 7] = [
    LimitKind::BodySize,
    LimitKind::ArgCount,
    LimitKind::BodyValues,
    LimitKind::DecodeRounds,
    LimitKind::HeaderCount,
    LimitKind::HeaderSize,
    LimitKind::JsonDepth,
];

/// Counters defined once at configure time.
struct FilterMetrics {
    requests: Counter,
    blocked: Counter,
    tagged: Counter,
    detected: Counter,
    stripped: Counter,
    /// Indexed like [`Category::ALL`].
    categories: Vec<Counter>,
    /// Indexed like [`LIMITS`].
    limits: Vec<Counter>,
}

/// The compiled filter, shared by every request.
pub struct ThreatScoreFilter {
    engine: Engine,
    mode: Mode,
    /// Body bytes buffered for inspection; 0 turns body inspection off.
    max_body: usize,
    metrics: FilterMetrics,
}

/// The metric name fragment of a category (`session-fixation` -> `session_fixation`).
pub fn metric_fragment(name: &str) -> String {
    name.replace('-', "_")
}

impl ThreatScoreFilter {
    /// The compiled engine (for tests and tools).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether this request may carry a body worth holding the headers for. HTTP/1 requests
    /// without `Content-Length`/`Transfer-Encoding` have none; HTTP/2 and HTTP/3 bodies need
    /// neither header, so there any `Content-Type` or a body-carrying method counts. Holding a
    /// bodiless request is harmless (the glue resumes at end of stream), but costs a callback.
    fn may_have_body(req: &RequestView, seen: &Seen<'_>, protocol: Option<&str>) -> bool {
        if let Some(cl) = seen.content_length {
            return cl.trim() != "0";
        }
        if seen.transfer_encoding {
            return true;
        }
        let http1 = protocol.is_none_or(|p| p.starts_with("HTTP/1"));
        !http1 && Self::body_hinted(req, seen)
    }

    /// A `Content-Type`, or a method other than GET, HEAD and OPTIONS: what says a request
    /// without `Content-Length`/`Transfer-Encoding` may still carry a body (HTTP/2, HTTP/3).
    /// One rule for [`Self::may_have_body`] and [`Self::protocol_matters`], so the protocol is
    /// read exactly where the body decision asks for it.
    fn body_hinted(req: &RequestView, seen: &Seen<'_>) -> bool {
        seen.content_type || !matches!(req.method(), "GET" | "HEAD" | "OPTIONS")
    }

    /// Whether `request.protocol` can change what this request gets. It decides two things:
    /// [`Self::may_have_body`] when there is neither `Content-Length` nor `Transfer-Encoding`
    /// (and then only for a `Content-Type` or a method other than GET, HEAD and OPTIONS), and
    /// the protocol checks' `protocol.missing-content-length` (a POST with neither header).
    /// Their third use, `protocol.http-version` (a version other than HTTP/1.0, 1.1, 2 or 3),
    /// cannot fire in Envoy, whose codecs accept only those and whose property names only
    /// those. Elsewhere the value is not read: a host call per request saved (bench/README.md,
    /// "What threat-score pays outside the engine").
    fn protocol_matters(req: &RequestView, seen: &Seen<'_>) -> bool {
        seen.content_length.is_none() && !seen.transfer_encoding && Self::body_hinted(req, seen)
    }

    fn request<'a>(
        &self,
        req: &'a RequestView,
        body: Option<BodyChunk<'a>>,
        protocol: Option<&'a str>,
    ) -> Request<'a> {
        Request {
            method: req.method(),
            uri: req.raw_path(),
            protocol,
            headers: req.headers(),
            body: body.map(|b| b.bytes),
            body_truncated: body.is_some_and(|b| b.truncated),
        }
    }

    fn assess(
        &self,
        req: &RequestView,
        body: Option<BodyChunk<'_>>,
        protocol: Option<&str>,
    ) -> Assessment {
        let request = self.request(req, body, protocol);
        #[cfg(feature = "bench-engine-off")]
        let assessment = {
            let _ = request;
            engine_off()
        };
        #[cfg(not(feature = "bench-engine-off"))]
        let assessment = self.engine.inspect(&request);
        assessment
    }

    /// Apply the mode to the final assessment of a request, count and log it.
    fn apply(
        &self,
        a: &Assessment,
        req: &RequestView,
        state: &State,
        ops: &mut HeaderOps,
    ) -> Decision {
        self.count(a, state);
        // The request id is looked up (a header scan) only for a line that is logged: the
        // `log` macros evaluate their arguments only at an enabled level.
        let rid = || req.request_id().unwrap_or("-");
        match a.verdict {
            Verdict::Allow => {
                if a.over_threshold {
                    // Mode detect: the would-be block is logged and counted, nothing else.
                    log::debug!(
                        "{}: detected request_id={} score={} categories={} (mode detect, forwarded)",
                        Self::NAME,
                        rid(),
                        a.score,
                        a.categories.to_header_value()
                    );
                }
                Decision::Continue
            }
            Verdict::Tag if state.headers_forwarded => {
                if !state.tagged {
                    // The body took the request over the threshold, but its headers are already
                    // upstream (see `Decision::InspectBody`): log and count instead.
                    log::debug!(
                        "{}: detected request_id={} score={} categories={} (mode tag, in the body: headers already forwarded)",
                        Self::NAME,
                        rid(),
                        a.score,
                        a.categories.to_header_value()
                    );
                }
                Decision::Continue
            }
            Verdict::Tag => {
                ops.set(SCORE_HEADER, a.score.to_string());
                ops.set(CATEGORIES_HEADER, a.categories.to_header_value());
                Decision::Continue
            }
            Verdict::Block => {
                // One line per blocked request, at debug (a flood of attacks must not become a
                // flood of log lines; the counters carry the numbers): what and how much, never
                // the payload (attack text in logs is a second injection target and may hold
                // personal data).
                log::debug!(
                    "{}: blocked request_id={} score={} categories={} rules={}",
                    Self::NAME,
                    rid(),
                    a.score,
                    a.categories.to_header_value(),
                    rule_list(a)
                );
                Decision::Respond(LocalReply::json(
                    403,
                    BLOCK_ERROR,
                    "request blocked by the threat-score filter",
                    req.request_id(),
                ))
            }
        }
    }

    fn count(&self, a: &Assessment, state: &State) {
        let m = &self.metrics;
        // A clean request (most) has no category or limit to count: no walk over the lists.
        if !a.categories.is_empty() {
            for (c, counter) in Category::ALL.iter().zip(&m.categories) {
                if a.categories.contains(*c) {
                    counter.inc();
                }
            }
        }
        if !a.limit_hits.is_empty() {
            for (k, counter) in LIMITS.iter().zip(&m.limits) {
                if a.limit_hits.contains(k) {
                    counter.inc();
                }
            }
        }
        match a.verdict {
            Verdict::Block => m.blocked.inc(),
            Verdict::Tag if state.headers_forwarded && !state.tagged => m.detected.inc(),
            Verdict::Tag => m.tagged.inc(),
            Verdict::Allow if a.over_threshold => m.detected.inc(),
            Verdict::Allow => {}
        }
    }
}

/// What every request gets in a `bench-engine-off` build: a clean assessment without running
/// the engine. Only for measuring what the filter costs outside its engine (bench/README.md,
/// "What threat-score pays outside the engine"); never a module to deploy.
#[cfg(feature = "bench-engine-off")]
fn engine_off() -> Assessment {
    Assessment {
        score: 0,
        categories: crate::model::CategorySet::default(),
        detections: Vec::new(),
        limit_hits: Vec::new(),
        over_threshold: false,
        verdict: Verdict::Allow,
    }
}

/// Rule names of the counted detections (static names chosen by the detectors, no request
/// data), sorted and deduplicated, for the block log line. Sorted by insertion: the list is
/// short (at most [`Assessment::MAX_DETECTIONS`]) and a `sort_unstable` here added ~4 KB of
/// monomorphised quicksort to the module (issue 13).
fn rule_list(a: &Assessment) -> String {
    let mut rules: Vec<&str> = Vec::with_capacity(a.detections.len());
    for d in &a.detections {
        let at = rules.partition_point(|r| *r < d.rule);
        if rules.get(at) != Some(&d.rule) {
            rules.insert(at, d.rule);
        }
    }
    rules.join(",")
}

/// What the headers phase asks of the header list, found in one pass over it (instead of
/// one scan of the list per question).
#[derive(Default)]
struct Seen<'a> {
    /// A client copy of [`SCORE_HEADER`] or [`CATEGORIES_HEADER`].
    owned: bool,
    /// The first `content-length`.
    content_length: Option<&'a str>,
    transfer_encoding: bool,
    content_type: bool,
}

impl<'a> Seen<'a> {
    fn of(req: &'a RequestView) -> Seen<'a> {
        let mut seen = Seen::default();
        for (n, v) in req.headers() {
            match n.as_str() {
                SCORE_HEADER | CATEGORIES_HEADER => seen.owned = true,
                "content-length" if seen.content_length.is_none() => {
                    seen.content_length = Some(v.as_str());
                }
                "transfer-encoding" => seen.transfer_encoding = true,
                "content-type" => seen.content_type = true,
                _ => {}
            }
        }
        seen
    }
}

/// Per-request state, from the headers phase to the body phase.
#[derive(Default)]
pub struct State {
    /// `request.protocol`, read once, and only where it can matter
    /// ([`ThreatScoreFilter::protocol_matters`]).
    protocol: Option<String>,
    /// Mode tag with a body: the headers went upstream before the body was inspected.
    headers_forwarded: bool,
    /// Mode tag: the tag headers were set from the headers-phase assessment.
    tagged: bool,
    /// Mode tag with a body: the headers-phase assessment, merged into the body phase's.
    headers_phase: Option<Assessment>,
}

impl HttpFilter for ThreatScoreFilter {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    type Config = Config;
    type State = State;

    fn configure(config: Config, setup: Setup<'_>) -> Result<Self, ConfigError> {
        let metrics = setup.metrics;
        let mode = config.mode;
        let max_body = config.limits.body_bytes.max as usize;
        let engine = config.compile()?;
        // A measuring build must never pass for a deployable one: say so on every configuration.
        #[cfg(feature = "bench-engine-off")]
        log::warn!(
            "{}: bench-engine-off build: the engine is never called and every request is \
             allowed unscored; for measuring the glue only (bench/README.md), never deploy it",
            Self::NAME
        );
        let categories = Category::ALL
            .iter()
            .map(|c| metrics.counter(&format!("category_{}_total", metric_fragment(c.as_str()))))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = LIMITS
            .iter()
            .map(|k| metrics.counter(&format!("limit_{}_total", k.as_str())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            engine,
            mode,
            max_body,
            metrics: FilterMetrics {
                requests: metrics.counter("requests_total")?,
                blocked: metrics.counter("blocked_total")?,
                tagged: metrics.counter("tagged_total")?,
                detected: metrics.counter("detected_total")?,
                stripped: metrics.counter("stripped_total")?,
                categories,
                limits,
            },
        })
    }

    fn on_request_headers(
        &self,
        req: &RequestView,
        state: &mut State,
        ops: &mut HeaderOps,
    ) -> Decision {
        self.metrics.requests.inc();
        // The filter owns these headers in every mode: an upstream that trusts them must never
        // see a client's copy (in `tag` mode they are then set from the assessment). Removed
        // only when a copy is there: a removal of nothing is no edit, and an edit costs the
        // host calls and, in the suite, a copy of the header list for the members after it.
        let seen = Seen::of(req);
        if seen.owned {
            self.metrics.stripped.inc();
            ops.remove(SCORE_HEADER);
            ops.remove(CATEGORIES_HEADER);
        }
        // One host call, made only where the answer can change a decision (see
        // `protocol_matters`): a GET with no body headers, the bulk of traffic, skips it.
        if Self::protocol_matters(req, &seen) {
            state.protocol = req.string_property(&["request", "protocol"]);
        }
        let wants_body =
            self.max_body > 0 && Self::may_have_body(req, &seen, state.protocol.as_deref());
        if wants_body && self.mode == Mode::Tag {
            // The headers travel upstream before the body is seen, so the tags can only come
            // from what the headers show; the body is still inspected, logged and counted.
            let a = self.assess(req, None, state.protocol.as_deref());
            if a.verdict == Verdict::Tag {
                ops.set(SCORE_HEADER, a.score.to_string());
                ops.set(CATEGORIES_HEADER, a.categories.to_header_value());
                state.tagged = true;
            }
            state.headers_forwarded = true;
            // The body phase inspects only the body and merges this (inspect once).
            state.headers_phase = Some(a);
            return Decision::InspectBody;
        }
        if wants_body {
            return Decision::InspectBody;
        }
        let a = self.assess(req, None, state.protocol.as_deref());
        self.apply(&a, req, state, ops)
    }

    fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    fn on_request_body(
        &self,
        req: &RequestView,
        body: BodyChunk<'_>,
        state: &mut State,
        ops: &mut HeaderOps,
    ) -> Decision {
        let a = match state.headers_phase.take() {
            #[cfg(not(feature = "bench-engine-off"))]
            Some(prior) => {
                let request = self.request(req, Some(body), state.protocol.as_deref());
                self.engine.inspect_body(&request, &prior)
            }
            #[cfg(feature = "bench-engine-off")]
            Some(_) => engine_off(),
            None => self.assess(req, Some(body), state.protocol.as_deref()),
        };
        self.apply(&a, req, state, ops)
    }
}

impl std::fmt::Debug for ThreatScoreFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatScoreFilter")
            .field("mode", &self.mode)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk_ext::testing::{configure, RecordingSink, RequestBuilder};
    use std::rc::Rc;

    fn filter(json: &str) -> (ThreatScoreFilter, Rc<RecordingSink>) {
        configure::<ThreatScoreFilter>(json).unwrap()
    }

    fn headers(f: &ThreatScoreFilter, req: &RequestView) -> (Decision, HeaderOps, State) {
        let mut ops = HeaderOps::default();
        let mut state = State::default();
        let d = f.on_request_headers(req, &mut state, &mut ops);
        (d, ops, state)
    }

    const SQLI: &str = "/search?q=1%27%20OR%20%271%27%3D%271";

    #[test]
    fn block_log_rules_are_sorted_and_distinct() {
        let d = |rule| crate::model::Detection {
            category: crate::model::Category::Sqli,
            rule,
            severity: crate::model::Severity::Critical,
            paranoia: 1,
            location: crate::model::Location::new(crate::model::Source::Arg, "q"),
        };
        let a = Assessment {
            score: 0,
            categories: crate::model::CategorySet::default(),
            detections: ["sqli.b", "xss.a", "sqli.b", "lfi.c", "xss.a", "a"]
                .into_iter()
                .map(d)
                .collect(),
            limit_hits: Vec::new(),
            over_threshold: true,
            verdict: Verdict::Block,
        };
        assert_eq!(rule_list(&a), "a,lfi.c,sqli.b,xss.a");
        assert_eq!(
            rule_list(&Assessment {
                detections: Vec::new(),
                ..a
            }),
            ""
        );
    }

    #[test]
    fn block_mode_replies_403_with_request_id_and_no_attack_text() {
        let (f, sink) = filter("{}");
        let req = RequestBuilder::get(SQLI)
            .header("x-request-id", "rid-1")
            .build();
        let (d, ops, _) = headers(&f, &req);
        let Decision::Respond(r) = d else {
            panic!("expected a 403, got {d:?}")
        };
        assert_eq!(r.status, 403);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["request_id"], "rid-1");
        assert_eq!(body["error"], BLOCK_ERROR);
        let text = String::from_utf8_lossy(&r.body);
        assert!(!text.contains("OR") && !text.contains("search"), "{text}");
        // No client copy of the owned headers: nothing to remove.
        assert!(ops.remove.is_empty(), "{:?}", ops.remove);
        assert_eq!(sink.value("threat_score_blocked_total"), 1);
        assert_eq!(sink.value("threat_score_category_sqli_total"), 1);
        assert_eq!(sink.value("threat_score_requests_total"), 1);
    }

    #[test]
    fn tag_mode_sets_both_headers_after_stripping_client_copies() {
        let (f, sink) = filter(r#"{"mode": "tag"}"#);
        let req = RequestBuilder::get(SQLI)
            .header("x-threat-score", "0")
            .build();
        let (d, ops, _) = headers(&f, &req);
        assert_eq!(d, Decision::Continue);
        assert_eq!(ops.remove, vec![SCORE_HEADER, CATEGORIES_HEADER]);
        let set: Vec<&str> = ops.set.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(set, vec![SCORE_HEADER, CATEGORIES_HEADER]);
        assert!(ops.set[0].1.parse::<u32>().unwrap() >= 5);
        assert!(ops.set[1].1.contains("sqli"));
        assert_eq!(sink.value("threat_score_tagged_total"), 1);
        assert_eq!(sink.value("threat_score_stripped_total"), 1);

        let clean = RequestBuilder::get("/search?q=blue+shoes").build();
        let (d, ops, _) = headers(&f, &clean);
        assert_eq!(d, Decision::Continue);
        assert!(ops.set.is_empty(), "a clean request is not tagged");
    }

    #[test]
    fn detect_mode_forwards_and_counts() {
        let (f, sink) = filter(r#"{"mode": "detect"}"#);
        let (d, ops, _) = headers(&f, &RequestBuilder::get(SQLI).build());
        assert_eq!(d, Decision::Continue);
        assert!(ops.set.is_empty());
        assert_eq!(sink.value("threat_score_detected_total"), 1);
        assert_eq!(sink.value("threat_score_blocked_total"), 0);
    }

    #[test]
    fn bodies_are_held_only_when_there_may_be_one() {
        let (f, _) = filter("{}");
        let post = RequestBuilder::post("/form")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", "20")
            .build();
        assert_eq!(headers(&f, &post).0, Decision::InspectBody);
        let get = RequestBuilder::get("/").build();
        assert_eq!(headers(&f, &get).0, Decision::Continue);
        let empty = RequestBuilder::post("/")
            .header("content-length", "0")
            .build();
        assert_eq!(headers(&f, &empty).0, Decision::Continue);
        let h2 = RequestBuilder::post("/")
            .property(&["request", "protocol"], b"HTTP/2")
            .build();
        assert_eq!(headers(&f, &h2).0, Decision::InspectBody);

        let (off, _) = filter(r#"{"limits": {"body_bytes": {"max": 0, "on_exceed": "pass"}}}"#);
        assert_eq!(headers(&off, &post).0, Decision::Continue);
    }

    /// `request.protocol` is read only where it can matter; everywhere else, every protocol
    /// Envoy can name gives the same body decision and the same assessment as no protocol.
    #[test]
    fn the_protocol_is_read_only_where_it_can_change_the_answer() {
        let (f, _) = filter("{}");
        let methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"];
        let body_headers: [&[(&str, &str)]; 6] = [
            &[],
            &[("content-length", "0")],
            &[("content-length", "12")],
            &[("transfer-encoding", "chunked")],
            &[("content-type", "application/json")],
            &[("content-type", "text/plain"), ("content-length", "12")],
        ];
        let mut read = 0;
        for method in methods {
            for extra in body_headers {
                for path in ["/", "/a/b.php?x=1", "/search?q=1%27%20OR%20%271%27%3D%271"] {
                    let mut b = RequestBuilder::new(method, path).header("host", "example.com");
                    for (n, v) in extra {
                        b = b.header(n, v);
                    }
                    let req = b.build();
                    let seen = Seen::of(&req);
                    if ThreatScoreFilter::protocol_matters(&req, &seen) {
                        read += 1;
                        continue;
                    }
                    let skipped = f.assess(&req, None, None);
                    for p in ["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"] {
                        let what = format!("{method} {path} {extra:?} {p}");
                        assert_eq!(
                            ThreatScoreFilter::may_have_body(&req, &seen, Some(p)),
                            ThreatScoreFilter::may_have_body(&req, &seen, None),
                            "{what}"
                        );
                        assert_eq!(f.assess(&req, None, Some(p)), skipped, "{what}");
                        let body = BodyChunk {
                            bytes: b"q=hello",
                            truncated: false,
                        };
                        assert_eq!(
                            f.assess(&req, Some(body), Some(p)),
                            f.assess(&req, Some(body), None),
                            "{what}"
                        );
                    }
                }
            }
        }
        // Read only without a length or chunking: for the 4 body-carrying methods, and for all 7
        // with a Content-Type (3 paths each).
        assert_eq!(read, 3 * (4 + 7), "{read}");
    }

    #[test]
    fn body_attacks_are_blocked_in_the_body_phase() {
        let (f, _) = filter("{}");
        let req = RequestBuilder::post("/form")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", "40")
            .property(&["request", "protocol"], b"HTTP/1.1")
            .build();
        let (d, _, mut state) = headers(&f, &req);
        assert_eq!(d, Decision::InspectBody);
        let body = b"q=<script>alert(document.cookie)</script>";
        let chunk = BodyChunk {
            bytes: body,
            truncated: false,
        };
        let d = f.on_request_body(&req, chunk, &mut state, &mut HeaderOps::default());
        assert!(
            matches!(d, Decision::Respond(ref r) if r.status == 403),
            "{d:?}"
        );
    }

    #[test]
    fn truncated_body_follows_the_limit_policy_and_is_counted() {
        let req = RequestBuilder::post("/upload")
            .header("content-type", "text/plain")
            .header("content-length", "100000")
            .build();
        let chunk = BodyChunk {
            bytes: b"hello world",
            truncated: true,
        };
        let (pass, sink) =
            filter(r#"{"limits": {"body_bytes": {"max": 16, "on_exceed": "pass"}}}"#);
        let d = pass.on_request_body(
            &req,
            chunk,
            &mut State::default(),
            &mut HeaderOps::default(),
        );
        assert_eq!(d, Decision::Continue);
        assert_eq!(sink.value("threat_score_limit_body_size_total"), 1);
        let (block, sink) =
            filter(r#"{"limits": {"body_bytes": {"max": 16, "on_exceed": "block"}}}"#);
        let d = block.on_request_body(
            &req,
            chunk,
            &mut State::default(),
            &mut HeaderOps::default(),
        );
        assert!(matches!(d, Decision::Respond(_)), "{d:?}");
        assert_eq!(sink.value("threat_score_limit_body_size_total"), 1);
        assert_eq!(block.max_body_bytes(), 16);
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (r#"{"paranoia_level": 7}"#, "paranoia_level"),
            (r#"{"paranoia": 2}"#, "paranoia"),
            (r#"{"mode": "shout"}"#, "mode"),
            (
                r#"{"limits": {"decode_rounds": {"max": 0, "on_exceed": "pass"}}}"#,
                "limits.decode_rounds.max",
            ),
            (
                r#"{"limits": {"args": {"max": 3, "on_exceed": "drop"}}}"#,
                "limits.args.on_exceed",
            ),
            (r#"{"inbound_threshold": 0}"#, "inbound_threshold"),
        ];
        for (json, path) in cases {
            let err = configure::<ThreatScoreFilter>(json)
                .err()
                .unwrap_or_else(|| panic!("accepted {json}"));
            assert_eq!(err.path, path, "{json}: {err}");
        }
    }

    #[test]
    fn every_documented_metric_is_defined() {
        let (mut metrics, _) = sdk_ext::testing::recording_metrics("threat-score");
        let setup = Setup {
            metrics: &mut metrics,
            services: sdk_ext::Services::local(),
        };
        ThreatScoreFilter::configure(Config::default(), setup).unwrap();
        let names: Vec<&str> = metrics.defined().iter().map(|(n, _)| n.as_str()).collect();
        for n in [
            "threat_score_requests_total",
            "threat_score_blocked_total",
            "threat_score_tagged_total",
            "threat_score_detected_total",
            "threat_score_stripped_total",
            "threat_score_category_session_fixation_total",
            "threat_score_category_protocol_attack_total",
            "threat_score_limit_json_depth_total",
            "threat_score_limit_body_values_total",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert_eq!(names.len(), 5 + 13 + 7);
    }
}
