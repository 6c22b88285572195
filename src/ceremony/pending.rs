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
//! table never holds more than `cap` entries, so a flood of begins cannot grow memory; one client
//! address holds at most `per_address` of them, so one client cannot fill it; and when it is full
//! anyway, ceremonies older than `pressure_timeout` give way to new ones (a real person finishes
//! a ceremony in well under a minute), so a flood from many addresses cannot lock people out
//! for the whole ceremony timeout.

use std::net::IpAddr;

use dashmap::DashMap;
use uuid::Uuid;
use webauthn_rs::prelude::PasskeyRegistration;

use crate::assertion::AssertionState;
use crate::clock::{Millis, SharedClock};
use crate::error::Error;
use crate::store::UserRecord;

/// Refused: the client's address has its share of ceremonies pending.
pub(super) const ADDRESS_FULL: Error = Error::RateLimited(
    "Too many sign-ins are in progress from your address; finish one or wait a minute.",
);
/// Refused: the cap is full of live, recent ceremonies.
pub(super) const FULL: Error =
    Error::RateLimited("Too many sign-ins are in progress on this server; try again shortly.");

/// Which `finish` a ceremony expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Register,
    Login,
}

/// What the server remembers between begin and finish. Serialized only to park an HTTP
/// ceremony in a shared store (`super::parked`), never for a client.
#[derive(serde::Serialize, serde::Deserialize)]
pub enum PendingState {
    /// Registering `user`'s passkey; `existing` when the user is already stored (adding a passkey).
    Register {
        state: PasskeyRegistration,
        user: UserRecord,
        existing: bool,
        /// Adding a passkey: the session that asked, which must still be live at finish.
        authorized_by: Option<Uuid>,
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
    /// The client address that began it (counted in `PendingTable::owners`).
    owner: Option<IpAddr>,
}

/// The limits of a [`PendingTable`].
#[derive(Debug, Clone, Copy)]
pub struct PendingLimits {
    pub cap: usize,
    pub per_address: u32,
    pub timeout_secs: u64,
    pub pressure_timeout_secs: u64,
}

pub struct PendingTable {
    map: DashMap<Uuid, Pending>,
    limits: PendingLimits,
    /// Ceremonies pending per client address (IPv6 by /64).
    owners: DashMap<IpAddr, u32>,
    cap: usize,
    per_address: u32,
    timeout_ms: Millis,
    pressure_timeout_ms: Millis,
    clock: SharedClock,
}

impl PendingTable {
    pub fn new(limits: PendingLimits, clock: SharedClock) -> Self {
        PendingTable {
            map: DashMap::new(),
            limits,
            owners: DashMap::new(),
            cap: limits.cap,
            per_address: limits.per_address,
            timeout_ms: limits.timeout_secs.saturating_mul(1000),
            pressure_timeout_ms: limits
                .pressure_timeout_secs
                .min(limits.timeout_secs)
                .saturating_mul(1000),
            clock,
        }
    }

    /// Stores a new ceremony begun from `from` and returns its id, or `rate_limited` when that
    /// address has its share pending, or the table is full of live, recent ceremonies.
    pub fn insert(&self, state: PendingState, from: Option<IpAddr>) -> Result<Uuid, Error> {
        let owner = from.map(crate::admission::address_key);
        if let Some(owner) = owner {
            let mut count = self.owners.entry(owner).or_insert(0);
            if *count >= self.per_address {
                return Err(ADDRESS_FULL);
            }
            *count += 1;
        }
        if self.map.len() >= self.cap
            && (self.sweep() == 0 || self.map.len() >= self.cap)
            && (self.sweep_older_than(self.pressure_timeout_ms) == 0 || self.map.len() >= self.cap)
        {
            self.release(owner);
            return Err(FULL);
        }
        let id = Uuid::new_v4();
        let expires_ms = self.clock.now_ms().saturating_add(self.timeout_ms);
        self.map.insert(
            id,
            Pending {
                state,
                expires_ms,
                owner,
            },
        );
        Ok(id)
    }

    fn release(&self, owner: Option<IpAddr>) {
        if let Some(owner) = owner {
            if let Some(mut count) = self.owners.get_mut(&owner) {
                *count = count.saturating_sub(1);
            }
            self.owners.remove_if(&owner, |_, n| *n == 0);
        }
    }

    /// Removes and returns the ceremony if it exists, is of `kind` and has not expired. A
    /// ceremony of another kind is left in place; an expired one is removed.
    pub fn take(&self, id: &Uuid, kind: CeremonyKind) -> Result<PendingState, Error> {
        let (_, pending) = self
            .map
            .remove_if(id, |_, p| p.state.kind() == kind)
            .ok_or(Error::CeremonyNotFound)?;
        self.release(pending.owner);
        if self.clock.now_ms() >= pending.expires_ms {
            return Err(Error::CeremonyNotFound);
        }
        Ok(pending.state)
    }

    /// Forgets a ceremony (superseded, or its socket closed).
    pub fn cancel(&self, id: &Uuid) {
        if let Some((_, pending)) = self.map.remove(id) {
            self.release(pending.owner);
        }
    }

    /// Removes expired ceremonies; returns how many.
    pub fn sweep(&self) -> usize {
        self.sweep_older_than(self.timeout_ms)
    }

    /// Removes ceremonies begun more than `age_ms` ago; returns how many.
    fn sweep_older_than(&self, age_ms: Millis) -> usize {
        // Begun before `cutoff` ⇔ expiring before `cutoff + timeout`.
        let cutoff = self.clock.now_ms().saturating_sub(age_ms);
        let expiring_before = cutoff.saturating_add(self.timeout_ms);
        let mut freed = Vec::new();
        self.map.retain(|_, p| {
            let keep = p.expires_ms > expiring_before;
            if !keep {
                freed.push(p.owner);
            }
            keep
        });
        for owner in &freed {
            self.release(*owner);
        }
        freed.len()
    }

    /// The limits this table keeps (a shared store keeps the same ones for HTTP ceremonies).
    pub fn limits(&self) -> PendingLimits {
        self.limits
    }

    /// Ceremonies pending from `ip`'s address.
    pub fn pending_from(&self, ip: IpAddr) -> u32 {
        self.owners
            .get(&crate::admission::address_key(ip))
            .map_or(0, |n| *n)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
