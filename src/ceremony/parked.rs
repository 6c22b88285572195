//! Where a ceremony waits between begin and finish: in this node's memory ([`PendingTable`]),
//! or, for the HTTP mirror on a store several nodes share, in the store, so that a `finish`
//! reaching another node than its `begin` still finds it (docs/cluster.md).
//!
//! Invariants, both ways: a ceremony is taken (removed) before it is verified, so it is used
//! at most once, across nodes too (the store takes it with one `DELETE … RETURNING`); an
//! expired one is refused with `ceremony_not_found`; the cap, the per-address share and the
//! pressure expiry of [`super::pending`] hold, per node in memory and for the whole cluster in
//! the store. WebSocket ceremonies always stay in memory: a socket never changes node.
//!
//! [`PendingTable`]: super::PendingTable

use std::net::IpAddr;

use uuid::Uuid;

use super::pending::{CeremonyKind, PendingState, ADDRESS_FULL, FULL};
use super::Ceremonies;
use crate::endpoints::Transport;
use crate::error::Error;
use crate::store::{Parked, ParkedCeremony};

fn kind_code(kind: CeremonyKind) -> u8 {
    match kind {
        CeremonyKind::Register => 0,
        CeremonyKind::Login => 1,
    }
}

impl Ceremonies {
    /// Keeps a begun ceremony until its finish; returns its id.
    pub(super) async fn park(
        &self,
        state: PendingState,
        from: Option<IpAddr>,
        via: Transport,
    ) -> Result<Uuid, Error> {
        if via != Transport::Http || !self.store().is_shared() {
            return self.inner.pending.insert(state, from);
        }
        let limits = self.inner.pending.limits();
        let id = Uuid::new_v4();
        let now_ms = self.inner.clock.now_ms();
        let mut ceremony = ParkedCeremony {
            id: &id,
            kind: kind_code(state.kind()),
            owner: from.map(|ip| crate::admission::address_key(ip).to_string()),
            now_ms,
            expires_ms: now_ms.saturating_add(limits.timeout_secs.saturating_mul(1000)),
            state: serde_json::to_string(&state)
                .map_err(|e| Error::internal(format!("encode ceremony: {e}")))?,
            per_address: limits.per_address,
            cap: limits.cap,
        };
        match self.store().park_ceremony(&ceremony).await? {
            Parked::Stored => return Ok(id),
            Parked::AddressFull => return Err(ADDRESS_FULL),
            Parked::Full => {}
        }
        // Full: ceremonies older than the pressure timeout give way, then one more try.
        let pressure_ms = limits
            .pressure_timeout_secs
            .min(limits.timeout_secs)
            .saturating_mul(1000);
        let freed = self
            .store()
            .free_ceremonies(now_ms.saturating_sub(pressure_ms))
            .await?;
        if freed == 0 {
            return Err(FULL);
        }
        ceremony.now_ms = self.inner.clock.now_ms();
        match self.store().park_ceremony(&ceremony).await? {
            Parked::Stored => Ok(id),
            Parked::AddressFull => Err(ADDRESS_FULL),
            Parked::Full => Err(FULL),
        }
    }

    /// Removes and returns the ceremony `id` if it exists, is of `kind` and has not expired:
    /// from memory, or else (on a shared store) from the store, whichever node began it.
    pub(super) async fn take(&self, id: &Uuid, kind: CeremonyKind) -> Result<PendingState, Error> {
        match self.inner.pending.take(id, kind) {
            Err(Error::CeremonyNotFound) if self.store().is_shared() => {}
            taken => return taken,
        }
        let (expires_ms, state) = self
            .store()
            .take_ceremony(id, kind_code(kind))
            .await?
            .ok_or(Error::CeremonyNotFound)?;
        if self.inner.clock.now_ms() >= expires_ms {
            return Err(Error::CeremonyNotFound);
        }
        serde_json::from_str(&state).map_err(|e| Error::internal(format!("decode ceremony: {e}")))
    }
}
