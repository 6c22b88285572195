//! Open sockets by kind, and how long a revocation takes to reach the sockets it closes.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// What a socket is, as the `kind` label of `wsauthn_sockets_open_by_kind` says: a bounded set,
/// so an application's many paths do not make many series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketClass {
    /// `/ws`: ceremonies and the account protocol.
    Ceremony,
    /// `/echo`.
    Echo,
    /// `/chat`.
    Chat,
    /// A socket of the embedding application's own (`wsauthn::socket`).
    App,
    /// A `[[proxy]]` path relayed to its upstream.
    Proxy,
}

impl SocketClass {
    pub const ALL: [SocketClass; 5] = [
        SocketClass::Ceremony,
        SocketClass::Echo,
        SocketClass::Chat,
        SocketClass::App,
        SocketClass::Proxy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SocketClass::Ceremony => "ws",
            SocketClass::Echo => "echo",
            SocketClass::Chat => "chat",
            SocketClass::App => "app",
            SocketClass::Proxy => "proxy",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Kind {
    kind: &'static str,
}

/// One gauge per [`SocketClass`], created at start and held as handles.
pub(super) struct SocketGauges([Gauge<i64, AtomicI64>; SocketClass::ALL.len()]);

impl SocketGauges {
    pub(super) fn new(family: &Family<Kind, Gauge<i64, AtomicI64>>) -> Self {
        SocketGauges(std::array::from_fn(|i| {
            family
                .get_or_create(&Kind {
                    kind: SocketClass::ALL[i].as_str(),
                })
                .clone()
        }))
    }

    pub(super) fn opened(&self, class: SocketClass) -> OpenClass {
        let gauge = &self.0[class as usize];
        gauge.inc();
        OpenClass(gauge.clone())
    }
}

/// Counts a socket of its kind open until dropped.
#[derive(Debug)]
pub struct OpenClass(Gauge<i64, AtomicI64>);

impl Drop for OpenClass {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Keeps the gauge handle type's size in view: a socket holds one.
const _: () = assert!(std::mem::size_of::<OpenClass>() == std::mem::size_of::<Arc<AtomicI64>>());
