//! WebSocket endpoints: the upgrade (Origin check, token from the upgrade request) and the
//! hand-off to a per-socket loop. `dispatch` holds what frames mean; `session` the socket loop;
//! `closing` the closing handshake and the end of the TCP connection.

mod access;
mod closing;
pub mod dispatch;
mod expiry;
mod limit;
mod recovery;
pub mod session;

use std::time::Instant;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use crate::error::Error;
use crate::http::{error_response, session_meta, RequestAuth};
use crate::state::AppState;
use crate::tokens::SessionMeta;
pub use dispatch::{SocketCtx, SocketKind, CLOSE_UNAUTHORIZED};

pub async fn ceremony_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    upgrade(req, body, &state, SocketKind::Ceremony, "/ws")
}

pub async fn echo_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    upgrade(req, body, &state, SocketKind::Echo, "/echo")
}

pub async fn chat_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    upgrade(req, body, &state, SocketKind::Chat, "/chat")
}

/// A refused upgrade that may be tried again later.
fn busy(err: &Error, status: actix_web::http::StatusCode) -> HttpResponse {
    let mut response = error_response(err, status);
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("5"),
    );
    response
}

/// Browsers always send `Origin`; native clients usually do not.
fn origin_allowed(req: &HttpRequest, state: &AppState) -> bool {
    match req.headers().get(actix_web::http::header::ORIGIN) {
        None => state.config.websocket.allow_missing_origin,
        Some(value) => value.to_str().is_ok_and(|origin| {
            state
                .origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        }),
    }
}

fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: &AppState,
    kind: SocketKind,
    path: &'static str,
) -> HttpResponse {
    if !origin_allowed(&req, state) {
        let err = Error::bad_request("This Origin may not open WebSockets on this server.");
        return error_response(&err, actix_web::http::StatusCode::FORBIDDEN);
    }
    let auth = req.extensions().get::<RequestAuth>().cloned();
    let needs_auth = state.endpoints.policy(path) == crate::endpoints::AuthPolicy::Required;
    // Only ceremonies create sessions, which is what the user agent is kept for; other sockets
    // keep just the peer address (for the unauthorized hook).
    let meta = match kind {
        SocketKind::Ceremony => session_meta(&req),
        SocketKind::Echo | SocketKind::Chat => SessionMeta {
            user_agent: None,
            address: crate::http::client_ip(&req),
            credential_id: None,
        },
    };
    if !state.allow_connect() {
        let err =
            Error::RateLimited("Too many connections are opening at once; try again shortly.");
        return busy(&err, actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
    }
    if state.open_sockets() >= state.capacity.sockets {
        let err =
            Error::RateLimited("The server holds as many sockets as it can; try again shortly.");
        return busy(&err, actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
    }
    let peer = meta.address;
    let mut ctx = SocketCtx::new(state, kind, path, meta, Instant::now());
    req.extensions_mut()
        .insert(crate::http::access::SocketId(ctx.id));
    let mut revocation = None;
    match auth {
        Some(RequestAuth::User(info)) => match state.tokens.watch(&info.session) {
            Some(watch) => {
                let Some(slot) = state.per_user.admit_key(info.user.id) else {
                    let err = Error::RateLimited(
                        "This account has as many sockets open as it may; close one first.",
                    );
                    return busy(&err, actix_web::http::StatusCode::TOO_MANY_REQUESTS);
                };
                ctx.user_slot = Some(slot);
                ctx.caller.user = Some(info.user.clone());
                ctx.caller.session = Some(info.session);
                revocation = Some(watch);
            }
            None => return crate::http::unauthorized_response(&Error::InvalidToken, true),
        },
        Some(RequestAuth::Anonymous) => {}
        None => ctx.awaiting_auth = needs_auth,
    }
    if ctx.caller.user.is_none() {
        if let Some(ip) = peer {
            match state.anonymous.admit(ip) {
                Some(slot) => ctx.anonymous = Some(slot),
                None => {
                    let err = Error::RateLimited(
                        "Too many sockets from your address are not signed in; sign in or close some.",
                    );
                    return busy(&err, actix_web::http::StatusCode::TOO_MANY_REQUESTS);
                }
            }
        }
    }
    let body = match limit::limit_frames(&req, body, state.config.websocket.max_frame_bytes) {
        Ok(body) => body,
        Err(e) => return e.error_response(),
    };
    let (response, session, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => return e.error_response(),
    };
    let (response, release) = closing::hold_open(response);
    // A chat socket authenticated by its upgrade joins the room before the client can know it
    // is open, so it cannot miss a message sent right after.
    let room = (kind == SocketKind::Chat && ctx.caller.user.is_some()).then(|| state.chat.join());
    actix_web::rt::spawn(session::run(
        session,
        stream,
        release,
        state.clone(),
        ctx,
        revocation,
        room,
    ));
    response
}
