//! CORS on the HTTP endpoints, header by header, for the origins of `webauthn.origins` and for
//! others (the browser's view of it is `browser::cors`).

use awc::http::header::HeaderMap;
use wsauthn::softkey::SoftAuthenticator;

use crate::backend_api::ADMIN_KEY;
use crate::helpers::*;

/// A second configured origin: pages served there call the server with `baseUrl`.
const APP_ORIGIN: &str = "https://app.localhost:8443";
const FOREIGN_ORIGIN: &str = "https://evil.example";

async fn spawn_two_origins() -> TestApp {
    spawn_with(|c| {
        c.webauthn.origins.push(APP_ORIGIN.into());
        c.admin.api_key = wsauthn::admin::ApiKey::new(ADMIN_KEY);
    })
    .await
}

/// Sends `method path` with `headers`; returns the status and the response headers.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = awc::Client::new().request(method, app.url(path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let res = req.send().await.expect("http request");
    (res.status().as_u16(), res.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().expect("ascii header"))
}

fn varies_on_origin(headers: &HeaderMap) -> bool {
    headers.get_all("vary").any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("origin"))
        })
    })
}

/// A preflight as a browser sends it before `fetch(path, {method, headers: {Authorization}})`.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> (u16, HeaderMap) {
    send(
        app,
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type",
            ),
        ],
    )
    .await
}

#[actix_web::test]
async fn a_preflight_from_a_configured_origin_is_answered_without_a_token() {
    let app = spawn_two_origins().await;
    for origin in [ORIGIN, APP_ORIGIN] {
        for (path, method) in [
            ("/api/me", "GET"),
            ("/api/passkeys/AAAA", "DELETE"),
            ("/api/passkeys/AAAA", "PATCH"),
            ("/api/login/begin", "POST"),
            ("/auth/verify", "GET"),
        ] {
            let (status, h) = preflight(&app, path, origin, method).await;
            assert_eq!(status, 204, "{origin} {method} {path}");
            assert_eq!(header(&h, "access-control-allow-origin"), Some(origin));
            let methods = header(&h, "access-control-allow-methods").expect("methods");
            assert!(methods.contains(method), "{methods}");
            let allowed = header(&h, "access-control-allow-headers").expect("headers");
            assert!(allowed.contains("authorization") && allowed.contains("content-type"));
            assert!(header(&h, "access-control-max-age").is_some());
            assert!(
                header(&h, "access-control-allow-credentials").is_none(),
                "no cookies"
            );
            assert!(varies_on_origin(&h));
            assert!(
                header(&h, "www-authenticate").is_none(),
                "no token was needed"
            );
        }
    }
}

#[actix_web::test]
async fn responses_to_a_configured_origin_name_it_errors_included() {
    let app = spawn_two_origins().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "alice@example.com").await;
    let bearer = format!("Bearer {token}");
    for (path, authorization, expected) in [
        ("/api/me", Some(bearer.as_str()), 200),
        ("/api/me", None, 401),
        ("/healthz", None, 200),
    ] {
        let mut headers = vec![("Origin", APP_ORIGIN)];
        headers.extend(authorization.map(|a| ("Authorization", a)));
        let (status, h) = send(&app, "GET", path, &headers).await;
        assert_eq!(status, expected, "{path}");
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some(APP_ORIGIN),
            "{path}"
        );
        let exposed = header(&h, "access-control-expose-headers").expect("exposed headers");
        assert!(exposed.contains("WWW-Authenticate"), "{exposed}");
        assert!(varies_on_origin(&h), "{path}");
    }
    // Static files too: a page elsewhere can import the client module.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/web");
    let app = spawn_with(|c| {
        c.webauthn.origins.push(APP_ORIGIN.into());
        c.server.static_dir = dir.into();
    })
    .await;
    let (status, h) = send(&app, "GET", "/wsauthn.js", &[("Origin", APP_ORIGIN)]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP_ORIGIN));
}

#[actix_web::test]
async fn other_origins_get_no_cors_headers_and_their_preflights_are_refused() {
    let app = spawn_two_origins().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "alice@example.com").await;
    let bearer = format!("Bearer {token}");
    // Lookalikes of a configured origin are other origins.
    for origin in [
        FOREIGN_ORIGIN,
        "http://localhost:8081",
        "https://localhost:8080",
        "null",
    ] {
        let (status, h) = preflight(&app, "/api/me", origin, "GET").await;
        assert_eq!(status, 403, "{origin}");
        assert!(
            header(&h, "access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert!(
            header(&h, "access-control-allow-methods").is_none(),
            "{origin}"
        );
        let (status, h) = send(
            &app,
            "GET",
            "/api/me",
            &[("Origin", origin), ("Authorization", &bearer)],
        )
        .await;
        assert_eq!(
            status, 200,
            "the server answers; the browser keeps it from the page"
        );
        assert!(
            header(&h, "access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert!(
            varies_on_origin(&h),
            "a cache must not serve this to a configured origin"
        );
    }
    // Without an Origin (not a browser, or same-origin GET): no CORS headers either.
    let (_, h) = send(&app, "GET", "/healthz", &[]).await;
    assert!(header(&h, "access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn the_backend_api_sends_no_cors_headers_even_to_a_configured_origin() {
    let app = spawn_two_origins().await;
    let key = format!("Bearer {ADMIN_KEY}");
    for path in ["/introspect", "/admin/users?username=nobody"] {
        let (status, h) = preflight(&app, path, APP_ORIGIN, "POST").await;
        assert_ne!(status, 204, "{path}: no preflight is granted");
        assert!(
            header(&h, "access-control-allow-origin").is_none(),
            "{path}"
        );
        let (_, h) = send(
            &app,
            "GET",
            path,
            &[("Origin", APP_ORIGIN), ("Authorization", &key)],
        )
        .await;
        assert!(
            header(&h, "access-control-allow-origin").is_none(),
            "{path}"
        );
    }
}
