//! The closing handshake, and who ends the TCP connection when (RFC 6455 5.5.1, 7.1.1).
//!
//! - The client closes: the server answers with the same code and ends the TCP connection at
//!   once. Clients wait for that end (browsers fire `close` only then).
//! - The server closes (4401, 1008, 1009, 1001 …): it sends its close frame, reads on (dropping
//!   data frames) until the client's answering close, the end of the stream or
//!   [`ANSWER_TIMEOUT`], then ends the TCP connection. Ending it right after its own close
//!   frame would reset the connection under a client still sending (a flood, a large frame),
//!   which can destroy the close frame before the client reads it.
//! - The client broke the protocol (1002): the frames that follow cannot be read, so the
//!   server fails the connection, ending it right after its close frame.
//!
//! The TCP connection ends when the upgrade response's body does (the vendored actix-http's
//! dispatcher closes an upgraded connection as soon as its body ends, vendor/README.md).
//! actix-ws ends that body as soon as the close frame is out; [`HoldOpen`] holds the end back
//! until the socket's task lets go of its [`Release`], which is when the handshake is over, or
//! when the task ends for any other reason (so a connection never outlives its socket).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use tokio::sync::oneshot;

use super::dispatch::Close;
pub use super::handler::Ending;

/// How long the server waits for the client's answering close frame before it ends the TCP
/// connection anyway.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// Ends the connection when dropped; held by the socket's task.
pub struct Release {
    _body_ends: oneshot::Sender<()>,
}

/// The upgrade response's body, whose end is held back until the [`Release`] goes.
pub struct HoldOpen {
    body: BoxBody,
    /// The wrapped body has ended (its close frame is out).
    drained: bool,
    released: oneshot::Receiver<()>,
}

/// Wraps the body of actix-ws's upgrade response so the connection lasts until `Release` is
/// dropped.
pub fn hold_open(response: HttpResponse) -> (HttpResponse, Release) {
    let (release, released) = oneshot::channel();
    let response = response
        .map_body(|_, body| HoldOpen {
            body,
            drained: false,
            released,
        })
        .map_into_boxed_body();
    (
        response,
        Release {
            _body_ends: release,
        },
    )
}

impl MessageBody for HoldOpen {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if !this.drained {
            match ready!(Pin::new(&mut this.body).poll_next(cx)) {
                Some(chunk) => return Poll::Ready(Some(chunk)),
                None => this.drained = true,
            }
        }
        // Sent or dropped, the release means the same: the handshake is over.
        Pin::new(&mut this.released).poll(cx).map(|_| None)
    }
}

/// Carries out the closing handshake `ending` calls for, then lets the connection end. A close
/// frame that cannot even be queued within [`ANSWER_TIMEOUT`] (a client that reads nothing) is
/// given up on: the connection ends without it.
pub async fn finish(
    session: &Session,
    stream: &mut AggregatedMessageStream,
    ending: Ending,
    release: Release,
) {
    let (reason, then_wait) = match ending {
        Ending::Gone => {
            drop(release);
            return;
        }
        Ending::Client(reason) => (reason, false),
        Ending::Failed(close) => (Some(reason(close)), false),
        Ending::Server(close) => (Some(reason(close)), true),
    };
    // One statement each, so the two timers are never in the task at once.
    // A clone closes the session (its clones share the closed state); the socket keeps its own.
    let closed = tokio::time::timeout(ANSWER_TIMEOUT, session.clone().close(reason)).await;
    if then_wait && matches!(closed, Ok(Ok(()))) {
        let _ = tokio::time::timeout(ANSWER_TIMEOUT, answer(stream)).await;
    }
    drop(release);
}

/// Reads until the client's close frame or the end of what can be read.
async fn answer(stream: &mut AggregatedMessageStream) {
    loop {
        match stream.recv().await {
            Some(Ok(AggregatedMessage::Close(_))) | None => return,
            // Data after our close is dropped; an oversized frame has been skipped whole.
            Some(Ok(_)) | Some(Err(ProtocolError::Overflow)) => {}
            Some(Err(_)) => return,
        }
    }
}

fn reason(close: Close) -> CloseReason {
    CloseReason {
        code: CloseCode::from(close.code),
        description: Some(close.reason),
    }
}
