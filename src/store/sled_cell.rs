//! The sled backend's one open database, reopened when it fails (hardening issue, item 9).
//!
//! sled 0.34 remembers the first I/O error it meets (a full disk, a file system turned
//! read-only) and fails every later write and flush with it, even once the disk works again:
//! only a new opening clears it. [`SledCell`] holds the opening the store uses, and
//! [`watch`] checks it once a second: when it has failed, the data directory takes a synced
//! write again and [`REOPEN_AFTER`] has passed since the failure was first seen, the old opening
//! is dropped (once no call is using it) and the directory opened anew. Meanwhile, and while an
//! opening fails, every call fails with an error, so nothing is acknowledged that is not durable.
//!
//! Invariant: what a failed opening held but had not flushed is lost with it, as at a crash. Its
//! callers learn it: a write or flush on the failed opening fails (sled's remembered error), and
//! a reopening waits [`REOPEN_AFTER`] from the failure, so a caller whose write reached the old
//! opening just before it failed calls `flush` (which runs right after the write) on the old,
//! failed one, unless it is held up for longer than that between the two.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use super::SledStore;
use crate::error::Error;
use crate::metrics::AtomicHistogram;

/// How often the opening is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The shortest time from a failure to the reopening (see the module's invariant).
pub const REOPEN_AFTER: Duration = Duration::from_secs(2);
/// How long a reopening waits for the calls still using the old opening.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// How long one attempt at opening the directory may take.
const OPEN_WAIT: Duration = Duration::from_secs(10);

/// The opening in use, and what survives a reopening.
pub struct SledCell {
    dir: PathBuf,
    current: RwLock<Option<Arc<SledStore>>>,
    /// Flush times, kept across openings for the metrics.
    times: AtomicHistogram,
    /// When the current opening was first seen failing.
    failed_since: std::sync::Mutex<Option<Instant>>,
}

impl SledCell {
    pub fn open(dir: &Path) -> Result<SledCell, sled::Error> {
        let times = AtomicHistogram::default();
        let store = SledStore::open_with(dir, times.clone())?;
        Ok(SledCell::holding(dir, store, times))
    }

    /// A cell around an opening made elsewhere.
    pub fn holding(dir: &Path, store: SledStore, times: AtomicHistogram) -> SledCell {
        SledCell {
            dir: dir.to_owned(),
            current: RwLock::new(Some(Arc::new(store))),
            times,
            failed_since: std::sync::Mutex::new(None),
        }
    }

    /// The opening to use now; an error while the store is being reopened or cannot be.
    pub fn get(&self) -> Result<Arc<SledStore>, Error> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current
            .clone()
            .ok_or_else(|| Error::internal("storage: the data directory is being reopened"))
    }

    pub fn flush_times(&self) -> AtomicHistogram {
        self.times.clone()
    }

    fn swap(&self, store: Option<Arc<SledStore>>) -> Option<Arc<SledStore>> {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut *current, store)
    }

    /// One check: whether the opening works, and a reopening when it has failed long enough and
    /// the directory takes writes again. Returns whether the store works after it.
    pub async fn check(&self) -> bool {
        let failed = self
            .failed_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        // Once failed, an opening is not asked again (a flush on a file system gone read-only
        // may not come back); a flush that does not answer in time counts as failed.
        let healthy = match self.get() {
            Ok(store) if !failed => {
                let working = tokio::task::spawn_blocking(move || store.db_flush_works());
                matches!(tokio::time::timeout(OPEN_WAIT, working).await, Ok(Ok(true)))
            }
            _ => false,
        };
        let first = {
            let mut since = self
                .failed_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if healthy {
                *since = None;
                return true;
            }
            *since.get_or_insert_with(|| {
                tracing::error!(
                    "the store failed (a full or read-only disk?); it is reopened once the data \
                     directory takes writes again"
                );
                Instant::now()
            })
        };
        if first.elapsed() < REOPEN_AFTER {
            return false;
        }
        let dir = self.dir.clone();
        let writable =
            tokio::task::spawn_blocking(move || super::sled_store::directory_takes_writes(&dir));
        if !writable.await.unwrap_or(false) {
            return false;
        }
        self.reopen().await
    }

    /// Drops the failed opening once no call holds it, and opens the directory again.
    async fn reopen(&self) -> bool {
        if let Some(old) = self.swap(None) {
            let deadline = Instant::now() + DRAIN_WAIT;
            while Arc::strong_count(&old) > 1 {
                if Instant::now() > deadline {
                    tracing::warn!("the failed store is still in use; its reopening waits");
                    self.swap(Some(old));
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Dropping sled flushes (and fails, here) and joins its threads, which on a file
            // system gone read-only may never end: on a thread of its own, not awaited. Until it
            // lets go of the directory's lock, opening it again fails, and is tried again.
            let dropped = std::thread::Builder::new()
                .name("wsauthn-sled-drop".into())
                .spawn(move || drop(old));
            if let Err(e) = dropped {
                tracing::warn!(error = %e, "cannot start a thread to close the failed store");
            }
        }
        let dir = self.dir.clone();
        let times = self.times.clone();
        let opening = tokio::task::spawn_blocking(move || SledStore::open_with(&dir, times));
        let opened = match tokio::time::timeout(OPEN_WAIT, opening).await {
            Ok(joined) => joined.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer in {OPEN_WAIT:?}")),
        };
        match opened {
            Ok(Ok(store)) => {
                self.swap(Some(Arc::new(store)));
                *self
                    .failed_since
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                tracing::info!("the store takes writes again (the data directory was reopened)");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reopening the data directory failed; trying again");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "reopening the data directory failed; trying again");
                false
            }
        }
    }
}

/// Checks `cell` every [`CHECK_EVERY`] until it is dropped (a weak handle: this never keeps the
/// store open) or `shutdown` turns true.
pub async fn watch(cell: Weak<SledCell>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        let Some(cell) = cell.upgrade() else {
            return;
        };
        cell.check().await;
    }
}
