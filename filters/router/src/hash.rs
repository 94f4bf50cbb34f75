//! The stable hash behind sticky splits, and the per-request randomness behind the fallback.
//!
//! **Stability is a compatibility promise.** A key's bucket is
//! `fmix64(fnv1a64(salt ++ 0x00 ++ key))` reduced to `0..BUCKETS` by multiply-shift
//! (`(h * BUCKETS) >> 64`). FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`) has no seed, so every worker, every VM and every restart computes the same
//! bucket; the MurmurHash3 `fmix64` finaliser spreads FNV's weak high bits so that sequential
//! keys (`user-1`, `user-2`, ...) land uniformly. Changing any of this reassigns users, which
//! is why the unit tests pin known outputs.
//!
//! Buckets are basis points (10,000 per 100 %), so weights resolve to 0.01 %. Weight ranges are
//! laid out in config order from bucket 0: raising the first weight from 10 % to 20 % keeps
//! every user already on it and only moves users over from the next entry.

use std::cell::Cell;

/// Buckets per 100 %: weights are expressed with two decimals of a percent.
pub const BUCKETS: u32 = 10_000;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of the concatenation of `parts`.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h = FNV_OFFSET;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// MurmurHash3's 64-bit finaliser: a bijection that makes every input bit affect every output
/// bit.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// `h` scaled to `0..BUCKETS` (multiply-shift: unbiased enough at 10^4 of 2^64, no division).
pub fn reduce(h: u64) -> u32 {
    let scaled = (u128::from(h) * u128::from(BUCKETS)) >> 64;
    // scaled < BUCKETS by construction.
    u32::try_from(scaled).unwrap_or(0)
}

/// The sticky bucket of `key` under `salt` (the rule's salt; empty by default).
pub fn bucket(salt: &str, key: &[u8]) -> u32 {
    reduce(fmix64(fnv1a64(&[salt.as_bytes(), &[0], key])))
}

/// A per-VM pseudo-random source for requests that carry no split key.
///
/// The filter logic cannot call the host, so randomness comes from the request: each draw mixes
/// a per-request `entropy` value (the hash of Envoy's `x-request-id`, a random UUID, or of the
/// request time) into a SplitMix64 sequence. The sequence alone is already uniform, so a request
/// without either still gets an evenly distributed (if predictable) bucket. Not for secrets.
#[derive(Debug, Default)]
pub struct Random {
    state: Cell<u64>,
}

impl Random {
    /// A bucket in `0..BUCKETS`.
    pub fn bucket(&self, entropy: u64) -> u32 {
        let s = self.state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.state.set(s);
        reduce(fmix64(s ^ entropy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
    }

    /// Pinned outputs (cross-checked with an independent Python implementation of the same
    /// formula): if this fails, every user of every deployed split would move.
    #[test]
    fn buckets_are_pinned() {
        let got: Vec<u32> = ["user-1", "user-2", "alice", ""]
            .iter()
            .map(|k| bucket("", k.as_bytes()))
            .collect();
        assert_eq!(got, PINNED);
        assert_ne!(bucket("exp-2", b"alice"), bucket("", b"alice"));
    }
    const PINNED: [u32; 4] = [5539, 6080, 8286, 7227];

    #[test]
    fn sequential_keys_spread_evenly() {
        // 100,000 sequential keys into 10 deciles: each within 3 % of 10,000.
        let mut deciles = [0u32; 10];
        for i in 0..100_000 {
            let b = bucket("", format!("user-{i}").as_bytes());
            deciles[(b / 1000) as usize] += 1;
        }
        for (i, n) in deciles.iter().enumerate() {
            assert!((9_700..=10_300).contains(n), "decile {i}: {n} of 100000");
        }
    }

    #[test]
    fn random_is_uniform_with_and_without_entropy() {
        let r = Random::default();
        let low = (0..20_000).filter(|_| r.bucket(0) < 1_000).count();
        assert!((1_800..=2_200).contains(&low), "{low} of 20000 below 10 %");
        let r = Random::default();
        let low = (0..20_000u64)
            .filter(|i| r.bucket(fnv1a64(&[&i.to_le_bytes()])) < 1_000)
            .count();
        assert!((1_800..=2_200).contains(&low), "{low} of 20000 below 10 %");
    }
}
