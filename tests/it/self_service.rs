//! Account self-service: recovery codes, the display name, deleting one's own account, the
//! Signal API's inputs (`unknown_credential`, `rpId` and `userHandle`), and related origins.

use serde_json::{json, Value};
use wsauthn::softkey::{encode_b64url, SoftAuthenticator};

use crate::helpers::*;

/// `recovery.create` on a signed-in socket → the codes.
async fn make_codes(ws: &mut Ws) -> Vec<String> {
    let made = ws.request(json!({"type":"recovery.create","id":1})).await;
    assert_eq!(made["type"], "recovery.create.result", "{made}");
    made["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

async fn redeem(app: &TestApp, username: &str, code: &str) -> (Ws, Value) {
    let mut ws = app.ws("/ws").await;
    let reply = ws
        .request(json!({"type":"recovery.login","id":7,"username":username,"code":code}))
        .await;
    (ws, reply)
}

#[actix_web::test]
async fn a_recovery_code_signs_in_once_to_add_a_passkey_and_nothing_else() {
    let app = spawn_app().await;
    let mut lost = SoftAuthenticator::new();
    let (token, user_id, mut ws) = signed_up(&app, &mut lost, "alice").await;
    let none = ws.request(json!({"type":"recovery.status"})).await;
    assert_eq!(
        none,
        json!({"type":"recovery.status.result","remaining":0,"createdAt":null})
    );
    let codes = make_codes(&mut ws).await;
    assert_eq!(codes.len(), 10);
    let (status, _, body) = app.get("/api/recovery", Some(&token)).await;
    assert_eq!((status, body["remaining"].clone()), (200, json!(10)));
    // The store keeps hashes, never the codes.
    let kept = app
        .state
        .store
        .recovery_set(&user_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(kept.codes.iter().all(|c| c.hash.starts_with("$argon2id$")));
    assert!(!serde_json::to_string(&kept)
        .unwrap()
        .contains(&codes[0][5..]));

    // The device is lost: the code, typed sloppily, signs in to a session that may only add a
    // passkey.
    let sloppy = codes[0].to_lowercase().replace('-', " ");
    let (mut rec, granted) = redeem(&app, "ALICE", &sloppy).await;
    assert_eq!(granted["type"], "recovery.result", "{granted}");
    assert_eq!(granted["user"]["name"], "alice");
    assert_eq!(granted["remaining"], 9);
    let until = granted["until"].as_u64().unwrap();
    assert!(until > app.clock_secs() && until <= app.clock_secs() + 600);
    for refused in [
        json!({"type":"passkeys.list"}),
        json!({"type":"sessions.list"}),
        json!({"type":"refresh"}),
        json!({"type":"recovery.create"}),
        json!({"type":"account.delete","confirm":"alice"}),
        json!({"type":"register.begin","username":"mallory","token":true}),
    ] {
        assert_error(&rec.request(refused).await, "unauthorized");
    }
    // The code is spent.
    let (_, again) = redeem(&app, "alice", &codes[0]).await;
    assert_error(&again, "recovery_failed");

    // A new passkey: the session becomes an ordinary one, opened by it, with a token.
    let mut new_phone = SoftAuthenticator::new();
    let added = register(&mut rec, &mut new_phone, "alice", true).await;
    assert_eq!(added["verified"], "ok", "{added}");
    let new_token = added["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, me) = app.get("/api/me", Some(&new_token)).await;
    assert_eq!((status, me["user"]["name"].clone()), (200, json!("alice")));
    let list = rec.request(json!({"type":"passkeys.list"})).await;
    assert_eq!(list["passkeys"].as_array().unwrap().len(), 2, "{list}");
    let sessions = rec.request(json!({"type":"sessions.list"})).await;
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(
        current["credentialId"],
        json!(encode_b64url(&new_phone.credentials()[0].id))
    );
    assert_eq!(current["socketOnly"], false);
    // The new passkey signs in by itself.
    let mut fresh = app.ws("/ws").await;
    assert_eq!(
        login(&mut fresh, &mut new_phone, Some("alice"), false).await["verified"],
        "ok"
    );
    let status = rec.request(json!({"type":"recovery.status"})).await;
    assert_eq!(status["remaining"], 9);
    // A new set replaces the old one whole.
    let newer = make_codes(&mut rec).await;
    let (_, old) = redeem(&app, "alice", &codes[1]).await;
    assert_error(&old, "recovery_failed");
    let (_, ok) = redeem(&app, "alice", &newer[1]).await;
    assert_eq!(ok["type"], "recovery.result", "{ok}");
    app.stop().await;
}

#[actix_web::test]
async fn recovery_attempts_are_rate_limited_per_account_and_every_one_is_audited() {
    let events: std::sync::Arc<std::sync::Mutex<Vec<wsauthn::Event>>> = Default::default();
    let log = events.clone();
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_with_events(dir, move |e: &wsauthn::Event| {
        log.lock().unwrap().push(e.clone())
    })
    .await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "bea").await;
    let codes = make_codes(&mut ws).await;
    for _ in 0..wsauthn::recovery::ATTEMPTS_PER_ACCOUNT {
        let (_, wrong) = redeem(&app, "bea", "0000-0000-0000-0000").await;
        assert_error(&wrong, "recovery_failed");
    }
    // Even the right code is refused now: the account's allowance is spent.
    let (_, limited) = redeem(&app, "bea", &codes[0]).await;
    assert_error(&limited, "rate_limited");
    let (_, unknown) = redeem(&app, "nobody", &codes[0]).await;
    assert_error(&unknown, "recovery_failed");
    let seen = events.lock().unwrap().clone();
    let failed = seen
        .iter()
        .filter(|e| matches!(e, wsauthn::Event::RecoveryFailed { .. }))
        .count();
    assert_eq!(failed, wsauthn::recovery::ATTEMPTS_PER_ACCOUNT as usize + 2);
    assert!(seen
        .iter()
        .any(|e| matches!(e, wsauthn::Event::RecoveryCodesCreated { count: 10, .. })));
    // (The allowance refills over the window: `src/recovery.rs`
    // `attempts_are_limited_per_address_and_per_account`.)
    app.stop().await;
}

#[actix_web::test]
async fn the_display_name_changes_and_an_account_deletes_itself_over_the_socket_and_http() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, mut ws) = signed_up(&app, &mut key, "cleo").await;
    let updated = ws
        .request(json!({"type":"account.update","displayName":"Cleo 🌟"}))
        .await;
    assert_eq!(updated["user"]["displayName"], "Cleo 🌟", "{updated}");
    assert_eq!(updated["rpId"], "localhost");
    let handle = encode_b64url(uuid::Uuid::parse_str(&user_id).unwrap().as_bytes());
    assert_eq!(updated["userHandle"], json!(handle));
    let (_, _, me) = app.get("/api/me", Some(&token)).await;
    assert_eq!(
        me["user"]["displayName"], "Cleo 🌟",
        "sessions see the new name"
    );
    let (status, _, bad) = app
        .call(
            "PATCH",
            "/api/account",
            Some(&token),
            Some(json!({"displayName":"\u{202e}evil"})),
        )
        .await;
    assert_eq!((status, bad["code"].clone()), (400, json!("bad_request")));
    let list = ws.request(json!({"type":"passkeys.list"})).await;
    assert_eq!(list["rpId"], "localhost");
    assert_eq!(list["userHandle"], json!(handle));

    // Deleting needs the username typed again.
    let refused = ws
        .request(json!({"type":"account.delete","confirm":"cle"}))
        .await;
    assert_error(&refused, "bad_request");
    let mut chat = app.ws("/chat").await;
    chat.request(json!({"type":"auth","token":token})).await;
    let deleted = ws
        .request(json!({"type":"account.delete","id":3,"confirm":"Cleo"}))
        .await;
    assert_eq!(deleted["type"], "account.delete.result", "{deleted}");
    assert_eq!(deleted["id"], 3, "the request's id, not the account's");
    assert_eq!(deleted["userId"], json!(user_id));
    assert_eq!(deleted["username"], "cleo");
    assert_eq!(ws.expect_close().await, 4401);
    assert_eq!(chat.expect_close().await, 4401);
    let (status, _, _) = app.get("/api/me", Some(&token)).await;
    assert_eq!(status, 401);
    // The name is free again; over HTTP the same operation deletes the new account.
    let mut again = SoftAuthenticator::new();
    let (token2, _, _) = signed_up(&app, &mut again, "cleo").await;
    let (status, _, body) = app
        .call(
            "DELETE",
            "/api/account",
            Some(&token2),
            Some(json!({"confirm":"cleo"})),
        )
        .await;
    assert_eq!((status, body["username"].clone()), (200, json!("cleo")));
    assert!(app
        .state
        .store
        .user_by_name("cleo")
        .await
        .unwrap()
        .is_none());
    app.stop().await;
}

#[actix_web::test]
async fn a_sign_in_with_a_passkey_the_server_no_longer_has_says_unknown_credential() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, user_id, _) = signed_up(&app, &mut key, "dan").await;
    wsauthn::admin::delete_user(&app.state, &user_id.parse().unwrap())
        .await
        .unwrap();
    let mut ws = app.ws("/ws").await;
    let result = login(&mut ws, &mut key, None, true).await;
    assert_error(&result, "unknown_credential");
    // A passkey the server knows that fails for another reason says so, not unknown.
    let mut other = SoftAuthenticator::new();
    signed_up(&app, &mut other, "eve").await;
    let opts = login_begin(&mut ws, None, false).await;
    let mut credential = other.login(&opts["publicKey"], ORIGIN).unwrap();
    credential["response"]["signature"] = json!(encode_b64url(&[0u8; 70]));
    let reply = ws
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    assert_error(&reply, "verification_failed");
    app.stop().await;
}

#[actix_web::test]
async fn related_origins_are_served_as_well_known_and_accepted_in_ceremonies() {
    const RELATED: &str = "https://example.co.uk";
    let app = spawn_with(|c| c.webauthn.related_origins = vec![RELATED.into()]).await;
    let (status, _, body) = app.get("/.well-known/webauthn", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"origins":["http://localhost:8080", "https://example.co.uk"]})
    );
    // A page on the related origin opens the socket and runs both ceremonies.
    let mut ws = app.ws_with("/ws", &[("Origin", RELATED)]).await.unwrap();
    let mut key = SoftAuthenticator::new();
    let opts = register_begin(&mut ws, "fay", true).await;
    let credential = key.register(&opts["publicKey"], RELATED).unwrap();
    let done = ws
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(done["verified"], "ok", "{done}");
    let opts = login_begin(&mut ws, Some("fay"), false).await;
    let credential = key.login(&opts["publicKey"], RELATED).unwrap();
    let done = ws
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    assert_eq!(done["verified"], "ok", "{done}");
    // An origin in neither list is still refused.
    let mut elsewhere = app.ws("/ws").await;
    let opts = login_begin(&mut elsewhere, Some("fay"), false).await;
    let credential = key
        .login(&opts["publicKey"], "https://example.org")
        .unwrap();
    let refused = elsewhere
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    assert_error(&refused, "verification_failed");
    assert!(app
        .ws_with("/ws", &[("Origin", "https://example.org")])
        .await
        .is_err());
    app.stop().await;
}

#[actix_web::test]
async fn a_recovery_session_ends_when_its_ten_minutes_do_and_closes_its_socket() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws) = signed_up(&app, &mut key, "rhea").await;
    let codes = make_codes(&mut ws).await;
    let (mut rec, granted) = redeem(&app, "rhea", &codes[0]).await;
    assert_eq!(granted["type"], "recovery.result", "{granted}");
    let until = granted["until"].as_u64().unwrap();
    // The owner sees the recovery session, ending when the grant does, not a token's lifetime.
    let (_, _, listed) = app.get("/api/sessions", Some(&token)).await;
    let recovery = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["socketOnly"] == true)
        .unwrap_or_else(|| panic!("no socket-only session in {listed}"))
        .clone();
    let expires = recovery["expiresAt"].as_u64().unwrap();
    assert!(expires.abs_diff(until) <= 1, "{recovery} against {until}");

    // Ten minutes later, with no frame from the client, the session is gone and the socket
    // closed: the server's sweep (every few seconds) ends it, as it ends any expired session.
    app.clock.advance(std::time::Duration::from_secs(601));
    assert!(app.state.tokens.sweep() >= 1);
    assert_eq!(rec.expect_close().await, 4401);
    let (_, _, listed) = app.get("/api/sessions", Some(&token)).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
    app.stop().await;
}
