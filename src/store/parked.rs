//! Ceremonies parked in a shared store: the HTTP mirror's begin and finish may reach different
//! nodes, so on PostgreSQL their server-side state waits in the database (docs/cluster.md).
//! On sled (one node) ceremonies stay in memory (`crate::ceremony::pending`) and these calls
//! are never made.
//!
//! The store sees a ceremony's state as opaque text: what it holds is the ceremony module's.

use uuid::Uuid;

use super::Store;
use crate::error::Error;

/// A ceremony to park, with the limits it must fit under.
#[derive(Debug)]
pub struct ParkedCeremony<'a> {
    pub id: &'a Uuid,
    /// Which `finish` takes it (a small number the ceremony module chooses).
    pub kind: u8,
    /// The client address key that began it (IPv6 by /64).
    pub owner: Option<String>,
    pub now_ms: u64,
    pub expires_ms: u64,
    /// The serialized state; never sent to a client.
    pub state: String,
    /// At most this many live ceremonies per address…
    pub per_address: u32,
    /// …and in all.
    pub cap: usize,
}

/// What parking found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parked {
    Stored,
    /// The address has its share pending.
    AddressFull,
    /// The table holds `cap` live ceremonies.
    Full,
}

fn not_shared() -> Error {
    Error::internal("ceremonies are parked in the store only when it is shared")
}

impl Store {
    /// Stores a ceremony if it fits under its limits.
    pub async fn park_ceremony(&self, ceremony: &ParkedCeremony<'_>) -> Result<Parked, Error> {
        match self.as_postgres() {
            Some(p) => p.park_ceremony(ceremony).await,
            None => Err(not_shared()),
        }
    }

    /// Removes and returns the ceremony `id` of `kind` (its expiry and state), whichever node
    /// parked it; of racing takers at most one gets it.
    pub async fn take_ceremony(&self, id: &Uuid, kind: u8) -> Result<Option<(u64, String)>, Error> {
        match self.as_postgres() {
            Some(p) => p.take_ceremony(id, kind).await,
            None => Err(not_shared()),
        }
    }

    /// Removes the ceremonies begun before `before_ms` (pressure); returns how many.
    pub async fn free_ceremonies(&self, before_ms: u64) -> Result<u64, Error> {
        match self.as_postgres() {
            Some(p) => p.free_ceremonies(before_ms).await,
            None => Err(not_shared()),
        }
    }
}
