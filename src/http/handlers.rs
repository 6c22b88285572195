//! Handlers of the built-in HTTP endpoints.

use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::json;

use super::RequestAuth;
use crate::error::Error;

/// `GET /healthz`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /api/me`: who the bearer token belongs to.
pub async fn me(req: HttpRequest) -> Result<HttpResponse, Error> {
    match req.extensions().get::<RequestAuth>() {
        Some(RequestAuth::User(info)) => Ok(HttpResponse::Ok().json(json!({
            "user": &*info.user,
            "expiresAt": info.expires_at,
        }))),
        _ => Err(Error::Unauthorized("This endpoint needs a bearer token.")),
    }
}
