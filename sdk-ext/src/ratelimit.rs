//! Token buckets shared by every Envoy worker, kept in proxy-wasm shared data.
//!
//! The model is Envoy's `local_ratelimit`: a bucket holds at most `max_tokens`; every
//! `fill_interval` it gains `tokens_per_fill` (discrete fills, not a continuous rate); a request
//! takes one token (or `cost`) or is refused. Buckets are keyed by a *descriptor* (bytes the
//! caller builds: source IP, consumer, ...).
//!
//! **Sharing.** Each Envoy worker runs its own VM; a bucket per VM would admit `workers × R`.
//! Buckets therefore live in [`SharedStore`] (shared data, one map per `vm_id`) and every token
//! is taken by compare-and-swap: read slot and version, compute, write back only if the version
//! is unchanged, else retry (at most [`MAX_CAS_ATTEMPTS`] times, then
//! [`StoreError::Contended`]; callers decide whether that admits or refuses).
//!
//! **Bounded key count.** Shared data cannot delete keys (ABI 0.2.1), so the number of keys is
//! fixed: `max_keys` slots per bucket set, all created by [`TokenBuckets::prepare`] at configure
//! time (which also makes *every* later write a compare-and-swap: the ABI cannot
//! insert-if-absent, so a slot created lazily on the request path could lose a token to a racing
//! worker). A descriptor hashes (FNV-1a, 64 bit) to a home slot and probes [`PROBES`]
//! consecutive slots; each slot records the 64-bit fingerprint of the descriptor that owns it.
//! It uses, in order: the slot it already owns; else the first slot that is free or whose
//! owner's bucket has refilled to full (an idle bucket is indistinguishable from a new one, so
//! **eviction of idle buckets loses nothing**); else, when all probed slots are owned by active
//! buckets, it is **charged to the home slot's bucket** without taking it over
//! ([`Admission::shared_slot`] is set). That errs towards limiting (colliding clients share a
//! limit) rather than letting a client reset someone's bucket by evicting it. Size `max_keys`
//! well above the number of descriptors active within one refill time.
//!
//! Memory: each slot is a 24-byte value plus Envoy's per-entry overhead (about 150 bytes in
//! all), for each bucket set, for the life of the `vm_id`.

use crate::config::ConfigError;
use crate::shared::{Clock, Services, SharedStore, StoreError};
use std::rc::Rc;
use std::time::Duration;

/// Slots probed per descriptor before it is charged to its home slot's bucket.
pub const PROBES: u32 = 4;
/// Compare-and-swap attempts per `take` before giving up with [`StoreError::Contended`].
pub const MAX_CAS_ATTEMPTS: u32 = 32;
/// Upper bound on `max_keys` (slots are created up front: 100,000 slots is about 15 MB).
pub const MAX_KEYS_LIMIT: u32 = 100_000;
/// Upper bound on `max_tokens`.
pub const MAX_TOKENS_LIMIT: u64 = 1_000_000_000;
/// Bounds on `fill_interval`.
pub const MIN_FILL_INTERVAL: Duration = Duration::from_millis(1);
pub const MAX_FILL_INTERVAL: Duration = Duration::from_secs(24 * 3600);

const SLOT_BYTES: usize = 24;

/// A validated bucket shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    pub max_tokens: u64,
    pub tokens_per_fill: u64,
    pub fill_interval_nanos: u64,
}

impl BucketSpec {
    /// Validate a bucket shape. Errors name the field (`max_tokens`, `tokens_per_fill`,
    /// `fill_interval`) relative to the caller's config object.
    pub fn new(
        max_tokens: u64,
        tokens_per_fill: Option<u64>,
        fill_interval: Duration,
    ) -> Result<Self, ConfigError> {
        if max_tokens == 0 || max_tokens > MAX_TOKENS_LIMIT {
            return Err(ConfigError::new(
                "max_tokens",
                format!("{max_tokens} is not between 1 and {MAX_TOKENS_LIMIT}"),
            ));
        }
        let per_fill = tokens_per_fill.unwrap_or(max_tokens);
        if per_fill == 0 || per_fill > max_tokens {
            return Err(ConfigError::new(
                "tokens_per_fill",
                format!("{per_fill} is not between 1 and max_tokens ({max_tokens})"),
            ));
        }
        if !(MIN_FILL_INTERVAL..=MAX_FILL_INTERVAL).contains(&fill_interval) {
            return Err(ConfigError::new(
                "fill_interval",
                format!("{fill_interval:?} is not between 1ms and 24h"),
            ));
        }
        Ok(Self {
            max_tokens,
            tokens_per_fill: per_fill,
            fill_interval_nanos: u64::try_from(fill_interval.as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

/// Parse a duration written as an integer and a unit: `500ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 10s, 5m or 1h"))?;
    let secs = |mul: u64| n.checked_mul(mul).map(Duration::from_secs);
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        _ => None,
    }
    .ok_or_else(|| format!("`{text}` is not a duration like 500ms, 10s, 5m or 1h"))
}

/// The outcome of one [`TokenBuckets::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// A token was taken.
    pub allowed: bool,
    /// The bucket's `max_tokens`.
    pub limit: u64,
    /// Tokens left after this request.
    pub remaining: u64,
    /// Nanoseconds until the next fill.
    pub reset_nanos: u64,
    /// The descriptor was charged to another descriptor's bucket (all probed slots were busy).
    pub shared_slot: bool,
}

impl Admission {
    /// Seconds until the next fill, rounded up (at least 1 while a fill is pending).
    pub fn reset_secs(&self) -> u64 {
        self.reset_nanos.div_ceil(1_000_000_000)
    }

    /// Headers for a refusal: `retry-after` (RFC 9110) and the IETF draft's `ratelimit-limit`,
    /// `ratelimit-remaining`, `ratelimit-reset` (seconds), as Envoy's local_ratelimit sends.
    pub fn headers(&self) -> Vec<(String, String)> {
        let reset = self.reset_secs().to_string();
        vec![
            ("retry-after".into(), reset.clone()),
            ("ratelimit-limit".into(), self.limit.to_string()),
            ("ratelimit-remaining".into(), self.remaining.to_string()),
            ("ratelimit-reset".into(), reset),
        ]
    }
}

/// One slot: owner fingerprint (0 = free), tokens, time of the last fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    owner: u64,
    tokens: u64,
    last_fill: u64,
}

impl Slot {
    const FREE: Slot = Slot {
        owner: 0,
        tokens: 0,
        last_fill: 0,
    };

    fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut out = [0u8; SLOT_BYTES];
        out[..8].copy_from_slice(&self.owner.to_le_bytes());
        out[8..16].copy_from_slice(&self.tokens.to_le_bytes());
        out[16..].copy_from_slice(&self.last_fill.to_le_bytes());
        out
    }

    /// Anything that is not a slot (another writer's data, a future layout) reads as free.
    fn decode(bytes: &[u8]) -> Slot {
        let word = |i: usize| {
            bytes
                .get(i * 8..i * 8 + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        };
        match (bytes.len(), word(0), word(1), word(2)) {
            (SLOT_BYTES, Some(owner), Some(tokens), Some(last_fill)) => Slot {
                owner,
                tokens,
                last_fill,
            },
            _ => Slot::FREE,
        }
    }

    /// The state at `now`: whole fill intervals since `last_fill` add tokens, capped at the
    /// maximum (which also applies a lowered `max_tokens` after a reconfiguration). A clock that
    /// stepped back restarts the interval instead of refilling.
    fn refill(mut self, spec: &BucketSpec, now: u64) -> Slot {
        self.tokens = self.tokens.min(spec.max_tokens);
        if now < self.last_fill {
            self.last_fill = now;
            return self;
        }
        let fills = (now - self.last_fill) / spec.fill_interval_nanos;
        if fills > 0 {
            self.tokens = self
                .tokens
                .saturating_add(fills.saturating_mul(spec.tokens_per_fill))
                .min(spec.max_tokens);
            self.last_fill = self
                .last_fill
                .saturating_add(fills.saturating_mul(spec.fill_interval_nanos));
        }
        self
    }
}

/// FNV-1a, 64 bit, never 0 (0 marks a free slot). Stable across VMs and builds, which the
/// slot layout needs (every worker must find the same slot).
pub fn fingerprint(descriptor: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in descriptor {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

/// A set of buckets with one shape, keyed by descriptor, in slots `{namespace}/{index}`.
pub struct TokenBuckets {
    namespace: String,
    spec: BucketSpec,
    max_keys: u32,
    store: Rc<dyn SharedStore>,
    clock: Rc<dyn Clock>,
}

impl std::fmt::Debug for TokenBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBuckets")
            .field("namespace", &self.namespace)
            .field("spec", &self.spec)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl TokenBuckets {
    /// Buckets named `namespace` (e.g. `policy/rule/api`; two configurations using the same
    /// namespace in one `vm_id` share buckets). `max_keys` must be between 1 and
    /// [`MAX_KEYS_LIMIT`] (errors name `max_keys`).
    pub fn new(
        namespace: &str,
        spec: BucketSpec,
        max_keys: u32,
        services: &Services,
    ) -> Result<Self, ConfigError> {
        if max_keys == 0 || max_keys > MAX_KEYS_LIMIT {
            return Err(ConfigError::new(
                "max_keys",
                format!("{max_keys} is not between 1 and {MAX_KEYS_LIMIT}"),
            ));
        }
        Ok(Self {
            namespace: namespace.to_string(),
            spec,
            max_keys,
            store: Rc::clone(&services.shared),
            clock: Rc::clone(&services.clock),
        })
    }

    pub fn spec(&self) -> &BucketSpec {
        &self.spec
    }

    pub fn max_keys(&self) -> u32 {
        self.max_keys
    }

    fn slot_key(&self, index: u64) -> String {
        format!("{}/{index}", self.namespace)
    }

    /// Create every slot that does not exist yet (existing buckets keep their state across
    /// reconfigurations). Call at configure time: Envoy configures the main thread's VM before
    /// workers serve, so slots exist before any request. A marker key records that it was
    /// done, so each further VM pays one lookup.
    pub fn prepare(&self) -> Result<(), StoreError> {
        let marker = format!("{}/slots", self.namespace);
        let want = self.max_keys.to_string();
        if let Some((v, _)) = self.store.get(&marker)? {
            if v == want.as_bytes() {
                return Ok(());
            }
        }
        for index in 0..u64::from(self.max_keys) {
            let key = self.slot_key(index);
            if self.store.get(&key)?.is_none() {
                self.store.set(&key, &Slot::FREE.encode(), None)?;
            }
        }
        self.store.set(&marker, want.as_bytes(), None)
    }

    /// Take `cost` tokens from the bucket of `descriptor`.
    pub fn take(&self, descriptor: &[u8], cost: u64) -> Result<Admission, StoreError> {
        let fp = fingerprint(descriptor);
        let keys = u64::from(self.max_keys);
        let home = fp % keys;
        let probes = u64::from(PROBES.min(self.max_keys));
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = self.clock.now_nanos();
            let mut chosen = None;
            let mut fallback = None;
            for i in 0..probes {
                let key = self.slot_key((home + i) % keys);
                let (stored, cas) = match self.store.get(&key)? {
                    Some((bytes, cas)) => (Slot::decode(&bytes), Some(cas)),
                    None => (Slot::FREE, None),
                };
                let now_state = stored.refill(&self.spec, now);
                if stored.owner == fp {
                    chosen = Some((key, now_state, cas, false));
                    break;
                }
                if stored.owner == 0 || now_state.tokens >= self.spec.max_tokens {
                    let fresh = Slot {
                        owner: fp,
                        tokens: self.spec.max_tokens,
                        last_fill: now,
                    };
                    chosen = Some((key, fresh, cas, false));
                    break;
                }
                if fallback.is_none() {
                    fallback = Some((key, now_state, cas, true));
                }
            }
            let Some((key, mut slot, cas, shared)) = chosen.or(fallback) else {
                return Err(StoreError::Host("no slot probed".into()));
            };
            let allowed = slot.tokens >= cost;
            if allowed {
                slot.tokens -= cost;
            }
            let admission = Admission {
                allowed,
                limit: self.spec.max_tokens,
                remaining: slot.tokens,
                reset_nanos: self
                    .spec
                    .fill_interval_nanos
                    .saturating_sub(now.saturating_sub(slot.last_fill)),
                shared_slot: shared,
            };
            if !allowed {
                // Nothing to write: the refill is a pure function of the stored state.
                return Ok(admission);
            }
            match self.store.set(&key, &slot.encode(), cas) {
                Ok(()) => return Ok(admission),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contended(MAX_CAS_ATTEMPTS))
    }
}

#[cfg(test)]
#[path = "ratelimit_tests.rs"]
mod tests;
