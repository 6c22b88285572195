//! The negative cache: token hashes a shared store said it does not have, so a token presented
//! again and again to a node that does not know it (a client retrying a revoked token in a
//! loop, a flood of one token) costs the store one query, not one per request.
//!
//! Invariant: an entry never refuses a valid token. A token reaches its client only after its
//! session row has committed (issuing and refreshing flush before they answer: the ceremonies,
//! recovery, `api::refresh`) and the store's lookup reads committed rows, so a hash the store
//! did not have when asked can become a valid token's only if a token with that hash is issued
//! later: for a fresh 32-byte random token, a chance of 2^-256. A token this node issued or
//! refreshed whose write has not committed yet is in this node's own table, which is asked
//! before this cache. Only a "no such row" answer is kept: not an error, and not an expired
//! row (whose removal is only queued).
//!
//! Entries expire after [`TTL_MS`] all the same. A revoked token's hash is dead forever, so this
//! costs a client that keeps retrying one query a minute per node; in exchange, whatever puts a
//! row in the store without handing its token out afterwards (`wsauthn migrate` into a
//! database nodes already serve, a restored backup) is refused here for at most that long.
//!
//! Bounded: [`SETS`] sets of [`WAYS`] entries, 4,096 hashes (an entry is the hash and a time, 48
//! bytes; with each set's lock, 200 KiB per node), allocated on the node's first miss (never on
//! one node). That holds the dead tokens of thousands of retrying clients at once; a flood of
//! distinct unknown tokens cannot be absorbed by any cache (each one is new), costs one query
//! each as it would without this one, and only evicts. A hash's set is chosen with a key of this
//! node's own, so a client cannot aim tokens at another's entries; a full set gives up its
//! oldest entry.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::TokenHash;
use crate::clock::Millis;

/// Entries per set: a hash shares its set with at most three others before one is evicted.
pub(super) const WAYS: usize = 4;
/// Sets (a power of two).
pub(super) const SETS: usize = 1024;
/// How long the store's "no such token" is believed.
pub(super) const TTL_MS: Millis = 60_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: TokenHash,
    at_ms: Millis,
}

impl Entry {
    fn is_live(&self, now: Millis) -> bool {
        now < self.at_ms.saturating_add(TTL_MS)
    }
}

type Set = [Option<Entry>; WAYS];

/// Hashes the store does not have, as of when it was asked.
pub(super) struct NegativeCache {
    sets: Box<[Mutex<Set>]>,
    key: RandomState,
}

impl NegativeCache {
    pub(super) fn new() -> Self {
        NegativeCache {
            sets: (0..SETS).map(|_| Mutex::new([None; WAYS])).collect(),
            key: RandomState::new(),
        }
    }

    fn set_of(&self, hash: &TokenHash) -> usize {
        // The low bits of a keyed hash; `SETS` is a power of two.
        (self.key.hash_one(hash) as usize) & (SETS - 1)
    }

    fn set(&self, hash: &TokenHash) -> MutexGuard<'_, Set> {
        self.sets[self.set_of(hash)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the store said, less than [`TTL_MS`] before `now`, that it does not have `hash`.
    pub(super) fn contains(&self, hash: &TokenHash, now: Millis) -> bool {
        self.set(hash)
            .iter()
            .flatten()
            .any(|e| e.hash == *hash && e.is_live(now))
    }

    /// Notes that the store has just said it does not have `hash`. It takes the place of an
    /// entry of the same hash, else of an empty or expired one, else of the set's oldest.
    pub(super) fn insert(&self, hash: TokenHash, now: Millis) {
        let mut set = self.set(&hash);
        let same = set.iter().position(|e| e.is_some_and(|e| e.hash == hash));
        let slot = same.unwrap_or_else(|| {
            // Empty slots first (time 0), then the oldest (expired ones are older than any live).
            (0..WAYS)
                .min_by_key(|&i| set[i].map_or(0, |e| e.at_ms))
                .unwrap_or(0)
        });
        set[slot] = Some(Entry { hash, at_ms: now });
    }

    /// How many hashes it holds, expired ones included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sets
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.iter().flatten().count()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u32) -> TokenHash {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&n.to_le_bytes());
        hash
    }

    #[test]
    fn a_missing_hash_is_remembered_until_its_entry_expires() {
        let cache = NegativeCache::new();
        let now = 1_000_000;
        assert!(!cache.contains(&hash(1), now));
        cache.insert(hash(1), now);
        assert!(cache.contains(&hash(1), now));
        assert!(!cache.contains(&hash(2), now), "only the hash asked about");
        assert!(cache.contains(&hash(1), now + TTL_MS - 1));
        assert!(!cache.contains(&hash(1), now + TTL_MS), "expired");
        cache.insert(hash(1), now + TTL_MS);
        assert!(cache.contains(&hash(1), now + TTL_MS), "asked again");
        assert_eq!(cache.len(), 1, "in the place of its expired entry");
    }

    #[test]
    fn a_full_set_gives_up_its_oldest_entry() {
        let cache = NegativeCache::new();
        let set = cache.set_of(&hash(0));
        let same_set: Vec<TokenHash> = (0..)
            .map(hash)
            .filter(|h| cache.set_of(h) == set)
            .take(WAYS + 1)
            .collect();
        for (i, h) in same_set.iter().enumerate() {
            cache.insert(*h, 1_000 + i as Millis);
        }
        let now = 1_000 + WAYS as Millis;
        assert!(!cache.contains(&same_set[0], now), "the oldest went");
        for h in &same_set[1..] {
            assert!(cache.contains(h, now));
        }
    }

    #[test]
    fn it_takes_the_200_kib_its_documentation_says() {
        let bytes = SETS * std::mem::size_of::<Mutex<Set>>();
        assert!(bytes <= 200 * 1024, "{bytes} bytes");
    }

    #[test]
    fn it_never_holds_more_than_its_sets_and_ways() {
        let cache = NegativeCache::new();
        for n in 0..(4 * SETS * WAYS) as u32 {
            cache.insert(hash(n), 1_000 + Millis::from(n));
            assert!(
                cache.contains(&hash(n), 1_000 + Millis::from(n)),
                "the newest stays"
            );
        }
        assert!(cache.len() <= SETS * WAYS, "{}", cache.len());
    }
}
