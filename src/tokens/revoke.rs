//! Ending sessions: revocation (one, a user's others, those a passkey opened, all of a user's),
//! socket-only sessions ending with their socket, expiry, and the sweep.
//!
//! Invariant: a session ends once. Only the caller that removes it from the table tells its
//! sockets and emits the event; removing it from disk may fail, which the revocation reports so
//! it is not acknowledged.

use uuid::Uuid;

use super::{Session, SessionSignal, TokenTable};
use crate::error::Error;
use crate::events::{EndReason, Event};

impl TokenTable {
    /// Ends a session; every socket bound to it is told at once. Returns whether it existed.
    /// An error means the session is gone from memory but its removal from disk failed: the
    /// revocation must not be acknowledged.
    pub fn revoke(&self, session: &Uuid, reason: EndReason) -> Result<bool, Error> {
        self.end(session, reason, false)
    }

    /// Ends every session of `user` except `keep`. Returns how many ended.
    pub fn revoke_others(&self, user: &Uuid, keep: &Uuid) -> Result<usize, Error> {
        self.revoke_where(user, |s| s.id != *keep, EndReason::Revoked)
    }

    /// Ends every session of `user` that the passkey `credential_id` opened.
    pub fn revoke_opened_by(&self, user: &Uuid, credential_id: &str) -> Result<usize, Error> {
        self.revoke_where(
            user,
            |s| s.meta.credential_id.as_deref() == Some(credential_id),
            EndReason::PasskeyRemoved,
        )
    }

    /// Ends every session of `user`.
    pub fn revoke_user(&self, user: &Uuid) -> Result<usize, Error> {
        self.revoke_where(user, |_| true, EndReason::Revoked)
    }

    /// Ends the sessions of `user` that `which` picks.
    fn revoke_where(
        &self,
        user: &Uuid,
        which: impl Fn(&Session) -> bool,
        reason: EndReason,
    ) -> Result<usize, Error> {
        let ids: Vec<Uuid> = self
            .of_user(user)
            .iter()
            .filter(|s| which(s))
            .map(|s| s.id)
            .collect();
        let mut ended = 0;
        let mut failed = None;
        for id in &ids {
            match self.end(id, reason, false) {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(ended), Err)
    }

    /// Ends a socket-only session when its socket closes or signs in as someone else; a session
    /// with a token is left alone (the token's holder may use it elsewhere).
    pub fn end_socket_session(&self, session: &Uuid) {
        let socket_only = self
            .inner
            .by_id
            .get(session)
            .is_some_and(|s| s.is_socket_only());
        if socket_only {
            // Never on disk, so there is nothing to fail.
            let _ = self.end(session, EndReason::SocketClosed, false);
        }
    }

    /// Ends the session if it is (still) expired, or unconditionally when `only_if_expired` is
    /// false. Only the caller that removes it emits the event. It is gone from memory, and its
    /// sockets are told, even when removing it from disk fails (the error says so).
    pub(super) fn end(
        &self,
        session: &Uuid,
        reason: EndReason,
        only_if_expired: bool,
    ) -> Result<bool, Error> {
        let now = self.inner.clock.now_ms();
        let removed = if only_if_expired {
            self.inner
                .by_id
                .remove_if(session, |_, s| s.is_expired(now, self.inner.idle_ms))
        } else {
            self.inner.by_id.remove(session)
        };
        let Some((_, s)) = removed else {
            return Ok(false);
        };
        let user = s.user.id;
        if let Some(mut ids) = self.inner.by_user.get_mut(&user) {
            ids.retain(|id| id != session);
        }
        self.inner.by_user.remove_if(&user, |_, ids| ids.is_empty());
        let hash = s.hash();
        self.inner.by_hash.remove(&hash);
        // On a shared store, a session idle here may be in use on another node: it leaves this
        // node's cache only, and the store's last use decides when a node next asks for it.
        let idle_elsewhere = reason == EndReason::Expired
            && now < s.expires_ms.load(std::sync::atomic::Ordering::Relaxed);
        let on_disk = match &self.inner.store {
            Some(store) if store.is_shared() && idle_elsewhere => Ok(()),
            Some(store) if !s.is_socket_only() => store.remove_session(&hash),
            _ => Ok(()),
        };
        s.sockets.send_replace(SessionSignal::ended());
        self.inner.events.emit(Event::SessionEnded {
            user: s.user.id,
            session: s.id,
            reason,
        });
        on_disk.map(|()| true)
    }

    /// Ends an expired session. An expired session that stays on disk after a failed removal is
    /// harmless: loading drops expired sessions.
    pub(super) fn expire(&self, session: &Uuid) -> bool {
        self.end(session, EndReason::Expired, true)
            .unwrap_or_else(|e| {
                e.log("remove expired session");
                true
            })
    }

    /// Ends the session if its time has come; sockets call this when their expiry timer fires.
    pub fn expire_if_due(&self, session: &Uuid) -> bool {
        self.expire(session)
    }

    /// Ends every expired session. Returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.inner.clock.now_ms();
        self.forget_old_revocations(now);
        let expired: Vec<Uuid> = self
            .inner
            .by_id
            .iter()
            .filter(|s| s.is_expired(now, self.inner.idle_ms))
            .map(|s| s.id)
            .collect();
        expired.iter().filter(|id| self.expire(id)).count()
    }

    /// Ends every session of a deleted user, and refuses them new ones from now on: a sign-in
    /// that passed its checks just before the deletion cannot open a session after it.
    pub fn forget_user(&self, user: &Uuid) -> Result<usize, Error> {
        self.inner.forgotten.insert(*user, ());
        self.revoke_user(user)
    }

    /// Whether `user` was deleted while the server ran.
    pub(super) fn is_forgotten(&self, user: &Uuid) -> bool {
        !self.inner.forgotten.is_empty() && self.inner.forgotten.contains_key(user)
    }
}
