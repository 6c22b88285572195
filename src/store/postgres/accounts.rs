//! Users and passkeys in PostgreSQL: registration, reads, sign-in's counter, renames, deletions.
//!
//! Invariant: a passkey row's usage columns (counter, backup flags, last use) are current; its
//! JSON record is as registered, so readers apply the columns ([`with_usage`]), the same way the
//! sled backend applies its `credential_use` entry.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{Credential, Passkey};
use webauthn_rs_proto::AuthenticatorTransport;

use super::pool::Q;
use super::writer::Used;
use super::{conflict, db, from_json, int, to_json, uint, user_from, PgStore};
use crate::assertion::{KnownCredential, PublicKey, SignInPasskey, Verified};
use crate::error::Error;
use crate::store::{username_key, CredentialRecord, DeletedUser, SessionRecord, UserRecord};

const NOT_REGISTERED: Error = Error::VerificationFailed("this passkey is no longer registered");
const NOT_YOURS: Error = Error::NotFound("No passkey of yours has this id.");

/// The `sign_in` column: what `login.begin` needs besides the usage columns.
#[derive(Serialize, Deserialize)]
struct SignIn {
    key: PublicKey,
    transports: Option<Vec<AuthenticatorTransport>>,
}

/// The columns a new passkey row is written with.
struct NewRow {
    record: String,
    sign_in: String,
    counter: i64,
    backup_eligible: bool,
    backup_state: bool,
    last_used_at: i64,
}

impl NewRow {
    fn of(cred: &CredentialRecord) -> Result<NewRow, Error> {
        let key = match &cred.public_key {
            Some(key) => key.clone(),
            None => PublicKey::from_passkey(&cred.passkey)
                .map_err(|e| Error::internal(format!("a passkey's key: {e}")))?,
        };
        let credential = Credential::from(cred.passkey.clone());
        Ok(NewRow {
            record: to_json(cred)?,
            sign_in: to_json(&SignIn {
                key,
                transports: credential.transports.clone(),
            })?,
            counter: i64::from(credential.counter),
            backup_eligible: credential.backup_eligible,
            backup_state: credential.backup_state,
            last_used_at: int(cred.last_used_at.unwrap_or(0)),
        })
    }
}

/// A row of (record, label, counter, backup_eligible, backup_state, last_used_at) as the record
/// as of its latest sign-in.
fn with_usage(row: &tokio_postgres::Row) -> Result<CredentialRecord, Error> {
    let record: CredentialRecord = from_json(row.get(0))?;
    let mut credential = Credential::from(record.passkey);
    credential.counter = u32::try_from(row.get::<_, i64>(2)).unwrap_or(u32::MAX);
    credential.backup_eligible = row.get(3);
    credential.backup_state = row.get(4);
    let last_used_at = uint(row.get(5));
    Ok(CredentialRecord {
        passkey: Passkey::from(credential),
        label: row.get::<_, Option<String>>(1).or(record.label),
        last_used_at: (last_used_at > 0).then_some(last_used_at),
        ..record
    })
}

/// A passkey's (id, sign_in, counter, backup_eligible, backup_state) from column `at` on.
fn sign_in_from(row: &tokio_postgres::Row, at: usize) -> Result<SignInPasskey, Error> {
    let SignIn { key, transports } = from_json(row.get(at + 1))?;
    Ok(SignInPasskey {
        known: KnownCredential {
            cred_id: row.get(at),
            key,
            counter: u32::try_from(row.get::<_, i64>(at + 2)).unwrap_or(u32::MAX),
            backup_eligible: row.get(at + 3),
            backup_state: row.get(at + 4),
        },
        transports,
    })
}

impl PgStore {
    pub async fn user(&self, id: &Uuid) -> Result<Option<UserRecord>, Error> {
        let conn = self.conn().await?;
        let row = conn.client.query_opt(conn.st(Q::user_by_id), &[id]).await;
        Ok(row.map_err(db)?.as_ref().map(user_from))
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, Error> {
        let conn = self.conn().await?;
        let key = username_key(name);
        let row = conn
            .client
            .query_opt(conn.st(Q::user_by_key), &[&key])
            .await;
        Ok(row.map_err(db)?.as_ref().map(user_from))
    }

    pub async fn credential(&self, cred_id: &[u8]) -> Result<Option<CredentialRecord>, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(conn.st(Q::credential), &[&cred_id])
            .await;
        row.map_err(db)?.as_ref().map(with_usage).transpose()
    }

    pub async fn credentials_of(&self, user_id: &Uuid) -> Result<Vec<CredentialRecord>, Error> {
        let conn = self.conn().await?;
        let rows = conn
            .client
            .query(conn.st(Q::credentials_of), &[user_id])
            .await;
        rows.map_err(db)?.iter().map(with_usage).collect()
    }

    /// One indexed query; no passkey JSON is decoded.
    pub async fn sign_in_passkeys(&self, user_id: &Uuid) -> Result<Vec<SignInPasskey>, Error> {
        let conn = self.conn().await?;
        let rows = conn.client.query(conn.st(Q::sign_in_of), &[user_id]).await;
        rows.map_err(db)?
            .iter()
            .map(|row| sign_in_from(row, 0))
            .collect()
    }

    /// The user named `name` and their passkeys' sign-in columns, in one query.
    pub async fn user_with_sign_in_passkeys(
        &self,
        name: &str,
    ) -> Result<Option<(UserRecord, Vec<SignInPasskey>)>, Error> {
        let conn = self.conn().await?;
        let key = username_key(name);
        let rows = conn.client.query(conn.st(Q::user_sign_in), &[&key]).await;
        let rows = rows.map_err(db)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let passkeys = rows
            .iter()
            .filter(|row| row.get::<_, Option<&[u8]>>(5).is_some())
            .map(|row| sign_in_from(row, 5))
            .collect::<Result<_, _>>()?;
        Ok(Some((user_from(first), passkeys)))
    }

    pub async fn create_user(
        &self,
        user: &UserRecord,
        cred: &CredentialRecord,
    ) -> Result<(), Error> {
        let row = NewRow::of(cred)?;
        let conn = self.conn().await?;
        let cred_id = cred.passkey.cred_id().as_slice();
        conn.client
            .execute(
                conn.st(Q::create_user),
                &[
                    &user.id,
                    &user.name,
                    &username_key(&user.name),
                    &user.display_name,
                    &int(user.created_at),
                    &cred_id,
                    &row.record,
                    &row.sign_in,
                    &cred.label,
                    &row.counter,
                    &row.backup_eligible,
                    &row.backup_state,
                    &row.last_used_at,
                ],
            )
            .await
            .map_err(conflict)?;
        Ok(())
    }

    pub async fn add_credential(
        &self,
        cred: &CredentialRecord,
        max_passkeys: u32,
    ) -> Result<(), Error> {
        let row = NewRow::of(cred)?;
        let conn = self.conn().await?;
        let cred_id = cred.passkey.cred_id().as_slice();
        let max = i32::try_from(max_passkeys).unwrap_or(i32::MAX);
        let added = conn
            .client
            .execute(
                conn.st(Q::add_credential),
                &[
                    &cred.user_id,
                    &max,
                    &cred_id,
                    &row.record,
                    &row.sign_in,
                    &cred.label,
                    &row.counter,
                    &row.backup_eligible,
                    &row.backup_state,
                    &row.last_used_at,
                ],
            )
            .await
            .map_err(conflict)?;
        if added == 1 {
            return Ok(());
        }
        // Nothing written: say why.
        match self.user(&cred.user_id).await? {
            None => Err(Error::UnknownUser),
            Some(_) => Err(Error::PasskeyLimit(max_passkeys)),
        }
    }

    pub async fn delete_credential(
        &self,
        user_id: &Uuid,
        cred_id: &[u8],
        allow_last: bool,
    ) -> Result<(), Error> {
        let conn = self.conn().await?;
        let deleted = conn
            .client
            .execute(
                conn.st(Q::delete_credential),
                &[user_id, &cred_id, &allow_last],
            )
            .await
            .map_err(db)?;
        if deleted == 1 {
            return Ok(());
        }
        let owned = conn
            .client
            .query_opt(conn.st(Q::owns_credential), &[&cred_id, user_id])
            .await
            .map_err(db)?;
        match owned.map(|row| row.get::<_, bool>(0)) {
            Some(true) => Err(Error::LastPasskey),
            _ => Err(NOT_YOURS),
        }
    }

    pub async fn rename_credential(
        &self,
        user_id: &Uuid,
        cred_id: &[u8],
        label: &str,
    ) -> Result<CredentialRecord, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(conn.st(Q::rename_credential), &[&cred_id, user_id, &label])
            .await
            .map_err(db)?;
        with_usage(&row.ok_or(NOT_YOURS)?)
    }

    /// The counter check is the statement's `WHERE`: atomic against the stored value. The
    /// session row is inserted by the same statement, only when the check passes; the writer
    /// commits it with whatever else has queued ([`super::writer`]).
    pub async fn record_sign_in(
        &self,
        result: &Verified,
        owner: &Uuid,
        now_secs: u64,
        session: Option<([u8; 32], SessionRecord)>,
    ) -> Result<(), Error> {
        let used = Used {
            cred_id: result.cred_id.clone(),
            owner: *owner,
            counter: i64::from(result.counter),
            backup_eligible: result.backup_eligible,
            backup_state: result.backup_state,
            at: int(now_secs),
        };
        if self.inner.writer.sign_in(used, session).await? {
            return Ok(());
        }
        // Nothing written: say why.
        let conn = self.conn().await?;
        let owned = conn
            .client
            .query_opt(conn.st(Q::owns_credential), &[&result.cred_id, owner])
            .await
            .map_err(db)?;
        Err(match owned.map(|row| row.get::<_, bool>(0)) {
            None => NOT_REGISTERED,
            Some(false) => Error::VerificationFailed("this passkey does not belong to the account"),
            Some(true) => Error::VerificationFailed(
                "the signature counter did not increase; the passkey may be cloned",
            ),
        })
    }

    /// Deletes the user; their passkeys go in the same statement (and by the foreign key's
    /// cascade, any added by a racing transaction).
    pub async fn delete_user(&self, id: &Uuid) -> Result<Option<DeletedUser>, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(conn.st(Q::delete_user), &[id])
            .await
            .map_err(db)?;
        Ok(row.map(|row| DeletedUser {
            user: user_from(&row),
            credential_ids: row.get(5),
        }))
    }

    pub async fn set_display_name(
        &self,
        user: &Uuid,
        display_name: &str,
    ) -> Result<Option<UserRecord>, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(conn.st(Q::set_display_name), &[user, &display_name])
            .await
            .map_err(db)?;
        Ok(row.as_ref().map(user_from))
    }
}
