//! Handlers of the built-in HTTP endpoints: thin adapters from HTTP to [`crate::api`].

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{caller, RequestAuth};
use crate::api;
use crate::endpoints::Transport;
use crate::error::Error;
use crate::protocol::{
    LoginBegin, LoginFinish, PasskeyDelete, PasskeyRename, RegisterBegin, RegisterFinish,
};
use crate::state::AppState;
use crate::tokens::TokenInfo;

type Reply = Result<HttpResponse, Error>;

fn ok(body: impl serde::Serialize) -> Reply {
    Ok(HttpResponse::Ok().json(body))
}

/// The token the policy middleware validated (protected paths only).
fn token_of(req: &HttpRequest) -> Result<TokenInfo, Error> {
    match req.extensions().get::<RequestAuth>() {
        Some(RequestAuth::User(info)) => Ok(info.clone()),
        _ => Err(Error::Unauthorized("This endpoint needs a bearer token.")),
    }
}

fn required_ceremony(id: Option<Uuid>) -> Result<Uuid, Error> {
    id.ok_or_else(|| Error::bad_request("\"ceremonyId\" is required over HTTP."))
}

/// `GET /healthz`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while the store takes writes and the server is not shutting down, else
/// 503 saying why (`crate::readiness`). `/healthz` stays liveness: it only says the process
/// answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let answer = match state.is_shutting_down() {
        true => Err(crate::readiness::NotReady::ShuttingDown),
        // A node of a cluster that cannot confirm tokens refuses them all: not ready either.
        false if !state.tokens.confirmed() => {
            Err(crate::readiness::NotReady::RevocationsUnconfirmed)
        }
        false => {
            let dir = &state.config.server.data_dir;
            state
                .readiness
                .store(&state.store, dir, &*state.clock)
                .await
        }
    };
    let mut response = match answer {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(why) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "unavailable",
            "reason": why.code(),
            "message": why.message(),
        })),
    };
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /api/me`: who the bearer token belongs to.
pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    ok(api::whoami(&state, &token_of(&req)?).await)
}

/// `GET /auth/verify`: forward authentication for nginx `auth_request` and Traefik
/// `forwardAuth`. 200 with the user in `X-Auth-User` / `X-Auth-User-Id`, else 401.
pub async fn forward_auth(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let info = token_of(&req)?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Auth-User", info.user.name.as_str()))
        .insert_header(("X-Auth-User-Id", info.user.id.to_string()))
        .json(api::whoami(&state, &info).await))
}

pub async fn register_begin(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterBegin>,
) -> Reply {
    let caller = caller(&req, &state).await?;
    ok(api::register_begin(&state, &caller, Transport::Http, &body).await?)
}

pub async fn register_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterFinish>,
) -> Reply {
    let caller = caller(&req, &state).await?;
    let ceremony = required_ceremony(body.ceremony_id)?;
    ok(
        api::register_finish(&state, &caller, Transport::Http, &ceremony, &body)
            .await?
            .0,
    )
}

pub async fn login_begin(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBegin>,
) -> Reply {
    let caller = caller(&req, &state).await?;
    ok(api::login_begin(&state, &caller, Transport::Http, &body).await?)
}

pub async fn login_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginFinish>,
) -> Reply {
    let caller = caller(&req, &state).await?;
    let ceremony = required_ceremony(body.ceremony_id)?;
    ok(
        api::login_finish(&state, &caller, Transport::Http, &ceremony, &body)
            .await?
            .0,
    )
}

pub async fn passkeys_list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    ok(api::passkeys_list(&state, &caller(&req, &state).await?).await?)
}

#[derive(Deserialize)]
pub struct Label {
    label: String,
}

pub async fn passkey_rename(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Label>,
) -> Reply {
    let rename = PasskeyRename {
        credential_id: id.into_inner(),
        label: body.into_inner().label,
    };
    ok(api::passkey_rename(&state, &caller(&req, &state).await?, &rename).await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    #[serde(default)]
    allow_last: bool,
    #[serde(default)]
    keep_sessions: bool,
}

pub async fn passkey_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Reply {
    let delete = PasskeyDelete {
        credential_id: id.into_inner(),
        allow_last: query.allow_last,
        keep_sessions: query.keep_sessions,
    };
    ok(api::passkey_delete(&state, &caller(&req, &state).await?, &delete).await?)
}

pub async fn sessions_list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    ok(api::sessions_list(&state, &caller(&req, &state).await?).await?)
}

pub async fn session_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Reply {
    let session =
        Uuid::parse_str(&id).map_err(|_| Error::NotFound("No session of yours has this id."))?;
    ok(api::session_revoke(&state, &caller(&req, &state).await?, &session).await?)
}

pub async fn sessions_revoke_others(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    ok(api::sessions_revoke_others(&state, &caller(&req, &state).await?).await?)
}

/// `POST /api/sessions/refresh`: a new token for the same session; the old one stops working.
pub async fn refresh(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    ok(api::refresh(&state, &caller(&req, &state).await?).await?.0)
}
