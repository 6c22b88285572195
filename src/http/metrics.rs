//! `GET /metrics`, and the middleware that counts HTTP responses and times WebSocket upgrades.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{bearer_token, error_response, is_websocket_upgrade, unauthorized_response};
use crate::error::Error;
use crate::state::AppState;

/// Counts every response by status class, and times upgrades until their 101.
pub async fn observe<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let upgrade = is_websocket_upgrade(&req);
    let started = Instant::now();
    let response = next.call(req).await?;
    let status = response.status();
    state.metrics.http_response(status.as_u16());
    if upgrade && status == StatusCode::SWITCHING_PROTOCOLS {
        state.metrics.connect().observe(started.elapsed());
    }
    Ok(response)
}

/// `GET /metrics`: 404 unless `metrics.enabled`; the admin key when one is set.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !state.config.metrics.enabled {
        let off = Error::NotFound("Metrics are off on this server (metrics.enabled).");
        return error_response(&off, StatusCode::NOT_FOUND);
    }
    let key = &state.config.admin.api_key;
    if key.is_set() {
        match bearer_token(req.headers()) {
            Some(presented) if key.matches(presented) => {}
            presented => {
                return unauthorized_response(
                    &Error::Unauthorized(
                        "/metrics needs the admin key: Authorization: Bearer <admin.api_key>.",
                    ),
                    presented.is_some(),
                )
            }
        }
    }
    match state.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(e) => error_response(
            &Error::internal(format!("metrics: {e}")),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}
