//! Proxy mode: wsauthn in front of a backend in any language. Each `[[proxy]]` table sends a
//! path prefix (`/game` and `/game/…`) to an upstream: HTTP requests through `http.rs`,
//! WebSocket upgrades through the socket loop with the relay handler of `socket.rs`, both under
//! the path's `[endpoints]` policy and the unauthorized hook, as built-in endpoints are.
//!
//! Invariants: the upstream learns who is calling only from the `X-Wsauthn-User-Id`,
//! `X-Wsauthn-User-Name` and `X-Wsauthn-Session-Id` headers wsauthn sets (`headers.rs`); a
//! proxied socket closes when its session ends (4401) and its upstream socket with it.

mod config;
mod connect;
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

/// An upstream's host and port, and the URL awc is given for it: always `http` (an `https`
/// one's TLS is the connector's, `connect.rs`).
fn target(url: &url::Url) -> Option<((String, u16), String)> {
    let host = url.host_str()?.to_owned();
    let port = url.port_or_known_default()?;
    let base = format!("http://{host}:{port}");
    Some(((host, port), base))
}

/// Mounts every `[[proxy]]` path, and the per-worker HTTP client toward the upstreams.
pub fn routes(cfg: &mut web::ServiceConfig, state: &AppState) {
    if state.config.proxy.is_empty() {
        return;
    }
    // Validated at start (`config.rs`); an entry that is not an origin is skipped rather than
    // mounted wrong.
    let targets: Vec<_> = state
        .config
        .proxy
        .iter()
        .filter_map(|entry| {
            let url = upstream_url(&entry.upstream).ok()?;
            let (authority, base) = target(&url)?;
            Some((entry, url.scheme() == "https", authority, base))
        })
        .collect();
    let secure = targets
        .iter()
        .filter(|(_, tls, _, _)| *tls)
        .map(|(_, _, authority, _)| authority.clone());
    match Upstreams::new(secure) {
        Ok(upstreams) => {
            cfg.app_data(upstreams);
        }
        // Without a client every proxied request answers as if wsauthn were not mounted.
        Err(e) => tracing::error!(error = %e, "cannot set up TLS toward the upstreams"),
    }
    for (entry, _, _, base) in targets {
        let upstream: Arc<str> = Arc::from(base);
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
