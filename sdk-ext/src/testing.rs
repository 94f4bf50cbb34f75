//! Fakes for native unit tests of filter logic: a request builder with properties, and a metric
//! sink that records what it was told. Not compiled out in release builds on purpose: filters'
//! own tests use them, and unused code costs nothing in the `.wasm` after LTO.

use crate::config::{parse_json, ConfigError};
use crate::filter::{HttpFilter, Setup};
use crate::metrics::{MetricKind, MetricSink, Metrics};
use crate::network::NetworkFilter;
use crate::shared::Services;
use crate::view::{PropertySource, RequestView};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Properties from a map keyed by the path joined with `.`.
#[derive(Debug, Clone, Default)]
pub struct FakeProperties(pub HashMap<String, Vec<u8>>);

impl PropertySource for FakeProperties {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.0.get(&path.join(".")).cloned()
    }
}

/// Builds a [`RequestView`] for tests: `RequestBuilder::get("/x").header("a", "b").build()`.
#[derive(Debug, Clone, Default)]
pub struct RequestBuilder {
    headers: Vec<(String, String)>,
    props: FakeProperties,
}

impl RequestBuilder {
    /// A request with `:method` and `:path` set (and `:authority: localhost`).
    pub fn new(method: &str, path: &str) -> Self {
        Self::default()
            .header(":method", method)
            .header(":path", path)
            .header(":authority", "localhost")
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// Add a header (the name is lowercased, as the proxy delivers them). Setting a
    /// pseudo-header that already exists replaces it.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name.starts_with(':') {
            self.headers.retain(|(n, _)| *n != name);
        }
        self.headers.push((name, value.to_string()));
        self
    }

    /// Set `source.address` (`"10.0.0.1:1234"` or `"[::1]:80"`).
    #[must_use]
    pub fn source(self, addr: &str) -> Self {
        self.property(&["source", "address"], addr.as_bytes())
    }

    /// Set any property.
    #[must_use]
    pub fn property(mut self, path: &[&str], value: &[u8]) -> Self {
        self.props.0.insert(path.join("."), value.to_vec());
        self
    }

    /// Dynamic metadata holding the payload `jwt_authn` stores with `payload_in_metadata:
    /// key` after verifying a token (the `metadata` property, as Envoy hands it to Wasm).
    pub fn jwt_metadata(self, key: &str, payload: &serde_json::Value) -> Self {
        let mut ns = serde_json::Map::new();
        ns.insert(key.to_string(), payload.clone());
        let mut all = serde_json::Map::new();
        all.insert(crate::jwt::JWT_AUTHN_NAMESPACE.to_string(), ns.into());
        self.property(&["metadata"], &metadata_bytes(&all.into()))
    }

    pub fn build(self) -> RequestView {
        RequestView::new(self.headers, Box::new(self.props))
    }
}

#[derive(Debug, Default)]
struct Recorded {
    names: Vec<(String, MetricKind)>,
    values: HashMap<u32, i64>,
    samples: HashMap<u32, Vec<u64>>,
}

/// A metric sink that remembers every update, for assertions.
#[derive(Debug, Default)]
pub struct RecordingSink(RefCell<Recorded>);

impl RecordingSink {
    fn id(&self, name: &str) -> Option<u32> {
        let r = self.0.borrow();
        r.names
            .iter()
            .position(|(n, _)| n == name)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Current value of a counter or gauge (0 if never updated or unknown).
    pub fn value(&self, full_name: &str) -> i64 {
        self.id(full_name)
            .and_then(|id| self.0.borrow().values.get(&id).copied())
            .unwrap_or(0)
    }

    /// Histogram samples recorded so far.
    pub fn samples(&self, full_name: &str) -> Vec<u64> {
        self.id(full_name)
            .and_then(|id| self.0.borrow().samples.get(&id).cloned())
            .unwrap_or_default()
    }

    /// Kind of a defined metric.
    pub fn kind(&self, full_name: &str) -> Option<MetricKind> {
        let r = self.0.borrow();
        r.names
            .iter()
            .find(|(n, _)| n == full_name)
            .map(|(_, k)| *k)
    }
}

impl MetricSink for RecordingSink {
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        if let Some(id) = self.id(name) {
            return Some(id);
        }
        let mut r = self.0.borrow_mut();
        r.names.push((name.to_string(), kind));
        u32::try_from(r.names.len() - 1).ok()
    }

    fn increment(&self, id: u32, delta: i64) {
        *self.0.borrow_mut().values.entry(id).or_insert(0) += delta;
    }

    fn record(&self, id: u32, value: u64) {
        let mut r = self.0.borrow_mut();
        let is_hist = r
            .names
            .get(id as usize)
            .is_some_and(|(_, k)| *k == MetricKind::Histogram);
        if is_hist {
            r.samples.entry(id).or_default().push(value);
        } else {
            r.values
                .insert(id, i64::try_from(value).unwrap_or(i64::MAX));
        }
    }
}

/// A metrics registry backed by a fresh [`RecordingSink`].
pub fn recording_metrics(filter_name: &str) -> (Metrics, Rc<RecordingSink>) {
    let sink = Rc::new(RecordingSink::default());
    (Metrics::new(filter_name, sink.clone()), sink)
}

/// Configure `F` from JSON exactly as the glue does ([`parse_json`], then
/// [`HttpFilter::configure`]), with a [`RecordingSink`] for its metrics (returned for assertions)
/// and thread-local services. The one way every filter's native tests build a filter.
pub fn configure<F: HttpFilter>(json: &str) -> Result<(F, Rc<RecordingSink>), ConfigError> {
    configure_with_services::<F>(json, Services::local())
}

/// As [`configure`], with the given services (a [`FakeClock`], a [`FakeSharedStore`], or one
/// store shared by two filters standing for two workers).
pub fn configure_with_services<F: HttpFilter>(
    json: &str,
    services: Services,
) -> Result<(F, Rc<RecordingSink>), ConfigError> {
    configured(F::NAME, json, services, F::configure)
}

/// [`configure_with_services`] for a network filter.
pub fn configure_network<F: NetworkFilter>(
    json: &str,
    services: Services,
) -> Result<(F, Rc<RecordingSink>), ConfigError> {
    configured(F::NAME, json, services, F::configure)
}

fn configured<C: serde::de::DeserializeOwned, F>(
    name: &str,
    json: &str,
    services: Services,
    configure: impl FnOnce(C, Setup<'_>) -> Result<F, ConfigError>,
) -> Result<(F, Rc<RecordingSink>), ConfigError> {
    let (mut metrics, sink) = recording_metrics(name);
    let config = parse_json::<C>(json.as_bytes())?;
    let setup = Setup {
        metrics: &mut metrics,
        services,
    };
    Ok((configure(config, setup)?, sink))
}

/// A clock that only moves when told to (nanoseconds since the epoch).
#[derive(Debug, Default)]
pub struct FakeClock(std::cell::Cell<u64>);

impl FakeClock {
    pub fn at(nanos: u64) -> Self {
        Self(std::cell::Cell::new(nanos))
    }
    pub fn advance(&self, by: std::time::Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.set(self.0.get().saturating_add(by));
    }
    pub fn set(&self, nanos: u64) {
        self.0.set(nanos);
    }
}

impl crate::shared::Clock for FakeClock {
    fn now_nanos(&self) -> u64 {
        self.0.get()
    }
}

type Interleaved = Box<dyn FnOnce()>;

/// A [`crate::shared::MemoryStore`] that can simulate other workers: `interleave` runs a closure
/// (e.g. another worker's `take` on the same store) just before the next compare-and-swap write,
/// between this worker's read and its write; `fail_next` makes operations fail as the host can.
#[derive(Default)]
pub struct FakeSharedStore {
    pub inner: crate::shared::MemoryStore,
    before_cas: RefCell<Vec<Interleaved>>,
    fail: RefCell<Option<crate::shared::StoreError>>,
    /// Number of `set` calls that carried a version (compare-and-swap writes).
    pub cas_writes: std::cell::Cell<u32>,
}

impl FakeSharedStore {
    /// Run `f` before the next compare-and-swap write (queued: one closure per write).
    pub fn interleave(&self, f: impl FnOnce() + 'static) {
        self.before_cas.borrow_mut().push(Box::new(f));
    }
    /// Every following operation fails with `err` until cleared with `None`.
    pub fn fail_with(&self, err: Option<crate::shared::StoreError>) {
        *self.fail.borrow_mut() = err;
    }
}

impl crate::shared::SharedStore for FakeSharedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, crate::shared::StoreError> {
        if let Some(e) = self.fail.borrow().clone() {
            return Err(e);
        }
        self.inner.get(key)
    }

    fn set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), crate::shared::StoreError> {
        if let Some(e) = self.fail.borrow().clone() {
            return Err(e);
        }
        if cas.is_some() {
            self.cas_writes.set(self.cas_writes.get() + 1);
            let next = {
                let mut queue = self.before_cas.borrow_mut();
                if queue.is_empty() {
                    None
                } else {
                    Some(queue.remove(0))
                }
            };
            if let Some(f) = next {
                f();
            }
        }
        self.inner.set(key, value, cas)
    }
}

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_field(num: u64, wire: u64, payload: &[u8], out: &mut Vec<u8>) {
    pb_varint((num << 3) | wire, out);
    if wire == 2 {
        pb_varint(payload.len() as u64, out);
    }
    out.extend_from_slice(payload);
}

fn pb_value(v: &serde_json::Value) -> Vec<u8> {
    use serde_json::Value;
    let mut out = Vec::new();
    match v {
        Value::Null => pb_field(1, 0, &[0], &mut out),
        Value::Number(n) => pb_field(2, 1, &n.as_f64().unwrap_or(0.0).to_le_bytes(), &mut out),
        Value::String(s) => pb_field(3, 2, s.as_bytes(), &mut out),
        Value::Bool(b) => pb_field(4, 0, &[u8::from(*b)], &mut out),
        Value::Object(_) => pb_field(5, 2, &struct_bytes(v), &mut out),
        Value::Array(items) => {
            let mut list = Vec::new();
            for i in items {
                pb_field(1, 2, &pb_value(i), &mut list);
            }
            pb_field(6, 2, &list, &mut out)
        }
    }
    out
}

/// A JSON object as `google.protobuf.Struct` wire bytes (what Envoy returns for a map-valued
/// property such as `jwt_authn`'s payload metadata). Non-objects encode as an empty struct.
pub fn struct_bytes(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, val) in v.as_object().into_iter().flatten() {
        let mut entry = Vec::new();
        pb_field(1, 2, k.as_bytes(), &mut entry);
        pb_field(2, 2, &pb_value(val), &mut entry);
        pb_field(1, 2, &entry, &mut out);
    }
    out
}

/// `envoy.config.core.v3.Metadata` wire bytes with `filter_metadata` from a JSON object of
/// namespace -> object (what Envoy returns for the `metadata` property).
pub fn metadata_bytes(filter_metadata: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    for (ns, fields) in filter_metadata.as_object().into_iter().flatten() {
        let mut entry = Vec::new();
        pb_field(1, 2, ns.as_bytes(), &mut entry);
        pb_field(2, 2, &struct_bytes(fields), &mut entry);
        pb_field(1, 2, &entry, &mut out);
    }
    out
}
