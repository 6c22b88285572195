//! Sessions and recovery codes in PostgreSQL, and the writer that commits the token table's
//! session writes.
//!
//! The token table writes sessions through synchronously (it holds no runtime to await on); the
//! writer takes them from a queue in order and commits whatever has queued up in one
//! transaction, its statements pipelined (group commit, like sled's flush). Invariant: when
//! [`Writer::flush`] returns `Ok`, every write queued before it has committed; when a commit
//! failed, the flush that covered it (or else the next one) returns the error, so a revocation
//! whose removal did not commit is not acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::pool::{Conn, Q};
use super::{db, from_json, int, to_json, PgStore};
use crate::error::Error;
use crate::store::{RecoverySet, SessionRecord};

/// At most this many writes per transaction.
const BATCH: usize = 1024;
/// How often a compare-and-swap is retried when another writer changed the row meanwhile.
const CAS_ATTEMPTS: usize = 8;

enum Write {
    Put {
        hash: [u8; 32],
        record: SessionRecord,
    },
    Remove([u8; 32]),
    /// A refresh: `old` stops working, `hash` takes its place.
    Replace {
        old: [u8; 32],
        hash: [u8; 32],
        record: SessionRecord,
    },
    /// Answered once every write queued before it has committed (or failed).
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The queue's sending side and the writer's counters.
pub(super) struct Writer {
    queue: mpsc::UnboundedSender<Write>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Writes queued so far.
    queued: AtomicU64,
    /// Writes the writer has taken from the queue and finished with (committed or failed).
    done: AtomicU64,
    /// A failed commit that no flush has reported yet.
    failed: Mutex<Option<String>>,
    commits: AtomicU64,
    times: crate::metrics::AtomicHistogram,
}

impl Writer {
    /// Starts the writer task on `runtime`, with a connection of its own.
    pub(super) fn start(config: tokio_postgres::Config, runtime: tokio::runtime::Handle) -> Writer {
        let (queue, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        runtime.spawn(run(config, runtime.clone(), rx, shared.clone()));
        Writer { queue, shared }
    }

    fn send(&self, write: Write) -> Result<(), Error> {
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.queue
            .send(write)
            .map_err(|_| Error::internal("the PostgreSQL session writer has stopped"))
    }

    /// Every call is timed (the metrics' store flush): the wait for queued writes to commit.
    pub(super) async fn flush(&self) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let result = self.flush_queued().await;
        self.shared.times.observe(started.elapsed());
        result
    }

    async fn flush_queued(&self) -> Result<(), Error> {
        let failed = self
            .shared
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(e) = failed {
            return Err(Error::internal(e));
        }
        if self.shared.done.load(Ordering::Acquire) >= self.shared.queued.load(Ordering::Acquire) {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(Write::Flush(tx))
            .map_err(|_| Error::internal("the PostgreSQL session writer has stopped"))?;
        rx.await
            .map_err(|_| Error::internal("the PostgreSQL session writer has stopped"))?
            .map_err(Error::internal)
    }

    pub(super) fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    pub(super) fn times(&self) -> crate::metrics::AtomicHistogram {
        self.shared.times.clone()
    }
}

async fn run(
    config: tokio_postgres::Config,
    runtime: tokio::runtime::Handle,
    mut rx: mpsc::UnboundedReceiver<Write>,
    shared: Arc<Shared>,
) {
    let mut conn: Option<Conn> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let writes = batch
            .iter()
            .filter(|w| !matches!(w, Write::Flush(_)))
            .count();
        let result = if writes == 0 {
            Ok(())
        } else {
            // One retry on a fresh connection: the last one may have died since the last batch.
            let mut result = commit(&mut conn, &config, &runtime, &batch).await;
            if result.is_err() && conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                conn = None;
                result = commit(&mut conn, &config, &runtime, &batch).await;
            }
            shared.commits.fetch_add(1, Ordering::Relaxed);
            result.map_err(|e| e.to_string())
        };
        shared.done.fetch_add(writes as u64, Ordering::AcqRel);
        let mut answered = false;
        for write in batch {
            if let Write::Flush(tx) = write {
                answered = true;
                let _ = tx.send(result.clone());
            }
        }
        if let Err(e) = result {
            tracing::error!(error = %e, writes, "session writes did not commit");
            if !answered {
                *shared.failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
            }
        }
    }
}

/// Commits the batch's writes in one transaction, their statements pipelined.
async fn commit(
    conn: &mut Option<Conn>,
    config: &tokio_postgres::Config,
    runtime: &tokio::runtime::Handle,
    batch: &[Write],
) -> Result<(), Error> {
    if conn.is_none() {
        *conn = Some(Conn::open(config, runtime).await?);
    }
    let Some(conn) = conn.as_mut() else {
        return Err(Error::internal("no connection"));
    };
    let (put, remove) = (
        conn.st(Q::put_session).clone(),
        conn.st(Q::remove_session).clone(),
    );
    let replace = conn.st(Q::replace_session).clone();
    // Parameters first (the pipelined statements borrow them), in queue order.
    enum Owned<'a> {
        Put(&'a [u8], &'a SessionRecord, i64, String),
        Remove(&'a [u8]),
        Replace(&'a [u8], &'a [u8], &'a SessionRecord, i64, String),
    }
    let mut owned = Vec::with_capacity(batch.len());
    for write in batch {
        match write {
            Write::Put { hash, record } => owned.push(Owned::Put(
                hash.as_slice(),
                record,
                int(record.expires_ms),
                to_json(record)?,
            )),
            Write::Remove(hash) => owned.push(Owned::Remove(hash.as_slice())),
            Write::Replace { old, hash, record } => owned.push(Owned::Replace(
                old.as_slice(),
                hash.as_slice(),
                record,
                int(record.expires_ms),
                to_json(record)?,
            )),
            Write::Flush(_) => {}
        }
    }
    type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
    let params: Vec<(&tokio_postgres::Statement, Vec<Param>)> = owned
        .iter()
        .map(|o| match o {
            Owned::Put(hash, record, expires, text) => (
                &put,
                vec![
                    hash as Param,
                    &record.id as Param,
                    &record.user_id as Param,
                    expires as Param,
                    text as Param,
                ],
            ),
            Owned::Remove(hash) => (&remove, vec![hash as Param]),
            Owned::Replace(old, hash, record, expires, text) => (
                &replace,
                vec![
                    old as Param,
                    hash as Param,
                    &record.id as Param,
                    &record.user_id as Param,
                    expires as Param,
                    text as Param,
                ],
            ),
        })
        .collect();
    if let [(st, p)] = params.as_slice() {
        // One write is its own transaction: no BEGIN and COMMIT round trips around it.
        conn.client.execute(*st, p.as_slice()).await.map_err(db)?;
        return Ok(());
    }
    let tx = conn.client.transaction().await.map_err(db)?;
    // Sent in order on the first poll, so a removal follows the write it undoes.
    let pending = params.iter().map(|(st, p)| tx.execute(*st, p.as_slice()));
    futures_util::future::try_join_all(pending)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)
}

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
        let removed = conn
            .client
            .execute(conn.st(Q::remove_sessions_of), &[user])
            .await
            .map_err(db)?;
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
