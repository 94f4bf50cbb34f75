//! Token buckets shared by every Envoy worker, kept in proxy-wasm shared data, in a bounded
//! table of slots ([`SlotTable`]) that per-source connection counters
//! ([`crate::conn_limit::SlotCounters`]) use too.
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
//! **Bounded memory.** Shared data cannot delete keys (ABI 0.2.1), so the number of keys is
//! fixed per table: a filter opens one [`SlotBudget`] (namespace `policy`, `tcp-guard`, ...) of
//! at most [`MAX_TOTAL_SLOTS`] slots, and each bucket set (a rate-limit rule) reserves a range of
//! it; a configuration asking for more in total is refused naming the field that went over.
//! Slots are `{namespace}/{index}`, created up front by [`SlotBudget::prepare`] (which also
//! makes *every* later write a compare-and-swap: the ABI cannot insert-if-absent, so a slot
//! created lazily on the request path could lose a token to a racing worker). Ranges are
//! positional and a bucket set's identity (its rule's name) only enters the fingerprint, so
//! renaming, reordering or removing rules reuses the same keys: the old owners' buckets refill,
//! count as idle, and are taken over. The keys ever created in a namespace are bounded by the
//! budget, for the life of the `vm_id`.
//!
//! **Slot choice.** A descriptor hashes (SipHash-2-4 keyed with a per-Envoy random seed, see
//! [`slot_seed`], so a client cannot compute descriptors that land on a victim's slot) to a
//! 64-bit fingerprint and a home slot, and probes [`PROBES`] consecutive slots of its range;
//! each slot records the fingerprint of the descriptor that owns it. It uses, in order: the
//! slot it already owns (anywhere in the probe window: a throttled client must not land on a
//! fresh bucket in an earlier slot that went idle); else the first slot that is free or idle
//! (a bucket refilled to full is indistinguishable from a new one, so **eviction of idle
//! buckets loses nothing**); else, when all probed slots are owned by active buckets, it is
//! **charged to the home slot's bucket** without taking it over ([`Admission::shared_slot`] is
//! set). That errs towards limiting (colliding clients share a limit) rather than letting a
//! client reset someone's bucket by evicting it. Size `max_keys` well above the number of
//! descriptors active within one refill time.
//!
//! **Clock steps.** A clock that stepped back restarts the fill interval at the new time; the
//! restarted time is written back even when the request is refused, so the bucket refills one
//! interval later (and `retry-after` says so) instead of staying empty until the old time.
//!
//! Memory: each slot is a 24-byte value plus Envoy's per-entry overhead (about 150 bytes in
//! all), for the life of the `vm_id`.

use crate::config::{ConfigError, FromJson, Node, Object};
use crate::shared::{Clock, Services, SharedStore, StoreError};
use std::rc::Rc;
use std::time::Duration;

/// Slots probed per descriptor before it is charged to its home slot's bucket.
pub const PROBES: u32 = 4;
/// Compare-and-swap attempts per `take` before giving up with [`StoreError::Contended`].
pub const MAX_CAS_ATTEMPTS: u32 = 32;
/// Upper bound on `max_keys` (slots are created up front: 100,000 slots is about 15 MB).
pub const MAX_KEYS_LIMIT: u32 = 100_000;
/// Upper bound on the slots of one [`SlotBudget`] (one filter's namespace), all bucket sets and
/// counters together: about 15 MB of shared data.
pub const MAX_TOTAL_SLOTS: u32 = 100_000;
/// Shared-data key of the slot hash seed (one per `vm_id`, i.e. per Envoy and plugin VM group).
pub const SEED_KEY: &str = "sdk-ext/slot-seed";
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
                format!(
                    "{} ms is not between 1ms and 24h",
                    u64::try_from(fill_interval.as_millis()).unwrap_or(u64::MAX)
                ),
            ));
        }
        Ok(Self {
            max_tokens,
            tokens_per_fill: per_fill,
            fill_interval_nanos: u64::try_from(fill_interval.as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

/// Default `max_keys` of a bucket set.
pub const DEFAULT_MAX_KEYS: u32 = 10_000;

/// A token bucket set as users write it, the one form of every filter's local limits (policy's
/// `rate_limit` with scope `local` and its `global.local_first`, tcp-guard's `connection_rate`):
///
/// ```json
/// {"max_tokens": 100, "tokens_per_fill": 10, "fill_interval": "1s", "max_keys": 10000}
/// ```
///
/// `tokens_per_fill` defaults to `max_tokens` (a full refill every interval), `max_keys` to
/// [`DEFAULT_MAX_KEYS`]; `fill_interval` is `500ms`, `10s`, `5m` or `1h`, 1ms to 24h.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    /// Bucket size: the burst a key may spend at once.
    pub max_tokens: u64,
    /// Tokens added per fill.
    pub tokens_per_fill: Option<u64>,
    /// Fill period, as written.
    pub fill_interval: String,
    /// Distinct keys (descriptors) tracked at once: slots created at configure time.
    pub max_keys: u32,
}

impl BucketConfig {
    /// The members a bucket is written with.
    pub const FIELDS: [&'static str; 4] =
        ["max_tokens", "tokens_per_fill", "fill_interval", "max_keys"];

    /// Read the bucket's members from an object that may hold others too (policy's
    /// `rate_limit`); the caller has already refused members it does not know.
    pub fn read(o: &Object<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            max_tokens: o.req("max_tokens")?,
            tokens_per_fill: o.opt("tokens_per_fill")?,
            fill_interval: o.req("fill_interval")?,
            max_keys: o.or("max_keys", DEFAULT_MAX_KEYS)?,
        })
    }

    /// Validate the shape (errors name `max_tokens`, `tokens_per_fill` or `fill_interval`,
    /// relative to the bucket's object).
    pub fn spec(&self) -> Result<BucketSpec, ConfigError> {
        let fill = parse_duration(&self.fill_interval)
            .map_err(|r| ConfigError::new("fill_interval", r))?;
        BucketSpec::new(self.max_tokens, self.tokens_per_fill, fill)
    }

    /// Validate and reserve `max_keys` slots of `budget` for the set named `set` (see
    /// [`TokenBuckets::new`]); errors are relative to the bucket's object.
    pub fn compile(&self, budget: &mut SlotBudget, set: &str) -> Result<TokenBuckets, ConfigError> {
        let spec = self.spec()?;
        TokenBuckets::new(budget, set, spec, self.max_keys)
    }
}

impl FromJson for BucketConfig {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        Self::read(&node.object(&Self::FIELDS)?)
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
pub(crate) struct Slot {
    pub(crate) owner: u64,
    pub(crate) tokens: u64,
    pub(crate) last_fill: u64,
}

impl Slot {
    pub(crate) const FREE: Slot = Slot {
        owner: 0,
        tokens: 0,
        last_fill: 0,
    };

    pub(crate) fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut out = [0u8; SLOT_BYTES];
        out[..8].copy_from_slice(&self.owner.to_le_bytes());
        out[8..16].copy_from_slice(&self.tokens.to_le_bytes());
        out[16..].copy_from_slice(&self.last_fill.to_le_bytes());
        out
    }

    /// Anything that is not a slot (another writer's data, a future layout) reads as free.
    pub(crate) fn decode(bytes: &[u8]) -> Slot {
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

/// The key of the slot hash: two random words, the same for every worker.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SlotSeed(pub u64, pub u64);

impl std::fmt::Debug for SlotSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlotSeed(..)")
    }
}

impl SlotSeed {
    /// A fresh random seed: the host's randomness (WASI `random_get`, through std's
    /// `RandomState`) mixed with the clock.
    pub fn random(clock: &dyn Clock) -> SlotSeed {
        use std::hash::{BuildHasher, Hasher};
        let state = std::collections::hash_map::RandomState::new();
        let word = |salt: u64| {
            let mut h = state.build_hasher();
            h.write_u64(salt);
            h.write_u64(clock.now_nanos());
            h.finish()
        };
        SlotSeed(word(1), word(2))
    }

    fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.0.to_le_bytes());
        out[8..].copy_from_slice(&self.1.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<SlotSeed> {
        let a = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let b = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        (bytes.len() == 16).then_some(SlotSeed(a, b))
    }

    /// The keyed fingerprint of `descriptor` in the bucket set `set` (SipHash-2-4), never 0
    /// (0 marks a free slot).
    pub fn fingerprint(&self, set: &str, descriptor: &[u8]) -> u64 {
        use std::hash::Hasher;
        #[allow(deprecated)] // SipHasher is deprecated for HashMap use, not as a keyed PRF.
        let mut h = std::hash::SipHasher::new_with_keys(self.0, self.1);
        h.write(set.as_bytes());
        h.write_u8(0xff);
        h.write(descriptor);
        h.finish().max(1)
    }
}

/// The seed every worker keys its slot hash with, from shared data: read it, or (first VM
/// ever for this `vm_id`) create it. Shared data cannot insert-if-absent (a `set` of a missing
/// key always succeeds), so the candidate is written and the stored value read back and used:
/// of two VMs racing here both adopt the later write, unless one read it back before the other
/// wrote. Envoy configures the main thread's VM before any worker VM, so in practice the seed
/// is created once, there, before any request. An unreadable value is replaced by
/// compare-and-swap.
pub fn slot_seed(store: &dyn SharedStore, clock: &dyn Clock) -> Result<SlotSeed, StoreError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let cas = match store.get(SEED_KEY)? {
            Some((bytes, cas)) => match SlotSeed::decode(&bytes) {
                Some(seed) => return Ok(seed),
                None => Some(cas),
            },
            None => None,
        };
        match store.set(SEED_KEY, &SlotSeed::random(clock).encode(), cas) {
            Ok(()) | Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Contended(MAX_CAS_ATTEMPTS))
}

/// One filter's slots: a namespace in shared data, a total budget, the seed. Bucket sets and
/// counters reserve ranges of it at configure time ([`SlotBudget::reserve`]); then
/// [`SlotBudget::prepare`] creates the slots.
pub struct SlotBudget {
    namespace: String,
    limit: u32,
    used: u32,
    seed: SlotSeed,
    services: Services,
}

impl std::fmt::Debug for SlotBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotBudget")
            .field("namespace", &self.namespace)
            .field("limit", &self.limit)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// A reserved range of a [`SlotBudget`], with what a user of it needs.
#[derive(Clone)]
pub struct SlotTable {
    namespace: Rc<str>,
    /// Identity of the bucket set (a rule's name): part of every fingerprint.
    set: String,
    base: u64,
    len: u64,
    seed: SlotSeed,
    store: Rc<dyn SharedStore>,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable")
            .field("namespace", &self.namespace)
            .field("set", &self.set)
            .field("base", &self.base)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SlotBudget {
    /// The budget of `namespace` (e.g. `policy`), at most `limit` slots (capped at
    /// [`MAX_TOTAL_SLOTS`]), keyed with the shared [`slot_seed`].
    pub fn new(namespace: &str, limit: u32, services: &Services) -> Result<Self, ConfigError> {
        let seed = slot_seed(services.shared.as_ref(), services.clock.as_ref())
            .map_err(|e| ConfigError::new("", format!("cannot read the slot seed: {e}")))?;
        Ok(Self {
            namespace: namespace.to_string(),
            limit: limit.min(MAX_TOTAL_SLOTS),
            used: 0,
            seed,
            services: services.clone(),
        })
    }

    /// Slots reserved so far.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Reserve `n` slots (1 to [`MAX_KEYS_LIMIT`]) for the set named `set`. Errors are at
    /// `max_keys` (the caller places them) and say how far past the total budget it would go.
    pub fn reserve(&mut self, set: &str, n: u32) -> Result<SlotTable, ConfigError> {
        if n == 0 || n > MAX_KEYS_LIMIT {
            return Err(ConfigError::new(
                "max_keys",
                format!("{n} is not between 1 and {MAX_KEYS_LIMIT}"),
            ));
        }
        let total = u64::from(self.used) + u64::from(n);
        if total > u64::from(self.limit) {
            return Err(ConfigError::new(
                "max_keys",
                format!(
                    "{n} more slots would make {total} in all for `{}`, over the total budget of \
                     {} (the sizes of all its rate limits and counters add up; lower them)",
                    self.namespace, self.limit
                ),
            ));
        }
        let base = u64::from(self.used);
        self.used = u32::try_from(total).unwrap_or(u32::MAX);
        Ok(SlotTable {
            namespace: Rc::from(self.namespace.as_str()),
            set: set.to_string(),
            base,
            len: u64::from(n),
            seed: self.seed,
            store: Rc::clone(&self.services.shared),
        })
    }

    /// Create every reserved slot that does not exist yet (existing ones keep their state
    /// across reconfigurations). Call at configure time, after the reservations: Envoy
    /// configures the main thread's VM before workers serve, so slots exist before any
    /// request. A marker key records how many slots exist, so each further VM pays one lookup.
    pub fn prepare(&self) -> Result<(), StoreError> {
        let store = &self.services.shared;
        let marker = format!("{}/slots", self.namespace);
        let created = match store.get(&marker)? {
            Some((v, _)) => std::str::from_utf8(&v)
                .ok()
                .and_then(|t| t.parse::<u32>().ok())
                .unwrap_or(0),
            None => 0,
        };
        if created >= self.used {
            return Ok(());
        }
        let free = Slot::FREE.encode();
        // One key buffer for every slot (the first VM creates up to `MAX_TOTAL_SLOTS`: an
        // allocation per key was a third of the bench policy's `on_configure`).
        let mut key = slot_key(&self.namespace, 0);
        let prefix = self.namespace.len() + 1;
        for index in u64::from(created)..u64::from(self.used) {
            key.truncate(prefix);
            crate::config::push_decimal(&mut key, index);
            if store.get(&key)?.is_none() {
                store.set(&key, &free, None)?;
            }
        }
        store.set(&marker, self.used.to_string().as_bytes(), None)
    }
}

fn slot_key(namespace: &str, index: u64) -> String {
    // Appends, not `format!` (once per slot at configure time, once per probe per request).
    let mut key = String::with_capacity(namespace.len() + 8);
    key.push_str(namespace);
    key.push('/');
    crate::config::push_decimal(&mut key, index);
    key
}

/// One probed slot as read.
pub(crate) struct Probed {
    pub(crate) key: String,
    pub(crate) index: u64,
    pub(crate) slot: Slot,
    pub(crate) cas: Option<u32>,
}

/// Which slot a descriptor uses.
pub(crate) enum Pick {
    /// It owns this slot.
    Own(Probed),
    /// Free or idle: take it over.
    Claim(Probed),
    /// Every probed slot is busy: charge the home slot without taking it over.
    Shared(Probed),
}

impl SlotTable {
    /// Slots in this range.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fingerprint of `descriptor` in this set.
    pub fn fingerprint(&self, descriptor: &[u8]) -> u64 {
        self.seed.fingerprint(&self.set, descriptor)
    }

    /// The home slot (offset in the range) of a fingerprint.
    pub fn home(&self, fp: u64) -> u64 {
        fp % self.len.max(1)
    }

    pub(crate) fn read(&self, offset: u64) -> Result<Probed, StoreError> {
        let index = self.base + offset % self.len.max(1);
        let key = slot_key(&self.namespace, index);
        let (slot, cas) = match self.store.get(&key)? {
            Some((bytes, cas)) => (Slot::decode(&bytes), Some(cas)),
            None => (Slot::FREE, None),
        };
        Ok(Probed {
            key,
            index,
            slot,
            cas,
        })
    }

    /// The slot at absolute `index` (as [`Probed::index`] gave it), for a later release.
    pub(crate) fn read_index(&self, index: u64) -> Result<Probed, StoreError> {
        self.read(index.saturating_sub(self.base))
    }

    pub(crate) fn write(&self, p: &Probed, slot: &Slot) -> Result<(), StoreError> {
        self.store.set(&p.key, &slot.encode(), p.cas)
    }

    /// Probe the window of `fp`: its own slot anywhere in the window first, then the first
    /// free or idle one (`idle` says which owned slots may be taken over), else the home slot,
    /// shared. Reading stops at the first never-used slot: a descriptor only ever moves past
    /// a slot that is owned, and owned slots never become free again, so its own slot cannot
    /// lie beyond a free one.
    pub(crate) fn pick(&self, fp: u64, idle: impl Fn(&Slot) -> bool) -> Result<Pick, StoreError> {
        let home = self.home(fp);
        let probes = u64::from(PROBES).min(self.len.max(1));
        let mut claim: Option<Probed> = None;
        let mut first: Option<Probed> = None;
        for i in 0..probes {
            let p = self.read(home + i)?;
            if p.slot.owner == fp {
                return Ok(Pick::Own(p));
            }
            let free = p.slot.owner == 0;
            if claim.is_none() && (free || idle(&p.slot)) {
                claim = Some(p);
            } else if first.is_none() && i == 0 {
                first = Some(p);
            }
            if free {
                break;
            }
        }
        match (claim, first) {
            (Some(p), _) => Ok(Pick::Claim(p)),
            (None, Some(p)) => Ok(Pick::Shared(p)),
            (None, None) => Err(StoreError::Host("no slot probed".into())),
        }
    }
}

/// Most tokens one VM takes from a shared bucket ahead of its requests
/// ([`TokenBuckets::take_leased`]).
pub const LEASE_MAX: u64 = 32;
/// A lease is at most this fraction (1/N) of the tokens the bucket holds after the request that
/// takes it: a bucket with fewer than `2 * LEASE_FRACTION` tokens left is never leased from, so
/// small limits stay exact request by request.
pub const LEASE_FRACTION: u64 = 64;
/// Lease entries per bucket set and VM: at most this many descriptors hold a lease at once.
pub const LEASE_SLOTS: usize = 64;
const _: () = assert!(LEASE_SLOTS == 64, "the home entry is the hash's top 6 bits");
/// Entries a descriptor may use, from its home entry on (linear probing): its own entry
/// anywhere in the window, else the first one holding no live lease. A descriptor whose
/// window holds only other descriptors' live leases takes no lease (every one of its requests
/// takes from the shared bucket, exact; no live lease is evicted). With 20 descriptors
/// spread over 64 entries that happens to ~1 in 25,000 (with one entry per descriptor, to ~1
/// in 7, which kept ~27% of the bench suite's requests on the shared bucket).
pub const LEASE_PROBES: usize = 8;
/// Longest descriptor that may hold a lease: entries keep the descriptor itself (so a
/// request served from a lease is matched byte for byte, without its fingerprint), and this
/// bounds their memory at `LEASE_SLOTS` x 256 bytes per bucket set and VM. Longer descriptors
/// always take from the shared bucket.
pub const LEASE_KEY_MAX: usize = 256;

/// Tokens this VM took from a descriptor's shared bucket and has not spent yet: valid from
/// `since` (the clock when taken) until `until` (the bucket's next fill).
#[derive(Debug, Clone, Copy, Default)]
struct Grant {
    tokens: u64,
    /// What a local spend reports as `remaining`: the shared bucket's tokens after the request
    /// that took the lease (the lease included, as unspent tokens are this client's to use),
    /// less what this VM spent from the lease since: the figure `take` would have reported
    /// had no other worker taken from the bucket meanwhile.
    remaining: u64,
    since: u64,
    until: u64,
}

impl Grant {
    fn live(&self, now: u64) -> bool {
        self.tokens > 0 && now >= self.since && now < self.until
    }
}

/// A lease entry: the descriptor it was taken for (and its [`TokenBuckets::lease_hash`],
/// compared first, so a probe past other descriptors' entries reads a word each) and what is
/// left of it.
#[derive(Debug, Clone, Default)]
struct Lease {
    hash: u64,
    key: Vec<u8>,
    grant: Grant,
}

/// A set of buckets with one shape, keyed by descriptor, in a [`SlotTable`].
pub struct TokenBuckets {
    table: SlotTable,
    spec: BucketSpec,
    clock: Rc<dyn Clock>,
    /// This VM's leases ([`TokenBuckets::take_leased`]); empty until the first one.
    leases: std::cell::RefCell<Vec<Lease>>,
    /// Key of the lease table's home hash, set with the table: a fingerprint, so the cheap
    /// hash over it reveals nothing of the slot seed.
    lease_key: std::cell::Cell<u64>,
}

impl std::fmt::Debug for TokenBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBuckets")
            .field("table", &self.table)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl TokenBuckets {
    /// Buckets of shape `spec` in `max_keys` slots reserved from `budget`, for the set named
    /// `set` (a rule's name: the same name in a later configuration finds the same buckets;
    /// a new name starts fresh and the old owners' slots are taken over once idle).
    /// `max_keys` must be between 1 and [`MAX_KEYS_LIMIT`] and fit the budget (errors name
    /// `max_keys`). Call [`SlotBudget::prepare`] once every set is reserved.
    pub fn new(
        budget: &mut SlotBudget,
        set: &str,
        spec: BucketSpec,
        max_keys: u32,
    ) -> Result<Self, ConfigError> {
        let table = budget.reserve(set, max_keys)?;
        Ok(Self {
            lease_key: std::cell::Cell::new(0),
            table,
            spec,
            clock: Rc::clone(&budget.services.clock),
            leases: std::cell::RefCell::new(Vec::new()),
        })
    }

    pub fn spec(&self) -> &BucketSpec {
        &self.spec
    }

    pub fn max_keys(&self) -> u32 {
        u32::try_from(self.table.len()).unwrap_or(u32::MAX)
    }

    pub fn table(&self) -> &SlotTable {
        &self.table
    }

    /// Take `cost` tokens from the bucket of `descriptor`.
    pub fn take(&self, descriptor: &[u8], cost: u64) -> Result<Admission, StoreError> {
        let fp = self.table.fingerprint(descriptor);
        self.take_shared(fp, cost, false, self.clock.now_nanos())
            .map(|(a, _)| a)
    }

    /// [`TokenBuckets::take`], served where it can be from tokens this VM took from the shared
    /// bucket ahead of time (a *lease*), without the shared-data read and compare-and-swap
    /// write (about 1.1 us of Envoy CPU per request, bench/README.md "Host calls: what each
    /// costs in Envoy").
    ///
    /// When a request takes from the shared bucket and is admitted, it also takes up to
    /// [`LEASE_MAX`] more tokens, at most 1/[`LEASE_FRACTION`] of what the bucket holds after
    /// it (none from a bucket left with fewer than `2 * LEASE_FRACTION`, nor from a slot shared
    /// with another descriptor). The next requests of that descriptor on this VM spend them
    /// locally until they run out or the bucket's fill interval ends, when the unspent ones
    /// are dropped.
    ///
    /// **Guarantee.** Every admission is paid for by a token taken from the shared bucket in
    /// the same fill interval, so no more requests are admitted in an interval than the
    /// bucket allows: the limit is never exceeded. The error is one-sided: tokens leased but
    /// unspent when the interval ends are lost, at most one lease (`min(LEASE_MAX,
    /// tokens / LEASE_FRACTION)`) per VM (worker) and descriptor per interval, so a client can
    /// be refused that many requests early. Refusals always come from the shared bucket, so
    /// their headers (`ratelimit-remaining`, `retry-after`) are exact. A clock step back drops
    /// the lease.
    pub fn take_leased(&self, descriptor: &[u8], cost: u64) -> Result<Admission, StoreError> {
        let now = self.clock.now_nanos();
        let mut leases = self.lease_table();
        // The descriptor's entry: (index, whether it holds the descriptor, hash).
        let mut entry = None;
        if descriptor.len() <= LEASE_KEY_MAX {
            let hash = self.lease_hash(descriptor);
            let home = (hash >> 58) as usize;
            // Bounded by the table's length, which the compiler cannot know: a loop of a
            // constant 8 was unrolled into 4 KB of module.
            let len = leases.len();
            for i in 0..LEASE_PROBES.min(len) {
                let e = (home + i) % len;
                let Some(l) = leases.get(e) else { break };
                if l.hash == hash && l.key == descriptor {
                    entry = Some((e, true, hash));
                    break;
                }
                if entry.is_none() && !l.grant.live(now) {
                    entry = Some((e, false, hash));
                }
            }
        }
        if let Some((e, true, _)) = entry {
            if let Some(l) = leases.get_mut(e) {
                let g = &mut l.grant;
                if g.live(now) && g.tokens >= cost {
                    g.tokens -= cost;
                    g.remaining = g.remaining.saturating_sub(cost);
                    return Ok(Admission {
                        allowed: true,
                        limit: self.spec.max_tokens,
                        remaining: g.remaining,
                        reset_nanos: g.until - now,
                        shared_slot: false,
                    });
                }
            }
        }
        let fp = self.table.fingerprint(descriptor);
        let (admission, lease) = self.take_shared(fp, cost, entry.is_some(), now)?;
        if let Some((l, own, hash)) = entry.and_then(|(e, o, h)| Some((leases.get_mut(e)?, o, h))) {
            if !own {
                l.hash = hash;
                l.key.clear();
                l.key.extend_from_slice(descriptor);
            }
            l.grant = lease.unwrap_or_default();
        }
        Ok(admission)
    }

    /// The lease table, made (with its hash key) on first use.
    fn lease_table(&self) -> std::cell::RefMut<'_, Vec<Lease>> {
        let mut leases = self.leases.borrow_mut();
        if leases.is_empty() {
            // A count the compiler cannot see: it unrolled the 64 default entries into 3 KB
            // of stores.
            leases.resize_with(std::hint::black_box(LEASE_SLOTS), Lease::default);
            self.lease_key.set(self.table.fingerprint(b"lease"));
        }
        leases
    }

    /// The lease-table hash of `descriptor`: each byte mixed in by a multiply with a 64-bit
    /// odd constant (Fibonacci hashing), keyed with `lease_key`. Its top 6 bits are the home
    /// entry (a multiply carries every bit upwards only; FNV-1a's prime, `2^40 + 0x1b3`, left
    /// descriptors that differ in one digit on one home entry).
    fn lease_hash(&self, descriptor: &[u8]) -> u64 {
        let mut h = self.lease_key.get();
        for &b in descriptor {
            h = (h ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        h
    }

    /// The home entry of `descriptor` in the lease table.
    #[cfg(test)]
    fn lease_home(&self, descriptor: &[u8]) -> usize {
        (self.lease_hash(descriptor) >> 58) as usize
    }

    /// One take from the shared bucket of fingerprint `fp`; with `lease`, an admitted request
    /// on the descriptor's own slot also takes the lease [`TokenBuckets::take_leased`]
    /// describes, returned for this VM to spend. `now` is the clock for the first attempt (a
    /// retry after a compare-and-swap conflict reads it again).
    fn take_shared(
        &self,
        fp: u64,
        cost: u64,
        lease: bool,
        mut now: u64,
    ) -> Result<(Admission, Option<Grant>), StoreError> {
        let spec = self.spec;
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if attempt > 0 {
                now = self.clock.now_nanos();
            }
            let idle = |s: &Slot| s.refill(&spec, now).tokens >= spec.max_tokens;
            let (probed, mut slot, shared) = match self.table.pick(fp, idle)? {
                Pick::Own(p) => {
                    let s = p.slot.refill(&spec, now);
                    (p, s, false)
                }
                Pick::Claim(p) => {
                    let fresh = Slot {
                        owner: fp,
                        tokens: spec.max_tokens,
                        last_fill: now,
                    };
                    (p, fresh, false)
                }
                Pick::Shared(p) => {
                    let s = p.slot.refill(&spec, now);
                    (p, s, true)
                }
            };
            let allowed = slot.tokens >= cost;
            let mut leased = None;
            if allowed {
                slot.tokens -= cost;
            }
            // What this request leaves, before a lease: the lease is this VM's, not spent yet.
            let remaining = slot.tokens;
            if allowed {
                let extra = if lease && !shared {
                    (slot.tokens / LEASE_FRACTION).min(LEASE_MAX)
                } else {
                    0
                };
                if extra > 1 {
                    slot.tokens -= extra;
                    leased = Some(Grant {
                        tokens: extra,
                        remaining,
                        since: now,
                        until: slot.last_fill.saturating_add(spec.fill_interval_nanos),
                    });
                }
            }
            let admission = Admission {
                allowed,
                limit: spec.max_tokens,
                remaining,
                reset_nanos: spec
                    .fill_interval_nanos
                    .saturating_sub(now.saturating_sub(slot.last_fill)),
                shared_slot: shared,
            };
            // A refusal writes only when the stored state is stale in a way the next reader
            // could not recompute: a restarted fill time after the clock stepped back (the
            // stored `last_fill` would stay in the future and keep the bucket empty).
            let write = allowed || slot.last_fill < probed.slot.last_fill;
            if !write {
                return Ok((admission, None));
            }
            match self.table.write(&probed, &slot) {
                Ok(()) => return Ok((admission, leased)),
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
