//! HTTP: the route table, the token-policy middleware, and the one mapping from [`Error`] to an
//! HTTP response.
//!
//! [`enforce_policy`] is the single place a bearer token is checked for both HTTP requests and
//! WebSocket upgrades: it looks the path's policy up, validates `Authorization: Bearer`, runs
//! the unauthorized hook when that fails, and leaves a [`RequestAuth`] in the request's
//! extensions for handlers and sockets to read.

pub mod handlers;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use serde_json::json;

use crate::endpoints::{AuthPolicy, Reason, Transport, Unauthorized, Verdict};
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

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::VerificationFailed => StatusCode::BAD_REQUEST,
        ErrorCode::UsernameTaken | ErrorCode::CredentialInUse => StatusCode::CONFLICT,
        ErrorCode::UnknownUser | ErrorCode::CeremonyNotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
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
        match self.code() {
            ErrorCode::Unauthorized => unauthorized_response(self, false),
            code => error_response(self, status_of(code)),
        }
    }
}

/// The bearer token of an `Authorization` header: `None` without one (or with another scheme),
/// `Some("")` for a header that names the Bearer scheme but carries no usable token.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .unwrap_or("Bearer ");
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn is_websocket_upgrade(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Enforces each path's token policy, for HTTP requests and WebSocket upgrades alike.
pub async fn enforce_policy<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if state.endpoints.policy(req.path()) == AuthPolicy::None {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let websocket = is_websocket_upgrade(&req);
    let reason = match bearer_token(req.headers()) {
        Some(token) => match state.tokens.lookup(token) {
            Ok(info) => {
                req.extensions_mut().insert(RequestAuth::User(info));
                return next
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body);
            }
            Err(_) => Reason::InvalidToken,
        },
        // A browser cannot set headers on an upgrade: the socket asks for a first `auth` frame.
        None if websocket => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        None => Reason::Missing,
    };
    let verdict = state.hook.on_unauthorized(&Unauthorized {
        transport: if websocket {
            Transport::WebSocket
        } else {
            Transport::Http
        },
        path: req.path(),
        reason,
        peer: req.peer_addr().map(|a| a.ip()),
    });
    let response = match verdict {
        Verdict::Allow => {
            req.extensions_mut().insert(RequestAuth::Anonymous);
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        Verdict::Disconnect => {
            let message = match reason {
                Reason::InvalidToken => "The token is unknown, expired or revoked.",
                _ => "This endpoint needs a bearer token.",
            };
            unauthorized_response(
                &Error::Unauthorized(message),
                reason == Reason::InvalidToken,
            )
        }
        Verdict::Close { code, reason } => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::UNAUTHORIZED);
            HttpResponse::build(status).json(json!({"code": "unauthorized", "message": reason}))
        }
    };
    Ok(req.into_response(response).map_into_right_body())
}

/// Mounts the built-in routes. Static files come last so they never shadow an endpoint.
pub fn routes(cfg: &mut web::ServiceConfig, static_dir: Option<&std::path::Path>) {
    cfg.route("/healthz", web::get().to(handlers::healthz))
        .route("/api/me", web::get().to(handlers::me))
        .route("/ws", web::get().to(crate::ws::ceremony_socket))
        .route("/echo", web::get().to(crate::ws::echo_socket))
        .route("/chat", web::get().to(crate::ws::chat_socket));
    if let Some(dir) = static_dir {
        cfg.service(actix_files::Files::new("/", dir).index_file("index.html"));
    }
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
