//! Limits shared by every worker: a token bucket and a counter per key, kept in proxy-wasm
//! **shared data** and updated with compare-and-swap.
//!
//! Envoy runs one Wasm VM per worker thread; plain Rust state would give each worker its own
//! limit (N workers, N times the rate). Shared data is one key/value map per `vm_id` for the
//! whole process, with a CAS token per value, so a read-modify-write that lost a race is
//! retried on fresh data ([`MAX_CAS_RETRIES`] times; then the caller is told and decides, see
//! [`Outcome::Contended`]).
//!
//! Known limits of the proxy-wasm shared data ABI, which these types inherit:
//! * a key that does not exist yet cannot be created conditionally (Envoy's `set` accepts any
//!   CAS for a new key), so two workers creating the same key in the same instant can lose one
//!   update: the first connection of a never-seen source may be counted once instead of twice;
//! * keys are never evicted (ABI 0.2.1 has no delete): one entry per distinct key (about 60
//!   bytes with the key) for the lifetime of the process.
//!
//! The store sits behind [`SharedStore`] so the logic is tested natively with [`MemoryStore`].
//! (The policy filter's request rate limit needs the same bucket; both should share one
//! implementation in this crate once they meet on `main`.)

use crate::config::ConfigError;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// How often a CAS update is retried before giving up with [`Outcome::Contended`].
pub const MAX_CAS_RETRIES: usize = 16;

/// Why a shared-data write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Someone else wrote the key since it was read; re-read and retry.
    CasMismatch,
}

/// A process-wide key/value store with compare-and-swap: proxy-wasm shared data in the
/// proxy, [`MemoryStore`] in tests.
pub trait SharedStore {
    /// The value at `key` and its CAS token, if set.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Write `value` if `cas` is still the key's token (`None`: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// An in-memory [`SharedStore`] with Envoy's semantics (a new key accepts any CAS).
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut data = self.data.borrow_mut();
        if let (Some((_, current)), Some(expected)) = (data.get(key), cas) {
            if *current != expected {
                return Err(StoreError::CasMismatch);
            }
        }
        let next = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(next);
        data.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
}

/// Result of a limited operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Within the limit; the token was taken / the count raised.
    Allowed,
    /// Over the limit; nothing changed.
    Limited,
    /// Every CAS attempt lost a race ([`MAX_CAS_RETRIES`]); nothing changed. Callers choose
    /// to fail open or closed, explicitly.
    Contended,
}

/// Read-modify-write `key` with CAS retries. `update` gets the current value (`None` if
/// unset) and returns the new value, or `None` to leave it unchanged with [`Outcome::Limited`].
fn cas_update(
    store: &dyn SharedStore,
    key: &str,
    mut update: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Outcome {
    for _ in 0..MAX_CAS_RETRIES {
        let current = store.get(key);
        let Some(new) = update(current.as_ref().map(|(v, _)| v.as_slice())) else {
            return Outcome::Limited;
        };
        match store.set(key, &new, current.map(|(_, cas)| cas)) {
            Ok(()) => return Outcome::Allowed,
            Err(StoreError::CasMismatch) => continue,
        }
    }
    Outcome::Contended
}

/// Token bucket parameters, as Envoy's `local_ratelimit` writes them.
///
/// ```json
/// {"max_tokens": 10, "tokens_per_fill": 1, "fill_interval_ms": 1000}
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenBucketSpec {
    /// Bucket size: the burst allowed from a full bucket. At least 1.
    pub max_tokens: u32,
    /// Tokens added every `fill_interval_ms`. Default: 1.
    #[serde(default = "one")]
    pub tokens_per_fill: u32,
    /// Refill period in milliseconds. At least 1. Default: 1000.
    #[serde(default = "default_interval")]
    pub fill_interval_ms: u64,
}

fn one() -> u32 {
    1
}

fn default_interval() -> u64 {
    1000
}

/// A compiled token bucket family: one bucket per key, in shared data.
#[derive(Clone)]
pub struct TokenBucket {
    prefix: String,
    max_tokens: u32,
    tokens_per_fill: u32,
    fill_interval_ms: u64,
    store: Rc<dyn SharedStore>,
}

impl std::fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBucket")
            .field("prefix", &self.prefix)
            .field("max_tokens", &self.max_tokens)
            .field("tokens_per_fill", &self.tokens_per_fill)
            .field("fill_interval_ms", &self.fill_interval_ms)
            .finish()
    }
}

impl TokenBucketSpec {
    /// Validate; `prefix` namespaces the shared-data keys (e.g. `tcp-guard/rate/`).
    pub fn compile(
        &self,
        prefix: &str,
        store: Rc<dyn SharedStore>,
    ) -> Result<TokenBucket, ConfigError> {
        if self.max_tokens == 0 {
            return Err(ConfigError::new("max_tokens", "must be at least 1"));
        }
        if self.tokens_per_fill == 0 {
            return Err(ConfigError::new("tokens_per_fill", "must be at least 1"));
        }
        if self.fill_interval_ms == 0 {
            return Err(ConfigError::new("fill_interval_ms", "must be at least 1"));
        }
        Ok(TokenBucket {
            prefix: prefix.to_string(),
            max_tokens: self.max_tokens,
            tokens_per_fill: self.tokens_per_fill,
            fill_interval_ms: self.fill_interval_ms,
            store,
        })
    }
}

/// Bucket value in shared data: tokens (u32 LE) then time of the last fill (u64 LE, ms).
fn decode_bucket(raw: &[u8]) -> Option<(u32, u64)> {
    let tokens = u32::from_le_bytes(raw.get(0..4)?.try_into().ok()?);
    let last = u64::from_le_bytes(raw.get(4..12)?.try_into().ok()?);
    Some((tokens, last))
}

fn encode_bucket(tokens: u32, last_fill_ms: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&tokens.to_le_bytes());
    v.extend_from_slice(&last_fill_ms.to_le_bytes());
    v
}

impl TokenBucket {
    /// Take one token from `key`'s bucket at time `now_ms`. A new key starts full.
    pub fn try_acquire(&self, key: &str, now_ms: u64) -> Outcome {
        let full_key = format!("{}{key}", self.prefix);
        cas_update(self.store.as_ref(), &full_key, |current| {
            let (tokens, last) = current
                .and_then(decode_bucket)
                .unwrap_or((self.max_tokens, now_ms));
            // A clock that went backwards refills nothing until it passes the last fill again.
            let fills = now_ms.saturating_sub(last) / self.fill_interval_ms;
            let added = fills.saturating_mul(u64::from(self.tokens_per_fill));
            let tokens = u64::from(tokens)
                .saturating_add(added)
                .min(u64::from(self.max_tokens));
            // Keep the partial interval so refills do not drift with the call pattern.
            let last = last + fills * self.fill_interval_ms;
            let tokens = u32::try_from(tokens).unwrap_or(self.max_tokens);
            (tokens > 0).then(|| encode_bucket(tokens - 1, last))
        })
    }
}

/// A counter per key with an upper limit, in shared data: concurrent connections per source.
#[derive(Clone)]
pub struct SharedCounter {
    prefix: String,
    store: Rc<dyn SharedStore>,
}

impl std::fmt::Debug for SharedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounter")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn decode_count(raw: Option<&[u8]>) -> u64 {
    raw.and_then(|r| r.get(0..8))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

impl SharedCounter {
    /// Counters under `prefix` (e.g. `tcp-guard/conns/`).
    pub fn new(prefix: &str, store: Rc<dyn SharedStore>) -> Self {
        Self {
            prefix: prefix.to_string(),
            store,
        }
    }

    /// Add one to `key` if it is below `limit`.
    pub fn acquire(&self, key: &str, limit: u64) -> Outcome {
        let full_key = format!("{}{key}", self.prefix);
        cas_update(self.store.as_ref(), &full_key, |current| {
            let n = decode_count(current);
            (n < limit).then(|| (n + 1).to_le_bytes().to_vec())
        })
    }

    /// Subtract one from `key` (never below zero). Returns false if every attempt was contended.
    pub fn release(&self, key: &str) -> bool {
        let full_key = format!("{}{key}", self.prefix);
        let outcome = cas_update(self.store.as_ref(), &full_key, |current| {
            Some(
                decode_count(current)
                    .saturating_sub(1)
                    .to_le_bytes()
                    .to_vec(),
            )
        });
        outcome == Outcome::Allowed
    }

    /// Current value of `key` (0 if unset).
    pub fn get(&self, key: &str) -> u64 {
        let full_key = format!("{}{key}", self.prefix);
        decode_count(
            self.store
                .get(&full_key)
                .as_ref()
                .map(|(v, _)| v.as_slice()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(max: u32, per_fill: u32, interval: u64) -> (TokenBucket, Rc<MemoryStore>) {
        let store = Rc::new(MemoryStore::default());
        let spec = TokenBucketSpec {
            max_tokens: max,
            tokens_per_fill: per_fill,
            fill_interval_ms: interval,
        };
        (spec.compile("t/", store.clone()).unwrap(), store)
    }

    #[test]
    fn a_new_bucket_allows_a_burst_then_limits() {
        let (b, _) = bucket(3, 1, 1000);
        let got: Vec<Outcome> = (0..5).map(|_| b.try_acquire("k", 10_000)).collect();
        assert_eq!(
            got,
            [
                Outcome::Allowed,
                Outcome::Allowed,
                Outcome::Allowed,
                Outcome::Limited,
                Outcome::Limited
            ]
        );
        // Another key has its own bucket.
        assert_eq!(b.try_acquire("other", 10_000), Outcome::Allowed);
    }

    #[test]
    fn refills_by_whole_intervals_without_drift() {
        let (b, _) = bucket(2, 1, 1000);
        assert_eq!(b.try_acquire("k", 0), Outcome::Allowed);
        assert_eq!(b.try_acquire("k", 0), Outcome::Allowed);
        assert_eq!(b.try_acquire("k", 999), Outcome::Limited);
        assert_eq!(b.try_acquire("k", 1000), Outcome::Allowed);
        // 1500 ms: the fill at 1000 was used; the next one is due at 2000, not 2500.
        assert_eq!(b.try_acquire("k", 1500), Outcome::Limited);
        assert_eq!(b.try_acquire("k", 2000), Outcome::Allowed);
        // A long pause refills to the cap only.
        assert_eq!(b.try_acquire("k", 60_000), Outcome::Allowed);
        assert_eq!(b.try_acquire("k", 60_000), Outcome::Allowed);
        assert_eq!(b.try_acquire("k", 60_000), Outcome::Limited);
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let (b, _) = bucket(1, 1, 1000);
        assert_eq!(b.try_acquire("k", 5000), Outcome::Allowed);
        assert_eq!(b.try_acquire("k", 1000), Outcome::Limited);
        assert_eq!(b.try_acquire("k", 5999), Outcome::Limited);
        assert_eq!(b.try_acquire("k", 6000), Outcome::Allowed);
    }

    #[test]
    fn zero_values_are_config_errors_with_paths() {
        let store: Rc<dyn SharedStore> = Rc::new(MemoryStore::default());
        let bad = TokenBucketSpec {
            max_tokens: 0,
            tokens_per_fill: 1,
            fill_interval_ms: 1,
        };
        assert_eq!(
            bad.compile("p", store.clone()).unwrap_err().path,
            "max_tokens"
        );
        let bad = TokenBucketSpec {
            max_tokens: 1,
            tokens_per_fill: 1,
            fill_interval_ms: 0,
        };
        assert_eq!(
            bad.compile("p", store).unwrap_err().path,
            "fill_interval_ms"
        );
    }

    /// A store where another worker writes the key between every read and write.
    struct Racing {
        inner: MemoryStore,
        races_left: Cell<usize>,
        /// Whether the other worker takes a token or only rewrites the value.
        take: Cell<bool>,
    }

    impl SharedStore for Racing {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            if self.races_left.get() > 0 {
                self.races_left.set(self.races_left.get() - 1);
                // The other worker takes a token first.
                let other = self.inner.get(key).map(|(v, _)| v);
                let (tokens, last) = other.as_deref().and_then(decode_bucket).unwrap_or((5, 0));
                let tokens = if self.take.get() {
                    tokens.saturating_sub(1)
                } else {
                    tokens
                };
                self.inner.set(key, &encode_bucket(tokens, last), None)?;
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn lost_races_are_retried_on_fresh_data() {
        let store = Rc::new(Racing {
            inner: MemoryStore::default(),
            races_left: Cell::new(0),
            take: Cell::new(true),
        });
        let spec = TokenBucketSpec {
            max_tokens: 5,
            tokens_per_fill: 1,
            fill_interval_ms: 1_000_000,
        };
        let b = spec.compile("", store.clone()).unwrap();
        assert_eq!(b.try_acquire("k", 0), Outcome::Allowed); // 4 left
        store.races_left.set(2); // two racing takes: 2 left, then ours: 1 left
        assert_eq!(b.try_acquire("k", 0), Outcome::Allowed);
        let (tokens, _) = decode_bucket(&store.inner.get("k").unwrap().0).unwrap();
        assert_eq!(tokens, 1, "no update may be lost");
        store.take.set(false);
        store.races_left.set(MAX_CAS_RETRIES);
        assert_eq!(b.try_acquire("k", 0), Outcome::Contended);
    }

    #[test]
    fn counter_caps_and_releases() {
        let c = SharedCounter::new("c/", Rc::new(MemoryStore::default()));
        assert_eq!(c.acquire("ip", 2), Outcome::Allowed);
        assert_eq!(c.acquire("ip", 2), Outcome::Allowed);
        assert_eq!(c.acquire("ip", 2), Outcome::Limited);
        assert_eq!(c.get("ip"), 2);
        assert!(c.release("ip"));
        assert_eq!(c.acquire("ip", 2), Outcome::Allowed);
        assert!(c.release("ip"));
        assert!(c.release("ip"));
        assert!(c.release("ip"), "releasing at zero saturates");
        assert_eq!(c.get("ip"), 0);
    }

    #[test]
    fn memory_store_has_envoy_cas_semantics() {
        let s = MemoryStore::default();
        s.set("k", b"a", Some(999)).unwrap(); // new key: any CAS accepted
        let (_, cas) = s.get("k").unwrap();
        assert_eq!(
            s.set("k", b"b", Some(cas + 1)),
            Err(StoreError::CasMismatch)
        );
        s.set("k", b"c", Some(cas)).unwrap();
        assert_eq!(s.get("k").unwrap().0, b"c");
    }
}
