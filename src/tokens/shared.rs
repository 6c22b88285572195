//! The token table on a store several nodes share (PostgreSQL, docs/cluster.md): this node's
//! cache of the sessions in the store.
//!
//! Invariants:
//! - a hit costs what it costs on one node; a token this node has not seen costs one indexed
//!   query ([`TokenTable::prefetch`]) before the ordinary lookup, and is cached from then on;
//!   a token the store does not have is refused from the negative cache (`negative`, which says
//!   why that never refuses a valid token) without another query for a minute;
//! - sessions ended or refreshed on any node reach this one through the store's revocation feed
//!   ([`TokenTable::follow`]): an ended session ends here too (its sockets close with 4401), a
//!   replaced token leaves the cache while its session and sockets carry on;
//! - while the feed is unconfirmed (its connection down), [`TokenTable::lookup`] refuses every
//!   token, cached ones included: this node cannot know which were revoked meanwhile;
//! - a session idle on this node leaves only this node's cache (another may be using it); the
//!   store's last use, written at most once a minute per node and session, decides expiry.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::negative::NegativeCache;
use super::secret::{decode_hex_32, hash_token};
use super::{Session, SessionSignal, TokenHash, TokenTable};
use crate::events::{EndReason, Event};
use crate::protocol::UserView;
use crate::store::{Revoked, SessionRecord};

/// How long the feed's notes of revoked hashes are kept: far longer than a token query takes
/// (a slower one is not trusted, see [`TokenTable::prefetch`]).
const REVOKED_KEPT_MS: crate::clock::Millis = 60_000;

/// How this node's lookups of tokens in a shared store went, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreLookups {
    /// Tokens it had not cached that it asked the store about: one query each.
    pub queried: u64,
    /// Lookups the negative cache answered instead: the store had said it does not have them.
    pub negative_hits: u64,
}

impl TokenTable {
    /// Whether tokens can be confirmed: always on one node; on a shared store, while the
    /// revocation feed is up.
    pub fn confirmed(&self) -> bool {
        self.inner.feed.get().is_none_or(|feed| feed.confirmed())
    }

    /// Whether this table follows a shared store's revocation feed.
    pub fn is_shared(&self) -> bool {
        self.inner.feed.get().is_some()
    }

    /// Starts following the shared store's revocation log from `after` (read before the
    /// sessions were loaded) until `stop`. Does nothing on a store of one node.
    pub fn follow(&self, after: i64, stop: watch::Receiver<bool>) -> Option<crate::store::Feed> {
        let store = self.inner.store.as_ref().and_then(|s| s.as_postgres())?;
        let table = Arc::downgrade(&self.inner);
        let feed = store.follow_revocations(
            after,
            move |batch| {
                if let Some(inner) = table.upgrade() {
                    TokenTable { inner }.apply(batch);
                }
            },
            stop,
        );
        let _ = self.inner.feed.set(feed.clone());
        Some(feed)
    }

    /// Applies entries of the revocation log made on any node (this one's included: those
    /// find nothing left to do).
    fn apply(&self, batch: Vec<Revoked>) {
        let now = self.inner.clock.now_ms();
        for revoked in batch {
            // Noted before it is applied (see `TokenTable::prefetch`).
            self.inner.recently_revoked.insert(revoked.hash, now);
            if revoked.ended {
                self.end_here(&revoked.session, true);
                continue;
            }
            // A refresh elsewhere: the old token goes; the session stays, and takes the new
            // token's hash when that token is first shown here.
            self.inner.by_hash.remove(&revoked.hash);
        }
    }

    /// Ends a session another node ended, without touching the store (it is gone there); with
    /// `announce` false it only leaves the cache (nothing is bound to it yet).
    fn end_here(&self, session: &uuid::Uuid, announce: bool) {
        let Some((_, s)) = self.inner.by_id.remove(session) else {
            return;
        };
        let user = s.user.id;
        if let Some(mut ids) = self.inner.by_user.get_mut(&user) {
            ids.retain(|id| id != session);
        }
        self.inner.by_user.remove_if(&user, |_, ids| ids.is_empty());
        self.inner.by_hash.remove(&s.hash());
        if announce {
            s.sockets.send_replace(SessionSignal::ended());
            self.inner.events.emit(Event::SessionEnded {
                user,
                session: s.id,
                reason: EndReason::Revoked,
            });
        }
    }

    /// Whether [`TokenTable::prefetch`] would ask the store about `token`: a shared store, a
    /// well-formed token this node has not cached nor lately heard the store does not have,
    /// and a confirmed feed.
    pub fn needs_prefetch(&self, token: &str) -> bool {
        if !self.is_shared() || !self.confirmed() {
            return false;
        }
        decode_hex_32(token).is_some_and(|bytes| {
            let hash = hash_token(&bytes);
            !self.inner.by_hash.contains_key(&hash) && !self.known_missing(&hash)
        })
    }

    /// Whether the store said lately that it does not have `hash` (the negative cache); a
    /// yes counts as a lookup it answered.
    fn known_missing(&self, hash: &TokenHash) -> bool {
        let now = self.inner.clock.now_ms();
        let missing = self
            .inner
            .missing
            .get()
            .is_some_and(|m| m.contains(hash, now));
        if missing {
            self.inner.negative_hits.fetch_add(1, Ordering::Relaxed);
        }
        missing
    }

    /// This node's lookups in a shared store so far.
    pub fn store_lookups(&self) -> StoreLookups {
        StoreLookups {
            queried: self.inner.store_lookups.load(Ordering::Relaxed),
            negative_hits: self.inner.negative_hits.load(Ordering::Relaxed),
        }
    }

    /// On a shared store, makes sure a token this node has not seen is in the cache if the
    /// store has it (one query), so the [`TokenTable::lookup`] that follows decides; a token
    /// the store does not have goes in the negative cache. Does nothing for a cached,
    /// malformed, known missing or (on one node) any token, or while unconfirmed.
    pub async fn prefetch(&self, token: &str) {
        let Some(store) = self.inner.store.as_ref().filter(|s| s.is_shared()) else {
            return;
        };
        let Some(bytes) = decode_hex_32(token) else {
            return;
        };
        let hash = hash_token(&bytes);
        if self.inner.by_hash.contains_key(&hash) || !self.confirmed() || self.known_missing(&hash)
        {
            return;
        }
        let (Some(pg), Some(_following)) = (store.as_postgres(), self.inner.feed.get()) else {
            return;
        };
        self.inner.store_lookups.fetch_add(1, Ordering::Relaxed);
        let asked = self.inner.clock.now_ms();
        let found = match pg.session_by_hash(&hash).await {
            Ok(found) => found,
            Err(e) => {
                e.log("look a token up in the shared store");
                return;
            }
        };
        let Some((record, name, display_name)) = found else {
            let now = self.inner.clock.now_ms();
            self.inner
                .missing
                .get_or_init(NegativeCache::new)
                .insert(hash, now);
            return;
        };
        let now = self.inner.clock.now_ms();
        let idle = now.saturating_sub(record.last_used_ms) >= self.inner.idle_ms;
        if now >= record.expires_ms || idle {
            // Expired everywhere: out of the store, which tells every node.
            if let Err(e) = store.remove_session(&hash) {
                e.log("remove an expired session");
            }
            return;
        }
        let user = Arc::new(UserView {
            id: record.user_id,
            name,
            display_name,
        });
        let id = record.id;
        let fresh = self.adopt(hash, record, user);
        // A revocation the query did not see was applied before the adoption (it found
        // nothing to end) only if the feed noted its hash before the check below, since the
        // feed notes a hash before applying it; applied after, it finds the session. A query
        // slower than the notes are kept, or a feed lost meanwhile: nothing is known, the next
        // use asks again.
        let slow = self.inner.clock.now_ms().saturating_sub(asked) >= REVOKED_KEPT_MS / 2;
        if slow || !self.confirmed() || self.inner.recently_revoked.contains_key(&hash) {
            match fresh {
                true => self.end_here(&id, false),
                false => {
                    self.inner.by_hash.remove(&hash);
                }
            }
        }
    }

    /// Forgets revoked hashes noted longer ago than the notes are needed.
    pub(super) fn forget_old_revocations(&self, now: crate::clock::Millis) {
        self.inner
            .recently_revoked
            .retain(|_, at| now.saturating_sub(*at) < REVOKED_KEPT_MS);
    }

    /// Caches a session of the store under `hash`; false when this node knew it already (a
    /// refresh elsewhere: the known session takes the new token).
    fn adopt(&self, hash: super::TokenHash, record: SessionRecord, user: Arc<UserView>) -> bool {
        if let Some(existing) = self.inner.by_id.get(&record.id).map(|s| s.value().clone()) {
            let old = std::mem::replace(
                &mut *existing.hash.lock().unwrap_or_else(|e| e.into_inner()),
                hash,
            );
            if old != hash {
                self.inner.by_hash.remove(&old);
            }
            existing
                .expires_ms
                .fetch_max(record.expires_ms, Ordering::Relaxed);
            existing.sockets.send_replace(SessionSignal::Live {
                expires_ms: existing.expires_ms.load(Ordering::Relaxed),
            });
            self.inner.by_hash.insert(hash, existing);
            return false;
        }
        let session = Arc::new(Session::from_record(hash, record, user));
        self.inner.by_hash.insert(hash, session.clone());
        self.inner.by_id.insert(session.id, session.clone());
        self.index(&session);
        true
    }

    /// On a shared store, caches every live session of `user` the store has, so listing and
    /// revoking them here sees those opened on other nodes.
    pub async fn prefetch_user(&self, user: &UserView) {
        let Some(pg) = self.inner.store.as_ref().and_then(|s| s.as_postgres()) else {
            return;
        };
        if self.inner.feed.get().is_none() {
            return;
        }
        let asked = self.inner.clock.now_ms();
        let sessions = match pg.sessions_of(&user.id).await {
            Ok(sessions) => sessions,
            Err(e) => {
                e.log("list a user's sessions in the shared store");
                return;
            }
        };
        let now = self.inner.clock.now_ms();
        let view = Arc::new(user.clone());
        let mut adopted = Vec::new();
        for (hash, record) in sessions {
            if now < record.expires_ms && self.inner.by_hash.get(&hash).is_none() {
                let id = record.id;
                if self.adopt(hash, record, view.clone()) {
                    adopted.push((id, hash));
                }
            }
        }
        // As in `prefetch`: what the feed applied before an adoption it noted first.
        let slow = now.saturating_sub(asked) >= REVOKED_KEPT_MS / 2;
        let unsure = slow || !self.confirmed();
        for (id, hash) in &adopted {
            if unsure || self.inner.recently_revoked.contains_key(hash) {
                self.end_here(id, false);
            }
        }
    }
}
