//! Accounts: passkey management, the HTTP mirror of the ceremonies, sessions (list, revoke,
//! refresh, expiry warning, restart), forward auth, and security events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wsauthn::events::{EndReason, Event};
use wsauthn::softkey::{encode_b64url, SoftAuthenticator};
use wsauthn::ErrorCode;

use crate::helpers::*;

/// Adds a passkey from `key` to the account the socket is signed in as.
async fn add_passkey(ws: &mut Ws, key: &mut SoftAuthenticator, username: &str) -> Value {
    register(ws, key, username, false).await
}

#[actix_web::test]
async fn passkeys_are_listed_renamed_and_deleted_on_a_signed_in_socket() {
    let app = spawn_app().await;
    let mut laptop = SoftAuthenticator::new();
    let mut phone = SoftAuthenticator::new();
    phone.backup_eligible = true;
    phone.backup_state = true;
    let (_, _, mut ws) = signed_up(&app, &mut laptop, "alice").await;
    assert_eq!(
        add_passkey(&mut ws, &mut phone, "alice").await["verified"],
        "ok"
    );
    login(&mut ws, &mut laptop, Some("alice"), false).await;

    let list = ws.request(json!({"type":"passkeys.list","id":1})).await;
    assert_eq!(list["type"], "passkeys.list.result", "{list}");
    let passkeys = list["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 2);
    let laptop_id = encode_b64url(&laptop.credentials()[0].id);
    let phone_id = encode_b64url(&phone.credentials()[0].id);
    let by_id = |id: &str| passkeys.iter().find(|p| p["id"] == id).unwrap().clone();
    let (l, p) = (by_id(&laptop_id), by_id(&phone_id));
    assert_eq!(l["label"], "Passkey");
    assert!(l["createdAt"].as_u64().unwrap() > 0);
    assert!(l["lastUsedAt"].as_u64().is_some(), "signed in with it");
    assert_eq!(p["lastUsedAt"], Value::Null);
    assert_eq!(
        (l["backupEligible"].as_bool(), l["backedUp"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(
        (p["backupEligible"].as_bool(), p["backedUp"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(l["aaguid"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(l["authenticator"], Value::Null);

    let renamed = ws
        .request(
            json!({"type":"passkeys.rename","credentialId":laptop_id,"label":"  Work laptop "}),
        )
        .await;
    assert_eq!(renamed["passkey"]["label"], "Work laptop", "{renamed}");
    let bad = ws
        .request(json!({"type":"passkeys.rename","credentialId":laptop_id,"label":""}))
        .await;
    assert_error(&bad, "bad_request");

    let deleted = ws
        .request(json!({"type":"passkeys.delete","credentialId":phone_id}))
        .await;
    assert_eq!(
        deleted,
        json!({"type":"passkeys.delete.result","credentialId":phone_id,"sessionsEnded":0})
    );
    let last = ws
        .request(json!({"type":"passkeys.delete","credentialId":laptop_id}))
        .await;
    assert!(assert_error(&last, "last_passkey").contains("allowLast"));
    let list = ws.request(json!({"type":"passkeys.list"})).await;
    assert_eq!(list["passkeys"][0]["label"], "Work laptop");

    // The deleted passkey no longer signs in.
    let mut other = app.ws("/ws").await;
    let opts = login_begin(&mut other, None, false).await;
    let credential = phone.login(&opts["publicKey"], ORIGIN).unwrap();
    let result = other
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    // Said in so many words, so the browser can be told to forget it (Signal API).
    assert_error(&result, "unknown_credential");

    let gone = ws
        .request(json!({"type":"passkeys.delete","credentialId":laptop_id,"allowLast":true}))
        .await;
    assert_eq!(gone["type"], "passkeys.delete.result", "{gone}");
    // This socket signed in with the laptop passkey (socket-only), and so did the sign-up's
    // token: both sessions ended with it, and the socket closes.
    assert_eq!(gone["sessionsEnded"], 2, "{gone}");
    assert_eq!(ws.expect_close().await, 4401);
    let alice = app
        .state
        .store
        .user_by_name("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(app
        .state
        .store
        .credentials_of(&alice.id)
        .await
        .unwrap()
        .is_empty());
}

#[actix_web::test]
async fn passkey_management_needs_a_signed_in_socket_and_only_touches_your_own() {
    let app = spawn_app().await;
    let (mut ka, mut kb) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    signed_up(&app, &mut ka, "ann").await;
    let (_, _, mut bob) = signed_up(&app, &mut kb, "bob").await;
    let anns = encode_b64url(&ka.credentials()[0].id);
    let mut anonymous = app.ws("/ws").await;
    assert_error(
        &anonymous.request(json!({"type":"passkeys.list"})).await,
        "unauthorized",
    );
    assert_error(
        &anonymous.request(json!({"type":"sessions.list"})).await,
        "unauthorized",
    );
    let r = bob
        .request(json!({"type":"passkeys.rename","credentialId":anns,"label":"mine now"}))
        .await;
    assert_error(&r, "not_found");
    let r = bob
        .request(json!({"type":"passkeys.delete","credentialId":anns,"allowLast":true}))
        .await;
    assert_error(&r, "not_found");
    let r = bob
        .request(json!({"type":"passkeys.delete","credentialId":"!!","allowLast":true}))
        .await;
    assert_error(&r, "bad_request");
    assert!(app
        .state
        .store
        .credential(&ka.credentials()[0].id)
        .await
        .unwrap()
        .is_some());
}

#[actix_web::test]
async fn an_account_holds_at_most_the_configured_number_of_passkeys() {
    let app = spawn_with(|c| c.limits.max_passkeys_per_user = 2).await;
    let mut keys: Vec<_> = (0..3).map(|_| SoftAuthenticator::new()).collect();
    let (_, _, mut ws) = signed_up(&app, &mut keys[0], "carl").await;
    assert_eq!(
        add_passkey(&mut ws, &mut keys[1], "carl").await["verified"],
        "ok"
    );
    let reply = ws
        .request(json!({"type":"register.begin","username":"carl"}))
        .await;
    assert!(assert_error(&reply, "passkey_limit").contains('2'));
}

#[actix_web::test]
async fn passkeys_are_managed_over_http_with_a_bearer_token() {
    let app = spawn_app().await;
    let (mut laptop, mut phone) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (token, _, mut ws) = signed_up(&app, &mut laptop, "dana").await;
    add_passkey(&mut ws, &mut phone, "dana").await;
    let (status, _, body) = app.get("/api/passkeys", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["passkeys"].as_array().unwrap().len(), 2);
    assert_eq!(app.get("/api/passkeys", None).await.0, 401);

    let phone_id = encode_b64url(&phone.credentials()[0].id);
    let path = format!("/api/passkeys/{phone_id}");
    let (status, _, body) = app
        .call("PATCH", &path, Some(&token), Some(json!({"label":"Phone"})))
        .await;
    assert_eq!(
        (status, body["passkey"]["label"].as_str()),
        (200, Some("Phone"))
    );
    let (status, _, body) = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(
        (status, body["credentialId"].as_str()),
        (200, Some(phone_id.as_str()))
    );
    let (status, _, body) = app.call("DELETE", &path, Some(&token), None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let laptop_path = format!(
        "/api/passkeys/{}",
        encode_b64url(&laptop.credentials()[0].id)
    );
    let (status, _, body) = app.call("DELETE", &laptop_path, Some(&token), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("last_passkey")));
    let allowed = format!("{laptop_path}?allowLast=true");
    assert_eq!(
        app.call("DELETE", &allowed, Some(&token), None).await.0,
        200
    );
}

#[actix_web::test]
async fn the_ceremonies_run_over_http_with_the_same_json_and_errors() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (status, _, opts) = app
        .call(
            "POST",
            "/api/register/begin",
            None,
            Some(json!({"username":"erin","token":true})),
        )
        .await;
    assert_eq!(status, 200, "{opts}");
    assert!(opts.get("type").is_none());
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let finish = json!({"ceremonyId":opts["ceremonyId"],"credential":credential});
    let (status, _, result) = app
        .call("POST", "/api/register/finish", None, Some(finish.clone()))
        .await;
    assert_eq!(
        (status, result["verified"].as_str()),
        (200, Some("ok")),
        "{result}"
    );
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get("/api/me", Some(&token)).await.2["user"]["name"],
        "erin"
    );

    let (status, _, body) = app
        .call("POST", "/api/register/finish", None, Some(finish))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("ceremony_not_found"))
    );
    let (status, _, body) = app
        .call(
            "POST",
            "/api/register/begin",
            None,
            Some(json!({"username":"ERIN"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("username_taken"))
    );
    let (status, _, body) = app
        .call(
            "POST",
            "/api/login/begin",
            None,
            Some(json!({"username":"nobody"})),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_user")));
    let (status, _, body) = app
        .call(
            "POST",
            "/api/login/begin",
            None,
            Some(json!({"username":5})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );

    let (_, _, opts) = app
        .call(
            "POST",
            "/api/login/begin",
            None,
            Some(json!({"username":"erin"})),
        )
        .await;
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let (status, _, body) = app
        .call(
            "POST",
            "/api/login/finish",
            None,
            Some(json!({"credential":credential})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "ceremonyId required"
    );
    let (_, _, opts) = app
        .call("POST", "/api/login/begin", None, Some(json!({})))
        .await;
    assert_eq!(opts["mediation"], "conditional");
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let (status, _, body) = app
        .call(
            "POST",
            "/api/login/finish",
            None,
            Some(json!({"ceremonyId":opts["ceremonyId"],"credential":credential,"token":true})),
        )
        .await;
    assert_eq!(
        (status, body["user"]["name"].as_str()),
        (200, Some("erin")),
        "{body}"
    );
    assert!(body["authentication"]["token"].is_string());

    // Adding a passkey over HTTP needs the account's bearer token.
    let (_, _, opts) = app
        .call(
            "POST",
            "/api/register/begin",
            Some(&token),
            Some(json!({"username":"erin"})),
        )
        .await;
    let mut phone = SoftAuthenticator::new();
    let credential = phone.register(&opts["publicKey"], ORIGIN).unwrap();
    let (status, _, body) = app
        .call(
            "POST",
            "/api/register/finish",
            None,
            Some(json!({"ceremonyId":opts["ceremonyId"],"credential":credential})),
        )
        .await;
    assert_eq!(
        (status, body["user"]["name"].as_str()),
        (200, Some("erin")),
        "{body}"
    );
    let (status, www, _) = app
        .call(
            "POST",
            "/api/register/begin",
            Some(&"C".repeat(64)),
            Some(json!({"username":"erin"})),
        )
        .await;
    assert_eq!(status, 401);
    assert!(www.unwrap().contains("invalid_token"));
}

/// Signs `username` in on a new socket with a token; returns (token, socket).
async fn session(app: &TestApp, key: &mut SoftAuthenticator, username: &str) -> (String, Ws) {
    let mut ws = app.ws("/ws").await;
    let result = login(&mut ws, key, Some(username), true).await;
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, ws)
}

#[actix_web::test]
async fn sessions_are_listed_and_revoking_one_closes_its_sockets_at_once() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (first, _, mut first_ws) = signed_up(&app, &mut key, "fred").await;
    let (second, mut second_ws) = session(&app, &mut key, "fred").await;
    let mut echo = app.ws("/echo").await;
    assert_eq!(
        echo.request(json!({"type":"auth","token":second})).await["type"],
        "auth.result"
    );

    let list = first_ws.request(json!({"type":"sessions.list"})).await;
    let sessions = list["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{list}");
    let mine = sessions.iter().find(|s| s["current"] == true).unwrap();
    let theirs = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert!(mine["createdAt"].as_u64().is_some() && mine["expiresAt"].as_u64().is_some());
    assert!(mine["lastUsedAt"].as_u64().is_some());
    assert_eq!(mine["address"], "127.0.0.1");

    let (status, _, http_list) = app.get("/api/sessions", Some(&second)).await;
    assert_eq!(status, 200);
    let current = http_list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(current["id"], theirs["id"]);
    // The agent of the socket that opened the session, not of the request listing it.
    assert_eq!(current["userAgent"], WS_USER_AGENT);

    let reply = first_ws
        .request(json!({"type":"sessions.revoke","sessionId":theirs["id"]}))
        .await;
    assert_eq!(reply, json!({"type":"sessions.revoke.result","revoked":1}));
    assert_eq!(second_ws.expect_close().await, 4401);
    assert_eq!(echo.expect_close().await, 4401);
    assert_eq!(app.get("/api/me", Some(&second)).await.0, 401);
    assert_eq!(app.get("/api/me", Some(&first)).await.0, 200);

    let unknown = first_ws
        .request(json!({"type":"sessions.revoke","sessionId":uuid::Uuid::new_v4()}))
        .await;
    assert_error(&unknown, "not_found");
}

#[actix_web::test]
async fn revoking_all_other_sessions_keeps_only_the_current_one() {
    let app = spawn_app().await;
    let (mut key, mut other_key) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (keep, _, _) = signed_up(&app, &mut key, "gwen").await;
    let (stranger, _, _) = signed_up(&app, &mut other_key, "hugo").await;
    let (a, mut a_ws) = session(&app, &mut key, "gwen").await;
    let (b, _) = session(&app, &mut key, "gwen").await;
    let (status, _, body) = app
        .call("POST", "/api/sessions/revoke-others", Some(&keep), None)
        .await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(2)));
    assert_eq!(a_ws.expect_close().await, 4401);
    for gone in [&a, &b] {
        assert_eq!(app.get("/api/me", Some(gone)).await.0, 401);
    }
    assert_eq!(app.get("/api/me", Some(&keep)).await.0, 200);
    assert_eq!(
        app.get("/api/me", Some(&stranger)).await.0,
        200,
        "other users untouched"
    );
    let session_id = app.get("/api/sessions", Some(&keep)).await.2["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = app
        .call(
            "DELETE",
            &format!("/api/sessions/{session_id}"),
            Some(&keep),
            None,
        )
        .await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)));
    assert_eq!(app.get("/api/me", Some(&keep)).await.0, 401);
}

#[actix_web::test]
async fn refresh_issues_a_new_token_and_live_sockets_keep_going() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (old, _, mut ws) = signed_up(&app, &mut key, "iris").await;
    let mut chat = app.ws("/chat").await;
    assert_eq!(
        chat.request(json!({"type":"auth","token":old})).await["type"],
        "auth.result"
    );
    app.clock.advance(Duration::from_secs(600));

    let reply = ws.request(json!({"type":"refresh","id":1})).await;
    assert_eq!(reply["type"], "refresh.result", "{reply}");
    let new = reply["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    let expires = reply["authentication"]["expiresAt"].as_u64().unwrap();
    assert!(expires >= app.clock_secs() + 86_400 - 1);
    assert_eq!(
        app.get("/api/me", Some(&old)).await.0,
        401,
        "the old token stops working"
    );
    assert_eq!(
        app.get("/api/me", Some(&new)).await.2["expiresAt"].as_u64(),
        Some(expires)
    );
    assert_eq!(
        chat.request(json!({"type":"ping","id":2})).await["type"],
        "pong",
        "sockets carry on"
    );
    assert_eq!(
        ws.request(json!({"type":"ping","id":3})).await["type"],
        "pong"
    );

    let (status, _, body) = app
        .call("POST", "/api/sessions/refresh", Some(&new), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let newer = body["authentication"]["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/me", Some(&new)).await.0, 401);
    assert_eq!(app.get("/api/me", Some(&newer)).await.0, 200);
    // Logging out with the newest token still closes the sockets bound to the session.
    assert_eq!(
        ws.request(json!({"type":"logout"})).await["type"],
        "logout.result"
    );
    assert_eq!(chat.expect_close().await, 4401);

    let mut unbound = app.ws("/ws").await;
    assert_error(
        &unbound.request(json!({"type":"refresh"})).await,
        "unauthorized",
    );
}

#[actix_web::test]
async fn a_socket_is_told_before_its_token_expires_and_then_closed() {
    let app = spawn_with(|c| {
        c.tokens.lifetime_secs = 2;
        c.tokens.expiry_warning_secs = 1;
    })
    .await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _) = signed_up(&app, &mut key, "jack").await;
    let mut echo = app.ws("/echo").await;
    let auth = echo.request(json!({"type":"auth","token":token})).await;
    let expires_at = auth["expiresAt"].as_u64().unwrap();
    let warning = echo.recv().await;
    assert_eq!(warning, json!({"type":"expiring","expiresAt":expires_at}));
    app.clock.advance(Duration::from_secs(3));
    assert_eq!(echo.expect_close().await, 4401);
    assert_eq!(app.get("/api/me", Some(&token)).await.0, 401);
}

#[actix_web::test]
async fn sessions_survive_a_restart() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, ws) = signed_up(&app, &mut key, "kate").await;
    ws.close().await;
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}, None::<wsauthn::endpoints::DisconnectHook>).await;
    let (status, _, me) = app.get("/api/me", Some(&token)).await;
    assert_eq!(
        (status, me["user"]["id"].as_str()),
        (200, Some(user_id.as_str()))
    );
    let mut echo = app.ws("/echo").await;
    assert_eq!(
        echo.request(json!({"type":"auth","token":token})).await["type"],
        "auth.result"
    );
    let sessions = app.get("/api/sessions", Some(&token)).await.2;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn forward_auth_answers_with_the_user_in_headers_or_401() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _) = signed_up(&app, &mut key, "lola@example.com").await;
    let mut res = awc::Client::new()
        .get(app.url("/auth/verify"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let header = |name: &str| {
        res.headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("x-auth-user"), "lola@example.com");
    assert_eq!(header("x-auth-user-id"), user_id);
    let _ = res.body().await;
    let (status, www, _) = app.get("/auth/verify", None).await;
    assert_eq!(
        (status, www.as_deref()),
        (401, Some(r#"Bearer realm="wsauthn""#))
    );
    assert_eq!(app.get("/auth/verify", Some(&"D".repeat(64))).await.0, 401);
}

#[actix_web::test]
async fn every_security_event_reaches_the_event_hook() {
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let log = seen.clone();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_with_events(dir, move |e: &Event| log.lock().unwrap().push(e.clone())).await;
    let (mut key, mut phone) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (_, user_id, mut ws) = signed_up(&app, &mut key, "mona").await;
    let user = uuid::Uuid::parse_str(&user_id).unwrap();
    add_passkey(&mut ws, &mut phone, "mona").await;
    let phone_id = encode_b64url(&phone.credentials()[0].id);
    ws.request(json!({"type":"passkeys.delete","credentialId":phone_id}))
        .await;
    key.user_verification = false;
    let mut fresh = app.ws("/ws").await;
    let failed = login(&mut fresh, &mut key, Some("mona"), false).await;
    assert_error(&failed, "verification_failed");
    ws.request(json!({"type":"logout"})).await;
    assert_eq!(ws.expect_close().await, 4401);

    let seen = seen.lock().unwrap().clone();
    let key_id = encode_b64url(&key.credentials()[0].id);
    let expect = [
        Event::RegistrationSucceeded {
            user,
            credential_id: key_id.clone(),
            new_account: true,
        },
        Event::PasskeyAdded {
            user,
            credential_id: phone_id.clone(),
        },
        Event::PasskeyRemoved {
            user,
            credential_id: phone_id,
        },
        Event::SignInFailed {
            user: Some(user),
            code: ErrorCode::VerificationFailed,
        },
    ];
    for e in expect {
        assert!(seen.contains(&e), "missing {e:?} in {seen:?}");
    }
    let created = seen.iter().find_map(|e| match e {
        Event::SessionCreated {
            user: u, session, ..
        } if *u == user => Some(*session),
        _ => None,
    });
    let session = created.expect("session.created");
    assert!(seen.contains(&Event::SessionEnded {
        user,
        session,
        reason: EndReason::Logout
    }));
}
