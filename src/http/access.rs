//! The access log of HTTP requests and the request ids that tie log lines together.
//!
//! [`access_log`] is the outermost middleware: it gives each request an id (a well-formed
//! `X-Request-Id` from a proxy is kept, else a new one), runs the request inside a `request`
//! span carrying it, returns it as `X-Request-Id`, and, with `[log] access`, writes one line:
//! method, path without its query, status, duration, the user when a token named one, the
//! socket id of an upgrade, and the request id. Never a header, a query, a body or a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing::Instrument;

use super::RequestAuth;
use crate::logging::ACCESS_TARGET;
use crate::state::AppState;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id kept.
const MAX_INCOMING_ID: usize = 64;

/// Hands out request ids: a random prefix per process and a counter, as 16 hex digits, so ids
/// from two runs of the server do not collide in one log store.
pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let mut bytes = [0u8; 4];
        // Without the OS's randomness the ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        RequestIds {
            prefix: u32::from_le_bytes(bytes),
            next: AtomicU64::new(1),
        }
    }

    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{:08x}", self.prefix, n as u32)
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

/// The id of the request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The id of the socket an upgrade opened, in the request's extensions (the socket's close
/// line carries the same id).
#[derive(Debug, Clone, Copy)]
pub struct SocketId(pub u64);

/// An `X-Request-Id` worth keeping: 1 to 64 characters of `[A-Za-z0-9._-]`, so a proxy's id
/// (nginx `$request_id`) ties its log to ours and nothing odd reaches a log line.
fn incoming_id(headers: &HeaderMap) -> Option<String> {
    let id = headers.get(REQUEST_ID)?.to_str().ok()?;
    let fine = (1..=MAX_INCOMING_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    fine.then(|| id.to_owned())
}

/// Milliseconds with microsecond precision.
pub fn millis(since: Instant) -> f64 {
    (since.elapsed().as_micros() as f64) / 1000.0
}

/// The outermost middleware: request id, `request` span, `X-Request-Id`, access line.
pub async fn access_log<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let started = Instant::now();
    let id = incoming_id(req.headers()).unwrap_or_else(|| state.request_ids.next_id());
    req.extensions_mut().insert(RequestId(id.clone()));
    let access = state.config.log.access;
    // Kept for an error no inner layer turned into a response (the request goes with it).
    let (method, path) = match access {
        true => (Some(req.method().clone()), Some(req.path().to_owned())),
        false => (None, None),
    };
    let span = tracing::info_span!("request", id = %id);
    let mut response = match next.call(req).instrument(span).await {
        Ok(response) => response,
        Err(err) => {
            if let (Some(method), Some(path)) = (method, path) {
                let status = err.as_response_error().status_code().as_u16();
                tracing::info!(
                    target: ACCESS_TARGET,
                    method = %method,
                    path = %path,
                    status,
                    duration_ms = millis(started),
                    request_id = %id,
                    "request"
                );
            }
            return Err(err);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if access {
        let req = response.request();
        let user = match req.extensions().get::<RequestAuth>() {
            Some(RequestAuth::User(info)) => Some(info.user.id),
            _ => None,
        };
        let socket = req.extensions().get::<SocketId>().map(|s| s.0);
        tracing::info!(
            target: ACCESS_TARGET,
            method = %req.method(),
            path = %req.path(),
            status = response.status().as_u16(),
            duration_ms = millis(started),
            user = user.map(tracing::field::display),
            socket,
            request_id = %id,
            "request"
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxys_request_id_is_kept_only_when_it_is_well_formed() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_str(value).unwrap());
            incoming_id(&headers)
        };
        assert_eq!(with("3f2a-9c.x_1").as_deref(), Some("3f2a-9c.x_1"));
        assert_eq!(with(""), None);
        assert_eq!(with("a b"), None);
        assert_eq!(with("id\"=x"), None);
        assert_eq!(with(&"a".repeat(65)), None);
        assert_eq!(incoming_id(&HeaderMap::new()), None);
    }

    #[test]
    fn generated_ids_are_16_hex_digits_and_differ() {
        let ids = RequestIds::new();
        let (a, b) = (ids.next_id(), ids.next_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
}
