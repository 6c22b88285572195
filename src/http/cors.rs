//! CORS for the origins in `webauthn.origins`, so pages served elsewhere can call the HTTP
//! endpoints with `fetch` (`web/wsauthn.js`'s `baseUrl`).
//!
//! Invariants: a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
//! answered here, before the token policy, so it never needs a token: 204 with the allowances for
//! a configured origin, 403 for any other. Every other response names a configured origin in
//! `Access-Control-Allow-Origin` (errors such as 401 included, so pages can read them) and no
//! other origin; every response says `Vary: Origin`. Credentials (cookies) are never allowed:
//! tokens travel in `Authorization`. The backend API's paths get no CORS at all.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::admin::is_admin_path;
use super::error_response;
use crate::error::Error;
use crate::state::AppState;

const ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE";
const ALLOW_HEADERS: &str = "authorization, content-type";
/// Response headers a page may read besides the CORS-safelisted ones.
const EXPOSE_HEADERS: &str = "WWW-Authenticate, X-Auth-User, X-Auth-User-Id";
/// How long a browser may cache a preflight's answer, in seconds.
const MAX_AGE: &str = "600";
const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// The request's `Origin` when it is one of the configured origins.
fn allowed_origin(headers: &HeaderMap, state: &AppState) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    state
        .origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn preflight_response(origin: Option<HeaderValue>) -> HttpResponse {
    let mut response = match origin {
        Some(origin) => {
            let mut ok = HttpResponse::NoContent().finish();
            let h = ok.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE),
            );
            ok
        }
        None => error_response(
            &Error::bad_request("This origin may not call this server from a browser."),
            StatusCode::FORBIDDEN,
        ),
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static(PREFLIGHT_VARY));
    response
}

/// The CORS middleware; wrapped outside the token policy (see `app.rs`).
pub async fn cors<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| !is_admin_path(req.path())) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let origin = allowed_origin(req.headers(), &state);
    if is_preflight(&req) {
        let response = preflight_response(origin);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    Ok(res.map_into_left_body())
}
