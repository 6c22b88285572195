//! Sessions and recovery codes in PostgreSQL. Session writes go through the writer
//! ([`super::writer`]); reads and the rest are statements of their own.

use uuid::Uuid;

use super::pool::Q;
use super::schema::LOG_LOCK;
use super::writer::Write;
use super::{db, from_json, to_json, PgStore};
use crate::error::Error;
use crate::store::{RecoverySet, SessionRecord};

/// How often a compare-and-swap is retried when another writer changed the row meanwhile.
const CAS_ATTEMPTS: usize = 8;

/// A row of (hash, record).
fn session_row(row: &tokio_postgres::Row) -> Result<([u8; 32], SessionRecord), Error> {
    let hash: &[u8] = row.get(0);
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| Error::internal("session key is not 32 bytes"))?;
    Ok((hash, from_json(row.get(1))?))
}

impl PgStore {
    pub fn put_session(&self, hash: &[u8; 32], record: &SessionRecord) -> Result<(), Error> {
        self.inner.writer.send(Write::Put {
            hash: *hash,
            record: record.clone(),
        })
    }

    pub fn touch_session(&self, hash: &[u8; 32], record: &SessionRecord) -> Result<(), Error> {
        self.inner.writer.send(Write::Touch {
            hash: *hash,
            record: record.clone(),
        })
    }

    pub fn remove_session(&self, hash: &[u8; 32]) -> Result<(), Error> {
        self.inner.writer.send(Write::Remove(*hash))
    }

    pub fn replace_session(
        &self,
        old: &[u8; 32],
        hash: &[u8; 32],
        record: &SessionRecord,
    ) -> Result<(), Error> {
        self.inner.writer.send(Write::Replace {
            old: *old,
            hash: *hash,
            record: record.clone(),
        })
    }

    /// The session of a token hash with its user's name and display name, committed writes
    /// only (a node's own queued ones are in its token table already).
    pub async fn session_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, String, String)>, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(conn.st(Q::session_by_hash), &[&hash.as_slice()])
            .await
            .map_err(db)?;
        row.map(|row| Ok((from_json(row.get(0))?, row.get(1), row.get(2))))
            .transpose()
    }

    /// The committed sessions of `user`.
    pub async fn sessions_of(&self, user: &Uuid) -> Result<Vec<([u8; 32], SessionRecord)>, Error> {
        let conn = self.conn().await?;
        let rows = conn.client.query(conn.st(Q::sessions_of), &[user]).await;
        rows.map_err(db)?.iter().map(session_row).collect()
    }

    pub async fn sessions(&self) -> Result<Vec<([u8; 32], SessionRecord)>, Error> {
        let conn = self.conn().await?;
        let rows = conn
            .client
            .query(conn.st(Q::sessions), &[])
            .await
            .map_err(db)?;
        rows.iter().map(session_row).collect()
    }

    pub async fn remove_sessions_of(&self, user: &Uuid) -> Result<usize, Error> {
        // Queued removals of this user's sessions commit first, in order.
        self.flush().await?;
        let conn = self.conn().await?;
        // The log's lock before any row lock (see the module's invariants); one round trip.
        // A `Uuid` prints as hex and dashes only.
        let answers = conn
            .client
            .simple_query(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({LOG_LOCK}); \
                 DELETE FROM sessions WHERE user_id = '{user}'; \
                 SELECT coalesce(max(seq), 0) FROM revocations; COMMIT"
            ))
            .await
            .map_err(db)?;
        // The third statement's count (BEGIN and the lock's SELECT come first), then the
        // newest log entry: ours, the lock being held.
        let removed = answers
            .iter()
            .filter_map(|answer| match answer {
                tokio_postgres::SimpleQueryMessage::CommandComplete(rows) => Some(*rows),
                _ => None,
            })
            .nth(2)
            .unwrap_or(0);
        let newest = answers.iter().find_map(|answer| match answer {
            tokio_postgres::SimpleQueryMessage::Row(row)
                if row.columns()[0].name() == "coalesce" =>
            {
                row.get(0).and_then(|v| v.parse::<i64>().ok())
            }
            _ => None,
        });
        self.inner.writer.made_revocation(newest.unwrap_or(0));
        self.wait_for_other_nodes().await;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    pub async fn recovery_set(&self, user: &Uuid) -> Result<Option<RecoverySet>, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(conn.st(Q::recovery_set), &[user])
            .await
            .map_err(db)?;
        row.map(|row| from_json(row.get(0))).transpose()
    }

    pub async fn put_recovery_set(&self, user: &Uuid, set: &RecoverySet) -> Result<(), Error> {
        let conn = self.conn().await?;
        let codes = to_json(set)?;
        conn.client
            .execute(conn.st(Q::put_recovery_set), &[user, &codes])
            .await
            .map_err(db)?;
        Ok(())
    }

    pub async fn remove_recovery_set(&self, user: &Uuid) -> Result<(), Error> {
        let conn = self.conn().await?;
        conn.client
            .execute(conn.st(Q::remove_recovery_set), &[user])
            .await
            .map_err(db)?;
        Ok(())
    }

    /// A compare-and-swap on the set's text, so two sign-ins racing with one code cannot both
    /// spend it.
    pub async fn spend_recovery_code(
        &self,
        user: &Uuid,
        code_id: &str,
        hash: &str,
    ) -> Result<Option<usize>, Error> {
        let conn = self.conn().await?;
        for _ in 0..CAS_ATTEMPTS {
            let Some(row) = conn
                .client
                .query_opt(conn.st(Q::recovery_set), &[user])
                .await
                .map_err(db)?
            else {
                return Ok(None);
            };
            let old: String = row.get(0);
            let mut set: RecoverySet = from_json(&old)?;
            let before = set.codes.len();
            set.codes.retain(|c| !(c.id == code_id && c.hash == hash));
            if set.codes.len() == before {
                return Ok(None);
            }
            let new = to_json(&set)?;
            let swapped = conn
                .client
                .execute(conn.st(Q::swap_recovery_set), &[user, &old, &new])
                .await
                .map_err(db)?;
            if swapped == 1 {
                return Ok(Some(set.codes.len()));
            }
        }
        Err(Error::internal("recovery code kept racing other writes"))
    }
}
