//! One socket's life, whatever its [`Handler`]: a single `select!` loop over the client's frames,
//! the handler's own source, the outbox, the heartbeat and session expiry (one timer), the auth
//! and idle deadlines, revocation and shutdown; then the handler's `close` and the closing
//! handshake.
//!
//! Invariants: the loop owns the socket, its [`SocketCtx`] and its handler (all in one
//! [`Socket`]); whatever ends it, dropping the `Socket` cancels the socket's pending ceremonies,
//! ends its socket-only session and marks its token used, so nothing it started outlives it. A
//! frame that races its session's end is not handed to the handler. The loop never waits on a
//! full outbox for frames of its own (pings, pongs, warnings) or of the handler's source, so
//! revocation and shutdown reach a socket whose client reads nothing. It says how it ended
//! ([`Ending`]); [`closing::finish`] then carries out the closing handshake and ends the TCP
//! connection. What it does on each event is `session/events.rs`.
//!
//! Memory: an idle socket is mostly this task. The handling of each event is boxed while it
//! runs (it would otherwise sit in every idle socket's task), and the closing handshake
//! borrows the wire from the `Socket` rather than holding it twice (`session/tests.rs`).

use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessageStream, Message, Session};
use futures_util::Sink;
use tokio::sync::watch;
use tokio::time::{sleep, Sleep};

use super::access::SocketLog;
use super::closing::{self, Release};
use super::dispatch::{Close, SocketCtx};
use super::expiry::SocketTimer;
use super::handler::{try_send, Binding, Conn, Ending, Handler, Next, Outbox, Stop, MAX_QUEUED};
use crate::ratelimit::TokenBucket;
use crate::state::{AppState, OpenSocket};
use crate::tokens::{Revocation, SessionSignal};

/// Close codes the server uses besides 4401 (see docs/protocol.md).
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL: u16 = 1002;
/// The server (or an upstream behind it) cannot serve the socket.
pub const CLOSE_INTERNAL: u16 = 1011;
/// A socket that did not sign in and went quiet (`websocket.unauthenticated_idle_ms`).
pub const CLOSE_SIGN_IN_TIMEOUT: u16 = 4408;

/// Everything one socket's loop needs, held once in its task.
pub(crate) struct Socket<H> {
    live: Live,
    session: Session,
    stream: AggregatedMessageStream,
    binding: Binding,
    outbox: Outbox,
    handler: H,
    /// Whether `handler.open` has run (and succeeded): only then does the handler see frames,
    /// and `close`.
    opened: bool,
    shutdown: watch::Receiver<bool>,
    /// Armed only while the socket is not signed in: a protected socket's wait for its `auth`
    /// frame, or the idle time its handler allows a socket not signed in.
    auth_deadline: Option<Pin<Box<Sleep>>>,
    flood: TokenBucket,
    last_seen: Instant,
    /// When the socket's session ended, once its loop saw it (for the fan-out metric).
    revoked_at: Option<Instant>,
    /// Counts the socket open until its closing handshake is over, in all and by kind.
    _open: (OpenSocket, crate::metrics::OpenClass),
}

/// Owns the socket's context and cancels what the socket leaves behind however its loop ends,
/// including when the task is dropped mid-await at shutdown.
struct Live {
    state: AppState,
    ctx: SocketCtx,
    log: SocketLog,
    ended: bool,
}

impl Live {
    /// Ends what the socket started, and writes its access line; once (it is also what
    /// dropping it does).
    fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.log.write(&self.state, &self.ctx);
        for id in self.ctx.pending_ceremonies() {
            self.state.ceremonies.pending().cancel(&id);
        }
        if let Some(session) = self.ctx.caller.session.take() {
            // A socket-only session ends with its socket; one with a token stays, idle from now.
            self.state.tokens.end_socket_session(&session);
            self.state.tokens.touch(&session);
        }
        // The caps count the socket no longer.
        self.ctx.anonymous = None;
        self.ctx.user_slot = None;
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.end();
    }
}

async fn session_signal(revocation: &mut Option<Revocation>) -> SessionSignal {
    match revocation {
        Some(r) => r.changed().await,
        None => pending().await,
    }
}

async fn deadline_fired(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => pending().await,
    }
}

/// Sends what waits in the outbox as the client makes room. Cancel-safe: a frame leaves the
/// outbox only once there is room for it.
async fn drain(session: &mut Session, outbox: &mut Outbox) -> Result<(), Stop> {
    poll_fn(|cx| {
        while !outbox.is_empty() {
            match Pin::new(&mut *session).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    if let Some(message) = outbox.pop_front() {
                        Pin::new(&mut *session)
                            .start_send(message)
                            .map_err(|_| Stop::Gone)?;
                    }
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Stop::Gone)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    })
    .await
}

fn ending_of(stop: Stop) -> Ending {
    match stop {
        Stop::Close(close) => Ending::Server(close),
        Stop::Gone => Ending::Gone,
    }
}

impl<H: Handler> Socket<H> {
    /// Puts a socket together; `revocation` is its session's signal when the upgrade carried a
    /// token.
    pub fn new(
        state: AppState,
        ctx: SocketCtx,
        session: Session,
        stream: actix_ws::MessageStream,
        revocation: Option<Revocation>,
        handler: H,
    ) -> Self {
        let ws = &state.config.websocket;
        let stream = stream
            .max_frame_size(ws.max_frame_bytes)
            .aggregate_continuations()
            .max_continuation_size(ws.max_frame_bytes);
        let now = Instant::now();
        let flood = TokenBucket::new(f64::from(ws.messages_per_second), ws.message_burst, now);
        let timer = SocketTimer::new(
            Duration::from_millis(ws.heartbeat_interval_ms),
            state.config.tokens.expiry_warning_secs,
        );
        let mut binding = Binding {
            revocation: None,
            timer,
        };
        if let Some(watch) = revocation {
            binding.bind(watch, &*state.clock);
        }
        let auth_deadline = ctx
            .awaiting_auth
            .then(|| Duration::from_millis(ws.auth_deadline_ms))
            .map(|after| Box::pin(sleep(after)));
        Socket {
            _open: (state.socket_opened(), state.metrics.socket_opened(H::CLASS)),
            revoked_at: None,
            shutdown: state.shutdown_signal(),
            live: Live {
                state,
                ctx,
                log: SocketLog::opened(),
                ended: false,
            },
            session,
            stream,
            binding,
            outbox: Outbox::new(),
            handler,
            opened: false,
            auth_deadline,
            flood,
            last_seen: now,
        }
    }

    /// Whether the socket waits for its first `auth` frame.
    pub fn awaiting_auth(&self) -> bool {
        self.live.ctx.awaiting_auth
    }

    fn conn(&mut self) -> (&mut H, Conn<'_>) {
        (
            &mut self.handler,
            Conn {
                state: &self.live.state,
                ctx: &mut self.live.ctx,
                session: &mut self.session,
                outbox: &mut self.outbox,
                binding: &mut self.binding,
            },
        )
    }

    /// Runs the handler's `open`; the socket is let in from now on.
    pub async fn open(&mut self) -> Result<(), Stop> {
        let (handler, mut conn) = self.conn();
        handler.open(&mut conn).await?;
        self.opened = true;
        self.reset_deadline(Instant::now());
        Ok(())
    }

    /// Runs the socket until it closes, then the closing handshake; dropping `release` at the
    /// end ends the TCP connection. Not an `async fn` over `&mut self`: the task holds the
    /// `Socket` once.
    pub fn run(self, release: Release) -> impl Future<Output = ()> {
        let mut socket = self;
        async move {
            let ending = socket.serve().await;
            socket.live.log.closing(&ending);
            if socket.opened {
                socket.handler.close(&ending).await;
            }
            // What the socket started ends before the handshake (see [`Live`]); the handshake
            // borrows the wire, so the task holds it once, in the `Socket`.
            socket.live.end();
            if let Some(at) = socket.revoked_at {
                socket
                    .live
                    .state
                    .metrics
                    .revocation_fanout()
                    .observe(at.elapsed());
            }
            closing::finish(&socket.session, &mut socket.stream, ending, release).await;
        }
    }

    /// After a frame, or once the socket is let in: signed in, it needs no deadline; not signed
    /// in, its handler may give it an idle time, counted from now.
    fn reset_deadline(&mut self, now: Instant) {
        if self.live.ctx.awaiting_auth {
            return;
        }
        let idle = match self.live.ctx.caller.user {
            Some(_) => None,
            None => {
                let (handler, conn) = self.conn();
                handler.idle_timeout(&conn)
            }
        };
        match (idle, self.auth_deadline.as_mut()) {
            (None, _) => self.auth_deadline = None,
            (Some(idle), Some(deadline)) => deadline
                .as_mut()
                .reset(tokio::time::Instant::from_std(now) + idle),
            (Some(idle), None) => self.auth_deadline = Some(Box::pin(sleep(idle))),
        }
    }

    /// Queues a frame of the loop's own; past [`MAX_QUEUED`], pings and pongs are dropped.
    async fn send_own(&mut self, message: Message, droppable: bool) -> Result<(), Stop> {
        if self.outbox.is_empty() {
            if let Some(message) = try_send(&mut self.session, message).await? {
                self.outbox.push_back(message);
            }
        } else if !droppable || self.outbox.len() < MAX_QUEUED {
            self.outbox.push_back(message);
        }
        Ok(())
    }

    /// The loop: returns how it ended, and so how to close the socket.
    async fn serve(&mut self) -> Ending {
        let shutting_down = || Close {
            code: CLOSE_GOING_AWAY,
            reason: "server shutting down".into(),
        };
        if *self.shutdown.borrow_and_update() {
            return Ending::Server(shutting_down());
        }
        let heartbeat_timeout =
            Duration::from_millis(self.live.state.config.websocket.heartbeat_timeout_ms);
        loop {
            let reading = self.handler.ready();
            let taking = self.opened && self.outbox.is_empty();
            let draining = !self.outbox.is_empty();
            let step = tokio::select! {
                frame = self.stream.recv(), if reading => match frame {
                    Some(Ok(frame)) => Box::pin(self.on_frame(frame)).await,
                    other => Err(self.stream_ended(other)),
                },
                next = self.handler.next(), if taking => match next {
                    Next::Send(message) => Box::pin(self.send_from_source(message)).await,
                    Next::Idle => Ok(()),
                    Next::Stop(stop) => Err(ending_of(stop)),
                },
                sent = drain(&mut self.session, &mut self.outbox), if draining => sent.map_err(ending_of),
                signal = session_signal(&mut self.binding.revocation) => match signal {
                    SessionSignal::Ended { at } => {
                        self.revoked_at = Some(at);
                        Err(Ending::Server(Close::unauthorized()))
                    }
                    SessionSignal::Live { expires_ms } => {
                        self.binding.timer.arm(expires_ms, &*self.live.state.clock);
                        Ok(())
                    }
                },
                due = self.binding.timer.fired() => Box::pin(self.on_timer(due, heartbeat_timeout)).await,
                // The switch only ever goes from false to true, and is checked when the socket
                // opens (above), so any change means the server is going away.
                _ = self.shutdown.changed() => Err(Ending::Server(shutting_down())),
                () = deadline_fired(&mut self.auth_deadline) => Box::pin(self.on_deadline()).await,
            };
            if let Err(ending) = step {
                return ending;
            }
        }
    }
}

mod events;
#[cfg(test)]
mod tests;
