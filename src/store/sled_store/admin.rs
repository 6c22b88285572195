//! What the backend API does to the store: delete a user with everything that hangs off them.
//!
//! Invariant: a user, their username's index entry, their passkeys, the credential-id index
//! entries and the passkeys' usage go in one transaction, so the username and the credential ids
//! are free again the moment it commits, and no reader sees half an account. A passkey added by a
//! transaction racing the deletion is caught by the user's passkey count and the deletion retried.

use serde::Deserialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use uuid::Uuid;

use super::{
    from_json, user_cred_key, username_key, DeletedUser, SessionRecord, SledStore, UserRecord,
};
use crate::error::Error;

/// How often a deletion is retried when passkeys were added or removed while it read them.
/// The last attempt deletes what it finds, even when the stored count disagrees (records from
/// before the count was kept can carry a wrong one).
const ATTEMPTS: u32 = 3;

/// Why the deletion transaction stopped.
#[derive(Debug)]
enum Abort {
    /// The passkeys changed between listing them and the transaction: list again.
    Retry,
    Corrupt(&'static str),
}

/// Just the owner of a passkey record.
#[derive(Deserialize)]
struct Owner {
    user_id: Uuid,
}

impl SledStore {
    /// Deletes `id` with their passkeys, in one transaction. `None` when no such user exists.
    pub fn delete_user(&self, id: &Uuid) -> Result<Option<DeletedUser>, Error> {
        let mut attempt = 1;
        loop {
            let listed = self.credential_ids_of(id)?;
            match self.delete_user_once(id, &listed, attempt == ATTEMPTS) {
                Err(TransactionError::Abort(Abort::Retry)) if attempt < ATTEMPTS => attempt += 1,
                Err(TransactionError::Abort(Abort::Retry)) => {
                    return Err(Error::internal("user deletion kept racing passkey changes"))
                }
                Err(TransactionError::Abort(Abort::Corrupt(what))) => {
                    return Err(Error::internal(what))
                }
                Err(TransactionError::Storage(e)) => return Err(e.into()),
                Ok(user) => {
                    return Ok(user.map(|user| DeletedUser {
                        user,
                        credential_ids: listed,
                    }))
                }
            }
        }
    }

    /// The credential ids of `user`'s passkeys, from the `user_credentials` index.
    fn credential_ids_of(&self, user: &Uuid) -> Result<Vec<Vec<u8>>, Error> {
        self.user_credentials
            .scan_prefix(user.as_bytes())
            .keys()
            .map(|key| Ok(key?[16..].to_vec()))
            .collect()
    }

    fn delete_user_once(
        &self,
        id: &Uuid,
        listed: &[Vec<u8>],
        last_attempt: bool,
    ) -> Result<Option<UserRecord>, TransactionError<Abort>> {
        let abort = |a| ConflictableTransactionError::Abort(a);
        (
            &self.users,
            &self.usernames,
            &self.credentials,
            &self.user_credentials,
            &self.credential_use,
        )
            .transaction(|(users, usernames, credentials, user_credentials, usage)| {
                let Some(bytes) = users.get(id.as_bytes())? else {
                    return Ok(None);
                };
                let user: UserRecord = serde_json::from_slice(&bytes)
                    .map_err(|_| abort(Abort::Corrupt("a user record does not decode")))?;
                if usize::try_from(user.passkeys).ok() != Some(listed.len()) && !last_attempt {
                    return Err(abort(Abort::Retry));
                }
                for cred_id in listed {
                    let link = user_cred_key(id, cred_id);
                    if user_credentials.remove(link)?.is_none() && !last_attempt {
                        return Err(abort(Abort::Retry));
                    }
                    // The index says the passkey is theirs; the record must agree before it goes.
                    let owned = credentials.get(cred_id.as_slice())?.is_some_and(|record| {
                        serde_json::from_slice::<Owner>(&record).is_ok_and(|o| o.user_id == *id)
                    });
                    if owned {
                        credentials.remove(cred_id.as_slice())?;
                        usage.remove(cred_id.as_slice())?;
                    }
                }
                let name_key = username_key(&user.name);
                if usernames.get(name_key.as_bytes())?.as_deref() == Some(id.as_bytes()) {
                    usernames.remove(name_key.as_bytes())?;
                }
                users.remove(id.as_bytes())?;
                Ok(Some(user))
            })
    }

    /// Removes every persisted session of `user` from the `sessions` tree; returns how many.
    /// (The token table removes the sessions it holds itself; this catches any it does not.)
    pub fn remove_sessions_of(&self, user: &Uuid) -> Result<usize, Error> {
        let mut removed = 0;
        for entry in self.sessions.iter() {
            let (hash, value) = entry?;
            let record: SessionRecord = from_json(&value)?;
            if record.user_id == *user && self.sessions.remove(hash)?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
