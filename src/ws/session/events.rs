//! What the socket loop (`session.rs`) does with each thing that happens: a client frame (the
//! first `auth` of a protected socket included), a frame of the handler's source, a timer
//! (heartbeat, expiry warning and end), the auth or idle deadline, and the client's stream
//! ending.

use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, Message, ProtocolError};

use super::super::auth::{first_frame, refused_or_let_in, FirstFrame};
use super::super::dispatch::Close;
use super::super::expiry::{Due, Stage};
use super::super::handler::{try_send, Ending, Handler};
use super::{
    ending_of, Socket, CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_PROTOCOL, CLOSE_SIGN_IN_TIMEOUT,
    CLOSE_TOO_BIG,
};
use crate::endpoints::Reason;

impl<H: Handler> Socket<H> {
    /// A frame from the handler's source, sent now if the client has room, else queued (and the
    /// source is not asked again until the outbox is empty).
    pub(super) async fn send_from_source(&mut self, message: Message) -> Result<(), Ending> {
        let message = match message {
            Message::Close(reason) => {
                return Err(Ending::Server(Close {
                    code: reason.as_ref().map_or(1000, |r| u16::from(r.code)),
                    reason: reason.and_then(|r| r.description).unwrap_or_default(),
                }))
            }
            other => other,
        };
        match try_send(&mut self.session, message).await {
            Ok(None) => Ok(()),
            Ok(Some(message)) => {
                self.outbox.push_back(message);
                Ok(())
            }
            Err(stop) => Err(ending_of(stop)),
        }
    }

    /// How the client's stream ended or failed.
    pub(super) fn stream_ended(
        &self,
        frame: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Ending {
        let max = self.live.state.config.websocket.max_frame_bytes;
        match frame {
            // The oversized frame has been skipped whole: the client's answer to the close
            // can still be read.
            Some(Err(ProtocolError::Overflow)) => Ending::Server(Close {
                code: CLOSE_TOO_BIG,
                reason: format!("frame larger than {max} bytes"),
            }),
            // The size limit seen in a frame header, or in the fragments of one message
            // together (`ws/limit.rs`): nothing more is read after it, so the close goes out and
            // the connection ends.
            Some(Err(ProtocolError::Io(e))) if super::super::limit::is_overflow(&e) => {
                Ending::Failed(Close {
                    code: CLOSE_TOO_BIG,
                    reason: format!("message larger than {max} bytes"),
                })
            }
            Some(Err(e)) => {
                tracing::debug!(socket = self.live.ctx.id, error = %e, "websocket protocol error");
                Ending::Failed(Close {
                    code: CLOSE_PROTOCOL,
                    reason: "protocol error".into(),
                })
            }
            None | Some(Ok(_)) => Ending::Gone,
        }
    }

    pub(super) async fn on_frame(&mut self, frame: AggregatedMessage) -> Result<(), Ending> {
        let now = Instant::now();
        self.last_seen = now;
        if !matches!(frame, AggregatedMessage::Pong(_)) && !self.flood.try_take(now) {
            return Err(Ending::Server(Close {
                code: CLOSE_POLICY,
                reason: "too many messages".into(),
            }));
        }
        let handled = match frame {
            AggregatedMessage::Text(text) => {
                if self.live.ctx.awaiting_auth {
                    match first_frame(&mut self.live.ctx, &self.live.state, &text).await {
                        FirstFrame::SignedIn { reply, watch } => {
                            self.live.ctx.awaiting_auth = false;
                            self.binding.bind(watch, &*self.live.state.clock);
                            // `auth.result` first, then the handler: what it sends comes after,
                            // and nothing can be written in between (this task queues both).
                            let (_, mut conn) = self.conn();
                            conn.text(reply).await.map_err(ending_of)?;
                            return self.open().await.map_err(ending_of);
                        }
                        FirstFrame::Refused(close) => return Err(Ending::Server(close)),
                        FirstFrame::LetIn => self.let_in().await?,
                    }
                }
                self.check_live()?;
                let (handler, mut conn) = self.conn();
                handler.text(&mut conn, text).await
            }
            AggregatedMessage::Binary(bytes) => {
                if self.live.ctx.awaiting_auth {
                    let ctx = &self.live.ctx;
                    match refused_or_let_in(&self.live.state, ctx, Reason::NotAuthenticated) {
                        FirstFrame::Refused(close) => return Err(Ending::Server(close)),
                        _ => self.let_in().await?,
                    }
                }
                self.check_live()?;
                let (handler, mut conn) = self.conn();
                handler.binary(&mut conn, bytes).await
            }
            AggregatedMessage::Ping(bytes) => {
                return self
                    .send_own(Message::Pong(bytes), true)
                    .await
                    .map_err(ending_of)
            }
            AggregatedMessage::Pong(_) => return Ok(()),
            AggregatedMessage::Close(reason) => {
                tracing::debug!(socket = self.live.ctx.id, ?reason, "client closed");
                return Err(Ending::Client(reason));
            }
        };
        handled.map_err(ending_of)?;
        self.reset_deadline(now);
        Ok(())
    }

    /// The unauthorized hook let a protected socket in without a user.
    pub(super) async fn let_in(&mut self) -> Result<(), Ending> {
        self.live.ctx.awaiting_auth = false;
        self.auth_deadline = None;
        self.open().await.map_err(ending_of)
    }

    /// A frame that races its session's revocation is not served: the socket closes as its
    /// revocation signal would close it.
    fn check_live(&self) -> Result<(), Ending> {
        match &self.live.ctx.caller.session {
            Some(session) if !self.live.state.tokens.is_live(session) => {
                Err(Ending::Server(Close::unauthorized()))
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn on_timer(
        &mut self,
        due: Due,
        heartbeat_timeout: Duration,
    ) -> Result<(), Ending> {
        match due {
            Due::Heartbeat => {
                if self.last_seen.elapsed() > heartbeat_timeout {
                    return Err(Ending::Server(Close {
                        code: CLOSE_GOING_AWAY,
                        reason: "heartbeat timeout".into(),
                    }));
                }
                let ping = Message::Ping(actix_web::web::Bytes::new());
                self.send_own(ping, true).await.map_err(ending_of)
            }
            Due::Expiry(Stage::Warn) => {
                let expires_at = self.binding.timer.expires_at();
                self.binding.timer.arm_end(&*self.live.state.clock);
                if self.opened {
                    let (handler, mut conn) = self.conn();
                    handler
                        .expiring(&mut conn, expires_at)
                        .await
                        .map_err(ending_of)?;
                }
                Ok(())
            }
            Due::Expiry(Stage::End) => {
                let state = &self.live.state;
                let ended =
                    (self.live.ctx.caller.session).is_some_and(|s| state.tokens.expire_if_due(&s));
                if !ended {
                    self.binding.timer.arm_end(&*state.clock);
                }
                Ok(())
            }
        }
    }

    pub(super) async fn on_deadline(&mut self) -> Result<(), Ending> {
        self.auth_deadline = None;
        if !self.live.ctx.awaiting_auth {
            return Err(Ending::Server(Close {
                code: CLOSE_SIGN_IN_TIMEOUT,
                reason: "not signed in in time".into(),
            }));
        }
        match refused_or_let_in(&self.live.state, &self.live.ctx, Reason::Deadline) {
            FirstFrame::Refused(close) => Err(Ending::Server(close)),
            _ => self.let_in().await,
        }
    }
}
