//! The backend API over HTTP: `POST /introspect` and `/admin/…`, behind `admin.api_key`.
//!
//! Invariants: every path here passes [`require_admin_key`] first, whatever `[endpoints]` says
//! (the token-policy middleware leaves these paths alone, see [`is_admin_path`]): with no key
//! configured they answer 404, and only `Authorization: Bearer <admin.api_key>` gets further, so
//! a user's token never works here. The key is compared in constant time and never logged.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::{bearer_token, error_response, unauthorized_response};
use crate::admin;
use crate::error::Error;
use crate::state::AppState;

/// Largest form body `/introspect` reads (a token is 64 characters).
const FORM_LIMIT: usize = 4096;

type Reply = Result<HttpResponse, Error>;

fn ok(body: impl serde::Serialize) -> Reply {
    Ok(HttpResponse::Ok().json(body))
}

/// The paths of the backend API: they take the admin key, never a user's token, and send no
/// CORS headers (browsers have no business here).
pub fn is_admin_path(path: &str) -> bool {
    path == "/introspect" || path == "/admin" || path.starts_with("/admin/")
}

/// Mounts the backend API (always: with no key it answers 404 itself, so static files cannot
/// answer for it).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/introspect")
            .app_data(form_config())
            .wrap(from_fn(require_admin_key))
            .route(web::post().to(introspect)),
    )
    .service(
        web::scope("/admin")
            .wrap(from_fn(require_admin_key))
            .route("/users", web::get().to(find_user))
            .route("/users/{id}", web::get().to(user))
            .route("/users/{id}", web::delete().to(delete_user))
            .route("/users/{id}/revoke", web::post().to(revoke_user)),
    );
}

/// Lets through only requests that carry the admin key.
async fn require_admin_key<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let off = Error::NotFound("This server has no backend API.");
        let response = error_response(&off, StatusCode::NOT_FOUND);
        return Ok(req.into_response(response).map_into_right_body());
    };
    let key = &state.config.admin.api_key;
    let response = match bearer_token(req.headers()) {
        _ if !key.is_set() => {
            let off = Error::NotFound("This server has no backend API (admin.api_key is empty).");
            error_response(&off, StatusCode::NOT_FOUND)
        }
        Some(presented) if key.matches(presented) => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        presented => {
            tracing::warn!(
                target: "audit",
                event = "admin.refused",
                path = req.path(),
                peer = req.peer_addr().map(|a| a.ip().to_string()),
                key_presented = presented.is_some(),
            );
            unauthorized_response(
                &Error::Unauthorized(
                    "The backend API needs the admin key: Authorization: Bearer <admin.api_key>.",
                ),
                presented.is_some(),
            )
        }
    };
    Ok(req.into_response(response).map_into_right_body())
}

/// `/introspect` reads an `application/x-www-form-urlencoded` body (RFC 7662), with errors in
/// our format.
fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(FORM_LIMIT)
        .error_handler(|err, _req| {
            let message = format!(
                "The body must be a form (application/x-www-form-urlencoded) with \"token\": {err}."
            );
            actix_web::error::InternalError::from_response(
                err,
                error_response(&Error::BadRequest(message), StatusCode::BAD_REQUEST),
            )
            .into()
        })
}

/// RFC 7662 form parameters. Others, such as `token_type_hint`, are ignored (there is one kind
/// of token).
#[derive(Deserialize)]
pub struct IntrospectForm {
    token: String,
}

/// `POST /introspect`.
pub async fn introspect(state: web::Data<AppState>, form: web::Form<IntrospectForm>) -> Reply {
    let token = form.token.trim();
    state.tokens.prefetch(token).await;
    ok(admin::introspect(&state, token))
}

fn user_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| {
        Error::bad_request(format!(
            "{raw:?} is not a user id; user ids are UUIDs such as 67e55044-10b1-426f-9247-bb680e5fe0c8."
        ))
    })
}

#[derive(Deserialize)]
struct FindUser {
    username: String,
}

/// `GET /admin/users?username=…`.
pub async fn find_user(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let query = web::Query::<FindUser>::from_query(req.query_string())
        .map_err(|_| Error::bad_request("Name the user: GET /admin/users?username=<username>."))?;
    ok(admin::user_by_name(&state, &query.username).await?)
}

/// `GET /admin/users/{id}`.
pub async fn user(state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    ok(admin::user(&state, &user_id(&id)?).await?)
}

/// `POST /admin/users/{id}/revoke`.
pub async fn revoke_user(state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    ok(admin::revoke_user(&state, &user_id(&id)?).await?)
}

/// `DELETE /admin/users/{id}`.
pub async fn delete_user(state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    ok(admin::delete_user(&state, &user_id(&id)?).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_api_paths_are_recognised_and_nothing_else() {
        for path in ["/introspect", "/admin", "/admin/", "/admin/users/x/revoke"] {
            assert!(is_admin_path(path), "{path}");
        }
        for path in [
            "/",
            "/introspect/x",
            "/administrator",
            "/api/admin",
            "/api/me",
        ] {
            assert!(!is_admin_path(path), "{path}");
        }
    }
}
