//! Durability: accounts and passkeys outlive the server, whether it stops cleanly or is killed
//! with SIGKILL the moment it has answered a registration.

use std::net::SocketAddr;

use serde_json::Value;
use wsauthn::endpoints::DisconnectHook;
use wsauthn::softkey::SoftAuthenticator;

pub(crate) use crate::binary::Server;
use crate::helpers::*;

/// Signs in on a fresh socket and asserts it worked; returns the `login.result`.
async fn assert_signs_in(
    ws: &mut Ws,
    key: &mut SoftAuthenticator,
    username: Option<&str>,
) -> Value {
    let result = login(ws, key, username, true).await;
    assert_eq!(result["type"], "login.result", "{username:?}: {result}");
    assert_eq!(result["verified"], "ok", "{result}");
    result
}

#[actix_web::test]
async fn restart_keeps_users_and_passkeys() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, alice_id, ws) = signed_up(&app, &mut key, "alice").await;
    ws.close().await;

    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}, None::<DisconnectHook>).await;

    let mut ws = app.ws("/ws").await;
    let by_name = assert_signs_in(&mut ws, &mut key, Some("alice")).await;
    assert_eq!(by_name["user"]["id"], alice_id.as_str());
    let mut ws = app.ws("/ws").await;
    let discoverable = assert_signs_in(&mut ws, &mut key, None).await;
    assert_eq!(discoverable["user"]["id"], alice_id.as_str());
    assert_eq!(discoverable["user"]["name"], "alice");
}

#[actix_web::test]
async fn passkey_added_to_an_account_survives_a_restart() {
    let app = spawn_app().await;
    let mut laptop = SoftAuthenticator::new();
    let mut phone = SoftAuthenticator::new();
    let (_, alice_id, mut ws) = signed_up(&app, &mut laptop, "alice").await;
    let added = register(&mut ws, &mut phone, "alice", false).await;
    assert_eq!(added["type"], "register.result", "{added}");
    assert_eq!(added["verified"], "ok", "{added}");
    assert_eq!(
        added["user"]["id"],
        alice_id.as_str(),
        "a passkey, not a new account"
    );
    ws.close().await;

    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}, None::<DisconnectHook>).await;

    let mut ws = app.ws("/ws").await;
    let opts = login_begin(&mut ws, Some("alice"), false).await;
    let allowed = opts["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 2, "both passkeys are offered: {opts}");
    for username in [Some("alice"), None] {
        for key in [&mut laptop, &mut phone] {
            let mut ws = app.ws("/ws").await;
            let result = assert_signs_in(&mut ws, key, username).await;
            assert_eq!(result["user"]["id"], alice_id.as_str());
        }
    }
}

#[actix_web::test]
async fn a_passkeys_signature_counter_survives_a_restart() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "carol").await;
    for username in [Some("carol"), None, Some("carol")] {
        assert_signs_in(&mut ws, &mut key, username).await;
    }
    ws.close().await;
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}, None::<DisconnectHook>).await;

    // Three sign-ins stored counter 3: a replayed lower counter is refused after the restart,
    // by name and usernameless alike, and the listing shows the passkey was used.
    let cred_id = key.credentials()[0].id.clone();
    key.set_counter(&cred_id, 2);
    for username in [Some("carol"), None] {
        let mut ws = app.ws("/ws").await;
        let result = login(&mut ws, &mut key, username, false).await;
        let message = assert_error(&result, "verification_failed");
        assert!(message.contains("counter"), "{username:?}: {message}");
        key.set_counter(&cred_id, 2);
    }
    key.set_counter(&cred_id, 20);
    let mut ws = app.ws("/ws").await;
    assert_signs_in(&mut ws, &mut key, Some("carol")).await;
    let record = app.state.store.credential(&cred_id).await.unwrap().unwrap();
    assert_eq!(
        webauthn_rs::prelude::Credential::from(record.passkey).counter,
        21
    );
    assert!(record.last_used_at.is_some());
}

#[actix_web::test]
async fn kill_9_right_after_register_result_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut users: Vec<(String, String, SoftAuthenticator)> = Vec::new();
    for round in 0..3 {
        let server = Server::start(dir.path());
        for (name, id, key) in &mut users {
            let mut ws = ws_at(server.addr, "/ws").await;
            let result = assert_signs_in(&mut ws, key, Some(name)).await;
            assert_eq!(&result["user"]["id"], id.as_str(), "{round}: {name}");
        }
        let name = format!("user{round}");
        let mut key = SoftAuthenticator::new();
        let mut ws = ws_at(server.addr, "/ws").await;
        let result = register(&mut ws, &mut key, &name, true).await;
        server.kill();
        assert_eq!(result["verified"], "ok", "{result}");
        let id = result["user"]["id"].as_str().unwrap().to_owned();
        users.push((name, id, key));
    }

    let server = Server::start(dir.path());
    for (name, id, key) in &mut users {
        let mut ws = ws_at(server.addr, "/ws").await;
        let by_name = assert_signs_in(&mut ws, key, Some(name)).await;
        assert_eq!(&by_name["user"]["id"], id.as_str(), "{name}");
        let mut ws = ws_at(server.addr, "/ws").await;
        let discoverable = assert_signs_in(&mut ws, key, None).await;
        assert_eq!(&discoverable["user"]["id"], id.as_str(), "{name}");
    }
}

/// Many registrations at once each flush before answering; sled's `flush_async` deadlocked
/// under exactly this load, so every one of them must come back.
#[actix_web::test]
async fn many_concurrent_registrations_all_complete() {
    let app = spawn_app().await;
    for round in 0..3 {
        let mut sockets = Vec::new();
        for i in 0..24 {
            let mut ws = app.ws("/ws").await;
            let opts = register_begin(&mut ws, &format!("crowd-{round}-{i}"), false).await;
            let mut key = SoftAuthenticator::new();
            let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
            let finish = serde_json::json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential});
            sockets.push((ws, finish));
        }
        let replies = futures_util::future::join_all(
            sockets
                .iter_mut()
                .map(|(ws, finish)| ws.request(finish.clone())),
        )
        .await;
        assert!(replies.iter().all(|r| r["verified"] == "ok"), "{replies:?}");
    }
    assert_eq!(app.state.store.user_count().await.unwrap(), 72);
}

/// An HTTP call to a server at `addr`: (status, JSON body).
pub(crate) async fn http_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: &str,
) -> (u16, Value) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut res = awc::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .insert_header(("Authorization", format!("Bearer {bearer}")))
        .send()
        .await
        .expect("http request");
    let body = res.body().await.expect("body");
    (
        res.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// `logout`, `DELETE /api/sessions/{id}` and `refresh` each answer only once the revocation is
/// on disk: SIGKILL the instant the answer arrives, restart, and the revoked token stays dead
/// (and the token refresh handed out works).
#[actix_web::test]
async fn kill_9_right_after_a_revocation_is_acknowledged_does_not_bring_the_token_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut key = SoftAuthenticator::new();
    let mut ws = ws_at(server.addr, "/ws").await;
    let result = register(&mut ws, &mut key, "alice", true).await;
    let logged_out = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let mut other = ws_at(server.addr, "/ws").await;
        let signed_in = assert_signs_in(&mut other, &mut key, Some("alice")).await;
        tokens.push(
            signed_in["authentication"]["token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (revoked, refreshed) = (tokens[0].clone(), tokens[1].clone());
    let (_, sessions) = http_at(server.addr, "GET", "/api/sessions", &revoked).await;
    let revoked_id = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 1. logout over the socket.
    let reply = ws.request(serde_json::json!({"type":"logout"})).await;
    server.kill();
    assert_eq!(reply["type"], "logout.result", "{reply}");
    let server = Server::start(dir.path());
    assert_eq!(
        http_at(server.addr, "GET", "/api/me", &logged_out).await.0,
        401
    );
    assert_eq!(
        http_at(server.addr, "GET", "/api/me", &revoked).await.0,
        200
    );

    // 2. one session revoked over HTTP by another.
    let path = format!("/api/sessions/{revoked_id}");
    let (status, body) = http_at(server.addr, "DELETE", &path, &refreshed).await;
    server.kill();
    assert_eq!(
        (status, &body["revoked"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    let server = Server::start(dir.path());
    assert_eq!(
        http_at(server.addr, "GET", "/api/me", &revoked).await.0,
        401
    );

    // 3. refresh: the old token is gone for good, the new one survives.
    let (status, body) = http_at(server.addr, "POST", "/api/sessions/refresh", &refreshed).await;
    server.kill();
    assert_eq!(status, 200, "{body}");
    let new_token = body["authentication"]["token"].as_str().unwrap().to_owned();
    let server = Server::start(dir.path());
    assert_eq!(
        http_at(server.addr, "GET", "/api/me", &refreshed).await.0,
        401
    );
    assert_eq!(
        http_at(server.addr, "GET", "/api/me", &new_token).await.0,
        200
    );
    drop(server);
}
