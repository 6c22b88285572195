//! The built-in sockets as handlers: `/ws` (ceremonies and the account protocol), `/echo` and
//! `/chat`. Everything they share with every other socket is the loop's (`session.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_ws::Message;
use bytestring::ByteString;
use tokio::sync::broadcast;

use super::dispatch::{dispatch, Outcome, SocketKind};
use super::handler::{Conn, Handler, Next, SocketClass, Stop};

/// Sends a dispatched frame's reply and applies the rest of its outcome.
async fn apply(conn: &mut Conn<'_>, outcome: Outcome) -> Result<(), Stop> {
    if let Some(reply) = outcome.reply {
        conn.text(reply).await?;
    }
    if let Some(watch) = outcome.watch {
        conn.bind(watch);
    }
    match outcome.close {
        Some(close) => Err(Stop::Close(close)),
        None => Ok(()),
    }
}

/// Runs the built-in protocol on one frame. Boxed: its state (about 1.1 KiB, the ceremony
/// futures) then lives only while a frame is handled, not in every idle socket's task.
async fn run_protocol(conn: &mut Conn<'_>, kind: SocketKind, text: &str) -> Outcome {
    Box::pin(dispatch(conn.ctx, conn.state, kind, text, Instant::now())).await
}

/// `/ws`: the ceremony socket.
pub struct Ceremony;

impl Handler for Ceremony {
    const CLASS: SocketClass = SocketClass::Ceremony;

    async fn text(&mut self, conn: &mut Conn<'_>, text: ByteString) -> Result<(), Stop> {
        let outcome = run_protocol(conn, SocketKind::Ceremony, &text).await;
        apply(conn, outcome).await
    }

    /// Not signed in: `websocket.unauthenticated_idle_ms` from the last frame, or the whole
    /// ceremony timeout while a ceremony is pending.
    fn idle_timeout(&self, conn: &Conn<'_>) -> Option<Duration> {
        let config = &conn.state.config;
        Some(match conn.ctx.has_pending_ceremony() {
            true => Duration::from_secs(config.webauthn.ceremony_timeout_secs),
            false => Duration::from_millis(config.websocket.unauthenticated_idle_ms),
        })
    }
}

/// `/echo`: every text and binary frame comes back.
pub struct Echo;

impl Handler for Echo {
    const CLASS: SocketClass = SocketClass::Echo;

    async fn text(&mut self, conn: &mut Conn<'_>, text: ByteString) -> Result<(), Stop> {
        conn.text(text).await
    }

    async fn binary(&mut self, conn: &mut Conn<'_>, bytes: Bytes) -> Result<(), Stop> {
        conn.binary(bytes).await
    }
}

/// `/chat`: the built-in protocol without ceremonies, and the room.
#[derive(Default)]
pub struct Chat {
    room: Option<broadcast::Receiver<Arc<str>>>,
}

impl Chat {
    /// A signed-in socket joins before the client can know it is in (before the upgrade is
    /// answered, or before its `auth.result` is written: `open` runs right after the loop
    /// queues it, without yielding), so it cannot miss a message sent right after.
    fn join_if_signed_in(&mut self, conn: &Conn<'_>) {
        if self.room.is_none() && conn.user().is_some() {
            self.room = Some(conn.state.chat.join());
        }
    }
}

impl Handler for Chat {
    const CLASS: SocketClass = SocketClass::Chat;

    async fn open(&mut self, conn: &mut Conn<'_>) -> Result<(), Stop> {
        self.join_if_signed_in(conn);
        Ok(())
    }

    async fn text(&mut self, conn: &mut Conn<'_>, text: ByteString) -> Result<(), Stop> {
        let outcome = run_protocol(conn, SocketKind::Chat, &text).await;
        // An `auth` on a socket the hook let in: join before its reply goes out.
        self.join_if_signed_in(conn);
        apply(conn, outcome).await
    }

    async fn next(&mut self) -> Next {
        let Some(room) = self.room.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match room.recv().await {
                Ok(frame) => return Next::Send(Message::Text(ByteString::from(&*frame))),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "chat member too slow; messages dropped");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.room = None;
                    return Next::Idle;
                }
            }
        }
    }
}
