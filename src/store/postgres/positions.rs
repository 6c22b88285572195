//! How far every node has applied the revocation log, so that a revoking call returns only once
//! every other live node refuses the revoked token too.
//!
//! Each node's feed announces its position (`NOTIFY wsauthn_applied, '<node> <seq>'`) after
//! every read of the log it has applied, and once a second besides; every feed hears every
//! node's. A node heard from within [`LIVE_FOR`] is *live*. Invariant, and why the wait is
//! bounded: a live node that stops announcing has, by the time it stops counting as live,
//! refused every token on its own, since a feed that has not read the log for
//! `POLL_EVERY + READ_TIMEOUT` (3 s) is unconfirmed (fail closed, `feed.rs`). So waiting until
//! every live node has announced a position at or past a revocation, or has stopped being live,
//! means no node takes the revoked token any more.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

/// How long a node counts as live after its last announcement: more than the 3 s within which a
/// node that cannot read the log refuses every token.
pub const LIVE_FOR: Duration = Duration::from_secs(4);

/// The channel positions are announced on.
pub(super) const CHANNEL: &str = "wsauthn_applied";

/// What a node that stops announces instead of a position.
pub(super) const GONE: &str = "gone";

/// The latest announced position of every node heard from.
#[derive(Default)]
pub(super) struct Positions {
    nodes: Mutex<HashMap<Uuid, (i64, Instant)>>,
    changed: Notify,
}

impl Positions {
    /// Takes an announcement's payload: `<node> <seq>`, or `<node> gone` from a node that
    /// stops (it is waited for no more); anything else is ignored.
    pub(super) fn heard(&self, payload: &str) {
        let Some((node, seq)) = payload.split_once(' ') else {
            return;
        };
        let Ok(node) = node.parse::<Uuid>() else {
            return;
        };
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if seq == GONE {
            nodes.remove(&node);
            drop(nodes);
            self.changed.notify_waiters();
            return;
        }
        let Ok(seq) = seq.parse::<i64>() else {
            return;
        };
        let now = Instant::now();
        nodes.retain(|_, (_, at)| now.duration_since(*at) < LIVE_FOR * 4);
        let entry = nodes.entry(node).or_insert((seq, now));
        *entry = (entry.0.max(seq), now);
        drop(nodes);
        self.changed.notify_waiters();
    }

    /// The soonest time one of the live nodes other than `me` that have not applied `seq` yet
    /// stops being live; `None` when there is no such node.
    fn behind(&self, me: &Uuid, seq: i64) -> Option<Instant> {
        let now = Instant::now();
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes
            .iter()
            .filter(|(node, (applied, at))| {
                *node != me && *applied < seq && now.duration_since(*at) < LIVE_FOR
            })
            .map(|(_, (_, at))| *at + LIVE_FOR)
            .min()
    }

    /// Waits until every live node but `me` has applied the log up to `seq`, or has stopped
    /// being live (see the module's invariant); returns whether every one of them applied it.
    pub(super) async fn wait_applied(&self, me: &Uuid, seq: i64) -> bool {
        let mut everyone = true;
        loop {
            // Made before the check: `notify_waiters` reaches it from here on.
            let changed = self.changed.notified();
            let Some(soonest) = self.behind(me, seq) else {
                return everyone;
            };
            if tokio::time::timeout_at(soonest, changed).await.is_err() {
                everyone = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_ends_when_every_other_live_node_has_applied_the_entry() {
        let positions = std::sync::Arc::new(Positions::default());
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        positions.heard(&format!("{me} 1"));
        positions.heard(&format!("{other} 4"));
        positions.heard("not an announcement");
        assert!(positions.wait_applied(&me, 4).await, "applied already");
        let waiting = tokio::spawn({
            let positions = positions.clone();
            async move { positions.wait_applied(&me, 7).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the other node is at 4");
        positions.heard(&format!("{other} 6"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "at 6");
        positions.heard(&format!("{other} 7"));
        assert!(waiting.await.unwrap());
        let waiting = tokio::spawn({
            let positions = positions.clone();
            async move { positions.wait_applied(&me, 8).await }
        });
        positions.heard(&format!("{other} {GONE}"));
        assert!(waiting.await.unwrap(), "a node that left is not waited for");
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_stops_announcing_is_waited_for_only_while_it_counts_as_live() {
        let positions = Positions::default();
        let (me, gone) = (Uuid::new_v4(), Uuid::new_v4());
        positions.heard(&format!("{gone} 1"));
        let started = tokio::time::Instant::now();
        assert!(!positions.wait_applied(&me, 2).await);
        let waited = started.elapsed();
        assert!(waited <= LIVE_FOR, "{waited:?}");
        assert!(
            waited >= LIVE_FOR - Duration::from_millis(100),
            "{waited:?}"
        );
    }
}
