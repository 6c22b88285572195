//! One socket's life: a single `select!` loop over incoming frames, chat broadcasts, the
//! heartbeat and session expiry (one timer), the auth deadline and token revocation, then
//! cleanup.
//!
//! Invariants: the loop owns the socket and its [`SocketCtx`] (both in one [`Socket`]); whatever
//! ends it, dropping the `Socket` cancels the socket's pending ceremonies, ends its socket-only
//! session and marks its token used, so nothing it started outlives it. The loop says how it
//! ended ([`Ending`]); [`closing::finish`] then carries out the closing handshake and ends the
//! TCP connection.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, MessageStream, ProtocolError, Session};
use tokio::sync::{broadcast, watch};
use tokio::time::{sleep, Sleep};

use super::access::SocketLog;
use super::closing::{self, Ending, Release};
use super::dispatch::{dispatch, unauthorized, verdict_close, Close, SocketCtx, SocketKind};
use super::expiry::{Due, SocketTimer, Stage};
use crate::endpoints::Reason;
use crate::error::Error;
use crate::protocol::{self, ServerMsg};
use crate::ratelimit::TokenBucket;
use crate::state::AppState;
use crate::tokens::{Revocation, SessionSignal};

/// Close codes the server uses besides 4401 (see docs/protocol.md).
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL: u16 = 1002;
/// A `/ws` socket that did not sign in and went quiet (`websocket.unauthenticated_idle_ms`).
pub const CLOSE_SIGN_IN_TIMEOUT: u16 = 4408;

/// Everything one socket's loop needs, held once in its task (about 1 KiB less per idle socket
/// than the same values as arguments and locals side by side).
struct Socket {
    live: Live,
    session: Session,
    stream: AggregatedMessageStream,
    revocation: Option<Revocation>,
    room: Option<broadcast::Receiver<Arc<str>>>,
    shutdown: watch::Receiver<bool>,
    /// Armed only while the socket is not signed in: a protected socket's wait for its `auth`
    /// frame, or a `/ws` socket's idle time before it signs in.
    auth_deadline: Option<Pin<Box<Sleep>>>,
    flood: TokenBucket,
    last_seen: Instant,
    /// The heartbeat and the session's expiry.
    timer: SocketTimer,
}

/// Owns the socket's context and cancels what the socket leaves behind however its loop ends,
/// including when the task is dropped mid-await at shutdown.
struct Live {
    state: AppState,
    ctx: SocketCtx,
    log: SocketLog,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.log.write(&self.state, &self.ctx);
        for id in self.ctx.pending_ceremonies() {
            self.state.ceremonies.pending().cancel(&id);
        }
        if let Some(session) = &self.ctx.caller.session {
            // A socket-only session ends with its socket; one with a token stays, idle from now.
            self.state.tokens.end_socket_session(session);
            self.state.tokens.touch(session);
        }
    }
}

async fn session_signal(revocation: &mut Option<Revocation>) -> SessionSignal {
    match revocation {
        Some(r) => r.changed().await,
        None => pending().await,
    }
}

async fn auth_deadline_fired(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => pending().await,
    }
}

async fn next_broadcast(
    room: &mut Option<broadcast::Receiver<Arc<str>>>,
) -> Result<Arc<str>, broadcast::error::RecvError> {
    match room {
        Some(rx) => rx.recv().await,
        None => pending().await,
    }
}

/// Runs the socket until it closes, then the closing handshake; dropping `release` at the end
/// ends the TCP connection. Not an `async fn`: the arguments go into the [`Socket`] first, so
/// the task holds them once rather than beside it.
pub fn run(
    session: Session,
    stream: MessageStream,
    release: Release,
    state: AppState,
    ctx: SocketCtx,
    revocation: Option<Revocation>,
    room: Option<broadcast::Receiver<Arc<str>>>,
) -> impl Future<Output = ()> {
    let open = state.socket_opened();
    let ws = &state.config.websocket;
    let stream = stream
        .max_frame_size(ws.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(ws.max_frame_bytes);
    let auth_deadline = if ctx.awaiting_auth {
        Some(Box::pin(sleep(Duration::from_millis(ws.auth_deadline_ms))))
    } else if ctx.kind == SocketKind::Ceremony && ctx.caller.user.is_none() {
        Some(Box::pin(sleep(Duration::from_millis(
            ws.unauthenticated_idle_ms,
        ))))
    } else {
        None
    };
    let now = Instant::now();
    let flood = TokenBucket::new(f64::from(ws.messages_per_second), ws.message_burst, now);
    let mut timer = SocketTimer::new(
        Duration::from_millis(ws.heartbeat_interval_ms),
        state.config.tokens.expiry_warning_secs,
    );
    if let Some(SessionSignal::Live { expires_ms }) = revocation.as_ref().map(Revocation::current) {
        timer.arm(expires_ms, &*state.clock);
    }
    let mut socket = Socket {
        shutdown: state.shutdown_signal(),
        live: Live {
            state,
            ctx,
            log: SocketLog::opened(),
        },
        session,
        stream,
        revocation,
        room,
        auth_deadline,
        flood,
        last_seen: now,
        timer,
    };
    async move {
        let _open = open;
        let ending = socket.serve().await;
        socket.live.log.closing(&ending);
        let (session, stream) = socket.into_wire();
        closing::finish(session, stream, ending, release).await;
    }
}

impl Socket {
    /// Lets go of everything but the wire: what the socket started ends here (see [`Live`]),
    /// and the closing handshake gets the session and the stream. By value, so the task does
    /// not keep the rest of the `Socket` beside the handshake's future.
    fn into_wire(self) -> (Session, AggregatedMessageStream) {
        let Socket {
            live,
            session,
            stream,
            ..
        } = self;
        drop(live);
        (session, stream)
    }

    /// The loop: returns how it ended, and so how to close the socket.
    async fn serve(&mut self) -> Ending {
        let state = &self.live.state;
        let ctx = &mut self.live.ctx;
        let session = &mut self.session;
        let room = &mut self.room;
        let revocation = &mut self.revocation;
        let timer = &mut self.timer;
        let auth_deadline = &mut self.auth_deadline;
        let ws = &state.config.websocket;
        let clock = &*state.clock;
        let heartbeat_timeout = Duration::from_millis(ws.heartbeat_timeout_ms);
        let shutting_down = || Close {
            code: CLOSE_GOING_AWAY,
            reason: "server shutting down".into(),
        };
        if *self.shutdown.borrow_and_update() {
            return Ending::Server(shutting_down());
        }

        loop {
            tokio::select! {
                frame = self.stream.recv() => {
                    let frame = match frame {
                        None => break Ending::Gone,
                        // The oversized frame has been skipped whole: the client's answer to
                        // the close can still be read.
                        Some(Err(ProtocolError::Overflow)) => break Ending::Server(Close {
                            code: CLOSE_TOO_BIG,
                            reason: format!("frame larger than {} bytes", ws.max_frame_bytes),
                        }),
                        // The size limit seen in a frame header, or in the fragments of one
                        // message together (`ws/limit.rs`): nothing more is read after it, so
                        // the close goes out and the connection ends.
                        Some(Err(ProtocolError::Io(e))) if super::limit::is_overflow(&e) => break Ending::Failed(Close {
                            code: CLOSE_TOO_BIG,
                            reason: format!("message larger than {} bytes", ws.max_frame_bytes),
                        }),
                        Some(Err(e)) => {
                            tracing::debug!(socket = ctx.id, error = %e, "websocket protocol error");
                            break Ending::Failed(Close { code: CLOSE_PROTOCOL, reason: "protocol error".into() });
                        }
                        Some(Ok(frame)) => frame,
                    };
                    let now = Instant::now();
                    self.last_seen = now;
                    if !matches!(frame, AggregatedMessage::Pong(_)) && !self.flood.try_take(now) {
                        break Ending::Server(Close { code: CLOSE_POLICY, reason: "too many messages".into() });
                    }
                    match frame {
                        AggregatedMessage::Text(text) => {
                            // Boxed: its state (about 1.1 KiB, the ceremony futures) then lives only
                            // while a frame is handled, not in every idle socket's task.
                            let outcome = Box::pin(dispatch(ctx, state, &text, now)).await;
                            if ctx.caller.user.is_some() || (!ctx.awaiting_auth && ctx.kind != SocketKind::Ceremony) {
                                // Signed in (or let in by the hook): the deadline's timer can go.
                                *auth_deadline = None;
                            } else if let (false, Some(deadline)) = (ctx.awaiting_auth, auth_deadline.as_mut()) {
                                // A /ws socket not signed in: idle time counts from this frame,
                                // and a ceremony in progress may take its whole timeout.
                                let idle = match ctx.has_pending_ceremony() {
                                    true => Duration::from_secs(state.config.webauthn.ceremony_timeout_secs),
                                    false => Duration::from_millis(ws.unauthenticated_idle_ms),
                                };
                                deadline.as_mut().reset(tokio::time::Instant::from_std(now) + idle);
                            }
                            // A chat socket that just authenticated joins before its auth.result
                            // goes out, so it cannot miss a message sent right after.
                            if ctx.kind == SocketKind::Chat && room.is_none() && ctx.caller.user.is_some() {
                                *room = Some(state.chat.join());
                            }
                            if let Some(reply) = outcome.reply {
                                if session.text(reply).await.is_err() {
                                    break Ending::Gone;
                                }
                            }
                            if let Some(watch) = outcome.watch {
                                match watch.current() {
                                    SessionSignal::Live { expires_ms } => timer.arm(expires_ms, clock),
                                    SessionSignal::Ended => timer.disarm(),
                                }
                                *revocation = Some(watch);
                            }
                            if let Some(close) = outcome.close {
                                break Ending::Server(close);
                            }
                        }
                        AggregatedMessage::Binary(bytes) => {
                            let sent = if ctx.kind == SocketKind::Echo && !ctx.awaiting_auth {
                                session.binary(bytes).await
                            } else if ctx.awaiting_auth {
                                match verdict_close(unauthorized(state, ctx, Reason::NotAuthenticated)) {
                                    Some(close) => break Ending::Server(close),
                                    None => { ctx.awaiting_auth = false; Ok(()) }
                                }
                            } else {
                                let err = Error::bad_request("Binary frames are not supported; send JSON text.");
                                session.text(protocol::encode(None, &ServerMsg::error(&err))).await
                            };
                            if sent.is_err() {
                                break Ending::Gone;
                            }
                        }
                        AggregatedMessage::Ping(bytes) => {
                            if session.pong(&bytes).await.is_err() {
                                break Ending::Gone;
                            }
                        }
                        AggregatedMessage::Pong(_) => {}
                        AggregatedMessage::Close(reason) => {
                            tracing::debug!(socket = ctx.id, ?reason, "client closed");
                            break Ending::Client(reason);
                        }
                    }
                }
                message = next_broadcast(room) => match message {
                    Ok(frame) => {
                        if session.text(&*frame).await.is_err() {
                            break Ending::Gone;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(socket = ctx.id, missed, "chat member too slow; messages dropped");
                    }
                    Err(broadcast::error::RecvError::Closed) => *room = None,
                },
                signal = session_signal(revocation) => match signal {
                    SessionSignal::Ended => break Ending::Server(Close::unauthorized()),
                    SessionSignal::Live { expires_ms } => timer.arm(expires_ms, clock),
                },
                due = timer.fired() => match due {
                    Due::Heartbeat => {
                        if self.last_seen.elapsed() > heartbeat_timeout {
                            break Ending::Server(Close { code: CLOSE_GOING_AWAY, reason: "heartbeat timeout".into() });
                        }
                        if session.ping(b"").await.is_err() {
                            break Ending::Gone;
                        }
                    }
                    Due::Expiry(Stage::Warn) => {
                        let warning = ServerMsg::Expiring { expires_at: timer.expires_at() };
                        if session.text(protocol::encode(None, &warning)).await.is_err() {
                            break Ending::Gone;
                        }
                        timer.arm_end(clock);
                    }
                    Due::Expiry(Stage::End) => {
                        let ended = ctx.caller.session.is_some_and(|s| state.tokens.expire_if_due(&s));
                        if !ended {
                            timer.arm_end(clock);
                        }
                    }
                },
                // The switch only ever goes from false to true, and is checked when the socket
                // opens (below), so any change means the server is going away.
                _ = self.shutdown.changed() => {
                    break Ending::Server(shutting_down());
                }
                () = auth_deadline_fired(auth_deadline) => {
                    *auth_deadline = None;
                    if !ctx.awaiting_auth {
                        break Ending::Server(Close { code: CLOSE_SIGN_IN_TIMEOUT, reason: "not signed in in time".into() });
                    }
                    match verdict_close(unauthorized(state, ctx, Reason::Deadline)) {
                        Some(close) => break Ending::Server(close),
                        None => ctx.awaiting_auth = false,
                    }
                }
            }
        }
    }
}
