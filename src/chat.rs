//! The built-in chat room of `/chat`: every member's message reaches every member.
//!
//! A message is encoded once and shared; a member that falls more than the channel's capacity
//! behind loses the oldest messages (it is told how many in the log) rather than slowing the
//! room down.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::protocol::{encode, ServerMsg};

/// Longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
const BACKLOG: usize = 1024;

#[derive(Clone)]
pub struct ChatRoom {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for ChatRoom {
    fn default() -> Self {
        ChatRoom {
            tx: broadcast::channel(BACKLOG).0,
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
        self.tx.send(Arc::from(frame)).unwrap_or(0)
    }

    pub fn members(&self) -> usize {
        self.tx.receiver_count()
    }
}
