//! WebSocket endpoints: the upgrade (Origin check, caps, token from the upgrade request) and the
//! hand-off to the one socket loop, run by a [`Handler`]. `handler` is the seam; `session` the
//! loop; `auth` the first frame and session binding; `dispatch` what the built-in protocol's
//! frames mean; `builtin` the built-in sockets; `closing` the closing handshake and the end of
//! the TCP connection.
//!
//! An application mounts a socket of its own with [`socket`]: it gets everything the built-in
//! ones have (auth by header or first frame, deadlines, heartbeat, limits, `expiring`, 4401 on
//! revocation or expiry, 1001 at shutdown) and supplies only the handler.

mod access;
mod auth;
pub mod builtin;
mod closing;
pub mod dispatch;
mod expiry;
pub mod handler;
mod limit;
mod recovery;
pub mod session;

use std::borrow::Cow;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use crate::error::Error;
use crate::http::{authorize, error_response, session_meta, RequestAuth};
use crate::state::AppState;
use crate::tokens::SessionMeta;
/// What a handler sends and receives (actix-ws's frame, and its text type).
pub use actix_ws::Message;
pub use bytestring::ByteString;
pub use dispatch::{Close, SocketCtx, SocketKind, CLOSE_UNAUTHORIZED};
pub use handler::{Conn, Ending, Handler, Next, SocketClass, Stop};
pub use session::CLOSE_INTERNAL;

pub async fn ceremony_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let meta = session_meta(&req);
    upgrade(
        req,
        body,
        &state,
        Cow::Borrowed("/ws"),
        builtin::Ceremony,
        Some(meta),
    )
    .await
}

pub async fn echo_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    upgrade(
        req,
        body,
        &state,
        Cow::Borrowed("/echo"),
        builtin::Echo,
        None,
    )
    .await
}

pub async fn chat_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let chat = builtin::Chat::default();
    upgrade(req, body, &state, Cow::Borrowed("/chat"), chat, None).await
}

/// A route that opens a WebSocket on its path, under that path's policy (`[endpoints]`, or
/// [`crate::WsauthnBuilder::policy`]) and the unauthorized hook, with a handler `make` builds
/// for each upgrade:
///
/// ```no_run
/// use wsauthn::ws::{ByteString, Conn, Handler, Stop};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     async fn text(&mut self, conn: &mut Conn<'_>, text: ByteString) -> Result<(), Stop> {
///         conn.text(text).await
///     }
/// }
///
/// fn routes(cfg: &mut actix_web::web::ServiceConfig) {
///     cfg.route("/my-echo", wsauthn::socket(|_req| Echo));
/// }
/// ```
pub fn socket<H, F>(make: F) -> actix_web::Route
where
    H: Handler,
    F: Fn(&HttpRequest) -> H + Clone + 'static,
{
    web::get().to(move |req: HttpRequest, body: web::Payload| {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let handler = make(&req);
        async move {
            let Some(state) = state else {
                return not_mounted();
            };
            let path = Cow::Owned(req.path().to_owned());
            upgrade(req, body, &state, path, handler, None).await
        }
    })
}

/// What a route of wsauthn's answers when the application did not mount wsauthn's
/// configuration (`Wsauthn::configure`): it fails closed.
pub(crate) fn not_mounted() -> HttpResponse {
    tracing::error!("a wsauthn route runs without wsauthn's configuration (Wsauthn::configure)");
    error_response(
        &Error::internal("wsauthn's configuration is not mounted"),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}

/// A refused upgrade that may be tried again later.
fn busy(err: &Error, status: StatusCode) -> HttpResponse {
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

/// Upgrades the request to a socket run by `handler`. `ceremonies` (the `/ws` socket only): the
/// socket runs ceremonies, and keeps the request's user agent for the sessions they open;
/// other sockets keep just the peer address (for the unauthorized hook).
pub(crate) async fn upgrade<H: Handler>(
    req: HttpRequest,
    body: web::Payload,
    state: &AppState,
    path: Cow<'static, str>,
    handler: H,
    ceremonies: Option<SessionMeta>,
) -> HttpResponse {
    if !origin_allowed(&req, state) {
        let err = Error::bad_request("This Origin may not open WebSockets on this server.");
        return error_response(&err, StatusCode::FORBIDDEN);
    }
    // The policy middleware has looked at the header already; without it (an application that
    // did not wrap it), the same check runs here, so a socket never goes unchecked, and as in
    // the middleware a token this node has not cached is first looked up in a shared store.
    let passed = req.extensions().get::<RequestAuth>().cloned();
    let auth = match passed {
        Some(auth) => Some(auth),
        None => {
            if let Some(token) = crate::http::bearer_token(req.headers()) {
                state.tokens.prefetch(token).await;
            }
            match authorize(
                state,
                req.path(),
                req.headers(),
                crate::http::client_ip(&req),
                true,
            ) {
                Ok(auth) => auth,
                Err(refused) => return *refused,
            }
        }
    };
    let needs_auth = state.endpoints.policy(req.path()) == crate::endpoints::AuthPolicy::Required;
    if !state.allow_connect() {
        let err =
            Error::RateLimited("Too many connections are opening at once; try again shortly.");
        return busy(&err, StatusCode::SERVICE_UNAVAILABLE);
    }
    if state.open_sockets() >= state.capacity.sockets {
        let err =
            Error::RateLimited("The server holds as many sockets as it can; try again shortly.");
        return busy(&err, StatusCode::SERVICE_UNAVAILABLE);
    }
    let runs_ceremonies = ceremonies.is_some();
    let meta = ceremonies.unwrap_or_else(|| SessionMeta {
        user_agent: None,
        address: crate::http::client_ip(&req),
        credential_id: None,
    });
    let peer = meta.address;
    let mut ctx = SocketCtx::new(state, path, meta, runs_ceremonies, Instant::now());
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
                    return busy(&err, StatusCode::TOO_MANY_REQUESTS);
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
                    return busy(&err, StatusCode::TOO_MANY_REQUESTS);
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
    let mut socket = session::Socket::new(state.clone(), ctx, session, stream, revocation, handler);
    // Let in already (a header token, an open path): the handler opens before the client can
    // know the socket is open, and may still refuse it.
    if !socket.awaiting_auth() {
        if let Err(stop) = socket.open().await {
            return refused_open(&stop);
        }
    }
    let (response, release) = closing::hold_open(response);
    actix_web::rt::spawn(socket.run(release));
    response
}

/// The HTTP answer to a handler that refused to open before the upgrade was answered: `502`
/// for 1011 (an upstream that cannot be reached), `503` for anything else.
fn refused_open(stop: &Stop) -> HttpResponse {
    match stop {
        Stop::Close(close) if close.code == CLOSE_INTERNAL => {
            error_response(&Error::UpstreamUnavailable, StatusCode::BAD_GATEWAY)
        }
        _ => busy(
            &Error::RateLimited("The socket could not be opened; try again shortly."),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}
