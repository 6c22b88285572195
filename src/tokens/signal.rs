//! What a socket bound to a session hears about it: its expiry, refreshed, or its end.
//!
//! Invariant: a receiver whose session is gone reads `Ended` (a dropped sender counts as one),
//! so a socket never waits on a session that no longer exists.

use tokio::sync::watch;

use crate::clock::Millis;

/// What a bound socket is told about its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSignal {
    /// The session lives until `expires_ms` (changes when the token is refreshed).
    Live { expires_ms: Millis },
    /// Revoked or expired, at `at` (on this node's clock): the socket must close. `at` times
    /// the revocation's way to the socket (`wsauthn_revocation_fanout_seconds`).
    Ended { at: std::time::Instant },
}

impl SessionSignal {
    /// The signal a session's end sends, now.
    pub fn ended() -> Self {
        SessionSignal::Ended {
            at: std::time::Instant::now(),
        }
    }

    pub fn is_ended(&self) -> bool {
        matches!(self, SessionSignal::Ended { .. })
    }
}

/// A socket's subscription to its session.
#[derive(Debug)]
pub struct Revocation(pub(super) watch::Receiver<SessionSignal>);

impl Revocation {
    pub fn current(&self) -> SessionSignal {
        *self.0.borrow()
    }

    /// Waits for the next change; `Ended` also when the session is gone.
    pub async fn changed(&mut self) -> SessionSignal {
        match self.0.changed().await {
            Ok(()) => *self.0.borrow_and_update(),
            Err(_) => SessionSignal::ended(),
        }
    }

    /// Resolves once the session has ended.
    pub async fn fired(&mut self) {
        while !self.changed().await.is_ended() {}
    }
}
