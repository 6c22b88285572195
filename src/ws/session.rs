//! One socket's life: a single `select!` loop over incoming frames, chat broadcasts, the
//! heartbeat, the auth deadline and token revocation, then cleanup.
//!
//! Invariants: the loop owns the socket and its [`SocketCtx`]; whatever ends it, the guard at the
//! end cancels the socket's pending ceremonies and marks its token used, so nothing it started
//! outlives it.

use std::future::pending;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, MessageStream, ProtocolError, Session};
use tokio::sync::broadcast;

use super::dispatch::{dispatch, unauthorized, verdict_close, Close, SocketCtx, SocketKind};
use super::expiry::{ExpiryTimer, Stage};
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

/// Owns the socket's context and cancels what the socket leaves behind however its loop ends,
/// including when the task is dropped mid-await at shutdown.
struct Live {
    state: AppState,
    ctx: SocketCtx,
}

impl Drop for Live {
    fn drop(&mut self) {
        for id in self.ctx.pending_ceremonies() {
            self.state.ceremonies.pending().cancel(&id);
        }
        if let Some(session) = &self.ctx.caller.session {
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

async fn next_broadcast(
    room: &mut Option<broadcast::Receiver<Arc<str>>>,
) -> Result<Arc<str>, broadcast::error::RecvError> {
    match room {
        Some(rx) => rx.recv().await,
        None => pending().await,
    }
}

/// Runs the socket until it closes.
pub async fn run(
    mut session: Session,
    stream: MessageStream,
    state: AppState,
    ctx: SocketCtx,
    mut revocation: Option<Revocation>,
    mut room: Option<broadcast::Receiver<Arc<str>>>,
) {
    let _open = state.socket_opened();
    let mut shutdown = state.shutdown_signal();
    let mut live = Live {
        state: state.clone(),
        ctx,
    };
    let ctx = &mut live.ctx;
    let ws = &state.config.websocket;
    let mut stream = stream
        .max_frame_size(ws.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(ws.max_frame_bytes);
    let heartbeat_timeout = Duration::from_millis(ws.heartbeat_timeout_ms);
    let mut heartbeat = tokio::time::interval(Duration::from_millis(ws.heartbeat_interval_ms));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let auth_deadline = tokio::time::sleep(Duration::from_millis(ws.auth_deadline_ms));
    tokio::pin!(auth_deadline);
    let mut flood = TokenBucket::new(
        f64::from(ws.messages_per_second),
        ws.message_burst,
        Instant::now(),
    );
    let mut last_seen = Instant::now();
    let clock = state.clock.clone();
    let mut expiry = ExpiryTimer::new(state.config.tokens.expiry_warning_secs);
    if let Some(SessionSignal::Live { expires_ms }) = revocation.as_ref().map(Revocation::current) {
        expiry.arm(expires_ms, &*clock);
    }

    let close: Option<Close> = loop {
        tokio::select! {
            frame = stream.recv() => {
                let frame = match frame {
                    None => break None,
                    Some(Err(ProtocolError::Overflow)) => break Some(Close {
                        code: CLOSE_TOO_BIG,
                        reason: format!("frame larger than {} bytes", ws.max_frame_bytes),
                    }),
                    Some(Err(e)) => {
                        tracing::debug!(socket = ctx.id, error = %e, "websocket protocol error");
                        break Some(Close { code: CLOSE_PROTOCOL, reason: "protocol error".into() });
                    }
                    Some(Ok(frame)) => frame,
                };
                let now = Instant::now();
                last_seen = now;
                if !matches!(frame, AggregatedMessage::Pong(_)) && !flood.try_take(now) {
                    break Some(Close { code: CLOSE_POLICY, reason: "too many messages".into() });
                }
                match frame {
                    AggregatedMessage::Text(text) => {
                        // Boxed: its state (about 1.1 KiB, the ceremony futures) then lives only
                        // while a frame is handled, not in every idle socket's task.
                        let outcome = Box::pin(dispatch(ctx, &state, &text, now)).await;
                        // A chat socket that just authenticated joins before its auth.result
                        // goes out, so it cannot miss a message sent right after.
                        if ctx.kind == SocketKind::Chat && room.is_none() && ctx.caller.user.is_some() {
                            room = Some(state.chat.join());
                        }
                        if let Some(reply) = outcome.reply {
                            if session.text(reply).await.is_err() {
                                break None;
                            }
                        }
                        if let Some(watch) = outcome.watch {
                            match watch.current() {
                                SessionSignal::Live { expires_ms } => expiry.arm(expires_ms, &*clock),
                                SessionSignal::Ended => expiry.disarm(),
                            }
                            revocation = Some(watch);
                        }
                        if outcome.close.is_some() {
                            break outcome.close;
                        }
                    }
                    AggregatedMessage::Binary(bytes) => {
                        let sent = if ctx.kind == SocketKind::Echo && !ctx.awaiting_auth {
                            session.binary(bytes).await
                        } else if ctx.awaiting_auth {
                            match verdict_close(unauthorized(&state, ctx, Reason::NotAuthenticated)) {
                                Some(close) => break Some(close),
                                None => { ctx.awaiting_auth = false; Ok(()) }
                            }
                        } else {
                            let err = Error::bad_request("Binary frames are not supported; send JSON text.");
                            session.text(protocol::encode(None, &ServerMsg::error(&err))).await
                        };
                        if sent.is_err() {
                            break None;
                        }
                    }
                    AggregatedMessage::Ping(bytes) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    AggregatedMessage::Pong(_) => {}
                    AggregatedMessage::Close(reason) => {
                        tracing::debug!(socket = ctx.id, ?reason, "client closed");
                        break None;
                    }
                }
            }
            message = next_broadcast(&mut room) => match message {
                Ok(frame) => {
                    if session.text(&*frame).await.is_err() {
                        break None;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(socket = ctx.id, missed, "chat member too slow; messages dropped");
                }
                Err(broadcast::error::RecvError::Closed) => room = None,
            },
            _ = heartbeat.tick() => {
                if last_seen.elapsed() > heartbeat_timeout {
                    break Some(Close { code: CLOSE_GOING_AWAY, reason: "heartbeat timeout".into() });
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
            signal = session_signal(&mut revocation) => match signal {
                SessionSignal::Ended => break Some(Close::unauthorized()),
                SessionSignal::Live { expires_ms } => expiry.arm(expires_ms, &*clock),
            },
            stage = expiry.fired() => match stage {
                Stage::Warn => {
                    let warning = ServerMsg::Expiring { expires_at: expiry.expires_at() };
                    if session.text(protocol::encode(None, &warning)).await.is_err() {
                        break None;
                    }
                    expiry.arm_end(&*clock);
                }
                Stage::End => {
                    let ended = ctx.caller.session.is_some_and(|s| state.tokens.expire_if_due(&s));
                    if !ended {
                        expiry.arm_end(&*clock);
                    }
                }
            },
            _ = shutdown.wait_for(|going| *going) => {
                break Some(Close { code: CLOSE_GOING_AWAY, reason: "server shutting down".into() });
            }
            () = &mut auth_deadline, if ctx.awaiting_auth => {
                match verdict_close(unauthorized(&state, ctx, Reason::Deadline)) {
                    Some(close) => break Some(close),
                    None => ctx.awaiting_auth = false,
                }
            }
        }
    };

    drop(live);
    let reason = close.map(|c| CloseReason {
        code: CloseCode::from(c.code),
        description: Some(c.reason),
    });
    let _ = session.close(reason).await;
}
