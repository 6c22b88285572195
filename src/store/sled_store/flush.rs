//! Group commit: many callers waiting for "my write is on disk" share one disk flush.
//!
//! Each caller takes a ticket after its write. One flush runs at a time; whoever runs it first
//! reads the newest ticket, so that flush covers every write made before it started, and every
//! caller whose ticket it covers returns without a flush of its own. Under load the number of
//! flushes per acknowledged write falls towards one per flush duration, whatever the rate.
//!
//! The flush itself is sled's synchronous `flush` on the blocking pool, not `flush_async`:
//! sled 0.34's `flush_async` deadlocks when called concurrently (spacejam/sled#1308). On Linux
//! sled's flush ends in `sync_file_range`, which starts and waits for the page writes but flushes
//! neither the drive's write cache nor the file's size, so it does not promise the data survives
//! a power loss; the flush therefore ends with `fdatasync` of sled's log file, which does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::Error;

#[derive(Clone)]
pub(super) struct GroupCommit(Arc<Inner>);

struct Inner {
    /// sled's log file (`<data_dir>/db`), synced after each flush; `None` for a store that
    /// has none (a temporary one).
    log: Option<std::fs::File>,
    /// The newest ticket handed out.
    requested: AtomicU64,
    /// Every ticket up to this one is on disk.
    done: AtomicU64,
    /// Disk flushes run so far.
    runs: AtomicU64,
    /// How long each took.
    times: crate::metrics::AtomicHistogram,
    /// Held by the one caller whose flush is running.
    running: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// `times` records each flush's duration (shared with the store's earlier openings, so the
    /// metrics go on across a reopening).
    pub(super) fn new(log: Option<std::fs::File>, times: crate::metrics::AtomicHistogram) -> Self {
        GroupCommit(Arc::new(Inner {
            log,
            requested: AtomicU64::new(0),
            done: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            times,
            running: tokio::sync::Mutex::new(()),
        }))
    }

    pub(super) async fn flush(&self, db: &sled::Db) -> Result<(), Error> {
        let inner = &self.0;
        let ticket = inner.requested.fetch_add(1, Ordering::AcqRel) + 1;
        if inner.done.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let _running = inner.running.lock().await;
        // A flush that started after our ticket was taken, and finished while we waited, covers us.
        if inner.done.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let covers = inner.requested.load(Ordering::Acquire);
        let db = db.clone();
        let this = self.clone();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            db.flush()?;
            if let Some(log) = &this.0.log {
                log.sync_data()
                    .map_err(|e| Error::internal(format!("fdatasync of the store's log: {e}")))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("flush task: {e}")))??;
        inner.runs.fetch_add(1, Ordering::Relaxed);
        inner.times.observe(started.elapsed());
        inner.done.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }

    /// How long flushes take.
    pub(super) fn times(&self) -> crate::metrics::AtomicHistogram {
        self.0.times.clone()
    }

    /// Disk flushes run so far.
    pub(super) fn runs(&self) -> u64 {
        self.0.runs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_flushes_and_every_write_is_on_disk_after_its_flush() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let commit = GroupCommit::new(
            std::fs::File::open(dir.path().join("db")).ok(),
            crate::metrics::AtomicHistogram::default(),
        );
        assert!(commit.0.log.is_some(), "sled keeps its log in <dir>/db");
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let mut tasks = Vec::new();
        for i in 0u32..64 {
            let (db, commit, barrier) = (db.clone(), commit.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                db.insert(i.to_be_bytes(), &[1u8][..]).unwrap();
                barrier.wait().await;
                commit.flush(&db).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            commit.0.done.load(Ordering::Acquire),
            64,
            "every ticket is acknowledged"
        );
        // 64 writers waiting at once need a couple of flushes, not 64 (one running, one for
        // everyone who arrived meanwhile, and stragglers).
        assert!(
            commit.runs() < 16,
            "{} flushes for 64 writers",
            commit.runs()
        );
        drop(db);
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        assert_eq!(db.len(), 64);
    }
}
