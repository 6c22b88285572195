//! Bearer tokens and the sessions behind them: issue, look up, refresh, expire, revoke, persist,
//! and tell live sockets when their session changes.
//!
//! Invariants:
//! - A token is 32 bytes from the operating system's CSPRNG, shown to the client once as 64
//!   upper-case hex digits. Memory and disk keep only its SHA-256, so neither holds a usable
//!   token, and a lookup cannot leak the token through timing.
//! - A session has a stable public id; its token can be refreshed (the old one stops working at
//!   once, sockets bound to the session carry on) until the session ends.
//! - Every signed-in socket belongs to a session. A ceremony that hands out no token still opens
//!   one, *socket-only*: listed, expiring and revocable like any other, never written to disk,
//!   and ended when its socket closes or signs in again.
//! - A session records the passkey that opened it, so deleting the passkey can end it.
//! - A session ends at its absolute expiry (`issued or refreshed + lifetime`), when unused for the
//!   idle timeout (a socket bound to it counts as use while open), or when revoked. Ending it
//!   signals [`Ended`](SessionSignal::Ended) to every bound socket at once.
//! - With a store, every session is written through to sled keyed by its token hash, so a restart
//!   keeps people signed in. Last-use times are written at most once a minute per session.
//!   Revocations remove the session from disk before they return an `Ok`; callers that
//!   acknowledge them await [`Store::flush`] first, so a crash cannot bring a revoked token back.
//! - On a store shared by several nodes (PostgreSQL) the table is this node's cache: a token it
//!   has not seen is looked up in the store, revocations made elsewhere arrive by the store's
//!   feed, and while the feed is unconfirmed no token is accepted (see `shared`). A token the
//!   store said it does not have is refused without asking again for a minute (`negative`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::{Millis, SharedClock};
use crate::error::Error;
use crate::events::{Event, Events};
use crate::protocol::UserView;
use crate::store::{SessionRecord, Store};

/// How stale a persisted last-use time may get.
const PERSIST_LAST_USE_EVERY_MS: Millis = 60_000;

/// Where a session was created from, shown when its user lists their sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionMeta {
    pub user_agent: Option<String>,
    pub address: Option<IpAddr>,
    /// The passkey (credential id, base64url) whose sign-in opened the session.
    pub credential_id: Option<String>,
}

/// What a user's next session does when they have `limits.max_sessions_per_user` already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The oldest session ends (its sockets close with 4401).
    EndOldest,
    /// The new one is refused with `rate_limited`.
    Refuse,
}

/// What a valid token stands for.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub user: Arc<UserView>,
    pub session: Uuid,
    /// Absolute expiry, Unix seconds.
    pub expires_at: u64,
}

/// A session as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: u64,
    pub last_used_at: u64,
    pub expires_at: u64,
    pub user_agent: Option<String>,
    pub address: Option<IpAddr>,
    /// The passkey whose sign-in opened it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// True when no token was handed out: the session lives only as long as its socket.
    pub socket_only: bool,
    /// True for the session the request itself uses.
    pub current: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not 64 hex digits")]
    Malformed,
    #[error("the token is unknown, expired or revoked")]
    Invalid,
}

struct Session {
    id: Uuid,
    user: Arc<UserView>,
    /// The current token's hash; replaced on refresh.
    hash: Mutex<TokenHash>,
    created_ms: Millis,
    expires_ms: AtomicU64,
    last_used_ms: AtomicU64,
    persisted_last_used_ms: AtomicU64,
    meta: SessionMeta,
    /// No token was handed out (see the module's invariants); cleared when one is, by refresh.
    socket_only: AtomicBool,
    sockets: watch::Sender<SessionSignal>,
}

impl Session {
    fn is_expired(&self, now: Millis, idle_ms: Millis) -> bool {
        if now >= self.expires_ms.load(Ordering::Relaxed) {
            return true;
        }
        let idle = now.saturating_sub(self.last_used_ms.load(Ordering::Relaxed)) >= idle_ms;
        idle && self.sockets.receiver_count() == 0
    }

    fn hash(&self) -> TokenHash {
        *self.hash.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn info(&self) -> TokenInfo {
        TokenInfo {
            user: self.user.clone(),
            session: self.id,
            expires_at: self.expires_ms.load(Ordering::Relaxed) / 1000,
        }
    }

    fn record(&self) -> SessionRecord {
        SessionRecord {
            id: self.id,
            user_id: self.user.id,
            created_ms: self.created_ms,
            expires_ms: self.expires_ms.load(Ordering::Relaxed),
            last_used_ms: self.last_used_ms.load(Ordering::Relaxed),
            user_agent: self.meta.user_agent.clone(),
            address: self.meta.address,
            credential_id: self.meta.credential_id.clone(),
        }
    }

    fn is_socket_only(&self) -> bool {
        self.socket_only.load(Ordering::Acquire)
    }
}

/// The session table. Cheap to clone: clones share the table.
#[derive(Clone)]
pub struct TokenTable {
    inner: Arc<Inner>,
}

struct Inner {
    by_hash: DashMap<TokenHash, Arc<Session>>,
    by_id: DashMap<Uuid, Arc<Session>>,
    /// Each user's sessions, oldest first (new ones are pushed; a load sorts them), so per-user
    /// work does not scan every session and the cap finds the oldest without sorting.
    by_user: DashMap<Uuid, Vec<Uuid>>,
    /// At most this many sessions per user, and what happens to the next one.
    per_user: (usize, WhenFull),
    lifetime_ms: Millis,
    idle_ms: Millis,
    clock: SharedClock,
    store: Option<Store>,
    events: Events,
    /// Users deleted while the server runs (see [`TokenTable::forget_user`]).
    forgotten: DashMap<Uuid, ()>,
    /// On a shared store: the revocation feed; no token is accepted while it is unconfirmed
    /// (see `shared`).
    feed: std::sync::OnceLock<crate::store::Feed>,
    /// On a shared store: hashes it said it does not have; made on the first such answer.
    missing: std::sync::OnceLock<negative::NegativeCache>,
    /// Lookups of tokens in a shared store, and those the negative cache answered instead.
    store_lookups: AtomicU64,
    /// On a shared store: token hashes the revocation feed applied lately, with when (see
    /// `TokenTable::prefetch`).
    recently_revoked: DashMap<TokenHash, Millis>,
    negative_hits: AtomicU64,
}

impl TokenTable {
    pub fn new(
        lifetime_secs: u64,
        idle_secs: u64,
        clock: SharedClock,
        store: Option<Store>,
        events: Events,
    ) -> Self {
        TokenTable {
            inner: Arc::new(Inner {
                by_hash: DashMap::new(),
                by_id: DashMap::new(),
                by_user: DashMap::new(),
                per_user: (usize::MAX, WhenFull::EndOldest),
                lifetime_ms: lifetime_secs.saturating_mul(1000),
                idle_ms: idle_secs.saturating_mul(1000),
                clock,
                store,
                events,
                forgotten: DashMap::new(),
                feed: std::sync::OnceLock::new(),
                missing: std::sync::OnceLock::new(),
                store_lookups: AtomicU64::new(0),
                recently_revoked: DashMap::new(),
                negative_hits: AtomicU64::new(0),
            }),
        }
    }

    /// Caps each user's sessions at `max`; `when_full` says what the next one does.
    pub fn with_sessions_per_user(mut self, max: usize, when_full: WhenFull) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.per_user = (max.max(1), when_full);
        }
        self
    }

    /// Starts a session for `user` and returns its token.
    pub fn issue(
        &self,
        user: Arc<UserView>,
        meta: SessionMeta,
    ) -> Result<(IssuedToken, TokenInfo), Error> {
        self.open(user, meta, false, self.inner.lifetime_ms)
    }

    /// Starts a socket-only session for `user`: its token is never shown to anyone, it is not
    /// written to disk, and it ends when [`TokenTable::end_socket_session`] is called for it.
    pub fn issue_for_socket(
        &self,
        user: Arc<UserView>,
        meta: SessionMeta,
    ) -> Result<TokenInfo, Error> {
        Ok(self.open(user, meta, true, self.inner.lifetime_ms)?.1)
    }

    /// A socket-only session that lasts `lifetime_ms` at most (less than the configured
    /// lifetime: a recovery code's short grant). At its end its socket closes with 4401.
    pub fn issue_for_socket_until(
        &self,
        user: Arc<UserView>,
        meta: SessionMeta,
        lifetime_ms: Millis,
    ) -> Result<TokenInfo, Error> {
        let lifetime_ms = lifetime_ms.min(self.inner.lifetime_ms);
        Ok(self.open(user, meta, true, lifetime_ms)?.1)
    }

    /// Looks a presented token up, sliding its idle timer. An expired session is ended.
    pub fn lookup(&self, token: &str) -> Result<TokenInfo, TokenError> {
        let bytes = decode_hex_32(token).ok_or(TokenError::Malformed)?;
        if !self.confirmed() {
            return Err(TokenError::Invalid);
        }
        let hash = hash_token(&bytes);
        let now = self.inner.clock.now_ms();
        let session = self
            .inner
            .by_hash
            .get(&hash)
            .map(|s| s.value().clone())
            .ok_or(TokenError::Invalid)?;
        if session.is_expired(now, self.inner.idle_ms) {
            self.expire(&session.id);
            return Err(TokenError::Invalid);
        }
        self.mark_used(&session, now);
        Ok(session.info())
    }

    fn mark_used(&self, session: &Session, now: Millis) {
        session.last_used_ms.fetch_max(now, Ordering::Relaxed);
        let persisted = session.persisted_last_used_ms.load(Ordering::Relaxed);
        if now.saturating_sub(persisted) >= PERSIST_LAST_USE_EVERY_MS
            && session
                .persisted_last_used_ms
                .compare_exchange(persisted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Only if still stored: a revocation or refresh racing this use must not be undone.
            let touched = match &self.inner.store {
                Some(store) if !session.is_socket_only() => {
                    store.touch_session(&session.hash(), &session.record())
                }
                _ => Ok(()),
            };
            if let Err(e) = touched {
                e.log("persist session last use");
            }
        }
    }

    fn persist(&self, hash: &TokenHash, session: &Session) -> Result<(), Error> {
        match &self.inner.store {
            Some(store) if !session.is_socket_only() => store.put_session(hash, &session.record()),
            _ => Ok(()),
        }
    }

    fn live(&self, session: &Uuid) -> Option<Arc<Session>> {
        let s = self.inner.by_id.get(session).map(|s| s.value().clone())?;
        (!s.is_expired(self.inner.clock.now_ms(), self.inner.idle_ms)).then_some(s)
    }

    /// Whether the session exists and has not expired: checked before a signed-in socket acts,
    /// so a frame that races its session's revocation is not served.
    pub fn is_live(&self, session: &Uuid) -> bool {
        self.live(session).is_some()
    }

    /// The user of a live session.
    pub fn user_of(&self, session: &Uuid) -> Option<Uuid> {
        self.live(session).map(|s| s.user.id)
    }

    /// Subscribes a socket to its session. `None` if the session is already gone.
    pub fn watch(&self, session: &Uuid) -> Option<Revocation> {
        self.inner
            .by_id
            .get(session)
            .map(|s| Revocation(s.sockets.subscribe()))
    }

    /// Marks a session used now; sockets call this when they close so the idle timer restarts.
    pub fn touch(&self, session: &Uuid) {
        if let Some(s) = self.inner.by_id.get(session).map(|s| s.value().clone()) {
            self.mark_used(&s, self.inner.clock.now_ms());
        }
    }

    /// Replaces the session's token: the old one stops working now, the new one lives a full
    /// lifetime, and sockets bound to the session carry on (they are told the new expiry).
    pub fn refresh(&self, session: &Uuid) -> Result<(IssuedToken, TokenInfo), Error> {
        let s = self
            .inner
            .by_id
            .get(session)
            .map(|s| s.value().clone())
            .ok_or(Error::Unauthorized("This session has ended."))?;
        let now = self.inner.clock.now_ms();
        if s.is_expired(now, self.inner.idle_ms) {
            self.expire(session);
            return Err(Error::Unauthorized("This session has ended."));
        }
        let (token, hash) = new_token()?;
        // A socket-only session that asks for a token becomes an ordinary one.
        s.socket_only.store(false, Ordering::Release);
        let old = {
            let mut current = s.hash.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *current, hash)
        };
        let expires_ms = now.saturating_add(self.inner.lifetime_ms);
        s.expires_ms.store(expires_ms, Ordering::Relaxed);
        s.last_used_ms.fetch_max(now, Ordering::Relaxed);
        self.inner.by_hash.remove(&old);
        self.inner.by_hash.insert(hash, s.clone());
        if let Some(store) = &self.inner.store {
            store.replace_session(&old, &hash, &s.record())?;
        }
        s.sockets.send_replace(SessionSignal::Live { expires_ms });
        self.inner.events.emit(Event::SessionRefreshed {
            user: s.user.id,
            session: s.id,
        });
        Ok((token, s.info()))
    }

    pub fn len(&self) -> usize {
        self.inner.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.by_id.is_empty()
    }
}

mod negative;
mod open;
mod persist;
mod revoke;
mod secret;
mod shared;
mod signal;
mod users;

pub use open::{Opened, PendingSession};
use secret::{decode_hex_32, hash_token, new_token};
pub use secret::{IssuedToken, TokenHash};
pub use shared::StoreLookups;
pub use signal::{Revocation, SessionSignal};

#[cfg(test)]
mod tests;
