//! The PostgreSQL backend: the durable state of every node of a cluster in one database
//! (docs/cluster.md), the schema in `migrations/`.
//!
//! Invariants:
//! - every domain operation that must be atomic is one SQL statement (CTEs chain its parts), so
//!   it needs no transaction and pipelines with the others on a shared connection ([`pool`]);
//!   uniqueness is the database's: `users_name_key` and `credentials_pkey` refuse the second of
//!   two racing registrations, whichever node it came from;
//! - a statement's write has committed when it returns; the session writes the token table
//!   makes synchronously are queued ([`sessions`]) and committed, many per transaction, before
//!   [`PgStore::flush`] returns, so "acknowledged means committed" as sled's "acknowledged
//!   means flushed";
//! - no TLS: the connection is `NoTls`, for a database on the loopback or a private network.

mod accounts;
mod ceremonies;
mod feed;
mod pool;
mod positions;
mod schema;
mod sessions;
mod writer;

use std::sync::Arc;

use tokio_postgres::error::SqlState;
use uuid::Uuid;

pub use feed::{Feed, Revoked};

use super::{username_key, UserRecord};
use crate::error::Error;

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: pool::Pool,
    writer: writer::Writer,
    /// This node's row in `probes`.
    node: Uuid,
    /// Chat messages for the other nodes, in order (see [`PgStore::relay_chat`]).
    chat_out: tokio::sync::mpsc::UnboundedSender<String>,
    /// Where chat messages from other nodes go.
    chat_in: std::sync::OnceLock<crate::chat::Relay>,
    /// How far each node has applied the revocation log, as their feeds announce.
    positions: Arc<positions::Positions>,
}

/// A tokio-postgres error as ours: unexpected, so `internal`, with the detail for the log.
pub(super) fn db(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(d) => Error::internal(format!("PostgreSQL: {}: {}", d.code().code(), d.message())),
        None => Error::internal(format!("PostgreSQL: {e}")),
    }
}

/// A violated unique constraint as the domain's refusal; anything else as [`db`].
fn conflict(e: tokio_postgres::Error) -> Error {
    let constraint = e
        .as_db_error()
        .filter(|d| *d.code() == SqlState::UNIQUE_VIOLATION)
        .and_then(|d| d.constraint().map(str::to_owned));
    match constraint.as_deref() {
        Some("users_name_key") => Error::UsernameTaken,
        Some("credentials_pkey") => Error::CredentialInUse,
        _ => db(e),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("encode record: {e}")))
}

fn from_json<T: for<'de> serde::Deserialize<'de>>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("decode record: {e}")))
}

/// Unix seconds and milliseconds are stored as `bigint`.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn user_from(row: &tokio_postgres::Row) -> UserRecord {
    UserRecord {
        id: row.get(0),
        name: row.get(1),
        display_name: row.get(2),
        created_at: uint(row.get(3)),
        passkeys: u32::try_from(row.get::<_, i32>(4)).unwrap_or(0),
    }
}

/// `url` without its password, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("…"));
            }
            parsed.to_string()
        }
        Err(_) => "the configured store.postgres_url".into(),
    }
}

impl PgStore {
    /// Whether `url` is a connection string tokio-postgres takes (checked at config time).
    pub fn check_url(url: &str) -> Result<(), String> {
        url.parse::<tokio_postgres::Config>()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Connects, migrates the schema, and starts the session writer, on the current runtime.
    pub async fn connect(url: &str) -> Result<PgStore, Error> {
        let config: tokio_postgres::Config = url.parse().map_err(db)?;
        let runtime = tokio::runtime::Handle::current();
        let mut client = pool::connect(&config, &runtime).await?;
        schema::migrate(&mut client).await?;
        drop(client);
        let pool = pool::Pool::open(config, runtime).await?;
        let writer = writer::Writer::start(pool.config().clone(), pool.runtime().clone());
        let (chat_out, queue) = tokio::sync::mpsc::unbounded_channel();
        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                writer,
                node: Uuid::new_v4(),
                chat_out,
                chat_in: std::sync::OnceLock::new(),
                positions: Arc::default(),
            }),
        };
        let relay = Arc::downgrade(&store.inner);
        store
            .inner
            .pool
            .runtime()
            .spawn(feed::send_chat(relay, queue));
        Ok(store)
    }

    /// Relays a chat frame of this node's to the other nodes (`NOTIFY wsauthn_chat`, sent in
    /// order; one too long for a notification is dropped with a warning).
    pub fn relay_chat(&self, frame: &str) {
        let _ = self
            .inner
            .chat_out
            .send(format!("{} {frame}", self.inner.node));
    }

    /// Hands chat frames other nodes relayed to `deliver` (set once, at start).
    pub fn on_chat(&self, deliver: crate::chat::Relay) {
        let _ = self.inner.chat_in.set(deliver);
    }

    /// This node's id: its probe row, and its revocation feed's `application_name`
    /// (`wsauthn-feed-<id>`).
    pub fn node(&self) -> Uuid {
        self.inner.node
    }

    async fn conn(&self) -> Result<Arc<pool::Conn>, Error> {
        self.inner.pool.get().await
    }

    /// Waits until every session write queued before the call has committed (other writes
    /// have committed when they returned), and until every other live node has applied the
    /// revocations this node made (see [`positions`]): a token revoked before a flush is
    /// refused on every node once it returns.
    pub async fn flush(&self) -> Result<(), Error> {
        self.inner.writer.flush().await?;
        self.wait_for_other_nodes().await;
        Ok(())
    }

    /// Waits until every other live node has applied the newest revocation this node made.
    async fn wait_for_other_nodes(&self) {
        let newest = self.inner.writer.newest_revocation();
        if newest == 0 {
            return;
        }
        let everyone = self
            .inner
            .positions
            .wait_applied(&self.inner.node, newest)
            .await;
        if !everyone {
            tracing::warn!(
                seq = newest,
                "a node stopped announcing its revocation feed before applying a revocation; \
                 it refuses every token until it catches up"
            );
        }
    }

    /// Commits of queued session writes so far.
    pub fn flushes(&self) -> u64 {
        self.inner.writer.commits()
    }

    pub fn flush_times(&self) -> crate::metrics::AtomicHistogram {
        self.inner.writer.times()
    }

    /// `Ok` when the database takes a committed write (this node's probe row) and the queued
    /// session writes go through.
    pub async fn probe_write(&self, now_ms: u64) -> Result<(), Error> {
        let conn = self.conn().await?;
        conn.client
            .execute(conn.st(pool::Q::probe), &[&self.inner.node, &int(now_ms)])
            .await
            .map_err(db)?;
        // This node's own writes only: its readiness does not wait on other nodes' feeds.
        self.inner.writer.flush().await
    }

    /// How many users, passkeys, recovery code sets and sessions the database holds.
    pub async fn counts(&self) -> Result<super::Copied, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM credentials), \
                 (SELECT count(*) FROM recovery_sets), (SELECT count(*) FROM sessions)",
                &[],
            )
            .await
            .map_err(db)?;
        let n = |i: usize| usize::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(super::Copied {
            users: n(0),
            passkeys: n(1),
            recovery_sets: n(2),
            sessions: n(3),
        })
    }

    pub async fn user_count(&self) -> Result<usize, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_one(conn.st(pool::Q::user_count), &[])
            .await
            .map_err(db)?;
        Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    #[doc(hidden)]
    pub async fn put_user_for_tests(&self, user: &UserRecord) -> Result<(), Error> {
        self.put_user(user).await
    }

    /// Inserts a user as it is (their passkey count included), without passkeys.
    pub(super) async fn put_user(&self, user: &UserRecord) -> Result<(), Error> {
        let conn = self.conn().await?;
        let passkeys = i32::try_from(user.passkeys).unwrap_or(i32::MAX);
        conn.client
            .execute(
                conn.st(pool::Q::put_user),
                &[
                    &user.id,
                    &user.name,
                    &username_key(&user.name),
                    &user.display_name,
                    &int(user.created_at),
                    &passkeys,
                ],
            )
            .await
            .map_err(conflict)?;
        Ok(())
    }
}
