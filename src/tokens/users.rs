//! Each user's sessions: the per-user index (oldest first), the cap on sessions per user, and
//! the listing a user sees.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use uuid::Uuid;

use super::{Session, SessionView, TokenTable, WhenFull};
use crate::error::Error;
use crate::events::EndReason;

impl TokenTable {
    /// Adds a session to its user's list.
    pub(super) fn index(&self, session: &Session) {
        self.inner
            .by_user
            .entry(session.user.id)
            .or_default()
            .push(session.id);
    }

    /// The sessions of `user` (live or not yet swept).
    pub(super) fn of_user(&self, user: &Uuid) -> Vec<Arc<Session>> {
        let ids = self
            .inner
            .by_user
            .get(user)
            .map(|ids| ids.clone())
            .unwrap_or_default();
        ids.iter()
            .filter_map(|id| self.inner.by_id.get(id).map(|s| s.value().clone()))
            .collect()
    }

    /// Enforces the per-user cap before a new session: the oldest ends, or the new one is
    /// refused (`limits.when_sessions_full`). Returns how many sessions it ended.
    pub(super) fn make_room_for(&self, user: &Uuid) -> Result<usize, Error> {
        let (max, when_full) = self.inner.per_user;
        let count = self.inner.by_user.get(user).map_or(0, |ids| ids.len());
        if count < max {
            return Ok(0);
        }
        match when_full {
            WhenFull::Refuse => Err(Error::RateLimited(
                "This account has as many sessions as it may; end one (sessions.revoke) first.",
            )),
            WhenFull::EndOldest => {
                let oldest: Vec<Uuid> = self
                    .inner
                    .by_user
                    .get(user)
                    .map(|ids| ids.iter().take(count + 1 - max).copied().collect())
                    .unwrap_or_default();
                for id in &oldest {
                    self.end(id, EndReason::SessionLimit, false)?;
                }
                Ok(oldest.len())
            }
        }
    }

    /// The live sessions of `user`, newest first; `current` marks the caller's own.
    pub fn sessions_of(&self, user: &Uuid, current: Option<&Uuid>) -> Vec<SessionView> {
        let now = self.inner.clock.now_ms();
        let mut sessions: Vec<SessionView> = self
            .of_user(user)
            .iter()
            .filter(|s| !s.is_expired(now, self.inner.idle_ms))
            .map(|s| SessionView {
                id: s.id,
                created_at: s.created_ms / 1000,
                last_used_at: s.last_used_ms.load(Ordering::Relaxed) / 1000,
                expires_at: s.expires_ms.load(Ordering::Relaxed) / 1000,
                user_agent: s.meta.user_agent.clone(),
                address: s.meta.address,
                credential_id: s.meta.credential_id.clone(),
                socket_only: s.is_socket_only(),
                current: current == Some(&s.id),
            })
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        sessions
    }
}
