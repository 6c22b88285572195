//! WebSockets through the proxy: identity, the first `auth` frame, frames and close codes both
//! ways, revocation and expiry reaching both sockets, and an upstream that drops.

use std::time::{Duration, Instant};

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use super::http::session_of;
use super::*;

/// How soon after a revocation is acknowledged both sockets must be closed.
const CLOSED_WITHIN: Duration = Duration::from_millis(100);

/// Opens `/game/ws` with `Authorization: Bearer`.
pub async fn open_with_header(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> Ws {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("Origin", ORIGIN), ("Authorization", bearer.as_str())];
    headers.extend_from_slice(extra);
    app.ws_with("/game/ws?room=1", &headers)
        .await
        .expect("the upgrade is accepted")
}

#[actix_web::test]
async fn a_proxied_socket_relays_frames_both_ways_with_the_callers_identity_and_no_spoofs() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _ws) = signed_up(&app, &mut key, "una").await;
    let session = session_of(&app, &token).await;
    let spoofs = [
        ("X-Wsauthn-User-Id", "00000000-0000-0000-0000-000000000000"),
        ("X-Wsauthn-User-Name", "admin"),
        ("x-wsauthn-session-id", "forged"),
    ];
    let mut ws = open_with_header(&app, &token, &spoofs).await;
    let hello = ws.recv().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["path"], "/game/ws?room=1");
    let headers = &hello["headers"];
    assert_eq!(headers["x-wsauthn-user-id"], json!([user_id]));
    assert_eq!(headers["x-wsauthn-user-name"], json!(["una"]));
    assert_eq!(headers["x-wsauthn-session-id"], json!([session]));
    assert_eq!(headers.get("authorization"), None);
    assert_eq!(headers["origin"], json!([ORIGIN]));
    assert_eq!(headers["x-forwarded-for"], json!(["127.0.0.1"]));
    let opened = upstream.event("ws_open").await;
    assert_eq!(opened["headers"]["x-wsauthn-user-id"], json!([user_id]));

    ws.send_text("hi there").await;
    assert!(matches!(ws.next_event(true).await, Event::Raw(t) if t == "hi there"));
    ws.send_binary(vec![0, 1, 2, 255]).await;
    assert!(matches!(ws.next_event(true).await, Event::Binary(b) if b == [0, 1, 2, 255]));
}

#[actix_web::test]
async fn a_first_auth_frame_is_answered_by_wsauthn_and_never_reaches_the_upstream() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _ws) = signed_up(&app, &mut key, "vic").await;

    // A frame before auth: closed, and the upstream never hears of it.
    let mut early = app.ws("/game/ws").await;
    early.send_text("hello?").await;
    assert_eq!(early.expect_close().await, 4401);

    let mut ws = app.ws("/game/ws").await;
    let result = ws
        .request(json!({"type":"auth","id":7,"token":token}))
        .await;
    assert_eq!(result["type"], "auth.result", "{result}");
    assert_eq!(result["id"], 7);
    assert_eq!(result["user"]["id"], user_id.as_str());
    let hello = ws.recv().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["headers"]["x-wsauthn-user-id"], json!([user_id]));
    ws.send_text("count").await;
    let count = ws.recv().await;
    assert_eq!(
        count,
        json!({"type":"count","frames":1}),
        "the auth frame was not relayed"
    );
    // The only socket the upstream ever saw is this one.
    assert_eq!(upstream.event("ws_open").await["id"], 1);
}

#[actix_web::test]
async fn close_codes_cross_the_proxy_both_ways() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "wes").await;

    // The client closes with its code: the upstream is closed with the same.
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_close(4000, "bye").await;
    assert!(matches!(ws.next_event(true).await, Event::Close(Some(4000), r) if r == "bye"));
    assert_eq!(upstream.event("ws_closed").await["code"], 4000);

    // The upstream closes with its code: the client is closed with the same.
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_text("close:4321:game over").await;
    assert!(matches!(ws.next_event(true).await, Event::Close(Some(4321), r) if r == "game over"));
    assert_eq!(upstream.event("ws_closed").await["code"], 4321);
}

/// Waits for the client's close and the upstream's, and checks both came within
/// [`CLOSED_WITHIN`] of `since` (the moment the revocation was acknowledged).
async fn both_closed(what: &str, ws: &mut Ws, upstream: &mut Upstream, since: Instant) {
    assert_eq!(ws.expect_close().await, 4401, "{what}: the client's close");
    let client = since.elapsed();
    let closed = upstream.event("ws_closed").await;
    let upstream_at = since.elapsed();
    assert_eq!(closed["code"], 4401, "{what}: the upstream's close");
    assert!(
        client < CLOSED_WITHIN && upstream_at < CLOSED_WITHIN,
        "{what}: client closed after {client:?}, upstream after {upstream_at:?}"
    );
}

#[actix_web::test]
async fn revocation_closes_the_client_with_4401_and_the_upstream_socket_within_100_ms() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let key_admin = "k".repeat(40);
    let admin_key = key_admin.clone();
    let app = proxied(&upstream, move |c| {
        c.admin.api_key = wsauthn::admin::ApiKey::new(admin_key);
    })
    .await;

    // Logout on the ceremony socket.
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ceremony) = signed_up(&app, &mut key, "xena").await;
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    upstream.event("ws_open").await;
    let reply = ceremony.request(json!({"type":"logout","id":1})).await;
    assert_eq!(reply["type"], "logout.result");
    both_closed("logout", &mut ws, &mut upstream, Instant::now()).await;

    // sessions.revoke from another session of the same user.
    let mut other = app.ws("/ws").await;
    let signed_in = login(&mut other, &mut key, Some("xena"), true).await;
    let token = signed_in["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = session_of(&app, &token).await;
    let mut ws = app.ws("/game/ws").await;
    assert_eq!(
        ws.request(json!({"type":"auth","token":token})).await["type"],
        "auth.result"
    );
    ws.recv().await;
    upstream.event("ws_open").await;
    let mut revoker = app.ws("/ws").await;
    let revoker_in = login(&mut revoker, &mut key, Some("xena"), false).await;
    assert_eq!(revoker_in["verified"], "ok");
    let reply = revoker
        .request(json!({"type":"sessions.revoke","id":2,"sessionId":session}))
        .await;
    assert_eq!(reply["revoked"], 1, "{reply}");
    both_closed("sessions.revoke", &mut ws, &mut upstream, Instant::now()).await;

    // The backend API revokes the user.
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _ceremony) = signed_up(&app, &mut key, "yuri").await;
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    upstream.event("ws_open").await;
    let res = awc::Client::new()
        .post(app.url(&format!("/admin/users/{user_id}/revoke")))
        .bearer_auth(&key_admin)
        .send()
        .await
        .expect("admin revoke");
    assert_eq!(res.status(), 200);
    both_closed("admin revoke", &mut ws, &mut upstream, Instant::now()).await;
}

#[actix_web::test]
async fn a_proxied_socket_is_warned_before_its_token_expires_and_then_closed_with_its_upstream() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |c| {
        c.tokens.lifetime_secs = 2;
        c.tokens.expiry_warning_secs = 1;
    })
    .await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "zed").await;
    let mut ws = open_with_header(&app, &token, &[]).await;
    assert_eq!(ws.recv().await["type"], "hello");
    let warning = ws.recv().await;
    assert_eq!(warning["type"], "expiring", "{warning}");
    app.clock.advance(Duration::from_secs(3));
    assert_eq!(ws.expect_close().await, 4401);
    assert_eq!(upstream.event("ws_closed").await["code"], 4401);
}

#[actix_web::test]
async fn a_socket_whose_upstream_drops_is_closed_with_1011() {
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "drop").await;
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_text("drop").await;
    assert_eq!(ws.expect_close().await, 1011);
}
