//! A few PostgreSQL connections, each with every statement prepared once when it opens.
//!
//! tokio-postgres pipelines: concurrent queries on one connection are sent without waiting for
//! each other's answers, so a handful of connections serves many requests. A connection that
//! closes (the server restarted, the backend was terminated) is replaced on its next use; the
//! query that found it closed fails (`internal`), the next one succeeds once the database is
//! back. Connections run on the runtime the store was opened on, so they outlive the request
//! (and the worker) that opened them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio_postgres::{Client, NoTls, Statement};

use super::db;
use crate::error::Error;

/// Connections kept for queries (the session writer has one more of its own).
const CONNECTIONS: usize = 4;

macro_rules! statements {
    ($($name:ident = $sql:expr;)*) => {
        /// The prepared statements, by name.
        #[derive(Debug, Clone, Copy)]
        #[allow(non_camel_case_types)]
        pub(super) enum Q { $($name),* }
        const SQL: &[&str] = &[$($sql),*];
    };
}

statements! {
    user_by_id = "SELECT id, name, display_name, created_at, passkeys FROM users WHERE id = $1";
    user_by_key = "SELECT id, name, display_name, created_at, passkeys FROM users \
                   WHERE name_key = $1";
    credential = "SELECT record, label, counter, backup_eligible, backup_state, last_used_at \
                  FROM credentials WHERE id = $1";
    credentials_of = "SELECT record, label, counter, backup_eligible, backup_state, last_used_at \
                      FROM credentials WHERE user_id = $1 ORDER BY id";
    // login.begin by username: the user and their passkeys' sign-in columns in one query.
    user_sign_in = "SELECT u.id, u.name, u.display_name, u.created_at, u.passkeys, \
                    c.id, c.sign_in, c.counter, c.backup_eligible, c.backup_state \
                    FROM users u LEFT JOIN credentials c ON c.user_id = u.id \
                    WHERE u.name_key = $1 ORDER BY c.id";
    sign_in_of = "SELECT id, sign_in, counter, backup_eligible, backup_state \
                  FROM credentials WHERE user_id = $1 ORDER BY id";
    // A user and their first passkey in one statement: either unique constraint failing fails
    // both inserts.
    create_user = "WITH u AS (INSERT INTO users (id, name, name_key, display_name, created_at, \
                   passkeys) VALUES ($1, $2, $3, $4, $5, 1) RETURNING id) \
                   INSERT INTO credentials (id, user_id, record, sign_in, label, counter, \
                   backup_eligible, backup_state, last_used_at) \
                   SELECT $6, u.id, $7, $8, $9, $10, $11, $12, $13 FROM u";
    // The count goes up only while under the cap; the row lock orders racing additions.
    add_credential = "WITH u AS (UPDATE users SET passkeys = passkeys + 1 \
                      WHERE id = $1 AND passkeys < $2 RETURNING id) \
                      INSERT INTO credentials (id, user_id, record, sign_in, label, counter, \
                      backup_eligible, backup_state, last_used_at) \
                      SELECT $3, u.id, $4, $5, $6, $7, $8, $9, $10 FROM u RETURNING 1";
    // The user's row is locked first (FOR UPDATE), so racing deletions of their last two
    // passkeys see each other's count; the count falls only with a deleted row.
    delete_credential = "WITH d AS (DELETE FROM credentials WHERE id = $2 AND user_id = $1 \
                         AND ($3 OR (SELECT passkeys FROM users WHERE id = $1 FOR UPDATE) > 1) \
                         RETURNING user_id) \
                         UPDATE users SET passkeys = passkeys - 1 \
                         WHERE id IN (SELECT user_id FROM d) RETURNING 1";
    owns_credential = "SELECT user_id = $2 FROM credentials WHERE id = $1";
    rename_credential = "UPDATE credentials SET label = $3 WHERE id = $1 AND user_id = $2 \
                         RETURNING record, label, counter, backup_eligible, backup_state, \
                         last_used_at";
    // The counter check, atomic against the stored value: a counter that does not increase
    // (unless both are 0, an authenticator that keeps none) updates no row.
    record_use = "UPDATE credentials SET counter = $3, backup_eligible = backup_eligible OR $4, \
                  backup_state = $5, last_used_at = $6 \
                  WHERE id = $1 AND user_id = $2 AND ($3 > counter OR ($3 = 0 AND counter = 0)) \
                  RETURNING 1";
    // A sign-in that hands out a token: the session row only with a passing counter check.
    record_use_open = "WITH c AS (UPDATE credentials SET counter = $3, \
                       backup_eligible = backup_eligible OR $4, backup_state = $5, \
                       last_used_at = $6 WHERE id = $1 AND user_id = $2 \
                       AND ($3 > counter OR ($3 = 0 AND counter = 0)) RETURNING 1) \
                       INSERT INTO sessions (hash, id, user_id, expires_ms, record) \
                       SELECT $7, $8, $2, $9, $10 FROM c";
    put_session = "INSERT INTO sessions (hash, id, user_id, expires_ms, record) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO UPDATE \
                   SET expires_ms = EXCLUDED.expires_ms, record = EXCLUDED.record";
    // A last use: never brings back a row a removal or a refresh took away.
    touch_session = "UPDATE sessions SET expires_ms = $2, record = $3 WHERE hash = $1";
    remove_session = "DELETE FROM sessions WHERE hash = $1";
    // A refresh: the row keeps its session and gets the new hash (the log notes the old one as
    // replaced, not ended); inserted if the old one was never written.
    replace_session = "WITH u AS (UPDATE sessions SET hash = $2, expires_ms = $5, record = $6 \
                       WHERE hash = $1 RETURNING 1) \
                       INSERT INTO sessions (hash, id, user_id, expires_ms, record) \
                       SELECT $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM u) \
                       ON CONFLICT (hash) DO UPDATE \
                       SET expires_ms = EXCLUDED.expires_ms, record = EXCLUDED.record";
    // A token this node has not seen: one indexed query for the session and its user.
    session_by_hash = "SELECT s.record, u.name, u.display_name FROM sessions s \
                       JOIN users u ON u.id = s.user_id WHERE s.hash = $1";
    sessions = "SELECT hash, record FROM sessions ORDER BY hash";
    newest_revocation = "SELECT coalesce(max(seq), 0) FROM revocations";
    sessions_of = "SELECT hash, record FROM sessions WHERE user_id = $1";
    delete_user = "WITH c AS (DELETE FROM credentials WHERE user_id = $1 RETURNING id), \
                   u AS (DELETE FROM users WHERE id = $1 \
                   RETURNING id, name, display_name, created_at, passkeys) \
                   SELECT u.id, u.name, u.display_name, u.created_at, u.passkeys, \
                   coalesce((SELECT array_agg(c.id ORDER BY c.id) FROM c), '{}') FROM u";
    recovery_set = "SELECT codes FROM recovery_sets WHERE user_id = $1";
    put_recovery_set = "INSERT INTO recovery_sets (user_id, codes) VALUES ($1, $2) \
                        ON CONFLICT (user_id) DO UPDATE SET codes = EXCLUDED.codes";
    remove_recovery_set = "DELETE FROM recovery_sets WHERE user_id = $1";
    swap_recovery_set = "UPDATE recovery_sets SET codes = $3 WHERE user_id = $1 AND codes = $2";
    set_display_name = "UPDATE users SET display_name = $2 WHERE id = $1 \
                        RETURNING id, name, display_name, created_at, passkeys";
    put_user = "INSERT INTO users (id, name, name_key, display_name, created_at, passkeys) \
                VALUES ($1, $2, $3, $4, $5, $6)";
    user_count = "SELECT count(*) FROM users";
    // A ceremony is parked only while its address has fewer than $7 live ones and the table
    // fewer than $8 ($6 is now); the counts come back to say which limit refused it.
    park_ceremony = "WITH o AS (SELECT count(*) AS n FROM ceremonies \
                     WHERE owner = $3 AND expires_ms > $6), \
                     t AS (SELECT count(*) AS n FROM ceremonies WHERE expires_ms > $6), \
                     i AS (INSERT INTO ceremonies (id, kind, owner, begun_ms, expires_ms, state) \
                     SELECT $1, $2, $3, $6, $4, $5 FROM o, t \
                     WHERE ($3::text IS NULL OR o.n < $7) AND t.n < $8 RETURNING 1) \
                     SELECT o.n, t.n, (SELECT count(*) FROM i) FROM o, t";
    take_ceremony = "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 \
                     RETURNING expires_ms, state";
    free_ceremonies = "DELETE FROM ceremonies WHERE begun_ms < $1";
    probe = "INSERT INTO probes (node, at_ms) VALUES ($1, $2) \
             ON CONFLICT (node) DO UPDATE SET at_ms = EXCLUDED.at_ms";
}

/// One connection and its prepared statements.
pub(super) struct Conn {
    pub(super) client: Client,
    prepared: Vec<Statement>,
}

impl Conn {
    /// Connects, and prepares every statement (pipelined: one round trip's wait for all).
    pub(super) async fn open(
        config: &tokio_postgres::Config,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Conn, Error> {
        let client = connect(config, runtime).await?;
        let prepared =
            futures_util::future::try_join_all(SQL.iter().map(|sql| client.prepare(sql)))
                .await
                .map_err(db)?;
        Ok(Conn { client, prepared })
    }

    pub(super) fn st(&self, q: Q) -> &Statement {
        &self.prepared[q as usize]
    }
}

/// A bare connection, its I/O task spawned on `runtime`.
pub(super) async fn connect(
    config: &tokio_postgres::Config,
    runtime: &tokio::runtime::Handle,
) -> Result<Client, Error> {
    let (client, connection) = config.connect(NoTls).await.map_err(db)?;
    runtime.spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The query connections, used round robin.
pub(super) struct Pool {
    config: tokio_postgres::Config,
    runtime: tokio::runtime::Handle,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
}

impl Pool {
    /// Opens the first connection now (so a wrong URL fails at start), the others on first use.
    pub(super) async fn open(
        config: tokio_postgres::Config,
        runtime: tokio::runtime::Handle,
    ) -> Result<Pool, Error> {
        let first = Arc::new(Conn::open(&config, &runtime).await?);
        let mut slots: Vec<_> = (1..CONNECTIONS)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        slots.insert(0, tokio::sync::Mutex::new(Some(first)));
        Ok(Pool {
            config,
            runtime,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// A live connection, reconnecting its slot if the last one closed.
    pub(super) async fn get(&self) -> Result<Arc<Conn>, Error> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = Arc::new(Conn::open(&self.config, &self.runtime).await?);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    pub(super) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub(super) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }
}
