//! Durable state behind one domain interface: users, the username index, passkeys with their
//! global credential-id index, sessions (the token table's write-through copy) and recovery
//! codes. Two backends: [`SledStore`] (embedded, one node, the default) and [`PgStore`]
//! (PostgreSQL, shared by every node of a cluster, docs/cluster.md).
//!
//! The interface speaks the domain's operations, so each backend keeps its invariants its own
//! way: sled in transactions and crash-ordered single-key writes, PostgreSQL with `UNIQUE`
//! constraints and single statements (`INSERT … ON CONFLICT`, `DELETE … RETURNING`) that are
//! atomic by themselves.
//!
//! Invariants, for both backends:
//! - a user and their first passkey are created together or not at all; one credential id
//!   belongs to one account, one folded username ([`username_key`]) to one account, and two
//!   racing writers of either cannot both win (`credential_in_use`, `username_taken`);
//! - a write is durable once [`Store::flush`] called after it returns: sled's group commit
//!   flushes to disk; PostgreSQL's writes commit before they return, and the session writes the
//!   token table queues ([`Store::put_session`], [`Store::remove_session`]) commit before
//!   `flush` returns.
//!
//! Dispatch is a `match` over an enum, not a boxed trait object: no allocation per call. The
//! handle is `Arc`-shared so the backend behind it could be swapped (reopened) in one place.
//! Domain code only: nothing here knows of HTTP or sockets.

mod copy;
mod parked;
mod postgres;
mod records;
mod sled_cell;
mod sled_store;

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use crate::assertion::{SignInPasskey, Verified};
use crate::error::Error;
pub use crate::names::username_key;
pub use copy::{copy_sled_to_postgres, Copied};
pub use parked::{Parked, ParkedCeremony};
pub use postgres::{Feed, PgStore, Revoked};
pub use records::{
    CredentialRecord, DeletedUser, RecoverySet, SessionRecord, StoredCode, UserRecord,
};
pub use sled_cell::SledCell;
pub use sled_store::{Collision, SledStore};

/// Which backend a [`Store`] runs on (`[store] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Embedded, in `server.data_dir`; one node.
    Sled,
    /// PostgreSQL at `store.postgres_url`; shared by every node.
    Postgres,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the data directory {path}: {source}")]
    Sled {
        path: std::path::PathBuf,
        source: sled::Error,
    },
    #[error("cannot use PostgreSQL at {url}: {detail}")]
    Postgres { url: String, detail: String },
}

enum Backend {
    /// The one opening in use, reopened when sled fails (`sled_cell`).
    Sled(Arc<SledCell>),
    Postgres(PgStore),
}

/// Handle to the store. Cheap to clone: clones share the backend.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Backend>,
}

/// Runs `$call` on whichever backend the store has; sled's synchronous operations are wrapped
/// so both arms have one type (`sync` marks them).
macro_rules! dispatch {
    ($self:ident, sync $s:ident => $sled:expr, $p:ident => $pg:expr) => {
        match &*$self.inner {
            Backend::Sled(cell) => {
                let $s = &*cell.get()?;
                $sled
            }
            Backend::Postgres($p) => $pg.await,
        }
    };
}

impl Store {
    /// Opens (creating if needed) a sled store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, sled::Error> {
        Ok(Store {
            inner: Arc::new(Backend::Sled(Arc::new(SledCell::open(dir)?))),
        })
    }

    pub fn from_postgres(store: PgStore) -> Store {
        Store {
            inner: Arc::new(Backend::Postgres(store)),
        }
    }

    /// Opens the store `[store]` names: sled in `data_dir`, or PostgreSQL at `postgres_url`
    /// (its schema created or migrated first).
    pub async fn open_config(config: &crate::Config) -> Result<Store, OpenError> {
        match config.store.backend {
            BackendKind::Sled => {
                Store::open(&config.server.data_dir).map_err(|source| OpenError::Sled {
                    path: config.server.data_dir.clone(),
                    source,
                })
            }
            BackendKind::Postgres => PgStore::connect(&config.store.postgres_url)
                .await
                .map(Store::from_postgres)
                .map_err(|e| OpenError::Postgres {
                    url: postgres::redacted(&config.store.postgres_url),
                    detail: e.to_string(),
                }),
        }
    }

    pub fn kind(&self) -> BackendKind {
        match &*self.inner {
            Backend::Sled(_) => BackendKind::Sled,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// For sled, the task that checks the opening every second and reopens it after a failure
    /// (`sled_cell`); it holds the store weakly, so it never keeps it open. `None` for
    /// PostgreSQL, whose connections reconnect by themselves.
    pub fn watch_sled(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<impl std::future::Future<Output = ()> + 'static> {
        let cell = self.as_sled()?;
        Some(sled_cell::watch(Arc::downgrade(cell), shutdown))
    }

    /// The sled backend's cell, for what only it has (its reopening, `sled_cell`).
    pub fn as_sled(&self) -> Option<&Arc<SledCell>> {
        match &*self.inner {
            Backend::Sled(cell) => Some(cell),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL backend, for what only it has (the cluster's revocation feed).
    pub fn as_postgres(&self) -> Option<&PgStore> {
        match &*self.inner {
            Backend::Sled(_) => None,
            Backend::Postgres(p) => Some(p),
        }
    }

    /// Waits until every write made before the call is durable (see the module's invariants).
    pub async fn flush(&self) -> Result<(), Error> {
        match &*self.inner {
            Backend::Sled(cell) => cell.get()?.flush().await,
            Backend::Postgres(p) => p.flush().await,
        }
    }

    /// Flushes run so far (each may acknowledge many writes).
    pub fn flushes(&self) -> u64 {
        match &*self.inner {
            Backend::Sled(cell) => cell.get().map_or(0, |s| s.flushes()),
            Backend::Postgres(p) => p.flushes(),
        }
    }

    /// How long the flushes take (for the metrics).
    pub fn flush_times(&self) -> crate::metrics::AtomicHistogram {
        match &*self.inner {
            Backend::Sled(cell) => cell.flush_times(),
            Backend::Postgres(p) => p.flush_times(),
        }
    }

    pub async fn user(&self, id: &Uuid) -> Result<Option<UserRecord>, Error> {
        dispatch!(self, sync s => s.user(id), p => p.user(id))
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, Error> {
        dispatch!(self, sync s => s.user_by_name(name), p => p.user_by_name(name))
    }

    /// A passkey's record, as of its latest sign-in.
    pub async fn credential(&self, cred_id: &[u8]) -> Result<Option<CredentialRecord>, Error> {
        dispatch!(self, sync s => s.credential(cred_id), p => p.credential(cred_id))
    }

    /// The passkeys of a user, in credential-id order.
    pub async fn credentials_of(&self, user_id: &Uuid) -> Result<Vec<CredentialRecord>, Error> {
        dispatch!(self, sync s => s.credentials_of(user_id), p => p.credentials_of(user_id))
    }

    /// `user_id`'s passkeys as `login.begin` needs them, in credential-id order.
    pub async fn sign_in_passkeys(&self, user_id: &Uuid) -> Result<Vec<SignInPasskey>, Error> {
        dispatch!(self, sync s => s.sign_in_passkeys(user_id), p => p.sign_in_passkeys(user_id))
    }

    /// The user named `name` with their passkeys as `login.begin` needs them: what
    /// [`Store::user_by_name`] and [`Store::sign_in_passkeys`] give, in one read.
    pub async fn user_with_sign_in_passkeys(
        &self,
        name: &str,
    ) -> Result<Option<(UserRecord, Vec<SignInPasskey>)>, Error> {
        match &*self.inner {
            Backend::Sled(cell) => match cell.get()?.user_by_name(name)? {
                Some(user) => {
                    let passkeys = cell.get()?.sign_in_passkeys(&user.id)?;
                    Ok(Some((user, passkeys)))
                }
                None => Ok(None),
            },
            Backend::Postgres(p) => p.user_with_sign_in_passkeys(name).await,
        }
    }

    /// Creates a user together with their first passkey, atomically. Fails with
    /// `username_taken` or `credential_in_use` if another write got there first.
    pub async fn create_user(
        &self,
        user: &UserRecord,
        cred: &CredentialRecord,
    ) -> Result<(), Error> {
        dispatch!(self, sync s => s.create_user(user, cred), p => p.create_user(user, cred))
    }

    /// Adds a passkey to an existing user; the user's passkeys may not exceed `max_passkeys`.
    pub async fn add_credential(
        &self,
        cred: &CredentialRecord,
        max_passkeys: u32,
    ) -> Result<(), Error> {
        dispatch!(self, sync s => s.add_credential(cred, max_passkeys), p => p.add_credential(cred, max_passkeys))
    }

    /// Deletes one of `user_id`'s passkeys. Refuses the last one unless `allow_last`.
    pub async fn delete_credential(
        &self,
        user_id: &Uuid,
        cred_id: &[u8],
        allow_last: bool,
    ) -> Result<(), Error> {
        dispatch!(self, sync s => s.delete_credential(user_id, cred_id, allow_last),
            p => p.delete_credential(user_id, cred_id, allow_last))
    }

    /// Renames one of `user_id`'s passkeys; returns the updated record.
    pub async fn rename_credential(
        &self,
        user_id: &Uuid,
        cred_id: &[u8],
        label: &str,
    ) -> Result<CredentialRecord, Error> {
        dispatch!(self, sync s => s.rename_credential(user_id, cred_id, label),
            p => p.rename_credential(user_id, cred_id, label))
    }

    /// Records a successful sign-in with one of `owner`'s passkeys, and writes the session it
    /// opens (a token's), if any, only when the sign-in counts: the counter check is repeated
    /// atomically against the stored value. On PostgreSQL both are one statement, committed
    /// with other sign-ins' (group commit) before this returns.
    pub async fn record_sign_in(
        &self,
        result: &Verified,
        owner: &Uuid,
        now_secs: u64,
        session: Option<([u8; 32], SessionRecord)>,
    ) -> Result<(), Error> {
        match &*self.inner {
            Backend::Sled(cell) => {
                let sled = cell.get()?;
                sled.record_use(result, owner, now_secs)?;
                match session {
                    Some((hash, record)) => sled.put_session(&hash, &record),
                    None => Ok(()),
                }
            }
            Backend::Postgres(p) => p.record_sign_in(result, owner, now_secs, session).await,
        }
    }

    /// Writes a session through (synchronous: PostgreSQL queues it; [`Store::flush`] waits).
    pub fn put_session(&self, hash: &[u8; 32], record: &SessionRecord) -> Result<(), Error> {
        match &*self.inner {
            Backend::Sled(cell) => cell.get()?.put_session(hash, record),
            Backend::Postgres(p) => p.put_session(hash, record),
        }
    }

    /// Rewrites a session only if it is still stored (a last use): a removal or a refresh
    /// queued before it is never undone by it (synchronous like [`Store::put_session`]).
    pub fn touch_session(&self, hash: &[u8; 32], record: &SessionRecord) -> Result<(), Error> {
        match &*self.inner {
            Backend::Sled(cell) => cell.get()?.touch_session(hash, record),
            Backend::Postgres(p) => p.touch_session(hash, record),
        }
    }

    /// Removes a session (synchronous like [`Store::put_session`]).
    pub fn remove_session(&self, hash: &[u8; 32]) -> Result<(), Error> {
        match &*self.inner {
            Backend::Sled(cell) => cell.get()?.remove_session(hash),
            Backend::Postgres(p) => p.remove_session(hash),
        }
    }

    /// A refresh: the session's token hash changes from `old` to `hash` (synchronous like
    /// [`Store::put_session`]).
    pub fn replace_session(
        &self,
        old: &[u8; 32],
        hash: &[u8; 32],
        record: &SessionRecord,
    ) -> Result<(), Error> {
        match &*self.inner {
            Backend::Sled(cell) => {
                let s = cell.get()?;
                s.remove_session(old)?;
                s.put_session(hash, record)
            }
            Backend::Postgres(p) => p.replace_session(old, hash, record),
        }
    }

    /// Whether other nodes share this store (PostgreSQL): the token table then asks it about
    /// tokens it has not seen and follows the revocation feed.
    pub fn is_shared(&self) -> bool {
        matches!(&*self.inner, Backend::Postgres(_))
    }

    /// Every persisted session with its token hash.
    pub async fn sessions(&self) -> Result<Vec<([u8; 32], SessionRecord)>, Error> {
        dispatch!(self, sync s => s.sessions(), p => p.sessions())
    }

    /// Removes every persisted session of `user`; returns how many.
    pub async fn remove_sessions_of(&self, user: &Uuid) -> Result<usize, Error> {
        dispatch!(self, sync s => s.remove_sessions_of(user), p => p.remove_sessions_of(user))
    }

    /// Deletes `id` with their passkeys, atomically. `None` when no such user exists.
    pub async fn delete_user(&self, id: &Uuid) -> Result<Option<DeletedUser>, Error> {
        dispatch!(self, sync s => s.delete_user(id), p => p.delete_user(id))
    }

    pub async fn recovery_set(&self, user: &Uuid) -> Result<Option<RecoverySet>, Error> {
        dispatch!(self, sync s => s.recovery_set(user), p => p.recovery_set(user))
    }

    /// Replaces the user's recovery codes. Callers that show the new codes flush first.
    pub async fn put_recovery_set(&self, user: &Uuid, set: &RecoverySet) -> Result<(), Error> {
        dispatch!(self, sync s => s.put_recovery_set(user, set), p => p.put_recovery_set(user, set))
    }

    pub async fn remove_recovery_set(&self, user: &Uuid) -> Result<(), Error> {
        dispatch!(self, sync s => s.remove_recovery_set(user), p => p.remove_recovery_set(user))
    }

    /// Spends the code `code_id` if it is still in the set whose hash matched: `Some(codes
    /// left)`, or `None` when it was spent (or the set replaced) meanwhile.
    pub async fn spend_recovery_code(
        &self,
        user: &Uuid,
        code_id: &str,
        hash: &str,
    ) -> Result<Option<usize>, Error> {
        dispatch!(self, sync s => s.spend_recovery_code(user, code_id, hash),
            p => p.spend_recovery_code(user, code_id, hash))
    }

    /// Sets a user's display name; `None` when the user does not exist.
    pub async fn set_display_name(
        &self,
        user: &Uuid,
        display_name: &str,
    ) -> Result<Option<UserRecord>, Error> {
        dispatch!(self, sync s => s.set_display_name(user, display_name),
            p => p.set_display_name(user, display_name))
    }

    /// `Ok` when the store takes durable writes (sled: also the data directory `dir`).
    pub async fn probe_write(&self, dir: &Path, now_ms: u64) -> Result<(), Error> {
        match &*self.inner {
            Backend::Sled(cell) => cell.get()?.probe_write(dir, now_ms).await,
            Backend::Postgres(p) => p.probe_write(now_ms).await,
        }
    }

    pub async fn user_count(&self) -> Result<usize, Error> {
        dispatch!(self, sync s => Ok(s.user_count()), p => p.user_count())
    }

    #[doc(hidden)]
    pub async fn put_user_for_tests(&self, user: &UserRecord) -> Result<(), Error> {
        dispatch!(self, sync s => s.put_user_for_tests(user), p => p.put_user_for_tests(user))
    }
}
