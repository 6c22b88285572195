//! The HTTP mirror's ceremonies in PostgreSQL, shared by every node (`migrations/0003`).
//!
//! Invariants: a ceremony is taken with one `DELETE … RETURNING`, so of two nodes finishing it
//! at once exactly one gets it, and it is gone before it is verified; it is parked with one
//! statement that counts the live ceremonies of its address and of the table first, so the
//! caps hold for the whole cluster. Times are the nodes' clocks, passed in.

use uuid::Uuid;

use super::pool::Q;
use super::{db, int, uint, PgStore};
use crate::error::Error;
use crate::store::{Parked, ParkedCeremony};

impl PgStore {
    pub async fn park_ceremony(&self, c: &ParkedCeremony<'_>) -> Result<Parked, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_one(
                conn.st(Q::park_ceremony),
                &[
                    c.id,
                    &i16::from(c.kind),
                    &c.owner,
                    &int(c.expires_ms),
                    &c.state,
                    &int(c.now_ms),
                    &i64::from(c.per_address),
                    &i64::try_from(c.cap).unwrap_or(i64::MAX),
                ],
            )
            .await
            .map_err(db)?;
        // (live from the owner, live in all, inserted)
        let (from_owner, inserted): (i64, i64) = (row.get(0), row.get(2));
        Ok(if inserted == 1 {
            Parked::Stored
        } else if c.owner.is_some() && from_owner >= i64::from(c.per_address) {
            Parked::AddressFull
        } else {
            Parked::Full
        })
    }

    /// Removes and returns the ceremony `id` of `kind`: its expiry and state.
    pub async fn take_ceremony(&self, id: &Uuid, kind: u8) -> Result<Option<(u64, String)>, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_opt(conn.st(Q::take_ceremony), &[id, &i16::from(kind)])
            .await
            .map_err(db)?;
        Ok(row.map(|row| (uint(row.get(0)), row.get(1))))
    }

    /// Removes ceremonies begun before `before_ms`; returns how many.
    pub async fn free_ceremonies(&self, before_ms: u64) -> Result<u64, Error> {
        let conn = self.conn().await?;
        conn.client
            .execute(conn.st(Q::free_ceremonies), &[&int(before_ms)])
            .await
            .map_err(db)
    }
}
