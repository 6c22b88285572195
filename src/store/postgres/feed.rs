//! The revocation feed: what every node of a cluster learns of sessions ended (or tokens
//! replaced) on any node, from the `revocations` log (`migrations/0002_revocations.sql`).
//!
//! Invariants:
//! - the log, not the notification, is the record: a node `LISTEN`s first and then reads the log
//!   from the last sequence number it applied, on every notification, on every (re)connection and
//!   once a second besides, so a notification lost while it was disconnected loses nothing;
//! - [`Feed::confirmed`] is true only while the listening connection is up and its last read of
//!   the log succeeded (within [`READ_TIMEOUT`]); the token table refuses every token while it is
//!   false (fail closed), and `/readyz` says so;
//! - the entries are applied in sequence order, each once per node; sequence order is commit
//!   order, since every transaction that writes the log holds `LOG_LOCK` from before its first
//!   entry until it commits (`migrations/0004_revocations_in_commit_order.sql`), so a read
//!   "after the last one applied" cannot skip an entry that commits later.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::positions::{self, Positions};
use super::schema::LOG_LOCK;
use super::{db, PgStore};
use crate::error::Error;

/// How long one read of the log may take before the node counts itself unconfirmed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the log is read without a notification.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts to reconnect.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Every this many polls, the HTTP mirror's expired ceremonies are pruned (about a minute).
const PRUNE_CEREMONIES_EVERY: u32 = 60;
/// Log entries older than this are pruned (a node away longer reloads: see docs/cluster.md).
const KEEP: &str = "1 day";

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub hash: [u8; 32],
    pub session: Uuid,
    /// The session ended; otherwise only this token was replaced (a refresh).
    pub ended: bool,
}

/// A running feed. Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    confirmed: Arc<AtomicBool>,
    applied: Arc<AtomicI64>,
    /// Woken each time the feed becomes confirmed.
    became_confirmed: Arc<tokio::sync::Notify>,
}

impl Feed {
    /// Whether this node currently knows every revocation committed so far (see the invariants).
    pub fn confirmed(&self) -> bool {
        self.confirmed.load(Ordering::Acquire)
    }

    /// Waits until the feed is confirmed, at most `patience`; returns whether it is.
    pub async fn wait_confirmed(&self, patience: Duration) -> bool {
        let wait = async {
            loop {
                let woken = self.became_confirmed.notified();
                if self.confirmed() {
                    return;
                }
                woken.await;
            }
        };
        tokio::time::timeout(patience, wait).await.is_ok()
    }

    fn set_confirmed(&self, confirmed: bool) {
        let was = self.confirmed.swap(confirmed, Ordering::AcqRel);
        if confirmed && !was {
            self.became_confirmed.notify_waiters();
        }
    }

    /// The sequence number of the last entry applied.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }
}

impl PgStore {
    /// The newest entry's sequence number: a node that loads its sessions after reading it
    /// follows the log from there.
    pub async fn last_revocation(&self) -> Result<i64, Error> {
        let conn = self.conn().await?;
        let row = conn
            .client
            .query_one("SELECT coalesce(max(seq), 0) FROM revocations", &[])
            .await
            .map_err(db)?;
        Ok(row.get(0))
    }

    /// Follows the log from `after` until `stop` turns true, handing each batch of entries to
    /// `apply` in order.
    pub fn follow_revocations(
        &self,
        after: i64,
        apply: impl Fn(Vec<Revoked>) + Send + Sync + 'static,
        stop: watch::Receiver<bool>,
    ) -> Feed {
        let feed = Feed {
            confirmed: Arc::new(AtomicBool::new(false)),
            applied: Arc::new(AtomicI64::new(after)),
            became_confirmed: Arc::new(tokio::sync::Notify::new()),
        };
        let mut config = self.inner.pool.config().clone();
        // Named, so an operator (or a test) can find this node's listener in pg_stat_activity.
        config.application_name(format!("wsauthn-feed-{}", self.inner.node));
        let chat = Peers {
            node: self.inner.node.to_string(),
            store: Arc::downgrade(&self.inner),
            positions: self.inner.positions.clone(),
        };
        self.inner
            .pool
            .runtime()
            .spawn(follow(config, feed.clone(), Arc::new(apply), chat, stop));
        feed
    }
}

type Apply = Arc<dyn Fn(Vec<Revoked>) + Send + Sync>;

/// What this node hears from the others: chat frames (for the store's `chat_in`) and how far
/// each has applied the log (`positions`).
#[derive(Clone)]
struct Peers {
    node: String,
    store: std::sync::Weak<super::Inner>,
    positions: Arc<Positions>,
}

impl Peers {
    /// Tells the other nodes that this one stops, so their revoking calls do not wait for its
    /// announcements (`positions`); best effort, bounded.
    async fn leave(&self) {
        let Some(store) = self.store.upgrade() else {
            return;
        };
        let gone = format!("{} {}", self.node, positions::GONE);
        let told = async {
            let conn = store.pool.get().await?;
            conn.client
                .execute("SELECT pg_notify($1, $2)", &[&positions::CHANNEL, &gone])
                .await
                .map_err(db)
        };
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(1), told).await {
            e.log("tell the other nodes this one stops");
        }
    }

    fn received(&self, payload: &str) {
        let Some((from, frame)) = payload.split_once(' ') else {
            return;
        };
        if from == self.node {
            return;
        }
        if let Some(store) = self.store.upgrade() {
            if let Some(deliver) = store.chat_in.get() {
                deliver(frame);
            }
        }
    }
}

/// Sends this node's chat frames, in order, until the store is gone.
pub(super) async fn send_chat(
    store: std::sync::Weak<super::Inner>,
    mut queue: mpsc::UnboundedReceiver<String>,
) {
    while let Some(payload) = queue.recv().await {
        let Some(inner) = store.upgrade() else {
            return;
        };
        // NOTIFY's payload limit is 8000 bytes.
        if payload.len() >= 8000 {
            tracing::warn!(
                bytes = payload.len(),
                "a chat message too long to relay to other nodes"
            );
            continue;
        }
        let sent = match inner.pool.get().await {
            Ok(conn) => conn
                .client
                .execute("SELECT pg_notify('wsauthn_chat', $1)", &[&payload])
                .await
                .map_err(db),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            e.log("relay a chat message to other nodes");
        }
    }
}

async fn follow(
    config: tokio_postgres::Config,
    feed: Feed,
    apply: Apply,
    chat: Peers,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(20);
    while !*stop.borrow() {
        let outcome = tokio::select! {
            outcome = listen(&config, &feed, &apply, &chat) => outcome,
            _ = stop.changed() => return chat.leave().await,
        };
        feed.set_confirmed(false);
        if let Err(e) = outcome {
            tracing::warn!(error = ?e, "revocation feed lost; refusing tokens until it is back");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return chat.leave().await,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life: LISTEN, then read the log whenever told to, until it fails.
async fn listen(
    config: &tokio_postgres::Config,
    feed: &Feed,
    apply: &Apply,
    chat: &Peers,
) -> Result<(), Error> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(db)?;
    let (told, mut notified) = mpsc::unbounded_channel();
    let me = chat.node.clone();
    let chat = chat.clone();
    // Drives the connection (answers and notifications); ends, dropping `told`, when it does.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.channel() == "wsauthn_chat" => {
                    chat.received(n.payload());
                }
                Ok(AsyncMessage::Notification(n)) if n.channel() == positions::CHANNEL => {
                    chat.positions.heard(n.payload());
                }
                Ok(AsyncMessage::Notification(_)) => {
                    let _ = told.send(());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "revocation feed connection ended");
                    break;
                }
            }
        }
    });
    let _abort = AbortOnDrop(driver);
    client
        .batch_execute(&format!(
            "LISTEN wsauthn_revocations; LISTEN wsauthn_chat; LISTEN {}",
            positions::CHANNEL
        ))
        .await
        .map_err(db)?;
    let announce = client
        .prepare(&format!("SELECT pg_notify('{}', $1)", positions::CHANNEL))
        .await
        .map_err(db)?;
    let read = client
        .prepare(
            "SELECT seq, hash, session_id, ended FROM revocations WHERE seq > $1 \
             ORDER BY seq LIMIT 10000",
        )
        .await
        .map_err(db)?;
    // Housekeeping, by whichever node connects: old log entries, and sessions past their
    // absolute expiry that no node had cached to sweep (idle ones go when a node next sees them),
    // and the HTTP mirror's expired ceremonies.
    // Expired sessions go into the log: its lock first (see `LOG_LOCK`).
    let _ = client
        .batch_execute(&format!(
            "DELETE FROM revocations WHERE at < now() - interval '{KEEP}'; \
             BEGIN; SELECT pg_advisory_xact_lock({LOG_LOCK}); \
             DELETE FROM sessions WHERE expires_ms < extract(epoch FROM now()) * 1000; COMMIT; \
             DELETE FROM ceremonies WHERE expires_ms < extract(epoch FROM now()) * 1000"
        ))
        .await;
    let mut every = tokio::time::interval(POLL_EVERY);
    let mut polls = 0u32;
    loop {
        // Read until the log is exhausted; only then is this node confirmed.
        loop {
            let after = feed.applied();
            let rows = tokio::time::timeout(READ_TIMEOUT, client.query(&read, &[&after]))
                .await
                .map_err(|_| Error::internal("reading the revocation log timed out"))?
                .map_err(db)?;
            let Some(last) = rows.last().map(|r| r.get::<_, i64>(0)) else {
                break;
            };
            let batch = rows
                .iter()
                .filter_map(|row| {
                    let hash: &[u8] = row.get(1);
                    Some(Revoked {
                        hash: hash.try_into().ok()?,
                        session: row.get(2),
                        ended: row.get(3),
                    })
                })
                .collect();
            // Marked before it is applied: what this node announces it has applied.
            feed.applied.store(last, Ordering::Release);
            apply(batch);
        }
        feed.set_confirmed(true);
        // After every read, and once a second: how far this node has applied the log.
        let position = format!("{me} {}", feed.applied());
        tokio::time::timeout(READ_TIMEOUT, client.execute(&announce, &[&position]))
            .await
            .map_err(|_| Error::internal("announcing the feed's position timed out"))?
            .map_err(db)?;
        tokio::select! {
            told = notified.recv() => {
                if told.is_none() {
                    return Err(Error::internal("the listening connection closed"));
                }
                // Many notifications at once need one read.
                while notified.try_recv().is_ok() {}
            }
            _ = every.tick() => {
                polls = polls.wrapping_add(1);
                if polls.is_multiple_of(PRUNE_CEREMONIES_EVERY) {
                    // Abandoned ceremonies; taking one refuses it once expired anyway.
                    let _ = client
                        .execute(
                            "DELETE FROM ceremonies \
                             WHERE expires_ms < extract(epoch FROM now()) * 1000",
                            &[],
                        )
                        .await;
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
