//! Counters shared by every worker: open connections per source, kept in proxy-wasm shared
//! data and updated with compare-and-swap.
//!
//! Envoy runs one Wasm VM per worker thread; a plain Rust counter would give each worker its
//! own cap (N workers, N times the cap). [`SharedCounter`] keeps one value per key in
//! [`SharedStore`] (one map per `vm_id` for the whole process) and retries a read-modify-write
//! that lost a race on fresh data ([`MAX_CAS_RETRIES`] times; then the caller is told and
//! decides, see [`Outcome::Contended`]). Connection *rates* use [`crate::ratelimit`].
//!
//! Known limits of the shared data ABI, which the counter inherits (unlike
//! [`crate::ratelimit::TokenBuckets`], whose slots are created up front, a counter per source IP
//! cannot be, the keys being unknown in advance):
//! * a key that does not exist yet cannot be created conditionally (Envoy's `set` accepts any
//!   CAS for a new key), so two workers creating the same key in the same instant can lose one
//!   update: the first connections of a never-seen source may be counted once instead of twice;
//! * keys are never evicted (ABI 0.2.1 has no delete): one entry per distinct key (about 60
//!   bytes with the key) for the lifetime of the `vm_id`.

use crate::shared::{SharedStore, StoreError};
use std::rc::Rc;

/// How often a CAS update is retried before giving up with [`Outcome::Contended`].
pub const MAX_CAS_RETRIES: usize = 16;

/// Result of a limited operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Within the limit; the count was raised (or lowered).
    Allowed,
    /// Over the limit; nothing changed.
    Limited,
    /// Every CAS attempt lost a race ([`MAX_CAS_RETRIES`]) or the host refused; nothing
    /// changed. Callers choose to fail open or closed, explicitly.
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
        let Ok(current) = store.get(key) else {
            return Outcome::Contended;
        };
        let Some(new) = update(current.as_ref().map(|(v, _)| v.as_slice())) else {
            return Outcome::Limited;
        };
        match store.set(key, &new, current.map(|(_, cas)| cas)) {
            Ok(()) => return Outcome::Allowed,
            Err(StoreError::CasMismatch) => continue,
            Err(_) => return Outcome::Contended,
        }
    }
    Outcome::Contended
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
        let current = self.store.get(&full_key).ok().flatten();
        decode_count(current.as_ref().map(|(v, _)| v.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeSharedStore;

    #[test]
    fn counter_caps_and_releases() {
        let c = SharedCounter::new("c/", Rc::new(crate::shared::MemoryStore::default()));
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
    fn a_racing_worker_is_not_overwritten() {
        let store = Rc::new(FakeSharedStore::default());
        let mine = SharedCounter::new("c/", store.clone());
        let other = SharedCounter::new("c/", store.clone());
        assert_eq!(mine.acquire("ip", 3), Outcome::Allowed); // key exists: later writes are CAS
                                                             // The other worker takes a slot between this worker's read and its write.
        store.interleave(move || {
            assert_eq!(other.acquire("ip", 3), Outcome::Allowed);
        });
        assert_eq!(mine.acquire("ip", 3), Outcome::Allowed);
        assert_eq!(mine.get("ip"), 3, "both increments kept");
        assert_eq!(mine.acquire("ip", 3), Outcome::Limited);
    }
}
