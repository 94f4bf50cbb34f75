//! Counters shared by every worker (open connections per source), in the same bounded,
//! evicting slot table as the token buckets ([`crate::ratelimit::SlotTable`]), updated with
//! compare-and-swap.
//!
//! Envoy runs one Wasm VM per worker thread; a plain Rust counter would give each worker its
//! own cap (N workers, N times the cap). [`SlotCounters`] keeps one count per key in a slot of
//! shared data and retries a read-modify-write that lost a race on fresh data
//! ([`MAX_CAS_RETRIES`] times; then the caller is told and decides, see
//! [`Outcome::Contended`]). Connection *rates* use [`crate::ratelimit::TokenBuckets`].
//!
//! **Bounded memory.** The slots are reserved from the filter's
//! [`crate::ratelimit::SlotBudget`] and created at configure time, so the number of keys never
//! grows with the number of sources (before, one key per source IP ever seen lived as long as
//! the `vm_id`). A key probes its window like a bucket: its own slot, else the first free slot
//! or one whose count is back to 0 (evicting it loses nothing), else, when every probed slot
//! holds open connections, it is **counted in its home slot** together with that slot's owner
//! (they share one cap: errs towards limiting). The slot used is returned in [`Held`] and
//! released by index, so a release always undoes its own acquire.

use crate::ratelimit::{Pick, Slot, SlotTable};
use crate::shared::StoreError;

/// How often a CAS update is retried before giving up with [`Outcome::Contended`].
pub const MAX_CAS_RETRIES: usize = 16;

/// Result of a limited operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Within the limit; the count was raised. Release with the [`Held`].
    Allowed(Held),
    /// Over the limit; nothing changed.
    Limited,
    /// Every CAS attempt lost a race ([`MAX_CAS_RETRIES`]) or the host refused; nothing
    /// changed. Callers choose to fail open or closed, explicitly.
    Contended,
}

/// The slot an acquire counted in; pass it back to [`SlotCounters::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    index: u64,
    /// Counted in another key's slot (every probed slot was busy).
    pub shared: bool,
}

/// A count per key with an upper limit, in shared data: concurrent connections per source.
#[derive(Debug, Clone)]
pub struct SlotCounters {
    table: SlotTable,
}

impl SlotCounters {
    /// Counters in `table` (reserve it from the filter's `SlotBudget`, then `prepare`).
    pub fn new(table: SlotTable) -> Self {
        Self { table }
    }

    /// Add one to `key`'s count if it is below `limit`.
    pub fn acquire(&self, key: &[u8], limit: u64) -> Outcome {
        let fp = self.table.fingerprint(key);
        for _ in 0..MAX_CAS_RETRIES {
            let Ok(pick) = self.table.pick(fp, |s| s.tokens == 0) else {
                return Outcome::Contended;
            };
            let (p, slot, shared) = match pick {
                Pick::Own(p) => {
                    let s = p.slot;
                    (p, s, false)
                }
                Pick::Claim(p) => {
                    let fresh = Slot {
                        owner: fp,
                        tokens: 0,
                        last_fill: 0,
                    };
                    (p, fresh, false)
                }
                Pick::Shared(p) => {
                    let s = p.slot;
                    (p, s, true)
                }
            };
            if slot.tokens >= limit {
                return Outcome::Limited;
            }
            let next = Slot {
                tokens: slot.tokens + 1,
                ..slot
            };
            match self.table.write(&p, &next) {
                Ok(()) => {
                    return Outcome::Allowed(Held {
                        index: p.index,
                        shared,
                    })
                }
                Err(StoreError::CasMismatch) => continue,
                Err(_) => return Outcome::Contended,
            }
        }
        Outcome::Contended
    }

    /// Subtract one from the slot `held` counted in (never below zero). Returns false if
    /// every attempt was contended or the host refused.
    pub fn release(&self, held: Held) -> bool {
        for _ in 0..MAX_CAS_RETRIES {
            let Ok(p) = self.table.read_index(held.index) else {
                return false;
            };
            let next = Slot {
                tokens: p.slot.tokens.saturating_sub(1),
                ..p.slot
            };
            match self.table.write(&p, &next) {
                Ok(()) => return true,
                Err(StoreError::CasMismatch) => continue,
                Err(_) => return false,
            }
        }
        false
    }

    /// Current count of `key` (0 if it owns no slot in its window).
    pub fn get(&self, key: &[u8]) -> u64 {
        let fp = self.table.fingerprint(key);
        match self.table.pick(fp, |_| false) {
            Ok(Pick::Own(p)) => p.slot.tokens,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::SlotBudget;
    use crate::shared::{MemoryStore, Services};
    use crate::testing::{FakeClock, FakeSharedStore};
    use std::rc::Rc;

    fn counters(store: Rc<dyn crate::shared::SharedStore>, slots: u32) -> SlotCounters {
        let services = Services {
            shared: store,
            clock: Rc::new(FakeClock::at(1)),
        };
        let mut budget = SlotBudget::new("c", 1000, &services).unwrap();
        let c = SlotCounters::new(budget.reserve("conns", slots).unwrap());
        budget.prepare().unwrap();
        c
    }

    fn held(o: Outcome) -> Held {
        match o {
            Outcome::Allowed(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn counter_caps_and_releases() {
        let c = counters(Rc::new(MemoryStore::default()), 16);
        let a = held(c.acquire(b"ip", 2));
        let b = held(c.acquire(b"ip", 2));
        assert_eq!(c.acquire(b"ip", 2), Outcome::Limited);
        assert_eq!(c.get(b"ip"), 2);
        assert!(c.release(a));
        let d = held(c.acquire(b"ip", 2));
        assert!(c.release(b));
        assert!(c.release(d));
        assert!(c.release(d), "releasing at zero saturates");
        assert_eq!(c.get(b"ip"), 0);
    }

    #[test]
    fn a_racing_worker_is_not_overwritten() {
        let store = Rc::new(FakeSharedStore::default());
        let mine = counters(store.clone(), 4);
        let other = mine.clone();
        held(mine.acquire(b"ip", 3));
        // The other worker takes a slot between this worker's read and its write.
        store.interleave(move || {
            held(other.acquire(b"ip", 3));
        });
        held(mine.acquire(b"ip", 3));
        assert_eq!(mine.get(b"ip"), 3, "both increments kept");
        assert_eq!(mine.acquire(b"ip", 3), Outcome::Limited);
    }

    #[test]
    fn ten_thousand_sources_use_a_fixed_number_of_keys() {
        let store = Rc::new(MemoryStore::default());
        let c = counters(store.clone(), 64);
        let keys = store.len();
        for i in 0..10_000u32 {
            let ip = format!("127.0.{}.{}", i / 256, i % 256);
            let h = held(c.acquire(ip.as_bytes(), 1));
            assert!(c.release(h));
        }
        assert_eq!(
            store.len(),
            keys,
            "no key per source: closed sources' slots are reused"
        );
        // Sources with open connections keep their slots; a busy window shares its home slot.
        let open: Vec<Held> = (0..64u32)
            .map(|i| held(c.acquire(format!("10.0.0.{i}").as_bytes(), 5)))
            .collect();
        assert!(open.iter().any(|h| h.shared) || store.len() == keys);
        assert_eq!(store.len(), keys);
    }
}
