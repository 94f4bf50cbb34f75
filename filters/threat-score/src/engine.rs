//! The compiled engine: holds the validated configuration, and turns a [`Request`] into an
//! [`Assessment`]. Built once per configuration ([`crate::Config::compile`]) and shared by
//! every request; `inspect` takes `&self`, allocates per request only for the decoded values.

use crate::config::{Config, Mode, OnExceed};
use crate::detect::{Ctx, DetectorKind, Findings};
use crate::extract::{prepare_with, ExclusionLookup, HeaderTable, Prepared};
use crate::model::{Assessment, Category, CategorySet, Detection, LimitKind, Verdict};
use crate::request::Request;
use std::cell::OnceCell;

/// A validated configuration, ready to inspect requests.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: Config,
    /// `cfg.headers` as a lookup table, built once.
    headers: HeaderTable,
}

/// Exclusions that apply to one request (those whose path prefix matched).
struct ActiveExclusions<'e> {
    list: Vec<&'e crate::config::Exclusion>,
}

fn categories_of(e: &crate::config::Exclusion) -> CategorySet {
    if e.categories.is_empty() {
        CategorySet::all()
    } else {
        e.categories.iter().copied().collect()
    }
}

impl ExclusionLookup for ActiveExclusions<'_> {
    fn for_arg(&self, name: &str) -> CategorySet {
        self.list
            .iter()
            .filter(|e| e.args.iter().any(|a| a == name))
            .fold(CategorySet::EMPTY, |acc, e| {
                categories_of(e).iter().fold(acc, CategorySet::with)
            })
    }

    fn no_arg_exclusions(&self) -> bool {
        self.list.iter().all(|e| e.args.is_empty())
    }

    fn for_header(&self, name: &str) -> CategorySet {
        self.list
            .iter()
            .filter(|e| e.headers.iter().any(|h| h == name))
            .fold(CategorySet::EMPTY, |acc, e| {
                categories_of(e).iter().fold(acc, CategorySet::with)
            })
    }
}

impl Engine {
    pub(crate) fn new(cfg: Config) -> Engine {
        crate::detect::build_tables();
        let headers = HeaderTable::new(&cfg.headers);
        Engine { cfg, headers }
    }

    /// The configuration this engine was compiled from.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Scores `req` and decides. Never panics; work is bounded by the configured limits.
    pub fn inspect(&self, req: &Request<'_>) -> Assessment {
        let lowered = OnceCell::new();
        let prepared = self.prepare_in(req, &lowered);
        // Injection detectors read long values in windows (linear time by construction, see
        // `Prepared::windowed`); the protocol checks read whole values (they are linear).
        let windowed = prepared.windowed();
        let mut findings = self.findings(&prepared);
        let ctx = self.ctx();
        // Block mode stops once the threshold is reached (the answer cannot change); detect
        // and tag modes score everything (the score and categories are reported).
        let stop_at = (self.cfg.mode == Mode::Block).then_some(self.cfg.inbound_threshold);
        if let Some(t) = stop_at {
            findings.stop_at(t);
        }
        let limit_blocks = prepared.limit_hits.iter().any(|k| self.limit_blocks(*k));
        for &kind in DetectorKind::ALL {
            if stop_at.is_some() && limit_blocks {
                // A limit already decides (`on_exceed: block`): skip the detectors.
                break;
            }
            if stop_at.is_some_and(|t| findings.score() >= t) {
                break;
            }
            let p = match (&windowed, kind) {
                (Some(w), k) if k != DetectorKind::Protocol => w,
                _ => &prepared,
            };
            kind.run(p, &ctx, &mut findings);
        }
        self.assess(findings.into_vec(), prepared.limit_hits)
    }

    /// Inspects a request whose URI and headers were already inspected, once its body has
    /// arrived: `headers_phase` is [`Engine::inspect`] of the same request without its body.
    /// Only the body's values go through the injection detectors (the protocol checks see the
    /// whole request again; they are cheap and some need the body); the result merges both
    /// phases (each rule counts once), so a request is inspected once, not twice. Used by the
    /// glue in `tag` mode, where the headers must be tagged before the body is seen.
    pub fn inspect_body(&self, req: &Request<'_>, headers_phase: &Assessment) -> Assessment {
        let lowered = OnceCell::new();
        let prepared = self.prepare_in(req, &lowered);
        let mut findings = self.findings(&prepared);
        // The protocol checks run again on the whole request below: keep only the headers
        // phase's injection findings.
        let injection = |d: &&Detection| {
            !matches!(
                d.category,
                Category::Protocol | Category::ProtocolAttack | Category::Multipart
            )
        };
        let earlier: Vec<Detection> = headers_phase
            .detections
            .iter()
            .filter(injection)
            .cloned()
            .collect();
        findings.seed(&earlier);
        let ctx = self.ctx();
        DetectorKind::Protocol.run(&prepared, &ctx, &mut findings);
        let body = prepared.body_only();
        let windowed = body.windowed();
        let p = windowed.as_ref().unwrap_or(&body);
        for &kind in DetectorKind::ALL {
            if kind != DetectorKind::Protocol {
                kind.run(p, &ctx, &mut findings);
            }
        }
        let mut limit_hits = headers_phase.limit_hits.clone();
        for k in prepared.limit_hits {
            if !limit_hits.contains(&k) {
                limit_hits.push(k);
            }
        }
        self.assess(findings.into_vec(), limit_hits)
    }

    /// Decodes `req` into the inputs the detectors scan. Public so tools can time the stages
    /// separately ([`Engine::run_detector`]); the glue only needs [`Engine::inspect`].
    pub fn prepare<'r>(&self, req: &Request<'r>) -> Prepared<'r> {
        self.prepare_with_lowered(req, None)
    }

    /// [`Engine::prepare`] with the body's values sharing one lowercase copy of the body,
    /// kept in `lowered` (the same inputs; one copy per request instead of one per value
    /// with a capital).
    fn prepare_in<'r>(&self, req: &Request<'r>, lowered: &'r OnceCell<String>) -> Prepared<'r> {
        self.prepare_with_lowered(req, Some(lowered))
    }

    fn prepare_with_lowered<'r>(
        &self,
        req: &Request<'r>,
        lowered: Option<&'r OnceCell<String>>,
    ) -> Prepared<'r> {
        let path = req.effective_uri();
        let active = ActiveExclusions {
            list: self
                .cfg
                .exclusions
                .iter()
                .filter(|e| e.path_prefix.as_deref().is_none_or(|p| path.starts_with(p)))
                .collect(),
        };
        let request_excluded = active
            .list
            .iter()
            .filter(|e| e.args.is_empty() && e.headers.is_empty())
            .fold(CategorySet::EMPTY, |acc, e| {
                categories_of(e).iter().fold(acc, CategorySet::with)
            });
        prepare_with(
            *req,
            &self.cfg,
            &self.headers,
            &active,
            request_excluded,
            lowered,
        )
    }

    /// Runs one detector over a prepared request and returns what it found (after paranoia
    /// and exclusions). For benchmarks and debugging.
    pub fn run_detector(&self, kind: DetectorKind, prepared: &Prepared<'_>) -> Vec<Detection> {
        let mut findings = self.findings(prepared);
        kind.run(prepared, &self.ctx(), &mut findings);
        findings.into_vec()
    }

    /// [`Engine::run_detector`] with the gates off ([`crate::detect::gate`]): every value is
    /// read. For the test that proves the gates change no finding, and for cost comparisons.
    pub fn run_detector_ungated(
        &self,
        kind: DetectorKind,
        prepared: &Prepared<'_>,
    ) -> Vec<Detection> {
        let mut findings = self.findings(prepared);
        kind.run_ungated(prepared, &self.ctx(), &mut findings);
        findings.into_vec()
    }

    fn findings(&self, p: &Prepared<'_>) -> Findings {
        Findings::new(self.cfg.paranoia_level, p.excluded)
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            allowed_methods: &self.cfg.allowed_methods,
            allowed_content_types: &self.cfg.allowed_content_types,
            restricted_extensions: &self.cfg.restricted_extensions,
        }
    }

    fn limit_blocks(&self, kind: LimitKind) -> bool {
        let l = &self.cfg.limits;
        let limit = match kind {
            LimitKind::BodySize => l.body_bytes,
            LimitKind::ArgCount => l.args,
            LimitKind::BodyValues => l.body_values,
            LimitKind::DecodeRounds => l.decode_rounds,
            LimitKind::HeaderCount => l.header_count,
            LimitKind::HeaderSize => l.header_bytes,
            LimitKind::JsonDepth => l.json_depth,
        };
        limit.on_exceed == OnExceed::Block
    }

    fn assess(&self, detections: Vec<Detection>, limit_hits: Vec<LimitKind>) -> Assessment {
        let score: u32 = detections.iter().map(|d| d.severity.score()).sum();
        let mut categories: CategorySet = detections.iter().map(|d| d.category).collect();
        let limit_block = limit_hits.iter().any(|k| self.limit_blocks(*k));
        if limit_block {
            categories.insert(Category::Protocol);
        }
        let over_threshold = score >= self.cfg.inbound_threshold || limit_block;
        let verdict = match (over_threshold, self.cfg.mode) {
            (false, _) | (true, Mode::Detect) => Verdict::Allow,
            (true, Mode::Block) => Verdict::Block,
            (true, Mode::Tag) => Verdict::Tag,
        };
        Assessment {
            score,
            categories,
            detections,
            limit_hits,
            over_threshold,
            verdict,
        }
    }
}
