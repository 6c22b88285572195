//! Readiness (`GET /readyz`): the server takes traffic when the store takes a write to disk and
//! the server is not shutting down. Domain code: no HTTP here.
//!
//! Invariant: the store is probed at most once per [`PROBE_EVERY`], however often readiness is
//! asked (an orchestrator polling, or a client hammering the endpoint), and at most one probe
//! runs at a time; between probes the last answer stands.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::store::Store;

/// How long one probe's answer stands.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Why the server is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    ShuttingDown,
    /// The probe's write or flush failed; the detail is for the log.
    StoreNotWritable(String),
    /// On a shared store: the revocation feed is down, so every token is refused (fail closed).
    RevocationsUnconfirmed,
}

impl NotReady {
    /// A stable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            NotReady::ShuttingDown => "shutting_down",
            NotReady::StoreNotWritable(_) => "store_not_writable",
            NotReady::RevocationsUnconfirmed => "revocations_unconfirmed",
        }
    }

    /// One sentence for people; says nothing of paths or internals.
    pub fn message(&self) -> &'static str {
        match self {
            NotReady::ShuttingDown => "The server is shutting down.",
            NotReady::StoreNotWritable(_) => "The data directory does not take writes.",
            NotReady::RevocationsUnconfirmed => {
                "This node cannot confirm revocations from the database; it refuses tokens."
            }
        }
    }
}

/// The last probe's answer, shared by every request.
#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, Result<(), NotReady>)>>,
    probing: AtomicBool,
}

/// Clears `probing` however the probe ends (a dropped request included).
struct Probing<'a>(&'a AtomicBool);

impl Drop for Probing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Readiness {
    /// Whether the store, and the data directory `dir` it lives in, take writes: a fresh answer
    /// at most once per [`PROBE_EVERY`].
    pub async fn store(
        &self,
        store: &Store,
        dir: &Path,
        clock: &dyn Clock,
    ) -> Result<(), NotReady> {
        let cached = || {
            self.last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        if let Some((at, answer)) = cached() {
            if at.elapsed() < PROBE_EVERY {
                return answer;
            }
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            // Another request is probing: the last answer stands until it is done.
            return cached().map_or(Ok(()), |(_, answer)| answer);
        }
        let _probing = Probing(&self.probing);
        let answer = store.probe_write(dir, clock.now_ms()).await.map_err(|e| {
            let detail = match e {
                crate::error::Error::Internal(detail) => detail,
                other => other.to_string(),
            };
            tracing::warn!(error = %detail, "readiness: the store does not take writes");
            NotReady::StoreNotWritable(detail)
        });
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[tokio::test]
    async fn the_store_is_probed_at_most_once_a_second_however_often_readiness_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let readiness = Readiness::default();
        let before = store.flushes();
        for _ in 0..50 {
            assert_eq!(
                readiness.store(&store, dir.path(), &SystemClock).await,
                Ok(())
            );
        }
        assert_eq!(store.flushes(), before + 1, "one probe for fifty questions");
        // Once the answer is a second old, the next question probes again.
        *readiness.last.lock().unwrap() = Some((Instant::now() - PROBE_EVERY, Ok(())));
        assert_eq!(
            readiness.store(&store, dir.path(), &SystemClock).await,
            Ok(())
        );
        assert_eq!(store.flushes(), before + 2);
    }
}
