//! A deadline for request bodies: a client that trickles its body (or never finishes it) gets
//! `408` and loses the connection once `server.request_timeout_ms` has passed since the request
//! head arrived, instead of holding the connection for as long as it likes (actix-web already
//! answers slow headers with 408). WebSocket upgrades are exempt: their body is the socket.
//!
//! The body stream is wrapped, not the handler: a handler that waits for a disk flush after the
//! body arrived is not cut off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use futures_util::Stream;
use tokio::time::{sleep, Sleep};

use super::is_websocket_upgrade;
use crate::state::AppState;

/// The error a body stream yields when its deadline passes.
pub fn is_deadline_error(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

pub async fn request_deadline<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| Duration::from_millis(s.config.server.request_timeout_ms));
    if let Some(limit) = limit.filter(|_| !is_websocket_upgrade(&req)) {
        let body = std::mem::replace(req.parts_mut().1, Payload::None);
        req.set_payload(Payload::Stream {
            payload: Box::pin(Deadline {
                body,
                deadline: Box::pin(sleep(limit)),
                done: false,
            }),
        });
    }
    next.call(req).await
}

/// How long a timed-out body is kept unread after the 408 is handed over. actix-http closes a
/// connection whose request body is unfinished *and still held* when the response goes out, but
/// drains (reads on, for as long as the client sends) a chunked body that was dropped; holding it
/// past the response makes the connection close.
const HOLD_TIMED_OUT_BODY: Duration = Duration::from_secs(2);

/// The body, cut off with a `TimedOut` error at the deadline.
struct Deadline {
    body: Payload,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

impl Deadline {
    fn hold_body(&mut self) {
        let body = std::mem::replace(&mut self.body, Payload::None);
        actix_web::rt::spawn(async move {
            sleep(HOLD_TIMED_OUT_BODY).await;
            drop(body);
        });
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.body).poll_next(cx) {
            self.done = item.is_none();
            return Poll::Ready(item);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.done = true;
                self.hold_body();
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
