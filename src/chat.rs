//! The built-in chat room of `/chat`: every member's message reaches every member.
//!
//! A message is encoded once and shared; a member that falls more than the channel's capacity
//! behind loses the oldest messages (it is told how many in the log) rather than slowing the
//! room down.
//!
//! On a store several nodes share, the room spans the nodes: each message is also handed to a
//! relay (PostgreSQL `NOTIFY`, see `store::PgStore::relay_chat`), and messages relayed by other
//! nodes are delivered here ([`ChatRoom::deliverer`]). A message too long for a notification
//! (about 8 kB) stays on its node.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::protocol::{encode, ServerMsg};

/// Longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
const BACKLOG: usize = 1024;

/// Where this node's messages go besides its own members (other nodes).
pub type Relay = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct ChatRoom {
    tx: broadcast::Sender<Arc<str>>,
    relay: Arc<std::sync::OnceLock<Relay>>,
}

impl Default for ChatRoom {
    fn default() -> Self {
        ChatRoom {
            tx: broadcast::channel(BACKLOG).0,
            relay: Arc::default(),
        }
    }
}

impl ChatRoom {
    pub fn join(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    /// Sends a message from `from` (a username, shown as `name`) to every member. Returns how
    /// many members it reached.
    pub fn publish(&self, from: &str, name: &str, text: String, at_ms: u64) -> usize {
        let frame = encode(
            None,
            &ServerMsg::Message {
                from: from.to_owned(),
                name: name.to_owned(),
                text,
                at: at_ms,
            },
        );
        if let Some(relay) = self.relay.get() {
            relay(&frame);
        }
        self.tx.send(Arc::from(frame)).unwrap_or(0)
    }

    /// Sends this node's messages to `relay` too (set once, at start).
    pub fn relay_to(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    /// What hands a message another node's member sent, already encoded, to this node's
    /// members. It holds the channel only, not the relay (which holds the store: no cycle).
    pub fn deliverer(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let tx = self.tx.clone();
        move |frame| {
            let _ = tx.send(Arc::from(frame));
        }
    }

    pub fn members(&self) -> usize {
        self.tx.receiver_count()
    }
}
