//! The token policy, for HTTP requests and WebSocket upgrades alike: the one place a bearer
//! token presented in a header is checked against a path's policy.
//!
//! [`authorize`] looks the path's policy up, validates `Authorization: Bearer`, and runs the
//! unauthorized hook when that fails; [`TokenPolicy`], the middleware, leaves its
//! [`RequestAuth`] in the request's extensions for handlers, extractors and sockets to read.
//! On a store several nodes share, a token this node has not cached is first looked up in the
//! store (one query, `TokenTable::prefetch`); that request alone takes a boxed future.
//! Invariant: the middleware fails closed: without wsauthn's state mounted (`Wsauthn::configure`)
//! it refuses every request rather than letting protected paths through unchecked.

use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpResponse};
use futures_util::future::{Either, LocalBoxFuture, Map};
use futures_util::FutureExt;
use serde_json::json;

use super::{admin, bearer_token, is_websocket_upgrade, unauthorized_response, RequestAuth};
use crate::endpoints::{AuthPolicy, Reason, Transport, Unauthorized, Verdict};
use crate::error::Error;
use crate::state::AppState;

/// The policy's decision on a request to `path`: let it through (with the token it carried, the
/// hook's permission, or, for a WebSocket upgrade without a header, nothing yet: its first
/// frame must then authenticate it), or refuse it with this response.
pub fn authorize(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    websocket: bool,
) -> Result<Option<RequestAuth>, Box<HttpResponse>> {
    // The backend API takes the admin key, never a user's token, whatever the policy says.
    if admin::is_admin_path(path) || state.endpoints.policy(path) == AuthPolicy::None {
        return Ok(None);
    }
    let reason = match bearer_token(headers) {
        Some(token) => match state.tokens.lookup(token) {
            Ok(info) => return Ok(Some(RequestAuth::User(info))),
            Err(_) => Reason::InvalidToken,
        },
        // A browser cannot set headers on an upgrade: the socket asks for a first `auth` frame.
        None if websocket => return Ok(None),
        None => Reason::Missing,
    };
    let verdict = state.hook.on_unauthorized(&Unauthorized {
        transport: if websocket {
            Transport::WebSocket
        } else {
            Transport::Http
        },
        path,
        reason,
        peer,
    });
    Err(Box::new(match verdict {
        Verdict::Allow => return Ok(Some(RequestAuth::Anonymous)),
        Verdict::Disconnect => match reason {
            Reason::InvalidToken => unauthorized_response(&Error::InvalidToken, true),
            _ => unauthorized_response(
                &Error::Unauthorized("This endpoint needs a bearer token."),
                false,
            ),
        },
        Verdict::Close { code, reason } => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::UNAUTHORIZED);
            HttpResponse::build(status).json(json!({"code": "unauthorized", "message": reason}))
        }
    }))
}

/// The policy middleware: `.wrap(TokenPolicy)` on an `App` that mounts wsauthn
/// (`Wsauthn::configure`) enforces every path's policy, the application's own paths included
/// (see [`authorize`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenPolicy;

impl<S, B> Transform<S, ServiceRequest> for TokenPolicy
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = TokenPolicyService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(TokenPolicyService {
            service: std::rc::Rc::new(service),
        }))
    }
}

/// [`TokenPolicy`] around one service.
pub struct TokenPolicyService<S> {
    service: std::rc::Rc<S>,
}

type Passed<B> = Result<ServiceResponse<B>, actix_web::Error>;
/// The unboxed answer: the inner service's future, or a refusal ready at once.
type Answer<F, B> = Either<Map<F, fn(Passed<B>) -> Answered<B>>, Ready<Answered<B>>>;
type Answered<B> = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

/// The policy's decision on `req` (see [`authorize`]).
fn decide(req: &ServiceRequest) -> Result<Option<RequestAuth>, Box<HttpResponse>> {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => {
            let websocket = is_websocket_upgrade(req);
            let peer = super::client_ip(req.request());
            authorize(state, req.path(), req.headers(), peer, websocket)
        }
        None => Err(Box::new(crate::ws::not_mounted())),
    }
}

impl<S, B> Service<ServiceRequest> for TokenPolicyService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Either<Answer<S::Future, B>, LocalBoxFuture<'static, Answered<B>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>();
        let unseen = state.and_then(|state| {
            let token = bearer_token(req.headers())?;
            state
                .tokens
                .needs_prefetch(token)
                .then(|| (state.clone(), token.to_owned()))
        });
        if let Some((state, token)) = unseen {
            let service = self.service.clone();
            return Either::Right(Box::pin(async move {
                state.tokens.prefetch(&token).await;
                match answer(&service, req) {
                    Either::Left(call) => call.await,
                    Either::Right(refused) => refused.await,
                }
            }));
        }
        Either::Left(answer(&self.service, req))
    }
}

/// Passes the request on, or answers it, as [`decide`] says.
fn answer<S, B>(service: &S, req: ServiceRequest) -> Answer<S::Future, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    match decide(&req) {
        Ok(auth) => {
            if let Some(auth) = auth {
                req.extensions_mut().insert(auth);
            }
            let passed: fn(Passed<B>) -> Answered<B> =
                |res| res.map(ServiceResponse::map_into_left_body);
            Either::Left(service.call(req).map(passed))
        }
        Err(refused) => Either::Right(ready(Ok(req.into_response(*refused).map_into_right_body()))),
    }
}
