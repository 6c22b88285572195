//! Loading the sessions written through to the store back into the table at start.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{Session, SessionMeta, SessionSignal, TokenHash, TokenTable};
use crate::error::Error;
use crate::protocol::UserView;
use crate::store::SessionRecord;

impl TokenTable {
    /// Loads the persisted sessions (at start). Expired ones and those of deleted users are
    /// dropped from disk. Returns how many were loaded.
    pub async fn load(&self) -> Result<usize, Error> {
        let Some(store) = &self.inner.store else {
            return Ok(0);
        };
        let now = self.inner.clock.now_ms();
        let mut loaded = 0;
        for (hash, record) in store.sessions().await? {
            let user = match store.user(&record.user_id).await? {
                Some(user) if now < record.expires_ms => user,
                _ => {
                    store.remove_session(&hash)?;
                    continue;
                }
            };
            let session = Arc::new(Session::from_record(hash, record, Arc::new(user.view())));
            self.inner.by_hash.insert(hash, session.clone());
            self.index(&session);
            self.inner.by_id.insert(session.id, session);
            loaded += 1;
        }
        // Sled iterates by token hash: put each user's sessions back in age order.
        for mut ids in self.inner.by_user.iter_mut() {
            ids.sort_by_key(|id| self.inner.by_id.get(id).map_or(0, |s| s.created_ms));
        }
        Ok(loaded)
    }
}

impl Session {
    /// A session as the store has it, under its current token's hash.
    pub(super) fn from_record(hash: TokenHash, record: SessionRecord, user: Arc<UserView>) -> Self {
        Session {
            id: record.id,
            user,
            hash: Mutex::new(hash),
            created_ms: record.created_ms,
            expires_ms: AtomicU64::new(record.expires_ms),
            last_used_ms: AtomicU64::new(record.last_used_ms),
            persisted_last_used_ms: AtomicU64::new(record.last_used_ms),
            meta: SessionMeta {
                user_agent: record.user_agent,
                address: record.address,
                credential_id: record.credential_id,
            },
            socket_only: AtomicBool::new(false),
            sockets: watch::channel(SessionSignal::Live {
                expires_ms: record.expires_ms,
            })
            .0,
        }
    }
}
