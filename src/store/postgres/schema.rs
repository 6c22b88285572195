//! Versioned migrations (`migrations/NNNN_*.sql`, compiled in), applied at start.
//!
//! Invariants: each migration runs once, in a transaction together with the row in
//! `wsauthn_schema` that records it, so a crash part-way leaves the previous version. Nodes that
//! start at once take a session-level advisory lock first, so one migrates and the others then
//! see the new version and do nothing. A database of a newer version than this code knows is
//! refused rather than used.

use tokio_postgres::Client;

use super::db;
use crate::error::Error;

/// Every migration, in order; the version is the position plus one.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/0001_init.sql"),
    ),
    (
        "0002_revocations",
        include_str!("../../../migrations/0002_revocations.sql"),
    ),
    (
        "0003_ceremonies",
        include_str!("../../../migrations/0003_ceremonies.sql"),
    ),
    (
        "0004_revocations_in_commit_order",
        include_str!("../../../migrations/0004_revocations_in_commit_order.sql"),
    ),
];

/// The advisory lock key migrations hold ("wsauthn" in ASCII, as a number).
const LOCK: i64 = 0x0077_7361_7574_686e;

/// The transaction-level advisory lock a transaction holds from before its first revocation log
/// entry until it commits, so the log's sequence numbers commit in order
/// (`migrations/0004_revocations_in_commit_order.sql`; "wsrevok" in ASCII).
pub(super) const LOG_LOCK: i64 = 0x0077_7372_6576_6f6b;

/// The version this code writes.
pub(super) fn current() -> i32 {
    MIGRATIONS.len() as i32
}

/// Brings the schema to [`current`]; returns the version found before.
pub(super) async fn migrate(client: &mut Client) -> Result<i32, Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await
        .map_err(db)?;
    let result = migrate_locked(client).await;
    // Released before returning either way (the lock is the session's, not a transaction's).
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await
        .map_err(db);
    let found = result?;
    unlocked?;
    Ok(found)
}

async fn migrate_locked(client: &mut Client) -> Result<i32, Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS wsauthn_schema (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(db)?;
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM wsauthn_schema", &[])
        .await
        .map_err(db)?;
    let found: i32 = row.get(0);
    if found > current() {
        return Err(Error::internal(format!(
            "the database's schema is version {found}, newer than this wsauthn's {}: \
             run the newer wsauthn, or a database of its own",
            current()
        )));
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i32 + 1;
        let tx = client.transaction().await.map_err(db)?;
        tx.batch_execute(sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO wsauthn_schema (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(version, name, "database schema migrated");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_lock_is_the_one_the_trigger_takes() {
        let (_, sql) = super::MIGRATIONS[3];
        let taken = format!("pg_advisory_xact_lock({})", super::LOG_LOCK);
        assert_eq!(sql.matches(&taken).count(), 2, "{sql}");
    }
}
