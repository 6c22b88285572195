//! The seam between the socket loop and what a socket does: a [`Handler`].
//!
//! The loop (`session.rs`) owns everything every socket has: the upgrade's auth (a header token,
//! or a first `auth` frame answered with `auth.result`), the auth deadline and the idle deadline
//! of sockets not signed in, the heartbeat, the flood and frame-size limits, the `expiring`
//! warning, revocation and expiry (4401), shutdown (1001) and the closing handshake. A handler
//! only says what the socket's frames mean: the built-in `/ws`, `/echo` and `/chat`
//! (`builtin.rs`), an embedding application's own socket, and the reverse proxy's relay to its
//! upstream (`crate::proxy`) are each one.
//!
//! Invariants: a handler sees no frame before its socket is let in ([`Handler::open`] comes
//! first), never the first `auth` frame, and no frame once its socket's session has ended. The
//! loop never waits on [`Handler::next`] while the client's outbox is full, so a handler's own
//! source (a room, an upstream) cannot make the server buffer for a slow client; and it reads
//! no client frame while [`Handler::ready`] says no, so a slow upstream holds the client back.

use std::collections::VecDeque;
use std::future::{pending, poll_fn};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_ws::{CloseReason, Message, Session};
use bytestring::ByteString;
use futures_util::Sink;
use uuid::Uuid;

use super::dispatch::{Close, SocketCtx};
use super::expiry::SocketTimer;
use crate::clock::Clock;
pub use crate::metrics::SocketClass;
use crate::protocol::{self, ServerMsg, UserView};
use crate::state::AppState;
use crate::tokens::{Revocation, SessionSignal};

/// Why a handler stops its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Close the socket with this code and reason; the closing handshake follows.
    Close(Close),
    /// The client is gone (its connection ended): there is no one to close with.
    Gone,
}

impl Stop {
    /// Close with `code` (1000–4999) and `reason`.
    pub fn close(code: u16, reason: impl Into<String>) -> Stop {
        Stop::Close(Close {
            code,
            reason: reason.into(),
        })
    }
}

impl From<Close> for Stop {
    fn from(close: Close) -> Stop {
        Stop::Close(close)
    }
}

/// What a handler's own source has for the socket (see [`Handler::next`]).
#[derive(Debug)]
pub enum Next {
    /// Send this frame to the client.
    Send(Message),
    /// Nothing to send; the handler's [`Handler::ready`] may have changed.
    Idle,
    /// End the socket.
    Stop(Stop),
}

/// How a socket's loop ended, as a handler's [`Handler::close`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client sent a close frame (its code and reason; none: the frame had no code). The
    /// server answers with the same.
    Client(Option<CloseReason>),
    /// The server closes with this code: revocation or expiry (4401), shutdown (1001), a limit
    /// (1008, 1009), the handler's own [`Stop::Close`].
    Server(Close),
    /// The client broke the WebSocket protocol (1002) or sent more than the size limit in one
    /// message (1009): the connection ends at once.
    Failed(Close),
    /// The connection is already gone.
    Gone,
}

/// What a socket does with its frames. Each socket gets its own handler, made when its upgrade
/// arrives, and the handler runs on that socket's task: it need not be `Send`.
///
/// Every method but [`text`](Handler::text) has a default. Methods that return `Err(Stop)` end
/// the socket. All of them run one at a time; none runs after [`close`](Handler::close).
#[allow(async_fn_in_trait)] // Sockets run on their worker's thread: no `Send` bound is wanted.
pub trait Handler: 'static {
    /// The `kind` label its sockets count under in `wsauthn_sockets_open_by_kind`; an
    /// application's own sockets are [`SocketClass::App`].
    const CLASS: SocketClass = SocketClass::App;

    /// The socket is let in: its token came with the upgrade, its path needs none, or its first
    /// `auth` frame was valid (then `open` runs once `auth.result` is queued, so what it sends
    /// comes after). Let in by a header or an open path, `open` runs before the upgrade is
    /// answered, and an `Err` refuses the upgrade instead (1011 becomes `502`, any other code
    /// `503`).
    async fn open(&mut self, conn: &mut Conn<'_>) -> Result<(), Stop> {
        let _ = conn;
        Ok(())
    }

    /// A text message from the client (continuations aggregated, within the size limit).
    async fn text(&mut self, conn: &mut Conn<'_>, text: ByteString) -> Result<(), Stop>;

    /// A binary message from the client. The default answers with a `bad_request` error frame.
    async fn binary(&mut self, conn: &mut Conn<'_>, bytes: Bytes) -> Result<(), Stop> {
        let _ = bytes;
        let err =
            crate::error::Error::bad_request("Binary frames are not supported; send JSON text.");
        conn.text(protocol::encode(None, &ServerMsg::error(&err)))
            .await
    }

    /// The handler's own source: a room's broadcasts, an upstream's frames, an application's
    /// channel. Resolves with what it has; never, by default. It must be cancel-safe: the loop
    /// drops it whenever something else happens first, and it is not polled while the client's
    /// outbox is full.
    async fn next(&mut self) -> Next {
        pending().await
    }

    /// Whether the handler takes another client frame now. While it says no, the loop stops
    /// reading the client (which holds it back through TCP) and `next` must resolve, with
    /// [`Next::Idle`] at least, once it would say yes.
    fn ready(&self) -> bool {
        true
    }

    /// The socket's token expires in `tokens.expiry_warning_secs`: the default queues
    /// `{"type":"expiring","expiresAt":…}`, so the client can refresh it in time.
    async fn expiring(&mut self, conn: &mut Conn<'_>, expires_at: u64) -> Result<(), Stop> {
        conn.queue(Message::Text(
            protocol::encode(None, &ServerMsg::Expiring { expires_at }).into(),
        ));
        Ok(())
    }

    /// How long a socket that is let in but not signed in may stay quiet before it is closed
    /// with 4408, counted from its last frame; `None` (the default): as long as it likes.
    fn idle_timeout(&self, conn: &Conn<'_>) -> Option<Duration> {
        let _ = conn;
        None
    }

    /// The socket is ending, and how. Runs before the closing handshake with the client.
    async fn close(&mut self, ending: &Ending) {
        let _ = ending;
    }
}

/// The socket's session binding: its revocation signal and the timer that warns before expiry.
pub(crate) struct Binding {
    pub revocation: Option<Revocation>,
    pub timer: SocketTimer,
}

impl Binding {
    /// Watches `watch` from now on (replacing any earlier session) and arms the expiry timer.
    pub fn bind(&mut self, watch: Revocation, clock: &dyn Clock) {
        match watch.current() {
            SessionSignal::Live { expires_ms } => self.timer.arm(expires_ms, clock),
            SessionSignal::Ended { .. } => self.timer.disarm(),
        }
        self.revocation = Some(watch);
    }
}

/// Frames the loop itself sends (pongs, pings, warnings) and those a handler's source gave it,
/// waiting for room in the client's outbox. The loop takes no more from the source until it
/// is empty; control frames past [`MAX_QUEUED`] are dropped (a client that reads nothing is
/// closed by its heartbeat timeout anyway).
pub(crate) type Outbox = VecDeque<Message>;

/// Most frames kept waiting for a client that does not read.
pub(crate) const MAX_QUEUED: usize = 4;

/// The socket as a handler sees it: who is on it, and a way to send.
pub struct Conn<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) ctx: &'a mut SocketCtx,
    pub(crate) session: &'a mut Session,
    pub(crate) outbox: &'a mut Outbox,
    pub(crate) binding: &'a mut Binding,
}

impl Conn<'_> {
    /// The server's shared state.
    pub fn state(&self) -> &AppState {
        self.state
    }

    /// A number unique to this socket among the server's.
    pub fn id(&self) -> u64 {
        self.ctx.id
    }

    /// The path the socket was opened on.
    pub fn path(&self) -> &str {
        &self.ctx.path
    }

    /// Who the socket is signed in as; `None` when it is not (an open path, or one the
    /// unauthorized hook let in).
    pub fn user(&self) -> Option<&Arc<UserView>> {
        self.ctx.caller.user.as_ref()
    }

    /// The session the socket is bound to.
    pub fn session_id(&self) -> Option<Uuid> {
        self.ctx.caller.session
    }

    /// When the socket's token expires (Unix seconds), unless it is refreshed first.
    pub fn expires_at(&self) -> Option<u64> {
        match self.binding.revocation.as_ref()?.current() {
            SessionSignal::Live { expires_ms } => Some(expires_ms / 1000),
            SessionSignal::Ended { .. } => None,
        }
    }

    /// The client's address.
    pub fn peer(&self) -> Option<IpAddr> {
        self.ctx.caller.meta.address
    }

    /// Sends a text frame, after whatever the loop has queued; waits while the client's outbox is
    /// full. `Err(Stop::Gone)` when the client's connection has ended.
    pub async fn text(&mut self, text: impl Into<ByteString>) -> Result<(), Stop> {
        self.send(Message::Text(text.into())).await
    }

    /// Sends a binary frame, as [`Conn::text`] does.
    pub async fn binary(&mut self, bytes: impl Into<Bytes>) -> Result<(), Stop> {
        self.send(Message::Binary(bytes.into())).await
    }

    /// Sends any frame, as [`Conn::text`] does.
    pub async fn send(&mut self, message: Message) -> Result<(), Stop> {
        while let Some(queued) = self.outbox.pop_front() {
            send_now(self.session, queued).await?;
        }
        send_now(self.session, message).await
    }

    /// Queues a frame for the loop to send when the client's outbox has room, without waiting.
    pub(crate) fn queue(&mut self, message: Message) {
        self.outbox.push_back(message);
    }

    /// Binds the socket to a session from now on (a sign-in, an `auth`).
    pub(crate) fn bind(&mut self, watch: Revocation) {
        self.binding.bind(watch, &*self.state.clock);
    }
}

async fn send_now(session: &mut Session, message: Message) -> Result<(), Stop> {
    let mut sink = Pin::new(session);
    poll_fn(|cx| sink.as_mut().poll_ready(cx))
        .await
        .map_err(|_| Stop::Gone)?;
    sink.as_mut().start_send(message).map_err(|_| Stop::Gone)
}

/// Sends `message` if the client's outbox has room right now; gives it back otherwise (the
/// caller's task is woken when there is room).
pub(crate) async fn try_send(
    session: &mut Session,
    message: Message,
) -> Result<Option<Message>, Stop> {
    let mut sink = Pin::new(session);
    let ready = poll_fn(|cx| Poll::Ready(sink.as_mut().poll_ready(cx))).await;
    match ready {
        Poll::Ready(Ok(())) => sink
            .as_mut()
            .start_send(message)
            .map(|()| None)
            .map_err(|_| Stop::Gone),
        Poll::Ready(Err(_)) => Err(Stop::Gone),
        Poll::Pending => Ok(Some(message)),
    }
}
