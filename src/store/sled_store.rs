//! The embedded backend: users, the username index, passkeys and the credential-id index in sled.
//!
//! Trees and keys:
//! - `users`: user id (16 bytes) → [`UserRecord`] as JSON
//! - `usernames`: folded username (see [`username_key`]) → user id
//! - `credentials`: credential id → [`CredentialRecord`] as JSON. Being keyed by credential id,
//!   this tree *is* the global credential-id index: one id, one account.
//! - `user_credentials`: user id ‖ credential id → nothing (lists a user's passkeys)
//! - `credential_use`: credential id → its counter, backup flags and last use, 14 bytes, once
//!   it has signed in (see [`usage`])
//! - `sessions`: SHA-256 of a bearer token → [`SessionRecord`] as JSON (see `tokens`)
//! - `meta`: versions of the indexes (see [`migrate`])
//! - `registering`: user id → an account being created, until it is complete (see [`create`])
//!
//! Invariants: a user and their first passkey are written together, all or nothing across a
//! crash ([`create`]), and a passkey is only ever inserted by a compare-and-swap or a transaction
//! that first sees its id absent, so two racing registrations of one credential id (or one
//! username) cannot both win. Callers that promise durability await
//! [`SledStore::flush`] before they answer. Domain code only: nothing here knows of HTTP or sockets.

mod admin;
mod create;
mod flush;
mod migrate;
mod probe;
pub(super) use probe::directory_takes_writes;
mod recovery;
mod signin;
mod usage;

pub use migrate::Collision;

use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use uuid::Uuid;

use super::{CredentialRecord, DeletedUser, RecoverySet, SessionRecord, UserRecord};
use crate::error::Error;

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conflict {
    CredentialInUse,
    UnknownUser,
    PasskeyLimit(u32),
    LastPasskey,
    NotFound,
}

impl From<Conflict> for Error {
    fn from(c: Conflict) -> Self {
        match c {
            Conflict::CredentialInUse => Error::CredentialInUse,
            Conflict::UnknownUser => Error::UnknownUser,
            Conflict::PasskeyLimit(max) => Error::PasskeyLimit(max),
            Conflict::LastPasskey => Error::LastPasskey,
            Conflict::NotFound => Error::NotFound("No passkey of yours has this id."),
        }
    }
}

/// Handle to the sled database. Cheap to clone.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    users: sled::Tree,
    usernames: sled::Tree,
    credentials: sled::Tree,
    user_credentials: sled::Tree,
    credential_use: sled::Tree,
    sessions: sled::Tree,
    /// Versions of the indexes (see [`migrate`]).
    meta: sled::Tree,
    /// Accounts being created: user id → what to undo if a crash interrupts (see [`create`]).
    registering: sled::Tree,
    flusher: flush::GroupCommit,
}

pub use crate::names::username_key;

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::internal(format!("encode record: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::internal(format!("decode record: {e}")))
}

fn user_cred_key(user_id: &Uuid, cred_id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + cred_id.len());
    key.extend_from_slice(user_id.as_bytes());
    key.extend_from_slice(cred_id);
    key
}

fn map_tx(e: TransactionError<Conflict>) -> Error {
    match e {
        TransactionError::Abort(c) => c.into(),
        TransactionError::Storage(e) => e.into(),
    }
}

impl SledStore {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, sled::Error> {
        SledStore::open_with(dir, crate::metrics::AtomicHistogram::default())
    }

    /// [`SledStore::open`], recording flush times into `times`.
    pub fn open_with(
        dir: &Path,
        times: crate::metrics::AtomicHistogram,
    ) -> Result<SledStore, sled::Error> {
        let db = sled::Config::new().path(dir).open()?;
        let store = SledStore {
            users: db.open_tree("users")?,
            usernames: db.open_tree("usernames")?,
            credentials: db.open_tree("credentials")?,
            user_credentials: db.open_tree("user_credentials")?,
            credential_use: db.open_tree("credential_use")?,
            sessions: db.open_tree("sessions")?,
            meta: db.open_tree("meta")?,
            registering: db.open_tree("registering")?,
            // Every flush ends with fdatasync of sled's log file (see `flush`).
            flusher: flush::GroupCommit::new(Some(std::fs::File::open(dir.join("db"))?), times),
            db,
        };
        store
            .finish_interrupted_registrations()
            .map_err(|e| sled::Error::Unsupported(format!("interrupted registrations: {e:?}")))?;
        store
            .migrate_usernames()
            .map_err(|e| sled::Error::Unsupported(format!("username index: {e:?}")))?;
        Ok(store)
    }

    /// Waits until every write made before the call is on disk. Concurrent callers share
    /// flushes (group commit, see [`flush`]): under load one disk flush acknowledges many writes.
    pub async fn flush(&self) -> Result<(), Error> {
        self.flusher.flush(&self.db).await
    }

    /// Disk flushes run so far (each may acknowledge many writes).
    pub fn flushes(&self) -> u64 {
        self.flusher.runs()
    }

    /// How long the flushes take (for the metrics).
    pub fn flush_times(&self) -> crate::metrics::AtomicHistogram {
        self.flusher.times()
    }

    pub fn user(&self, id: &Uuid) -> Result<Option<UserRecord>, Error> {
        self.users
            .get(id.as_bytes())?
            .map(|v| from_json(&v))
            .transpose()
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, Error> {
        match self.usernames.get(username_key(name).as_bytes())? {
            Some(id) => {
                let id = Uuid::from_slice(&id).map_err(Error::internal)?;
                self.user(&id)
            }
            None => Ok(None),
        }
    }

    /// A passkey's record, as of its latest sign-in.
    pub fn credential(&self, cred_id: &[u8]) -> Result<Option<CredentialRecord>, Error> {
        self.credentials
            .get(cred_id)?
            .map(|v| self.with_usage(from_json(&v)?))
            .transpose()
    }

    /// The passkeys of a user, in credential-id order.
    pub fn credentials_of(&self, user_id: &Uuid) -> Result<Vec<CredentialRecord>, Error> {
        let mut out = Vec::new();
        for entry in self.user_credentials.scan_prefix(user_id.as_bytes()) {
            let (key, _) = entry?;
            if let Some(record) = self.credential(&key[16..])? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Creates a user together with their first passkey, atomically. Fails with
    /// `username_taken` or `credential_in_use` if another write got there first. Not a sled
    /// transaction: single-key writes in an order a crash cannot tear (see [`create`]).
    pub fn create_user(&self, user: &UserRecord, cred: &CredentialRecord) -> Result<(), Error> {
        self.create_user_in_order(user, cred)
    }

    /// Adds a passkey to an existing user, atomically with the credential-id index and the
    /// user's passkey count, which may not exceed `max_passkeys`.
    pub fn add_credential(&self, cred: &CredentialRecord, max_passkeys: u32) -> Result<(), Error> {
        let cred_json = to_json(cred)?;
        let cred_id = cred.passkey.cred_id().as_slice();
        (
            &self.users,
            &self.credentials,
            &self.user_credentials,
            &self.credential_use,
        )
            .transaction(|(users, credentials, user_credentials, usage)| {
                let Some(user) = users.get(cred.user_id.as_bytes())? else {
                    return Err(ConflictableTransactionError::Abort(Conflict::UnknownUser));
                };
                let mut user: UserRecord = serde_json::from_slice(&user)
                    .map_err(|_| ConflictableTransactionError::Abort(Conflict::UnknownUser))?;
                if user.passkeys >= max_passkeys {
                    return Err(ConflictableTransactionError::Abort(Conflict::PasskeyLimit(
                        max_passkeys,
                    )));
                }
                if credentials.get(cred_id)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(
                        Conflict::CredentialInUse,
                    ));
                }
                user.passkeys += 1;
                let user_json = serde_json::to_vec(&user)
                    .map_err(|_| ConflictableTransactionError::Abort(Conflict::UnknownUser))?;
                users.insert(user.id.as_bytes(), user_json)?;
                credentials.insert(cred_id, cred_json.as_slice())?;
                user_credentials.insert(user_cred_key(&cred.user_id, cred_id), &[])?;
                usage.remove(cred_id)?;
                Ok(())
            })
            .map_err(map_tx)
    }

    /// Deletes one of `user_id`'s passkeys. Refuses the last one unless `allow_last`.
    pub fn delete_credential(
        &self,
        user_id: &Uuid,
        cred_id: &[u8],
        allow_last: bool,
    ) -> Result<(), Error> {
        (
            &self.users,
            &self.credentials,
            &self.user_credentials,
            &self.credential_use,
        )
            .transaction(|(users, credentials, user_credentials, usage)| {
                let link = user_cred_key(user_id, cred_id);
                if user_credentials.get(&link)?.is_none() {
                    return Err(ConflictableTransactionError::Abort(Conflict::NotFound));
                }
                let Some(user) = users.get(user_id.as_bytes())? else {
                    return Err(ConflictableTransactionError::Abort(Conflict::UnknownUser));
                };
                let mut user: UserRecord = serde_json::from_slice(&user)
                    .map_err(|_| ConflictableTransactionError::Abort(Conflict::UnknownUser))?;
                if user.passkeys <= 1 && !allow_last {
                    return Err(ConflictableTransactionError::Abort(Conflict::LastPasskey));
                }
                user.passkeys = user.passkeys.saturating_sub(1);
                let user_json = serde_json::to_vec(&user)
                    .map_err(|_| ConflictableTransactionError::Abort(Conflict::UnknownUser))?;
                users.insert(user_id.as_bytes(), user_json)?;
                credentials.remove(cred_id)?;
                user_credentials.remove(link)?;
                usage.remove(cred_id)?;
                Ok(())
            })
            .map_err(map_tx)
    }

    /// Renames one of `user_id`'s passkeys; returns the updated record.
    pub fn rename_credential(
        &self,
        user_id: &Uuid,
        cred_id: &[u8],
        label: &str,
    ) -> Result<CredentialRecord, Error> {
        let mut outcome = Err(Error::NotFound("No passkey of yours has this id."));
        self.credentials.fetch_and_update(cred_id, |old| {
            let old = old?;
            let step = (|| {
                let mut record: CredentialRecord = from_json(old)?;
                if record.user_id != *user_id {
                    return Err(Error::NotFound("No passkey of yours has this id."));
                }
                record.label = Some(label.to_owned());
                Ok((to_json(&record)?, record))
            })();
            match step {
                Ok((bytes, record)) => {
                    outcome = Ok(record);
                    Some(bytes)
                }
                Err(e) => {
                    outcome = Err(e);
                    Some(old.to_vec())
                }
            }
        })?;
        self.with_usage(outcome?)
    }

    pub fn put_session(&self, hash: &[u8; 32], record: &SessionRecord) -> Result<(), Error> {
        self.sessions.insert(hash, to_json(record)?)?;
        Ok(())
    }

    /// Rewrites the session only if it is still there (see [`crate::store::Store::touch_session`]).
    pub fn touch_session(&self, hash: &[u8; 32], record: &SessionRecord) -> Result<(), Error> {
        let text = to_json(record)?;
        self.sessions
            .fetch_and_update(hash, |old| old.map(|_| text.clone()))?;
        Ok(())
    }

    pub fn remove_session(&self, hash: &[u8; 32]) -> Result<(), Error> {
        self.sessions.remove(hash)?;
        Ok(())
    }

    /// Every persisted session with its token hash.
    pub fn sessions(&self) -> Result<Vec<([u8; 32], SessionRecord)>, Error> {
        let mut out = Vec::new();
        for entry in self.sessions.iter() {
            let (key, value) = entry?;
            let hash: [u8; 32] = key
                .as_ref()
                .try_into()
                .map_err(|_| Error::internal("session key is not 32 bytes"))?;
            out.push((hash, from_json(&value)?));
        }
        Ok(out)
    }

    #[doc(hidden)]
    pub fn put_user_for_tests(&self, user: &UserRecord) -> Result<(), Error> {
        self.users.insert(user.id.as_bytes(), to_json(user)?)?;
        self.usernames
            .insert(username_key(&user.name).as_bytes(), user.id.as_bytes())?;
        Ok(())
    }

    /// Every user, in id order (the migration to PostgreSQL reads them).
    pub fn users(&self) -> Result<Vec<UserRecord>, Error> {
        self.users.iter().map(|e| from_json(&e?.1)).collect()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn usernames_are_unique_regardless_of_case_and_spaces() {
        assert_eq!(username_key("  Alice@Example.COM "), "alice@example.com");
        let (_dir, s) = store();
        assert!(s.user_by_name("nobody").unwrap().is_none());
        let _ = s.usernames.insert("alice", Uuid::nil().as_bytes()).unwrap();
        assert!(
            s.user_by_name("ALICE").unwrap().is_none(),
            "index points at no user"
        );
    }
}
