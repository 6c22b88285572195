//! Proxy mode: wsauthn in front of a backend in any language. Each `[[proxy]]` table sends a
//! path prefix (`/game` and `/game/…`) to an upstream: HTTP requests through `http.rs`,
//! WebSocket upgrades through the socket loop with the relay handler of `socket.rs`, both under
//! the path's `[endpoints]` policy and the unauthorized hook, as built-in endpoints are.
//!
//! Invariants: the upstream learns who is calling only from the `X-Wsauthn-User-Id`,
//! `X-Wsauthn-User-Name` and `X-Wsauthn-Session-Id` headers wsauthn sets (`headers.rs`); a
//! proxied socket closes when its session ends (4401) and its upstream socket with it.

mod config;
mod headers;
mod http;
mod socket;

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

pub use self::config::{upstream_url, validate, ProxyConfig, ProxyProblem, BUILT_IN};
use self::headers::Origin;
pub use self::headers::{SESSION_ID, USER_ID, USER_NAME};
pub use self::http::Upstreams;
use self::socket::{Dial, Relay};
use crate::state::AppState;

/// Mounts every `[[proxy]]` path, and the per-worker HTTP client toward the upstreams.
pub fn routes(cfg: &mut web::ServiceConfig, state: &AppState) {
    if state.config.proxy.is_empty() {
        return;
    }
    cfg.app_data(Upstreams::new());
    for entry in &state.config.proxy {
        // Validated at start (`config.rs`); an entry that is not an origin is skipped rather
        // than mounted wrong.
        let Ok(url) = upstream_url(&entry.upstream) else {
            continue;
        };
        let upstream: Arc<str> = Arc::from(url.as_str().trim_end_matches('/'));
        let to = move |req: HttpRequest, body: web::Payload| {
            let upstream = upstream.clone();
            async move { proxied(req, body, &upstream).await }
        };
        cfg.service(web::resource(entry.path.as_str()).route(web::route().to(to.clone())));
        let under = format!("{}/{{tail:.*}}", entry.path);
        cfg.service(web::resource(under).route(web::route().to(to)));
    }
}

fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn proxied(req: HttpRequest, body: web::Payload, upstream: &str) -> HttpResponse {
    let (Some(state), Some(client)) = (
        req.app_data::<web::Data<AppState>>().cloned(),
        req.app_data::<Upstreams>().map(|u| u.0.clone()),
    ) else {
        return crate::ws::not_mounted();
    };
    if !is_upgrade(&req) {
        return http::forward(req, body, upstream, &client).await;
    }
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let scheme = req.connection_info().scheme().to_owned();
    let from = Origin {
        peer: req.peer_addr().map(|a| a.ip()),
        scheme: &scheme,
    };
    let dial = Dial {
        client,
        url: format!("{upstream}{path}"),
        headers: headers::to_upstream(req.headers(), from, true),
    };
    let relay = Relay::new(dial, state.config.websocket.max_frame_bytes);
    let path = Cow::Owned(req.path().to_owned());
    crate::ws::upgrade(req, body, &state, path, relay, None).await
}
