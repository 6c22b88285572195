//! The writer that commits sign-ins and the token table's session writes to PostgreSQL.
//!
//! The token table writes sessions through synchronously (it holds no runtime to await on); the
//! writer takes them from a queue in order and commits whatever has queued up in one
//! transaction, its statements and the `BEGIN` and `COMMIT` around them pipelined: one round
//! trip per batch (group commit, like sled's flush). A sign-in's counter update and the session
//! it opens are one statement in the same batches, so concurrent sign-ins share a commit.
//!
//! Invariants:
//! - when [`Writer::flush`] returns `Ok`, every write queued before it has committed: a batch
//!   that failed fails every flush made within [`FAILED_FOR`] after it whose writes reach into
//!   it (conservative: a flush of later writes then fails too), so a revocation whose removal
//!   did not commit is not acknowledged; the failure is recorded before its writes count as
//!   done;
//! - a sign-in is answered once its batch has committed (or failed);
//! - within a batch, sign-ins come first, ordered by credential id, then the other writes
//!   ordered by the session they touch (writes to one session keep their queue order); a batch
//!   that writes the revocation log takes the log's lock (`LOG_LOCK`) before all of them, and
//!   so does every other statement of ours that does: every node's transactions take locks in
//!   one order, so they cannot deadlock each other, and the log commits in sequence order.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::db;
use super::pool::Conn;
use crate::error::Error;
use crate::store::SessionRecord;

mod commit;
use commit::commit;

/// At most this many writes per transaction.
const BATCH: usize = 1024;

const STOPPED: &str = "the PostgreSQL session writer has stopped";

/// How long a failed batch fails the flushes that may cover its writes: longer than a request
/// takes from its write to its flush (as sled's, docs/guarantees.md).
const FAILED_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// The batches that did not commit lately (see [`FAILED_FOR`]).
struct Failure {
    /// The number of the first write of the earliest of them (writes are numbered in queue
    /// order, from 0).
    first: u64,
    /// When the latest of them failed.
    at: std::time::Instant,
    message: String,
}

/// What a sign-in writes to its passkey's row.
pub(super) struct Used {
    pub(super) cred_id: Vec<u8>,
    pub(super) owner: Uuid,
    pub(super) counter: i64,
    pub(super) backup_eligible: bool,
    pub(super) backup_state: bool,
    /// Unix seconds.
    pub(super) at: i64,
}

pub(super) enum Write {
    Put {
        hash: [u8; 32],
        record: SessionRecord,
    },
    /// A last use: rewrites the row only if it is still there.
    Touch {
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
    /// A sign-in's counter update, and the session it opens; answered with whether the counter
    /// check passed (and so the session was written).
    SignIn {
        used: Used,
        session: Option<([u8; 32], SessionRecord)>,
        reply: oneshot::Sender<Result<bool, String>>,
    },
    /// Answered once every write queued before it has committed (or failed).
    Flush(oneshot::Sender<Result<(), String>>),
}

impl Write {
    /// Whether it writes the revocation log (it ends a session or replaces a token).
    fn revokes(&self) -> bool {
        matches!(self, Write::Remove(_) | Write::Replace { .. })
    }

    fn is_sign_in(&self) -> bool {
        matches!(self, Write::SignIn { .. })
    }

    /// Where it goes in its batch (see the module's invariants); a flush has no statement.
    fn order(&self) -> Option<(u8, &[u8])> {
        match self {
            Write::SignIn { used, .. } => Some((0, &used.cred_id)),
            Write::Put { hash, .. }
            | Write::Touch { hash, .. }
            | Write::Remove(hash)
            | Write::Replace { old: hash, .. } => Some((1, hash)),
            Write::Flush(_) => None,
        }
    }
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
    /// The latest batch that did not commit.
    failed: Mutex<Option<Failure>>,
    commits: AtomicU64,
    times: crate::metrics::AtomicHistogram,
    /// The newest revocation log entry this node's writes made (0: none yet).
    log_high: AtomicI64,
}

impl Writer {
    /// Starts the writer task on `runtime`, with a connection of its own.
    pub(super) fn start(config: tokio_postgres::Config, runtime: tokio::runtime::Handle) -> Writer {
        let (queue, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        runtime.spawn(run(config, runtime.clone(), rx, shared.clone()));
        Writer { queue, shared }
    }

    pub(super) fn send(&self, write: Write) -> Result<(), Error> {
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.queue.send(write).map_err(|_| Error::internal(STOPPED))
    }

    /// Queues a sign-in's write and waits for its batch to commit: `Ok(true)` when the counter
    /// check passed and everything was written, `Ok(false)` when it wrote nothing.
    pub(super) async fn sign_in(
        &self,
        used: Used,
        session: Option<([u8; 32], SessionRecord)>,
    ) -> Result<bool, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Write::SignIn {
            used,
            session,
            reply,
        })?;
        answer
            .await
            .map_err(|_| Error::internal(STOPPED))?
            .map_err(Error::internal)
    }

    /// Every call is timed (the metrics' store flush): the wait for queued writes to commit.
    pub(super) async fn flush(&self) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let result = self.flush_queued().await;
        self.shared.times.observe(started.elapsed());
        result
    }

    async fn flush_queued(&self) -> Result<(), Error> {
        // Every write numbered below `target` was queued before this call.
        let target = self.shared.queued.load(Ordering::Acquire);
        if self.shared.done.load(Ordering::Acquire) < target {
            let (tx, rx) = oneshot::channel();
            self.queue
                .send(Write::Flush(tx))
                .map_err(|_| Error::internal(STOPPED))?;
            rx.await
                .map_err(|_| Error::internal(STOPPED))?
                .map_err(Error::internal)?;
        }
        let failed = self
            .shared
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match failed.as_ref() {
            Some(f) if f.first < target && f.at.elapsed() < FAILED_FOR => {
                Err(Error::internal(f.message.clone()))
            }
            _ => Ok(()),
        }
    }

    /// The newest revocation log entry this node's writes made (0: none yet).
    pub(super) fn newest_revocation(&self) -> i64 {
        self.shared.log_high.load(Ordering::Acquire)
    }

    /// Notes a log entry this node made outside the writer.
    pub(super) fn made_revocation(&self, seq: i64) {
        self.shared.log_high.fetch_max(seq, Ordering::AcqRel);
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
    // Writes taken from the queue so far: the next one's number.
    let mut taken = 0u64;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let (writes, flushes): (Vec<Write>, Vec<Write>) =
            batch.into_iter().partition(|w| w.order().is_some());
        let count = writes.len();
        let result = if writes.is_empty() {
            Ok(())
        } else {
            shared.commits.fetch_add(1, Ordering::Relaxed);
            commit_with_retry(&mut conn, &config, &runtime, writes, &shared.log_high).await
        };
        if let Err(message) = &result {
            // Before the writes count as done: a flush that sees them done sees this too. An
            // earlier failure still in force keeps its first write: the flushes it fails still
            // fail.
            let mut failed = shared.failed.lock().unwrap_or_else(PoisonError::into_inner);
            let first = match failed.as_ref() {
                Some(f) if f.at.elapsed() < FAILED_FOR => f.first,
                _ => taken,
            };
            *failed = Some(Failure {
                first,
                at: std::time::Instant::now(),
                message: message.clone(),
            });
        }
        taken += count as u64;
        shared.done.fetch_add(count as u64, Ordering::AcqRel);
        for write in flushes {
            if let Write::Flush(tx) = write {
                let _ = tx.send(result.clone());
            }
        }
    }
}

/// Why a batch did not commit.
struct Failed {
    error: Error,
    /// It certainly rolled back and may simply be tried again (a deadlock, a serialization
    /// failure).
    retry: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            retry: false,
        }
    }
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Failed {
        let retry = e.code().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        });
        Failed {
            error: db(e),
            retry,
        }
    }
}

/// Commits `writes` and answers their sign-ins; `Err` when writes other than sign-ins (which
/// are answered themselves) did not commit. A batch that certainly rolled back is tried once
/// more as it is. One whose connection closed may have committed: its other writes are tried
/// again on a fresh connection (each is idempotent), its sign-ins are answered with the error,
/// since a second counter update would refuse a sign-in that went through.
async fn commit_with_retry(
    conn: &mut Option<Conn>,
    config: &tokio_postgres::Config,
    runtime: &tokio::runtime::Handle,
    mut writes: Vec<Write>,
    log_high: &AtomicI64,
) -> Result<(), String> {
    // Stable: writes to one session keep their order.
    writes.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut result = commit(conn, config, runtime, &writes, log_high).await;
    if result.as_ref().is_err_and(|f| f.retry) {
        result = commit(conn, config, runtime, &writes, log_high).await;
    }
    let failed = match result {
        Ok(rows) => {
            answer(writes, &Ok(rows));
            return Ok(());
        }
        Err(failed) => failed.error.to_string(),
    };
    tracing::error!(error = %failed, writes = writes.len(), "a batch of writes did not commit");
    if conn.as_ref().is_some_and(|c| !c.client.is_closed()) {
        let others = writes.iter().any(|w| !w.is_sign_in());
        answer(writes, &Err(failed.clone()));
        return if others { Err(failed) } else { Ok(()) };
    }
    *conn = None;
    let (sign_ins, others): (Vec<Write>, Vec<Write>) =
        writes.into_iter().partition(Write::is_sign_in);
    answer(sign_ins, &Err(failed));
    if others.is_empty() {
        return Ok(());
    }
    commit(conn, config, runtime, &others, log_high)
        .await
        .map(|_| ())
        .map_err(|f| f.error.to_string())
}

/// Answers each sign-in among `writes` with its row count in `result` (in `writes`' order).
fn answer(writes: Vec<Write>, result: &Result<Vec<u64>, String>) {
    for (i, write) in writes.into_iter().enumerate() {
        if let Write::SignIn { reply, .. } = write {
            let _ = reply.send(match result {
                Ok(rows) => Ok(rows.get(i) == Some(&1)),
                Err(e) => Err(e.clone()),
            });
        }
    }
}
