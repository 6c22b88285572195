//! Ceremonies in progress: the server-side half of every begin/finish pair.
//!
//! A pending ceremony moves through these states, and no others:
//!
//! ```text
//! begin ──► Pending ──finish──► Taken ──► verified or failed (either way it is gone)
//!              │
//!              ├── expired (ceremony timeout) ──► swept, or refused at finish
//!              └── cancelled (a newer begin of the same kind on the socket, the socket closed)
//! ```
//!
//! Invariants: state never leaves the server (clients hold only the random `ceremonyId`); a
//! ceremony is removed from the table *before* it is verified, so it is used at most once; the
//! table never holds more than `cap` entries, so a flood of begins cannot grow memory.

use dashmap::DashMap;
use uuid::Uuid;
use webauthn_rs::prelude::PasskeyRegistration;

use crate::assertion::AssertionState;
use crate::clock::{Millis, SharedClock};
use crate::error::Error;
use crate::store::UserRecord;

/// Which `finish` a ceremony expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Register,
    Login,
}

/// What the server remembers between begin and finish.
pub enum PendingState {
    /// Registering `user`'s passkey; `existing` when the user is already stored (adding a passkey).
    Register {
        state: PasskeyRegistration,
        user: UserRecord,
        existing: bool,
        token: bool,
    },
    /// Signing in a named user.
    Login {
        state: AssertionState,
        /// The account as read at begin (usernames and display names never change), so finish
        /// need not read it again; finish still checks the passkey belongs to it.
        user: UserRecord,
        token: bool,
    },
    /// Usernameless sign-in: the user is learned from the credential's user handle.
    Discoverable { state: AssertionState, token: bool },
}

impl PendingState {
    pub fn kind(&self) -> CeremonyKind {
        match self {
            PendingState::Register { .. } => CeremonyKind::Register,
            PendingState::Login { .. } | PendingState::Discoverable { .. } => CeremonyKind::Login,
        }
    }
}

struct Pending {
    state: PendingState,
    expires_ms: Millis,
}

pub struct PendingTable {
    map: DashMap<Uuid, Pending>,
    cap: usize,
    timeout_ms: Millis,
    clock: SharedClock,
}

impl PendingTable {
    pub fn new(cap: usize, timeout_secs: u64, clock: SharedClock) -> Self {
        PendingTable {
            map: DashMap::new(),
            cap,
            timeout_ms: timeout_secs.saturating_mul(1000),
            clock,
        }
    }

    /// Stores a new ceremony and returns its id, or `rate_limited` when the table is full of
    /// live ceremonies.
    pub fn insert(&self, state: PendingState) -> Result<Uuid, Error> {
        if self.map.len() >= self.cap && (self.sweep() == 0 || self.map.len() >= self.cap) {
            return Err(Error::RateLimited(
                "Too many sign-ins are in progress on this server; try again shortly.",
            ));
        }
        let id = Uuid::new_v4();
        let expires_ms = self.clock.now_ms().saturating_add(self.timeout_ms);
        self.map.insert(id, Pending { state, expires_ms });
        Ok(id)
    }

    /// Removes and returns the ceremony if it exists, is of `kind` and has not expired. A
    /// ceremony of another kind is left in place; an expired one is removed.
    pub fn take(&self, id: &Uuid, kind: CeremonyKind) -> Result<PendingState, Error> {
        let (_, pending) = self
            .map
            .remove_if(id, |_, p| p.state.kind() == kind)
            .ok_or(Error::CeremonyNotFound)?;
        if self.clock.now_ms() >= pending.expires_ms {
            return Err(Error::CeremonyNotFound);
        }
        Ok(pending.state)
    }

    /// Forgets a ceremony (superseded, or its socket closed).
    pub fn cancel(&self, id: &Uuid) {
        self.map.remove(id);
    }

    /// Removes expired ceremonies; returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now_ms();
        let before = self.map.len();
        self.map.retain(|_, p| now < p.expires_ms);
        before.saturating_sub(self.map.len())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
