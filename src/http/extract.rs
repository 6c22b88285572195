//! The caller of an application's HTTP handler, as an extractor (the way actix-web-httpauth's
//! `BearerAuth` and actix-identity's `Identity` are): [`Authenticated`].
//!
//! Invariant: an `Authenticated` stands for a live session. It is what the policy middleware
//! validated, or, on a path whose policy lets requests through without one, a Bearer token
//! the request carries and that is valid; anything else is refused with the same `401` and
//! `WWW-Authenticate` as a protected path's. `Option<Authenticated>` makes it optional.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
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

impl FromRequest for Authenticated {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticated(req))
    }
}

fn authenticated(req: &HttpRequest) -> Result<Authenticated, Error> {
    if let Some(RequestAuth::User(info)) = req.extensions().get::<RequestAuth>() {
        return Ok(info.into());
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::internal("wsauthn's configuration is not mounted"))?;
    match bearer_token(req.headers()) {
        Some(token) => state
            .tokens
            .lookup(token)
            .map(|info| (&info).into())
            .map_err(|_| Error::InvalidToken),
        None => Err(Error::Unauthorized("This endpoint needs a bearer token.")),
    }
}
