//! The WebSocket half of the reverse proxy: a [`Handler`] that relays a socket to its upstream,
//! frame by frame both ways.
//!
//! Invariants:
//! - The upstream socket opens only once the client's socket is let in (its token checked, or
//!   its first `auth` frame answered), with the identity headers of the session it is bound to;
//!   it never sees the `auth` frame.
//! - Backpressure both ways, nothing buffered without bound: the loop takes no client frame
//!   while the upstream's write buffer is full ([`Handler::ready`]), and reads no upstream frame
//!   while the client's outbox is full (it does not poll [`Handler::next`] then).
//! - Frames of either side obey `websocket.max_frame_bytes` (a fragmented upstream message
//!   counts whole).
//! - Whatever ends the client's socket ends the upstream's, with the client's close code or the
//!   server's (4401 on revocation or expiry, 1001 at shutdown); the upstream's close reaches the
//!   client with its code; an upstream that cannot be reached or drops closes the client's
//!   socket with 1011.

use std::future::{pending, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::Framed;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_ws::{CloseCode, CloseReason, Item, Message, ProtocolError};
use awc::ws::{Codec, Frame};
use awc::BoxedSocket;
use bytestring::ByteString;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use super::http::CONNECT_TIMEOUT;
use crate::ws::{Conn, Ending, Handler, Next, SocketClass, Stop, CLOSE_INTERNAL};

/// How long the closing handshake with the upstream may take before its connection is dropped.
const UPSTREAM_CLOSE_WAIT: Duration = Duration::from_secs(1);

type Upstream = Framed<BoxedSocket, Codec>;

/// What opening the upstream socket takes, kept from the upgrade request until then.
pub struct Dial {
    pub client: awc::Client,
    /// The upstream's URL with the request's path and query.
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// One client socket relayed to one upstream socket.
pub struct Relay {
    dial: Option<Box<Dial>>,
    upstream: Option<Upstream>,
    max_frame: usize,
    /// Bytes of the upstream's fragmented message so far.
    message: usize,
    /// How the upstream's side ended, when it ended first.
    upstream_end: Option<UpstreamEnd>,
}

/// The upstream's side ended before the client's.
#[derive(Debug)]
enum UpstreamEnd {
    /// It closed, with this: the same close goes back as its answer.
    Closed(Option<CloseReason>),
    /// It broke the protocol or the size limit: it is told so with this code.
    Refused(CloseCode),
    /// Its connection ended or failed: there is no one to tell.
    Gone,
}

fn lost(why: &str) -> Stop {
    tracing::debug!(why, "upstream socket lost");
    Stop::close(CLOSE_INTERNAL, "upstream unavailable")
}

/// The client's socket ends with 1011; the upstream's side with `end`.
fn ended(end: &mut Option<UpstreamEnd>, now: UpstreamEnd, why: &str) -> Next {
    *end = Some(now);
    Next::Stop(lost(why))
}

impl Relay {
    pub fn new(dial: Dial, max_frame: usize) -> Self {
        Relay {
            dial: Some(Box::new(dial)),
            upstream: None,
            max_frame,
            message: 0,
            upstream_end: None,
        }
    }

    /// Queues a client frame for the upstream and writes what the connection takes now; the
    /// rest goes out from [`Handler::next`].
    async fn relay(&mut self, message: Message) -> Result<(), Stop> {
        let Some(upstream) = self.upstream.as_mut() else {
            return Err(lost("not connected"));
        };
        Pin::new(&mut *upstream)
            .start_send(message)
            .map_err(|_| lost("encode"))?;
        let flushed = poll_fn(|cx| Poll::Ready(Pin::new(&mut *upstream).poll_flush(cx))).await;
        match flushed {
            Poll::Ready(Err(_)) => {
                self.upstream_end = Some(UpstreamEnd::Gone);
                Err(lost("write"))
            }
            _ => Ok(()),
        }
    }
}

/// A data frame from the upstream, as the client gets it, counting a fragmented message whole;
/// the code to refuse it with, when it breaks a rule.
fn from_upstream(
    frame: Frame,
    message: &mut usize,
    max: usize,
) -> Result<Option<Message>, CloseCode> {
    let mut count = |len: usize, first: bool| {
        *message = if first {
            len
        } else {
            message.saturating_add(len)
        };
        match *message > max {
            true => Err(CloseCode::Size),
            false => Ok(()),
        }
    };
    Ok(Some(match frame {
        Frame::Text(bytes) => {
            Message::Text(ByteString::try_from(bytes).map_err(|_| CloseCode::Invalid)?)
        }
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Continuation(item) => {
            match &item {
                Item::FirstText(b) | Item::FirstBinary(b) => count(b.len(), true)?,
                Item::Continue(b) | Item::Last(b) => count(b.len(), false)?,
            }
            Message::Continuation(item)
        }
        Frame::Ping(_) | Frame::Pong(_) | Frame::Close(_) => return Ok(None),
    }))
}

/// What the upstream is told when the client's socket ends: the client's own close as it was
/// (with no code if it had none), the server's close, or 1001 (going away) when the client
/// broke the protocol or vanished.
fn close_for_upstream(ending: &Ending) -> Option<CloseReason> {
    match ending {
        Ending::Client(reason) => reason.clone(),
        Ending::Server(close) => Some(CloseReason {
            code: CloseCode::from(close.code),
            description: Some(close.reason.clone()),
        }),
        Ending::Failed(_) | Ending::Gone => Some(CloseCode::Away.into()),
    }
}

/// The client's close for an upstream's: its code, when it is one that may be sent.
fn close_for_client(reason: &Option<CloseReason>) -> Stop {
    match reason {
        Some(reason) => {
            let code = u16::from(reason.code);
            let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            let description = reason.description.clone().unwrap_or_default();
            Stop::close(if sendable { code } else { 1000 }, description)
        }
        None => Stop::close(1000, ""),
    }
}

impl Handler for Relay {
    const CLASS: SocketClass = SocketClass::Proxy;

    async fn open(&mut self, conn: &mut Conn<'_>) -> Result<(), Stop> {
        let Some(dial) = self.dial.take() else {
            return Ok(());
        };
        let Dial {
            client,
            url,
            headers,
        } = *dial;
        let mut request = client.ws(url.as_str()).max_frame_size(self.max_frame);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let (Some(user), Some(session)) = (conn.user(), conn.session_id()) {
            for (name, value) in super::headers::identity(user, &session) {
                request = request.set_header(name, value);
            }
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, request.connect()).await {
            Ok(Ok((_, upstream))) => {
                self.upstream = Some(upstream);
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::warn!(url, error = %e, "upstream socket unavailable");
                Err(lost("connect"))
            }
            Err(_) => {
                tracing::warn!(url, "upstream socket did not open in time");
                Err(lost("connect timeout"))
            }
        }
    }

    async fn text(&mut self, _: &mut Conn<'_>, text: ByteString) -> Result<(), Stop> {
        self.relay(Message::Text(text)).await
    }

    async fn binary(&mut self, _: &mut Conn<'_>, bytes: Bytes) -> Result<(), Stop> {
        self.relay(Message::Binary(bytes)).await
    }

    fn ready(&self) -> bool {
        self.upstream
            .as_ref()
            .is_none_or(|u| !u.is_write_buf_full())
    }

    async fn next(&mut self) -> Next {
        let Relay {
            upstream,
            max_frame,
            message,
            upstream_end,
            ..
        } = self;
        let Some(upstream) = upstream.as_mut() else {
            return pending().await;
        };
        poll_fn(|cx| poll_upstream(upstream, cx, message, *max_frame, upstream_end)).await
    }

    async fn close(&mut self, ending: &Ending) {
        let Some(mut upstream) = self.upstream.take() else {
            return;
        };
        let reason = match self.upstream_end.take() {
            None => close_for_upstream(ending),
            Some(UpstreamEnd::Closed(theirs)) => theirs,
            Some(UpstreamEnd::Refused(code)) => Some(code.into()),
            Some(UpstreamEnd::Gone) => return,
        };
        // On its own task, so the client's closing handshake need not wait for the upstream's:
        // send the close, then read until the upstream ends the connection (it is the server).
        actix_web::rt::spawn(async move {
            let handshake = async {
                if upstream.send(Message::Close(reason)).await.is_err() {
                    return;
                }
                while let Some(Ok(_)) = upstream.next().await {}
            };
            let _ = tokio::time::timeout(UPSTREAM_CLOSE_WAIT, handshake).await;
        });
    }
}

/// Writes what waits for the upstream, and reads its next frame for the client. Pongs answer
/// its pings; its close ends the client's socket with its code.
fn poll_upstream(
    upstream: &mut Upstream,
    cx: &mut Context<'_>,
    message: &mut usize,
    max: usize,
    end: &mut Option<UpstreamEnd>,
) -> Poll<Next> {
    let was_full = upstream.is_write_buf_full();
    loop {
        if !upstream.is_write_buf_empty() {
            match Pin::new(&mut *upstream).poll_flush(cx) {
                Poll::Ready(Err(_)) => return Poll::Ready(ended(end, UpstreamEnd::Gone, "write")),
                // Room again for the client's frames: the loop must look at `ready` anew.
                Poll::Ready(Ok(())) if was_full => return Poll::Ready(Next::Idle),
                _ => {}
            }
        }
        let frame = match Pin::new(&mut *upstream).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(ended(end, UpstreamEnd::Gone, "eof")),
            Poll::Ready(Some(Err(ProtocolError::Overflow))) => {
                let refused = UpstreamEnd::Refused(CloseCode::Size);
                return Poll::Ready(ended(end, refused, "frame over the size limit"));
            }
            Poll::Ready(Some(Err(ProtocolError::Io(_)))) => {
                return Poll::Ready(ended(end, UpstreamEnd::Gone, "read"));
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "upstream broke the websocket protocol");
                let refused = UpstreamEnd::Refused(CloseCode::Protocol);
                return Poll::Ready(ended(end, refused, "protocol"));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        match frame {
            Frame::Ping(bytes) => {
                if Pin::new(&mut *upstream)
                    .start_send(Message::Pong(bytes))
                    .is_err()
                {
                    return Poll::Ready(ended(end, UpstreamEnd::Gone, "pong"));
                }
            }
            Frame::Close(reason) => {
                let stop = close_for_client(&reason);
                *end = Some(UpstreamEnd::Closed(reason));
                return Poll::Ready(Next::Stop(stop));
            }
            other => match from_upstream(other, message, max) {
                Ok(Some(m)) => return Poll::Ready(Next::Send(m)),
                Ok(None) => {}
                Err(code) => {
                    return Poll::Ready(ended(end, UpstreamEnd::Refused(code), "bad frame"));
                }
            },
        }
    }
}
