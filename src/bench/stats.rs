//! What a load run counts: a latency histogram per operation, errors by code, and the live
//! counters the progress line reads.
//!
//! Each load thread owns a [`Recorder`] (no locks on the hot path); the threads' recorders are
//! merged once at the end. Only the counters in [`Live`] are shared, as relaxed atomics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, from 1 µs to this bound (longer ones saturate).
const MAX_LATENCY_US: u64 = 120_000_000;

/// One kind of operation a virtual user performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `register.begin` + `register.finish` for a new account.
    Register,
    /// `login.begin` + `login.finish` with a token, on a kept-open `/ws` socket.
    Login,
    /// Open a protected socket with the token and exchange one frame.
    Connect,
    /// Open a protected socket with the token and keep it open (idle mode).
    Open,
    /// An HTTP GET with the token as `Authorization: Bearer`, on a kept-alive connection.
    Http,
    /// One frame sent on a kept-open protected socket and its echo received (frames mode).
    Frame,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Register,
        Op::Login,
        Op::Connect,
        Op::Open,
        Op::Http,
        Op::Frame,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Login => "login",
            Op::Connect => "connect",
            Op::Open => "open",
            Op::Http => "http",
            Op::Frame => "frame",
        }
    }
}

/// Why an operation failed, as the error table groups it: the server's error `code`, or what
/// went wrong on the client's side of the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// An `error` frame with this code (`rate_limited`, `verification_failed`, …).
    Server(String),
    /// The server closed the socket (with this close code, if it sent one).
    Closed(Option<u16>),
    /// The upgrade was refused with this HTTP status.
    Http(u16),
    /// No reply within the operation timeout.
    Timeout,
    /// The TCP connection or the WebSocket handshake failed.
    Connect,
    /// A reply that does not fit the protocol (wrong type, missing member, not JSON).
    Unexpected,
    /// The software authenticator refused the options it was given.
    Authenticator,
}

impl OpError {
    /// The key of this error in the error table and the JSON report.
    pub fn key(&self) -> String {
        match self {
            OpError::Server(code) => code.clone(),
            OpError::Closed(Some(code)) => format!("closed_{code}"),
            OpError::Closed(None) => "closed".into(),
            OpError::Http(status) => format!("http_{status}"),
            OpError::Timeout => "timeout".into(),
            OpError::Connect => "connect_failed".into(),
            OpError::Unexpected => "unexpected_reply".into(),
            OpError::Authenticator => "authenticator".into(),
        }
    }

    /// Whether the socket is still usable after this error: only a server `error` frame
    /// leaves it open (docs/protocol.md: a bad frame is answered and the socket stays open).
    pub fn socket_survives(&self) -> bool {
        matches!(self, OpError::Server(_))
    }
}

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low ≥ 1, high ≥ 2·low, 3 digits).
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

/// A load thread's results.
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies: BTreeMap<Op, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            latencies: Op::ALL.iter().map(|op| (*op, new_histogram())).collect(),
            errors: BTreeMap::new(),
        }
    }
}

impl Recorder {
    pub fn success(&mut self, op: Op, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Some(h) = self.latencies.get_mut(&op) {
            h.saturating_record(us);
        }
    }

    pub fn failure(&mut self, error: &OpError) {
        *self.errors.entry(error.key()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (op, h) in &other.latencies {
            if let Some(mine) = self.latencies.get_mut(op) {
                // Same bounds on both sides, so adding cannot fail.
                let _ = mine.add(h);
            }
        }
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
    }

    /// Histograms of the operations that happened, and of all of them together.
    pub fn histograms(&self) -> (Vec<(Op, &Histogram<u64>)>, Histogram<u64>) {
        let mut all = new_histogram();
        let mut each = Vec::new();
        for (op, h) in &self.latencies {
            if !h.is_empty() {
                let _ = all.add(h);
                each.push((*op, h));
            }
        }
        (each, all)
    }

    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }
}

/// Counters shared by every load thread, read by the progress line.
#[derive(Debug, Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// Virtual users that finished their setup (or gave up on it).
    pub ready: AtomicU64,
    /// Setups that failed (the user then sits the run out).
    pub setup_failed: AtomicU64,
    /// Sockets currently held open by idle users.
    pub open_sockets: AtomicU64,
    /// Virtual users that have returned.
    pub done: AtomicU64,
}

impl Live {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_recorders_add_up_latencies_and_errors() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        a.success(Op::Login, Duration::from_millis(2));
        b.success(Op::Login, Duration::from_millis(4));
        b.success(Op::Connect, Duration::from_micros(300));
        a.failure(&OpError::Server("rate_limited".into()));
        b.failure(&OpError::Server("rate_limited".into()));
        b.failure(&OpError::Closed(Some(1008)));
        a.merge(&b);
        let (each, all) = a.histograms();
        assert_eq!(all.len(), 3);
        assert_eq!(each.len(), 2, "only operations that happened are listed");
        assert_eq!(a.errors()["rate_limited"], 2);
        assert_eq!(a.errors()["closed_1008"], 1);
        assert!(all.max() >= 4_000 && all.max() < 4_100);
    }

    #[test]
    fn only_server_errors_leave_the_socket_usable() {
        assert!(OpError::Server("bad_request".into()).socket_survives());
        assert!(!OpError::Timeout.socket_survives());
        assert!(!OpError::Closed(None).socket_survives());
        assert_eq!(OpError::Http(401).key(), "http_401");
    }
}
