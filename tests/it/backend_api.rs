//! The backend API end to end (`docs/backend-api.md`): introspection, finding and seeing a user,
//! revoking and deleting one, over real sockets against a real server, the key checks on every
//! path, and durability against `kill -9` with the real binary.

#[path = "backend_api/cli.rs"]
mod cli;
#[path = "backend_api/docs.rs"]
mod docs;
#[path = "backend_api/support.rs"]
mod support;

use serde_json::json;
use wsauthn::endpoints::AuthPolicy;
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;
use crate::persistence::Server;
pub use support::ADMIN_KEY;
use support::*;

#[actix_web::test]
async fn the_backend_api_is_off_by_default_and_its_paths_answer_404() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, id, mut ws) = signed_up(&app, &mut key, "alice@example.com").await;
    for path in every_backend_path(&id, &token) {
        for bearer in [None, Some(ADMIN_KEY), Some(token.as_str())] {
            let (status, _, body) = call_path(&app, &path, bearer).await;
            assert_eq!(status, 404, "{path:?} with {bearer:?}: {body}");
            assert_eq!(body["code"], "not_found", "{body}");
        }
    }
    // Nothing was done: the user and their session are intact.
    let (status, _, me) = app.get("/api/me", Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert_alive(&mut ws).await;
}

#[actix_web::test]
async fn a_wrong_key_or_a_users_token_gets_401_on_every_backend_path_whatever_the_policy_says() {
    let policies: [fn(&mut wsauthn::Config); 3] = [
        |_| {},
        // If the token policy applied here, a user's token would pass it.
        |c| {
            c.endpoints.default = AuthPolicy::Required;
            c.endpoints
                .paths
                .insert("/admin/*".into(), AuthPolicy::Required);
            c.endpoints
                .paths
                .insert("/introspect".into(), AuthPolicy::Required);
        },
        |c| {
            c.endpoints
                .paths
                .insert("/admin/*".into(), AuthPolicy::None);
        },
    ];
    for policy in policies {
        let app = spawn_with(|c| {
            with_admin_key(c);
            policy(c);
        })
        .await;
        let mut key = SoftAuthenticator::new();
        let (token, id, mut ws) = signed_up(&app, &mut key, "alice@example.com").await;
        let lower_case_token = token.to_lowercase();
        let wrong_key = ADMIN_KEY.replace('0', "1");
        for path in every_backend_path(&id, &token) {
            for bearer in [
                None,
                Some(token.as_str()),
                Some(&lower_case_token),
                Some(&wrong_key),
                Some(""),
            ] {
                let (status, www, body) = call_path(&app, &path, bearer).await;
                assert_eq!(status, 401, "{path:?} with {bearer:?}: {body}");
                assert_eq!(body["code"], "unauthorized", "{body}");
                let www = www.expect("a WWW-Authenticate challenge");
                assert!(www.starts_with("Bearer realm=\"wsauthn\""), "{www}");
            }
            // The key under another scheme is no key.
            let method = awc::http::Method::from_bytes(path.method.as_bytes()).unwrap();
            let res = awc::Client::new()
                .request(method, app.url(&path.path))
                .insert_header(("Authorization", format!("Basic {ADMIN_KEY}")))
                .send()
                .await
                .expect("request");
            assert_eq!(res.status().as_u16(), 401, "{path:?} with Basic");
        }
        // Nothing was done, and the key itself works.
        assert_alive(&mut ws).await;
        let seen = admin(&app, "GET", &format!("/admin/users/{id}"), 200).await;
        assert_eq!(seen["sessions"].as_array().map(Vec::len), Some(1), "{seen}");
    }
}

#[actix_web::test]
async fn introspection_says_whose_a_live_token_is_and_inactive_for_anything_else() {
    let app = spawn_with(with_admin_key).await;
    let base = app.url("");
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    let result = register(&mut ws, &mut key, "alice@example.com", true).await;
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = result["user"]["id"].as_str().unwrap().to_owned();
    let session = current_session(&app, &token).await;

    let active = json!({
        "active": true,
        "sub": id,
        "username": "alice@example.com",
        "sid": session,
        "exp": result["authentication"]["expiresAt"],
        "token_type": "Bearer",
    });
    assert_eq!(introspect(&base, &token).await, active);
    assert_eq!(
        introspect(&base, &token.to_lowercase()).await,
        active,
        "either case"
    );

    let inactive = json!({"active": false});
    for bogus in [
        "",
        "nope",
        &"0".repeat(64),
        &"G".repeat(64),
        &format!("{token}0"),
    ] {
        assert_eq!(introspect(&base, bogus).await, inactive, "{bogus:?}");
    }

    // Not a form, or a form without "token": a clear 400.
    let url = app.url("/introspect");
    let (status, _, body) = request("POST", &url, Some(ADMIN_KEY), Some(&[("tokn", &token)])).await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("bad_request")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("\"token\""),
        "{body}"
    );
    let res = awc::Client::new()
        .post(&url)
        .insert_header(("Authorization", format!("Bearer {ADMIN_KEY}")))
        .send_json(&json!({"token": token}))
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 400, "JSON is not a form");

    // Signed out: inactive.
    let out = ws.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    assert_eq!(introspect(&base, &token).await, inactive, "logged out");

    // Introspection counts as use, as /auth/verify does: it slides the idle timer. (A token
    // from the HTTP ceremony, so no socket keeps it alive.)
    let token = http_sign_in(&app, &mut key, "alice@example.com").await;
    let idle = std::time::Duration::from_secs(app.state.config.tokens.idle_timeout_secs);
    let nearly_idle = idle - std::time::Duration::from_secs(10);
    app.clock.advance(nearly_idle);
    assert_eq!(introspect(&base, &token).await["active"], true);
    app.clock.advance(nearly_idle);
    assert_eq!(introspect(&base, &token).await["active"], true, "slid");
    app.clock.advance(idle);
    assert_eq!(
        introspect(&base, &token).await,
        inactive,
        "idle for too long"
    );
}

#[actix_web::test]
async fn an_operator_finds_a_user_by_name_and_sees_their_passkeys_and_sessions() {
    let app = spawn_with(with_admin_key).await;
    let mut laptop = SoftAuthenticator::new();
    let mut phone = SoftAuthenticator::new();
    let (token, id, mut ws) = signed_up(&app, &mut laptop, "Alice@Example.com").await;
    let added = register(&mut ws, &mut phone, "Alice@Example.com", false).await;
    assert_eq!(added["verified"], "ok", "{added}");
    let (other_token, _other) = signed_in(&app, &mut phone, "alice@example.com").await;
    let sessions = [
        current_session(&app, &token).await,
        current_session(&app, &other_token).await,
    ];

    let found = admin(
        &app,
        "GET",
        "/admin/users?username=alice%40EXAMPLE.com",
        200,
    )
    .await;
    assert_eq!(found["user"]["id"], id.as_str());
    assert_eq!(
        found["user"]["name"], "Alice@Example.com",
        "as spelled at sign-up"
    );
    assert_eq!(found["user"]["displayName"], "Alice@Example.com");
    assert_eq!(found["user"]["createdAt"], app.clock_secs());
    let mut passkeys: Vec<String> = found["passkeys"]
        .as_array()
        .expect("passkeys")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = [&laptop, &phone]
        .iter()
        .map(|k| wsauthn::b64url(&k.credentials()[0].id))
        .collect();
    passkeys.sort();
    expected.sort();
    assert_eq!(passkeys, expected, "{found}");
    let mut listed: Vec<&str> = found["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut expected = sessions.iter().map(String::as_str).collect::<Vec<_>>();
    expected.sort();
    assert_eq!(listed, expected, "{found}");
    assert!(found["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["userAgent"] == WS_USER_AGENT));

    assert_eq!(
        admin(&app, "GET", &format!("/admin/users/{id}"), 200).await,
        found
    );

    let nobody = admin(&app, "GET", "/admin/users?username=bob@example.com", 404).await;
    assert_eq!(nobody["code"], "unknown_user", "{nobody}");
    let unnamed = admin(&app, "GET", "/admin/users", 400).await;
    assert!(
        unnamed["message"].as_str().unwrap().contains("username="),
        "{unnamed}"
    );
    let unknown = admin(
        &app,
        "GET",
        &format!("/admin/users/{}", uuid::Uuid::new_v4()),
        404,
    )
    .await;
    assert_eq!(unknown["code"], "not_found", "{unknown}");
    let bad = admin(&app, "GET", "/admin/users/alice", 400).await;
    assert_eq!(bad["code"], "bad_request");
    assert!(
        bad["message"].as_str().unwrap().contains("not a user id"),
        "{bad}"
    );
}

#[actix_web::test]
async fn revoking_a_user_ends_every_session_and_closes_every_socket_with_4401() {
    let app = spawn_with(with_admin_key).await;
    let base = app.url("");
    let mut key = SoftAuthenticator::new();
    let (token, id, mut ceremony) = signed_up(&app, &mut key, "alice@example.com").await;
    let (other_token, mut second) = signed_in(&app, &mut key, "alice@example.com").await;
    let mut chat = app.ws("/chat").await;
    let authed = chat.request(json!({"type":"auth","token":token})).await;
    assert_eq!(authed["type"], "auth.result", "{authed}");
    let bearer = format!("Bearer {other_token}");
    let mut echo = app
        .ws_with("/echo", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .expect("echo opens with the header token");
    // Signed in without a token: its socket-only session is one of hers too.
    let mut tokenless = app.ws("/ws").await;
    let result = login(&mut tokenless, &mut key, Some("alice@example.com"), false).await;
    assert_eq!(result["verified"], "ok", "{result}");
    assert!(result.get("authentication").is_none(), "{result}");
    let mut bob_key = SoftAuthenticator::new();
    let (bob_token, _, mut bob) = signed_up(&app, &mut bob_key, "bob@example.com").await;

    let revoked = admin(&app, "POST", &format!("/admin/users/{id}/revoke"), 200).await;
    assert_eq!(revoked, json!({"revoked": 3}));

    for (name, ws) in [
        ("ceremony", &mut ceremony),
        ("second", &mut second),
        ("chat", &mut chat),
        ("echo", &mut echo),
        ("signed in without a token", &mut tokenless),
    ] {
        assert_eq!(ws.expect_close().await, 4401, "{name}");
    }
    for t in [&token, &other_token] {
        let (status, _, _) = app.get("/api/me", Some(t)).await;
        assert_eq!(status, 401);
        assert_eq!(introspect(&base, t).await, json!({"active": false}));
    }
    // Bob is untouched.
    assert_alive(&mut bob).await;
    assert_eq!(introspect(&base, &bob_token).await["active"], true);
    // Alice keeps her account and passkey, and can sign in again.
    let seen = admin(&app, "GET", &format!("/admin/users/{id}"), 200).await;
    assert_eq!(seen["sessions"], json!([]));
    assert_eq!(seen["passkeys"].as_array().map(Vec::len), Some(1));
    let (again, _ws) = signed_in(&app, &mut key, "alice@example.com").await;
    assert_eq!(introspect(&base, &again).await["sub"], id.as_str());

    let none_left = admin(&app, "POST", &format!("/admin/users/{id}/revoke"), 200).await;
    assert_eq!(none_left, json!({"revoked": 1}), "the new session");
    let unknown = format!("/admin/users/{}/revoke", uuid::Uuid::new_v4());
    assert_eq!(
        admin(&app, "POST", &unknown, 404).await["code"],
        "not_found"
    );
    assert_eq!(
        admin(&app, "POST", "/admin/users/x/revoke", 400).await["code"],
        "bad_request"
    );
}

#[actix_web::test]
async fn deleting_a_user_removes_everything_closes_their_sockets_and_frees_name_and_passkeys() {
    let app = spawn_with(with_admin_key).await;
    let base = app.url("");
    let mut laptop = SoftAuthenticator::new();
    let mut phone = SoftAuthenticator::new();
    let (token, id, mut ws) = signed_up(&app, &mut laptop, "alice@example.com").await;
    let added = register(&mut ws, &mut phone, "alice@example.com", false).await;
    assert_eq!(added["verified"], "ok", "{added}");
    let mut chat = app.ws("/chat").await;
    let authed = chat.request(json!({"type":"auth","token":token})).await;
    assert_eq!(authed["type"], "auth.result", "{authed}");
    let mut bob_key = SoftAuthenticator::new();
    let (bob_token, bob_id, mut bob) = signed_up(&app, &mut bob_key, "bob@example.com").await;
    let users = app.state.store.user_count().await.unwrap();

    let deleted = admin(&app, "DELETE", &format!("/admin/users/{id}"), 200).await;
    assert_eq!(
        deleted,
        json!({"id": id, "username": "alice@example.com", "passkeysRemoved": 2, "sessionsEnded": 1})
    );
    assert_eq!(ws.expect_close().await, 4401, "the ceremony socket");
    assert_eq!(chat.expect_close().await, 4401, "the chat socket");

    // Gone: the account, its passkeys, its sessions, on every path.
    assert_eq!(app.state.store.user_count().await.unwrap(), users - 1);
    for key in [&laptop, &phone] {
        let cred = &key.credentials()[0].id;
        assert!(app.state.store.credential(cred).await.unwrap().is_none());
    }
    let persisted = app.state.store.sessions().await.unwrap();
    assert!(
        persisted.iter().all(|(_, s)| s.user_id.to_string() != id),
        "{persisted:?}"
    );
    assert_eq!(introspect(&base, &token).await, json!({"active": false}));
    let (status, _, _) = app.get("/api/me", Some(&token)).await;
    assert_eq!(status, 401);
    let user = format!("/admin/users/{id}");
    assert_eq!(admin(&app, "GET", &user, 404).await["code"], "not_found");
    assert_eq!(admin(&app, "DELETE", &user, 404).await["code"], "not_found");
    assert_eq!(
        admin(&app, "POST", &format!("{user}/revoke"), 404).await["code"],
        "not_found"
    );
    let by_name = admin(&app, "GET", "/admin/users?username=alice@example.com", 404).await;
    assert_eq!(by_name["code"], "unknown_user");
    let mut fresh = app.ws("/ws").await;
    let refused = login_begin_error(&mut fresh, "alice@example.com").await;
    assert_eq!(refused["code"], "unknown_user", "{refused}");

    // The username and the very same credential id register again, as a new account.
    let opts = register_begin(&mut fresh, "alice@example.com", true).await;
    let cred = laptop.credentials()[0].id.clone();
    let credential = laptop
        .register_existing(&cred, &opts["publicKey"], ORIGIN)
        .expect("authenticator registers");
    let again = fresh
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(again["verified"], "ok", "{again}");
    assert_ne!(again["user"]["id"], id.as_str(), "a new account");
    assert_eq!(again["credentialId"], wsauthn::b64url(&cred));

    // Bob is untouched.
    assert_alive(&mut bob).await;
    assert_eq!(introspect(&base, &bob_token).await["sub"], bob_id.as_str());
}

#[actix_web::test]
async fn kill_9_right_after_a_revoke_or_a_delete_is_acknowledged_loses_neither() {
    // The real binary, keyed from the environment, killed the instant each answer arrives.
    let dir = tempfile::tempdir().unwrap();
    let keyed = |cmd: &mut std::process::Command| {
        cmd.env("WSAUTHN__ADMIN__API_KEY", ADMIN_KEY);
    };
    let url = |server: &Server, path: &str| format!("http://{}{path}", server.addr);

    let server = Server::start_with(dir.path(), keyed);
    let base = url(&server, "");
    let mut key = SoftAuthenticator::new();
    let mut accounts = Vec::new();
    for name in ["alice@example.com", "bob@example.com"] {
        let mut ws = ws_at(server.addr, "/ws").await;
        let result = register(&mut ws, &mut key, name, true).await;
        assert_eq!(result["verified"], "ok", "{result}");
        let token = result["authentication"]["token"].as_str().unwrap();
        let id = result["user"]["id"].as_str().unwrap();
        accounts.push((token.to_owned(), id.to_owned()));
        ws.close().await;
    }
    let [(alice, alice_id), (bob, bob_id)] = <[_; 2]>::try_from(accounts).unwrap();
    // Sessions are written when issued but not flushed; this call answers after a flush, so
    // both are on disk before anything is revoked.
    let others = url(&server, "/api/sessions/revoke-others");
    let (status, _, body) = request("POST", &others, Some(&bob), None).await;
    assert_eq!((status, body), (200, json!({"revoked": 0})));
    assert_eq!(introspect(&base, &alice).await["active"], true);
    let revoke = url(&server, &format!("/admin/users/{alice_id}/revoke"));
    let (status, _, body) = request("POST", &revoke, Some(ADMIN_KEY), None).await;
    server.kill();
    assert_eq!((status, body), (200, json!({"revoked": 1})));

    let server = Server::start_with(dir.path(), keyed);
    let base = url(&server, "");
    assert_eq!(
        introspect(&base, &alice).await["active"],
        false,
        "still revoked"
    );
    assert_eq!(introspect(&base, &bob).await["active"], true);
    let delete = url(&server, &format!("/admin/users/{bob_id}"));
    let (status, _, body) = request("DELETE", &delete, Some(ADMIN_KEY), None).await;
    server.kill();
    assert_eq!(status, 200, "{body}");

    let server = Server::start_with(dir.path(), keyed);
    let base = url(&server, "");
    assert_eq!(
        introspect(&base, &bob).await["active"],
        false,
        "still deleted"
    );
    let bob_user = url(&server, &format!("/admin/users/{bob_id}"));
    let (status, _, _) = request("GET", &bob_user, Some(ADMIN_KEY), None).await;
    assert_eq!(status, 404, "bob is still gone");
    let alice_user = url(&server, &format!("/admin/users/{alice_id}"));
    let (status, _, _) = request("GET", &alice_user, Some(ADMIN_KEY), None).await;
    assert_eq!(status, 200, "alice is still there");
    drop(server);
}
