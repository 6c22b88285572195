//! HTTP through the proxy: what reaches the upstream, what comes back, streaming, and an
//! upstream that is down.

use std::io::{Read, Write};
use std::net::TcpStream;

use futures_util::StreamExt;
use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

use super::*;

/// The session id of `token`, as `GET /api/sessions` names it.
pub async fn session_of(app: &TestApp, token: &str) -> String {
    let sessions = app.get("/api/sessions", Some(token)).await.2;
    let current = sessions["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session");
    current["id"].as_str().expect("id").to_owned()
}

fn header<'a>(seen: &'a Value, name: &str) -> Vec<&'a str> {
    seen["headers"][name]
        .as_array()
        .map(|v| v.iter().map(|s| s.as_str().unwrap()).collect())
        .unwrap_or_default()
}

#[actix_web::test]
async fn a_proxied_request_reaches_the_upstream_unchanged_with_the_callers_identity_and_no_spoofs()
{
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _ws) = signed_up(&app, &mut key, "Zoë@example.com").await;
    let session = session_of(&app, &token).await;

    let mut res = awc::Client::new()
        .post(app.url("/game/things/%7Bx%7D?b=2&a=%20&a=1"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("X-Custom", "kept"))
        .insert_header(("X-Wsauthn-User-Id", "00000000-0000-0000-0000-000000000000"))
        .insert_header(("x-wsauthn-user-name", "admin"))
        .insert_header(("X-WSAUTHN-SESSION-ID", "forged"))
        .insert_header(("X-Wsauthn-Role", "admin"))
        .send_body("hello")
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.expect("json");
    assert_eq!(seen["method"], "POST");
    assert_eq!(
        seen["path"], "/game/things/%7Bx%7D?b=2&a=%20&a=1",
        "path and query unchanged"
    );
    assert_eq!(seen["bodyLength"], 5);
    assert_eq!(header(&seen, "x-custom"), ["kept"]);
    assert_eq!(header(&seen, "x-wsauthn-user-id"), [user_id.as_str()]);
    assert_eq!(header(&seen, "x-wsauthn-session-id"), [session.as_str()]);
    // The name as stored (UTF-8 bytes in the header; aiohttp reads them as UTF-8).
    assert_eq!(header(&seen, "x-wsauthn-user-name"), ["Zoë@example.com"]);
    assert!(header(&seen, "x-wsauthn-role").is_empty(), "{seen}");
    assert!(header(&seen, "authorization").is_empty(), "{seen}");
    assert_eq!(header(&seen, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(header(&seen, "x-forwarded-proto"), ["http"]);
    assert_eq!(upstream.event("http").await["path"], seen["path"]);
}

#[actix_web::test]
async fn without_a_valid_token_a_proxied_request_gets_401_and_never_reaches_the_upstream() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let (status, www, body) = app.get("/game", None).await;
    assert_eq!(
        (status, www.as_deref()),
        (401, Some(r#"Bearer realm="wsauthn""#))
    );
    assert_eq!(body["code"], "unauthorized");
    let (status, www, _) = app.get("/game/x", Some(&"0".repeat(64))).await;
    assert_eq!(
        (status, www.as_deref()),
        (
            401,
            Some(r#"Bearer realm="wsauthn", error="invalid_token""#)
        )
    );
    let refused = app
        .ws_with(
            "/game/ws",
            &[("Origin", ORIGIN), ("Authorization", "Bearer nope")],
        )
        .await;
    assert!(matches!(
        refused,
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) if s == 401
    ));
    // The first thing the upstream ever sees is a request with a valid token.
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "ivo").await;
    assert_eq!(app.get("/game/after", Some(&token)).await.0, 200);
    assert_eq!(upstream.event("http").await["path"], "/game/after");
}

#[actix_web::test]
async fn the_upstreams_status_headers_body_and_redirects_come_back_as_they_are() {
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "tea").await;
    let client = awc::Client::builder().disable_redirects().finish();
    let mut res = client
        .get(app.url("/game/status/418"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 418);
    assert_eq!(res.headers().get("x-upstream").unwrap(), "yes");
    let cookies: Vec<_> = res.headers().get_all("set-cookie").collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(res.body().await.unwrap(), "teapot");
    let res = client
        .get(app.url("/game/redirect"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(
        res.status(),
        302,
        "the client follows redirects, not the proxy"
    );
    assert_eq!(res.headers().get("location").unwrap(), "/elsewhere");
}

#[actix_web::test]
async fn bodies_stream_through_the_proxy_both_ways_without_being_buffered_whole() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "drip").await;

    // The upstream's first chunk arrives while it still holds back the last.
    let mut res = awc::Client::new()
        .get(app.url("/game/drip"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let first = tokio::time::timeout(PATIENCE, res.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), "first\n");
    upstream.control("release").await;
    let rest = res.body().await.expect("the rest");
    assert_eq!(rest, "last\n");

    // A chunked upload: its first 16 KiB reach the upstream before the client sends the rest.
    // (The client toward the upstream, awc, sends a body in pieces of its 8 KiB write buffer.)
    let addr = app.addr;
    let first = "a".repeat(16_384);
    let head = format!(
        "POST /game/upload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n",
        first.len()
    );
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    let mut received = 0;
    while received < first.len() {
        received = upstream.event("chunk").await["received"].as_u64().unwrap() as usize;
    }
    tcp.write_all(b"3\r\nfgh\r\n0\r\n\r\n").unwrap();
    let response = actix_web::rt::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).ends_with("aaafgh") {
            let n = tcp.read(&mut chunk).unwrap();
            assert!(n > 0, "EOF: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("content-length: 16387\r\n"), "{response}");
}

#[actix_web::test]
async fn an_upstream_that_is_down_gets_502_and_its_sockets_1011() {
    let app = spawn_with(|c| proxy_game_to(c, &format!("http://127.0.0.1:{}", dead_port()))).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "down").await;
    let (status, _, body) = app.get("/game/x", Some(&token)).await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "upstream_unavailable");
    assert!(
        !body["message"].as_str().unwrap().contains("127.0.0.1"),
        "no detail leaks: {body}"
    );
    // Authenticated by its upgrade: refused before the upgrade.
    let bearer = format!("Bearer {token}");
    let refused = app
        .ws_with(
            "/game/ws",
            &[("Origin", ORIGIN), ("Authorization", &bearer)],
        )
        .await;
    assert!(matches!(
        refused,
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) if s == 502
    ));
    // Authenticated by its first frame: answered, then closed with 1011 as the upstream socket
    // cannot open.
    let mut ws = app.ws("/game/ws").await;
    let result = ws
        .request(json!({"type":"auth","id":1,"token":token}))
        .await;
    assert_eq!(result["type"], "auth.result");
    assert_eq!(ws.expect_close().await, 1011);
}
