//! Metrics declared once at configure time.
//!
//! A filter asks [`Metrics`] for its counters, gauges and histograms in `configure`; the handles
//! are cheap to use on the request path (one host call per update, no name lookup).
//!
//! Naming: a metric `denied_total` of filter `example` is defined as `example_denied_total`.
//! Envoy files metrics that Wasm code defines under its custom stat namespace, so it shows as
//! `wasmcustom.example_denied_total` in `/stats` and as `example_denied_total` (no `envoy_`
//! prefix) in `/stats/prometheus`, which is what Istio's Prometheus endpoint serves once the
//! proxy's stats matcher includes it (`proxyStatsMatcher.inclusionPrefixes: ["wasmcustom"]`).

use crate::config::ConfigError;
use std::rc::Rc;

/// A user-supplied name (rule, tag, cluster) as a metric-name fragment: ASCII letters and
/// digits lowercased, everything else `_` (`Admin-Only.v2` -> `admin_only_v2`,
/// `outbound|443||a.svc` -> `outbound_443__a_svc`). Distinct names can collide; filters that
/// derive metrics from names reject collisions at configure time.
// Over bytes: one `_` per character is one per byte that does not continue a UTF-8 sequence
// (decoding each `char` and encoding it back was twice the code).
pub fn metric_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b.to_ascii_lowercase()));
        } else if b & 0xc0 != 0x80 {
            out.push('_');
        }
    }
    out
}

/// The three metric types proxy-wasm defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Where metric updates go: the proxy in production, [`crate::testing::RecordingSink`] in tests.
pub trait MetricSink {
    /// Define a metric, returning its id (`None` if the host refused).
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32>;
    /// Add `delta` to a counter or gauge.
    fn increment(&self, id: u32, delta: i64);
    /// Set a gauge or record a histogram sample.
    fn record(&self, id: u32, value: u64);
}

/// The registry a filter receives in `configure`.
pub struct Metrics {
    prefix: String,
    sink: Rc<dyn MetricSink>,
    defined: Vec<(String, MetricKind)>,
}

impl Metrics {
    /// A registry for filter `filter_name` (dashes become underscores in metric names).
    pub fn new(filter_name: &str, sink: Rc<dyn MetricSink>) -> Self {
        Self {
            prefix: filter_name.replace('-', "_"),
            sink,
            defined: Vec::new(),
        }
    }

    /// A registry for another filter name over the same sink. A module that embeds several
    /// filters (the suite) configures each member with its own, so a member's metrics keep the
    /// names they have when it runs alone (`policy_*`, `router_*`, ...).
    pub fn scoped(&self, filter_name: &str) -> Self {
        Self::new(filter_name, Rc::clone(&self.sink))
    }

    /// Full names and kinds of everything defined so far (for docs and tests).
    pub fn defined(&self) -> &[(String, MetricKind)] {
        &self.defined
    }

    fn define(
        &mut self,
        kind: MetricKind,
        name: &str,
    ) -> Result<(u32, Rc<dyn MetricSink>), ConfigError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(ConfigError::new(
                "$",
                crate::config::cat(&[
                    "metric name `",
                    name,
                    "` must be lowercase letters, digits and `_`",
                ]),
            ));
        }
        let full = crate::config::cat(&[&self.prefix, "_", name]);
        let id = self.sink.define(kind, &full).ok_or_else(|| {
            ConfigError::new(
                "$",
                crate::config::cat(&["the proxy refused to define metric `", &full, "`"]),
            )
        })?;
        self.defined.push((full, kind));
        Ok((id, Rc::clone(&self.sink)))
    }

    /// A monotonically increasing counter.
    pub fn counter(&mut self, name: &str) -> Result<Counter, ConfigError> {
        let (id, sink) = self.define(MetricKind::Counter, name)?;
        Ok(Counter { id, sink })
    }

    /// Counters `prefix` + each of `names`, in order, as an array to destructure
    /// (`let [ok, failed] = metrics.counters("call_", ["ok", "failed"])?;`).
    ///
    /// Why not one [`Metrics::counter`] call per struct field: each `?` between fields drops the
    /// counters made so far (an `Rc` release per field), so a struct of six counters built
    /// field by field was ~2 KB of Wasm code; one loop per array length is a few hundred bytes.
    pub fn counters<const N: usize>(
        &mut self,
        prefix: &str,
        names: [&str; N],
    ) -> Result<[Counter; N], ConfigError> {
        let mut out = Vec::with_capacity(N);
        for name in names {
            out.push(self.counter(&crate::config::cat(&[prefix, name]))?);
        }
        // `out` has exactly `N` counters.
        out.try_into()
            .map_err(|_| ConfigError::new("$", "metric count mismatch"))
    }

    /// A value that goes up and down.
    pub fn gauge(&mut self, name: &str) -> Result<Gauge, ConfigError> {
        let (id, sink) = self.define(MetricKind::Gauge, name)?;
        Ok(Gauge { id, sink })
    }

    /// A distribution of samples (Envoy computes quantiles).
    pub fn histogram(&mut self, name: &str) -> Result<Histogram, ConfigError> {
        let (id, sink) = self.define(MetricKind::Histogram, name)?;
        Ok(Histogram { id, sink })
    }
}

/// A counter handle.
#[derive(Clone)]
pub struct Counter {
    id: u32,
    sink: Rc<dyn MetricSink>,
}

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.sink
            .increment(self.id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// A gauge handle.
#[derive(Clone)]
pub struct Gauge {
    id: u32,
    sink: Rc<dyn MetricSink>,
}

impl Gauge {
    pub fn set(&self, value: u64) {
        self.sink.record(self.id, value);
    }
    pub fn add(&self, delta: i64) {
        self.sink.increment(self.id, delta);
    }
}

/// A histogram handle.
#[derive(Clone)]
pub struct Histogram {
    id: u32,
    sink: Rc<dyn MetricSink>,
}

impl Histogram {
    pub fn record(&self, value: u64) {
        self.sink.record(self.id, value);
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counter({})", self.id)
    }
}
impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gauge({})", self.id)
    }
}
impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RecordingSink;

    #[test]
    fn names_are_prefixed_and_updates_recorded() {
        let sink = Rc::new(RecordingSink::default());
        let mut m = Metrics::new("threat-score", sink.clone());
        let c = m.counter("blocked_total").unwrap();
        let g = m.gauge("buckets").unwrap();
        let h = m.histogram("score").unwrap();
        c.inc();
        c.add(2);
        g.set(10);
        g.add(-3);
        h.record(7);
        h.record(9);
        assert_eq!(sink.value("threat_score_blocked_total"), 3);
        assert_eq!(sink.value("threat_score_buckets"), 7);
        assert_eq!(sink.samples("threat_score_score"), vec![7, 9]);
        assert_eq!(m.defined().len(), 3);
        assert_eq!(sink.kind("threat_score_score"), Some(MetricKind::Histogram));
    }

    #[test]
    fn metric_safe_names() {
        assert_eq!(metric_safe("Admin-Only.v2"), "admin_only_v2");
        assert_eq!(metric_safe("outbound|443||a.svc"), "outbound_443__a_svc");
        assert_eq!(metric_safe("é"), "_");
        // The byte loop against the character map it replaces, on ASCII, two-, three- and
        // four-byte characters in every order.
        let reference = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let pieces = ["a", "Z", "9", "-", ".", "_", "é", "€", "😀", " ", "|", "ß"];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let s = [a, b, c].concat();
                    assert_eq!(metric_safe(&s), reference(&s), "{s}");
                }
            }
        }
    }

    #[test]
    fn bad_names_are_config_errors() {
        let sink = Rc::new(RecordingSink::default());
        let mut m = Metrics::new("x", sink);
        assert!(m.counter("Bad-Name").is_err());
        assert!(m.counter("").is_err());
    }
}
