//! HTTP: the route table, the token-policy middleware, and the one mapping from [`Error`] to an
//! HTTP response.
//!
//! [`authorize`] (in the middleware, [`TokenPolicy`]) is the single place a bearer token is
//! checked for both HTTP requests and WebSocket upgrades: it looks the path's policy up,
//! validates `Authorization: Bearer`, runs the unauthorized hook when that fails, and leaves a
//! [`RequestAuth`] in the request's extensions for handlers, [`Authenticated`] and sockets to
//! read.

pub mod access;
pub mod account;
pub mod admin;
pub mod cors;
mod deadline;
mod extract;
pub mod handlers;
mod headers;
pub mod metrics;
mod policy;

pub use deadline::request_deadline;
pub use extract::Authenticated;
pub use headers::security_headers;
pub use policy::{authorize, TokenPolicy};

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use serde_json::json;

use crate::api::Caller;
use crate::error::{Error, ErrorCode};
use crate::state::AppState;
use crate::tokens::TokenInfo;

/// What the policy middleware decided about a request on a protected path.
#[derive(Debug, Clone)]
pub enum RequestAuth {
    /// A valid bearer token.
    User(TokenInfo),
    /// No valid token, but the unauthorized hook allowed the request.
    Anonymous,
}

/// Longest User-Agent kept with a session.
const MAX_USER_AGENT: usize = 256;

/// The client's address: the peer's, or behind a trusted proxy the one it forwarded for
/// (`server.trusted_proxies`, see [`crate::clientaddr`]).
pub fn client_ip(req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer);
    };
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    Some(state.proxies.client(
        peer,
        header(header::FORWARDED),
        header(header::HeaderName::from_static("x-forwarded-for")),
    ))
}

/// Where a request comes from, as recorded with a session it opens.
pub fn session_meta(req: &actix_web::HttpRequest) -> crate::tokens::SessionMeta {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    crate::tokens::SessionMeta {
        user_agent,
        address: client_ip(req),
        credential_id: None,
    }
}

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::VerificationFailed => StatusCode::BAD_REQUEST,
        ErrorCode::UsernameTaken | ErrorCode::CredentialInUse => StatusCode::CONFLICT,
        ErrorCode::UnknownUser | ErrorCode::CeremonyNotFound | ErrorCode::UnknownCredential => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::RecoveryFailed => StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::LastPasskey | ErrorCode::PasskeyLimit | ErrorCode::NoPasskey => {
            StatusCode::CONFLICT
        }
        ErrorCode::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{"code","message"}` with the given status.
pub fn error_response(err: &Error, status: StatusCode) -> HttpResponse {
    err.log("http");
    HttpResponse::build(status).json(json!({"code": err.code(), "message": err.to_string()}))
}

/// 401 with the RFC 6750 challenge; `error="invalid_token"` when a token was presented.
pub fn unauthorized_response(err: &Error, invalid_token: bool) -> HttpResponse {
    let challenge = if invalid_token {
        r#"Bearer realm="wsauthn", error="invalid_token""#
    } else {
        r#"Bearer realm="wsauthn""#
    };
    let mut response = error_response(err, StatusCode::UNAUTHORIZED);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_of(self.code())
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Error::InvalidToken => unauthorized_response(self, true),
            Error::Unauthorized(_) => unauthorized_response(self, false),
            Error::RateLimited(_) => {
                let mut response = error_response(self, StatusCode::TOO_MANY_REQUESTS);
                // Every allowance refills within a minute; most within seconds.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
                response
            }
            other => error_response(other, status_of(other.code())),
        }
    }
}

/// The bearer token of an `Authorization` header: `None` without one (or with another scheme),
/// `Some("")` for a header that names the Bearer scheme but carries no usable token.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .unwrap_or("Bearer ");
    parse_bearer(value)
}

/// The token of an `Authorization` header's value, as [`bearer_token`] reads it.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub(crate) fn is_websocket_upgrade(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Who is asking: the token the policy middleware validated, or, on an open path, a Bearer
/// token presented anyway (it must then be valid), or nobody.
pub async fn caller(req: &actix_web::HttpRequest, state: &AppState) -> Result<Caller, Error> {
    // A Bearer token this node has not cached, on a store several nodes share, is looked up
    // there first (as `TokenPolicy` does), so the routes work without the middleware too.
    let authorized = matches!(
        req.extensions().get::<RequestAuth>(),
        Some(RequestAuth::User(_))
    );
    if !authorized {
        if let Some(token) = bearer_token(req.headers()).map(str::to_owned) {
            if state.tokens.needs_prefetch(&token) {
                state.tokens.prefetch(&token).await;
            }
        }
    }
    cached_caller(req, state)
}

/// [`caller`] once any lookup in the shared store is done.
fn cached_caller(req: &actix_web::HttpRequest, state: &AppState) -> Result<Caller, Error> {
    let meta = session_meta(req);
    if let Some(RequestAuth::User(info)) = req.extensions().get::<RequestAuth>() {
        return Ok(Caller::from_token(info, meta));
    }
    match bearer_token(req.headers()) {
        Some(token) => {
            let info = state
                .tokens
                .lookup(token)
                .map_err(|_| Error::InvalidToken)?;
            Ok(Caller::from_token(&info, meta))
        }
        None => Ok(Caller {
            meta,
            ..Caller::default()
        }),
    }
}

/// JSON bodies: the frame size limit, and errors in our format.
fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            let response = match &err {
                actix_web::error::JsonPayloadError::Payload(p)
                    if deadline::is_deadline_error(p) =>
                {
                    let mut response = error_response(
                        &Error::bad_request("The request body did not arrive in time."),
                        StatusCode::REQUEST_TIMEOUT,
                    );
                    response
                        .head_mut()
                        .set_connection_type(actix_web::http::ConnectionType::Close);
                    response
                }
                _ => {
                    let message = format!("The request body is not acceptable JSON: {err}.");
                    error_response(&Error::BadRequest(message), StatusCode::BAD_REQUEST)
                }
            };
            actix_web::error::InternalError::from_response(err, response).into()
        })
}

/// Mounts the built-in routes (static files are separate, and mounted last so they never
/// shadow an endpoint: `Wsauthn::static_files`).
pub fn routes(cfg: &mut web::ServiceConfig, body_limit: usize) {
    use handlers as h;
    cfg.app_data(json_config(body_limit))
        .route("/healthz", web::get().to(h::healthz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/readyz", web::get().to(h::readyz))
        .route("/api/me", web::get().to(h::me))
        .route("/auth/verify", web::get().to(h::forward_auth))
        .route("/api/register/begin", web::post().to(h::register_begin))
        .route("/api/register/finish", web::post().to(h::register_finish))
        .route("/api/login/begin", web::post().to(h::login_begin))
        .route("/api/login/finish", web::post().to(h::login_finish))
        .route("/api/passkeys", web::get().to(h::passkeys_list))
        .route("/api/passkeys/{id}", web::patch().to(h::passkey_rename))
        .route("/api/passkeys/{id}", web::delete().to(h::passkey_delete))
        .route("/api/sessions", web::get().to(h::sessions_list))
        .route("/api/sessions/refresh", web::post().to(h::refresh))
        .route(
            "/api/sessions/revoke-others",
            web::post().to(h::sessions_revoke_others),
        )
        .route("/api/sessions/{id}", web::delete().to(h::session_revoke))
        .route("/ws", web::get().to(crate::ws::ceremony_socket))
        .route("/echo", web::get().to(crate::ws::echo_socket))
        .route("/chat", web::get().to(crate::ws::chat_socket))
        .configure(admin::routes)
        .configure(account::routes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(bearer_token(&headers("Bearer ABC")), Some("ABC"));
        assert_eq!(bearer_token(&headers("bearer  ABC ")), Some("ABC"));
        assert_eq!(bearer_token(&headers("Bearer")), Some(""));
        assert_eq!(bearer_token(&headers("Basic dXNlcg==")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn every_error_code_has_a_status() {
        assert_eq!(status_of(ErrorCode::Unauthorized), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status_of(ErrorCode::RateLimited),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status_of(ErrorCode::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(status_of(ErrorCode::UsernameTaken), StatusCode::CONFLICT);
    }
}
