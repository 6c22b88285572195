//! The caller of an application's HTTP handler, as an extractor (the way actix-web-httpauth's
//! `BearerAuth` and actix-identity's `Identity` are): [`Authenticated`].
//!
//! Invariant: an `Authenticated` stands for a live session. It is what the policy middleware
//! validated, or, on a path whose policy lets requests through without one (or in an
//! application that does not wrap the middleware at all), a Bearer token the request carries
//! and that is valid; anything else is refused with the same `401` and `WWW-Authenticate` as a
//! protected path's. `Option<Authenticated>` makes it optional.
//!
//! On a store several nodes share, a token this node has not cached is first looked up in the
//! store (one query, `TokenTable::prefetch`), as the middleware does, so a token issued on
//! another node is taken here too. Only that request takes a boxed future: one the middleware
//! authorized, or whose token is cached (or known unknown), is answered at once.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{Either, LocalBoxFuture};
use uuid::Uuid;

use super::{bearer_token, RequestAuth};
use crate::error::Error;
use crate::protocol::UserView;
use crate::state::AppState;
use crate::tokens::TokenInfo;

/// Who is calling: the user, their session, and when its token expires.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user (`id`, `name`, `displayName`).
    pub user: Arc<UserView>,
    /// The session the token belongs to (what `sessions.revoke` and the backend API name).
    pub session: Uuid,
    /// When the token expires, Unix seconds, unless it is refreshed first.
    pub expires_at: u64,
}

impl From<&TokenInfo> for Authenticated {
    fn from(info: &TokenInfo) -> Self {
        Authenticated {
            user: info.user.clone(),
            session: info.session,
            expires_at: info.expires_at,
        }
    }
}

type Extracted = Result<Authenticated, Error>;

impl FromRequest for Authenticated {
    type Error = Error;
    type Future = Either<Ready<Extracted>, LocalBoxFuture<'static, Extracted>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        match unseen_token(req) {
            Some((state, token)) => Either::Right(Box::pin(async move {
                state.tokens.prefetch(&token).await;
                looked_up(&state, &token)
            })),
            None => Either::Left(ready(authenticated(req))),
        }
    }
}

/// The state and the Bearer token of a request the middleware has not authorized, when that
/// token must first be looked up in the shared store (see `TokenTable::needs_prefetch`).
fn unseen_token(req: &HttpRequest) -> Option<(web::Data<AppState>, String)> {
    if matches!(
        req.extensions().get::<RequestAuth>(),
        Some(RequestAuth::User(_))
    ) {
        return None;
    }
    let state = req.app_data::<web::Data<AppState>>()?;
    let token = bearer_token(req.headers())?;
    state
        .tokens
        .needs_prefetch(token)
        .then(|| (state.clone(), token.to_owned()))
}

/// The caller as the middleware left it, or as the request's Bearer token says, without
/// asking the store (the token is cached, or there is no shared store to ask).
fn authenticated(req: &HttpRequest) -> Result<Authenticated, Error> {
    if let Some(RequestAuth::User(info)) = req.extensions().get::<RequestAuth>() {
        return Ok(info.into());
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::internal("wsauthn's configuration is not mounted"))?;
    match bearer_token(req.headers()) {
        Some(token) => looked_up(state, token),
        None => Err(Error::Unauthorized("This endpoint needs a bearer token.")),
    }
}

fn looked_up(state: &AppState, token: &str) -> Result<Authenticated, Error> {
    state
        .tokens
        .lookup(token)
        .map(|info| (&info).into())
        .map_err(|_| Error::InvalidToken)
}
