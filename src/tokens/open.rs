//! Opening a session: made first, written, then put in the table. A ceremony whose last write
//! can carry the session's record (a sign-in's counter update) makes it before that write and
//! opens it after ([`TokenTable::prepare`], [`TokenTable::admit`]), so the record is written only
//! when the sign-in counts.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use uuid::Uuid;

use super::secret::new_token;
use super::{IssuedToken, Session, SessionMeta, SessionSignal, TokenHash, TokenInfo, TokenTable};
use crate::clock::Millis;
use crate::error::Error;
use crate::events::{EndReason, Event};
use crate::protocol::UserView;
use crate::store::SessionRecord;

/// A session [`TokenTable::prepare`] made: its token, and the record to write with it.
pub struct PendingSession {
    token: IssuedToken,
    hash: TokenHash,
    session: Arc<Session>,
}

impl PendingSession {
    /// The key its record is stored under.
    pub fn hash(&self) -> &TokenHash {
        &self.hash
    }

    /// What the store keeps of it.
    pub fn record(&self) -> SessionRecord {
        self.session.record()
    }
}

/// A session just opened.
pub struct Opened {
    pub token: IssuedToken,
    pub info: TokenInfo,
    /// Whether opening it queued store writes (see [`TokenTable::admit`]).
    pub queued_writes: bool,
}

impl TokenTable {
    pub(super) fn open(
        &self,
        user: Arc<UserView>,
        meta: SessionMeta,
        socket_only: bool,
        lifetime_ms: Millis,
    ) -> Result<(IssuedToken, TokenInfo), Error> {
        let pending = self.make(user, meta, socket_only, lifetime_ms)?;
        let opened = self.open_made(pending, false)?;
        Ok((opened.token, opened.info))
    }

    /// A token-bearing session, made but not yet open: the caller writes its record with a
    /// write of its own (a sign-in's counter update) and then opens it with
    /// [`TokenTable::admit`]. Until then nothing but the caller knows it.
    pub fn prepare(&self, user: Arc<UserView>, meta: SessionMeta) -> Result<PendingSession, Error> {
        self.make(user, meta, false, self.inner.lifetime_ms)
    }

    /// Opens a session [`TokenTable::prepare`] made, whose record the caller has written to
    /// the store. On a shared store, when [`Opened::queued_writes`] is set (the per-user cap
    /// ended an older session), [`Store::flush`] before handing the token out.
    pub fn admit(&self, pending: PendingSession) -> Result<Opened, Error> {
        let hash = pending.hash;
        let opened = self.open_made(pending, true);
        if let (Err(_), Some(store)) = (&opened, &self.inner.store) {
            // Refused after its record was written (the cap, or its user's deletion): the
            // record goes too. A removal of a session already ended is harmless.
            store.remove_session(&hash)?;
        }
        opened
    }

    /// Opens a session [`TokenTable::prepare`] made, writing its record through like
    /// [`TokenTable::issue`].
    pub fn open_prepared(&self, pending: PendingSession) -> Result<Opened, Error> {
        self.open_made(pending, false)
    }

    fn make(
        &self,
        user: Arc<UserView>,
        meta: SessionMeta,
        socket_only: bool,
        lifetime_ms: Millis,
    ) -> Result<PendingSession, Error> {
        let (token, hash) = new_token()?;
        let now = self.inner.clock.now_ms();
        let expires_ms = now.saturating_add(lifetime_ms);
        let session = Arc::new(Session {
            id: Uuid::new_v4(),
            user,
            hash: Mutex::new(hash),
            created_ms: now,
            expires_ms: AtomicU64::new(expires_ms),
            last_used_ms: AtomicU64::new(now),
            persisted_last_used_ms: AtomicU64::new(now),
            meta,
            socket_only: AtomicBool::new(socket_only),
            sockets: watch::channel(SessionSignal::Live { expires_ms }).0,
        });
        Ok(PendingSession {
            token,
            hash,
            session,
        })
    }

    /// Makes room under the per-user cap, writes the record through unless `written`, and
    /// puts the session in the table.
    fn open_made(&self, pending: PendingSession, written: bool) -> Result<Opened, Error> {
        let PendingSession {
            token,
            hash,
            session,
        } = pending;
        let ended = self.make_room_for(&session.user.id)?;
        if !written {
            self.persist(&hash, &session)?;
        }
        self.inner.by_hash.insert(hash, session.clone());
        self.inner.by_id.insert(session.id, session.clone());
        self.index(&session);
        // Checked after the insert, so a deletion's sweep either sees this session or this
        // check sees the deletion.
        if self.is_forgotten(&session.user.id) {
            let _ = self.end(&session.id, EndReason::Revoked, false);
            return Err(Error::UnknownUser);
        }
        self.inner.events.emit(Event::SessionCreated {
            user: session.user.id,
            session: session.id,
            address: session.meta.address,
        });
        let persisted = !written && !session.is_socket_only();
        Ok(Opened {
            token,
            info: session.info(),
            queued_writes: ended > 0 || persisted,
        })
    }
}
