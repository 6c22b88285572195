//! HTTP handlers for account self-service (`/api/account`, `/api/recovery`) and the WebAuthn
//! related-origins document (`/.well-known/webauthn`): thin adapters to [`crate::account`] and
//! [`crate::recovery`].

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::caller;
use crate::error::Error;
use crate::protocol::{AccountDelete, AccountUpdate};
use crate::state::AppState;

type Reply = Result<HttpResponse, Error>;

/// `PATCH /api/account` with `{"displayName":"…"}`.
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AccountUpdate>,
) -> Reply {
    let caller = caller(&req, &state).await?;
    let updated = crate::account::update(&state, &caller, &body.display_name).await?;
    Ok(HttpResponse::Ok().json(updated))
}

/// `DELETE /api/account` with `{"confirm":"<username>"}`.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AccountDelete>,
) -> Reply {
    let caller = caller(&req, &state).await?;
    let deleted = crate::account::delete(&state, &caller, &body.confirm).await?;
    Ok(HttpResponse::Ok().json(deleted))
}

/// `GET /api/recovery`: how many recovery codes are left.
pub async fn recovery_status(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let caller = caller(&req, &state).await?;
    Ok(HttpResponse::Ok().json(crate::recovery::status(&state, &caller).await?))
}

/// `POST /api/recovery`: a new set of recovery codes, shown this once.
pub async fn recovery_create(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let caller = caller(&req, &state).await?;
    let codes = crate::recovery::create(&state, &caller).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(codes))
}

/// `GET /.well-known/webauthn`: the origins that may use this rp id, for browsers' related
/// origin requests. Public by nature, so readable from any page (`Access-Control-Allow-Origin:
/// *`), which also lets a page on a refused origin learn where to go.
pub async fn well_known(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cache-Control", "max-age=300"))
        .json(json!({"origins": *state.origins}))
}

/// Mounts these routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/account", web::patch().to(update))
        .route("/api/account", web::delete().to(delete))
        .route("/api/recovery", web::get().to(recovery_status))
        .route("/api/recovery", web::post().to(recovery_create))
        .route("/.well-known/webauthn", web::get().to(well_known));
}
