//! Host services for state that outlives a request: a key-value store shared by every worker
//! (proxy-wasm shared data) and a clock.
//!
//! Filters receive them in `configure`'s [`crate::Setup`] as [`Services`] and keep the
//! `Rc`s for the request path. The glue (`sdk_ext::proxy` (feature `glue`)) passes the host's shared data and
//! clock; native code and tests use [`MemoryStore`] and [`crate::testing::FakeClock`].
//!
//! Why a trait and not host calls: the logic that uses them (the token bucket in
//! [`crate::ratelimit`]) is then unit-tested natively, including compare-and-swap conflicts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The value changed since it was read (another worker wrote it): read again and retry.
    #[error("compare-and-swap mismatch")]
    CasMismatch,
    /// Retries were exhausted under contention.
    #[error("still contended after {0} compare-and-swap attempts")]
    Contended(u32),
    /// The host refused the operation.
    #[error("shared data error: {0}")]
    Host(String),
}

/// A key-value store with compare-and-swap, shared by every VM (worker thread) of a plugin's
/// `vm_id` in Envoy.
///
/// Semantics follow proxy-wasm shared data: every stored value has a version (`cas`) that
/// changes on each write; `set` with `Some(cas)` succeeds only if the value still has that
/// version. A `set` of a key that does not exist always succeeds (the ABI has no
/// insert-if-absent), and keys cannot be deleted (ABI 0.2.1).
pub trait SharedStore {
    /// The value and its version, or `None` if the key was never set.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Write `value`; with `Some(cas)`, only if the stored version is still `cas`
    /// (else [`StoreError::CasMismatch`]).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// A clock: nanoseconds since the Unix epoch. Envoy gives every worker the same wall clock; it
/// can step backwards (NTP), so users must tolerate `now` going down.
pub trait Clock {
    fn now_nanos(&self) -> u64;
}

/// The host services a filter may keep for the request path.
#[derive(Clone)]
pub struct Services {
    pub shared: Rc<dyn SharedStore>,
    pub clock: Rc<dyn Clock>,
}

impl Services {
    /// A store private to this thread and the system clock: right for native use and for a
    /// single-VM host, wrong for sharing state across Envoy workers (the glue passes the host's
    /// shared data instead).
    pub fn local() -> Self {
        Self {
            shared: Rc::new(MemoryStore::default()),
            clock: Rc::new(SystemClock),
        }
    }
}

/// Stored entries (value and version) and the last version handed out.
type Entries = (HashMap<String, (Vec<u8>, u32)>, u32);

/// An in-memory [`SharedStore`] with the same compare-and-swap semantics as the host's.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RefCell<Entries>,
}

impl MemoryStore {
    /// Number of keys stored (tests check memory bounds with it).
    pub fn len(&self) -> usize {
        self.inner.borrow().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bump a key's version without changing its value, as a concurrent writer would; the next
    /// `set` with the old version then fails. Returns false if the key does not exist.
    pub fn touch(&self, key: &str) -> bool {
        let mut inner = self.inner.borrow_mut();
        inner.1 = inner.1.wrapping_add(1).max(1);
        let next = inner.1;
        match inner.0.get_mut(key) {
            Some(entry) => {
                entry.1 = next;
                true
            }
            None => false,
        }
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.inner.borrow().0.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        inner.1 = inner.1.wrapping_add(1).max(1);
        let next = inner.1;
        match inner.0.get_mut(key) {
            Some(entry) => {
                if cas.is_some_and(|c| c != 0 && c != entry.1) {
                    return Err(StoreError::CasMismatch);
                }
                *entry = (value.to_vec(), next);
            }
            None => {
                inner.0.insert(key.to_string(), (value.to_vec(), next));
            }
        }
        Ok(())
    }
}

/// The system's wall clock (native code; the glue uses the host's clock).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_compare_and_swap() {
        let s = MemoryStore::default();
        assert_eq!(s.get("k").unwrap(), None);
        s.set("k", b"a", None).unwrap();
        let (v, cas) = s.get("k").unwrap().unwrap();
        assert_eq!(v, b"a");
        s.set("k", b"b", Some(cas)).unwrap();
        assert_eq!(
            s.set("k", b"c", Some(cas)),
            Err(StoreError::CasMismatch),
            "stale version must be refused"
        );
        let (v, cas2) = s.get("k").unwrap().unwrap();
        assert_eq!(v, b"b");
        assert!(s.touch("k"));
        assert_eq!(s.set("k", b"d", Some(cas2)), Err(StoreError::CasMismatch));
        assert!(!s.touch("missing"));
        assert_eq!(s.len(), 1);
    }
}
