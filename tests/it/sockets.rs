//! Tokens on sockets and HTTP: `auth`, `logout`, protected endpoints, the unauthorized hook,
//! per-endpoint policy, and the chat room.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use awc::error::WsClientError;
use serde_json::json;
use wsauthn::endpoints::{AuthPolicy, DisconnectHook};
use wsauthn::softkey::SoftAuthenticator;
use wsauthn::{Reason, Transport, Unauthorized, Verdict};

use crate::helpers::*;

const BEARER_REALM: &str = r#"Bearer realm="wsauthn""#;
const BEARER_INVALID: &str = r#"Bearer realm="wsauthn", error="invalid_token""#;

fn refused_status(result: Result<Ws, WsClientError>) -> u16 {
    match result {
        Err(WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("upgrade was accepted"),
    }
}

#[actix_web::test]
async fn api_me_answers_for_a_valid_bearer_token_and_401s_otherwise() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _) = signed_up(&app, &mut key, "alice@example.com").await;

    let (status, _, body) = app.get("/api/me", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], user_id);
    assert_eq!(body["user"]["name"], "alice@example.com");
    assert_eq!(body["user"]["displayName"], "alice@example.com");
    assert!(body["expiresAt"].as_u64().unwrap() > app.clock_secs());
    let (status, _, _) = app.get("/api/me", Some(&token.to_lowercase())).await;
    assert_eq!(status, 200, "hex digits in either case");

    let (status, www, body) = app.get("/api/me", None).await;
    assert_eq!((status, www.as_deref()), (401, Some(BEARER_REALM)));
    assert_eq!(body["code"], "unauthorized");

    for bad in ["nonsense", &"0".repeat(64), ""] {
        let (status, www, body) = app.get("/api/me", Some(bad)).await;
        assert_eq!(
            (status, www.as_deref()),
            (401, Some(BEARER_INVALID)),
            "{bad:?}"
        );
        assert_eq!(body["code"], "unauthorized");
    }
}

#[actix_web::test]
async fn an_unused_token_expires_after_the_idle_timeout_and_use_slides_it() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, ws) = signed_up(&app, &mut key, "bea").await;
    ws.close().await;
    app.clock.advance(Duration::from_secs(3_000));
    assert_eq!(app.get("/api/me", Some(&token)).await.0, 200);
    app.clock.advance(Duration::from_secs(3_000));
    assert_eq!(
        app.get("/api/me", Some(&token)).await.0,
        200,
        "use slid the idle timer"
    );
    app.clock.advance(Duration::from_secs(3_601));
    let (status, www, _) = app.get("/api/me", Some(&token)).await;
    assert_eq!((status, www.as_deref()), (401, Some(BEARER_INVALID)));
}

#[actix_web::test]
async fn a_finished_ceremony_signs_the_socket_in_even_without_a_token() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    assert_error(
        &ws.request(json!({"type":"logout","id":1})).await,
        "unauthorized",
    );
    let result = register(&mut ws, &mut key, "cleo", false).await;
    assert!(result.get("authentication").is_none());
    // Signed in: it may add a passkey to its own account, and log out.
    register_begin(&mut ws, "cleo", false).await;
    let reply = ws.request(json!({"type":"logout","id":2})).await;
    assert_eq!(reply, json!({"type":"logout.result","id":2}));
    // Its session ended with the logout, and with it the socket, as for a token's session.
    assert_eq!(ws.expect_close().await, 4401);
    let mut ws = app.ws("/ws").await;
    let reply = ws
        .request(json!({"type":"register.begin","username":"cleo"}))
        .await;
    assert_error(&reply, "username_taken");
}

#[actix_web::test]
async fn auth_on_the_ceremony_socket_signs_it_in_and_a_bad_token_is_refused() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _) = signed_up(&app, &mut key, "dora").await;
    let mut ws = app.ws("/ws").await;
    let reply = ws
        .request(json!({"type":"auth","id":5,"token":"F00D"}))
        .await;
    assert_error(&reply, "unauthorized");
    assert_eq!(reply["id"], 5);
    let reply = ws
        .request(json!({"type":"auth","id":6,"token":token}))
        .await;
    assert_eq!(reply["type"], "auth.result", "{reply}");
    assert_eq!(reply["id"], 6);
    assert_eq!(reply["user"]["id"], user_id);
    assert!(reply["expiresAt"].as_u64().is_some());
    assert_eq!(
        ws.request(json!({"type":"ping","id":7})).await,
        json!({"type":"pong","id":7})
    );
}

#[actix_web::test]
async fn a_protected_socket_opens_with_a_bearer_header_and_echoes() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _) = signed_up(&app, &mut key, "echo-user").await;
    let bearer = format!("Bearer {token}");
    let mut echo = app
        .ws_with("/echo", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .unwrap();
    echo.send_text("not even json").await;
    assert!(matches!(echo.next_event(true).await, Event::Raw(t) if t == "not even json"));
    echo.send(json!({"type":"ping"})).await;
    assert_eq!(
        echo.recv().await,
        json!({"type":"ping"}),
        "echoed, not answered"
    );
    echo.send_binary(vec![1, 2, 3]).await;
    assert!(matches!(echo.next_event(true).await, Event::Binary(b) if b == [1, 2, 3]));
}

#[actix_web::test]
async fn a_bad_bearer_header_is_refused_with_401_before_the_upgrade() {
    let app = spawn_app().await;
    let bearer = format!("Bearer {}", "A".repeat(64));
    for path in ["/echo", "/chat"] {
        let result = app
            .ws_with(path, &[("Origin", ORIGIN), ("Authorization", &bearer)])
            .await;
        assert_eq!(refused_status(result), 401, "{path}");
    }
}

#[actix_web::test]
async fn browsers_authenticate_a_protected_socket_with_a_first_auth_frame() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, _) = signed_up(&app, &mut key, "fay").await;
    let mut echo = app.ws("/echo").await;
    let reply = echo
        .request(json!({"type":"auth","id":"a","token":token}))
        .await;
    assert_eq!(reply["type"], "auth.result", "{reply}");
    assert_eq!(reply["id"], "a");
    assert_eq!(reply["user"]["id"], user_id);
    echo.send_text("hello").await;
    assert!(matches!(echo.next_event(true).await, Event::Raw(t) if t == "hello"));
}

#[actix_web::test]
async fn a_protected_socket_closes_4401_on_a_frame_before_auth() {
    let app = spawn_app().await;
    let mut echo = app.ws("/echo").await;
    echo.send(json!({"type":"ping"})).await;
    assert_eq!(echo.expect_close().await, 4401);
    let mut echo = app.ws("/echo").await;
    echo.send_binary(vec![1]).await;
    assert_eq!(echo.expect_close().await, 4401);
}

#[actix_web::test]
async fn a_protected_socket_closes_4401_on_a_bad_auth() {
    let app = spawn_app().await;
    let mut chat = app.ws("/chat").await;
    chat.send(json!({"type":"auth","token":"B".repeat(64)}))
        .await;
    assert_eq!(chat.expect_close().await, 4401);
}

#[actix_web::test]
async fn a_protected_socket_closes_4401_when_the_auth_deadline_passes() {
    let app = spawn_with(|c| c.websocket.auth_deadline_ms = 200).await;
    let started = std::time::Instant::now();
    let mut echo = app.ws("/echo").await;
    match echo.next_event(true).await {
        Event::Close(code, reason) => {
            assert_eq!(code, Some(4401));
            assert_eq!(reason, "unauthorized");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[actix_web::test]
async fn logout_revokes_the_token_and_closes_every_socket_that_used_it() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws) = signed_up(&app, &mut key, "gus").await;
    let bearer = format!("Bearer {token}");
    let mut echo = app
        .ws_with("/echo", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .unwrap();
    let mut chat = app.ws("/chat").await;
    assert_eq!(
        chat.request(json!({"type":"auth","token":token})).await["type"],
        "auth.result"
    );
    let mut other_ws = app.ws("/ws").await;
    assert_eq!(
        other_ws.request(json!({"type":"auth","token":token})).await["type"],
        "auth.result"
    );
    // A socket of the same user but another token must stay open.
    let other_token = login(&mut app.ws("/ws").await, &mut key, Some("gus"), true).await
        ["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut unrelated = app.ws("/echo").await;
    assert_eq!(
        unrelated
            .request(json!({"type":"auth","token":other_token}))
            .await["type"],
        "auth.result"
    );

    let reply = ws.request(json!({"type":"logout","id":6})).await;
    assert_eq!(reply, json!({"type":"logout.result","id":6}));
    assert_eq!(ws.expect_close().await, 4401);
    assert_eq!(echo.expect_close().await, 4401);
    assert_eq!(chat.expect_close().await, 4401);
    assert_eq!(other_ws.expect_close().await, 4401);
    let (status, www, _) = app.get("/api/me", Some(&token)).await;
    assert_eq!((status, www.as_deref()), (401, Some(BEARER_INVALID)));

    unrelated.send_text("still here").await;
    assert!(matches!(unrelated.next_event(true).await, Event::Raw(t) if t == "still here"));
    assert_eq!(app.get("/api/me", Some(&other_token)).await.0, 200);
}

#[actix_web::test]
async fn a_token_past_its_lifetime_closes_its_sockets() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _) = signed_up(&app, &mut key, "hal").await;
    let mut echo = app.ws("/echo").await;
    assert_eq!(
        echo.request(json!({"type":"auth","token":token})).await["type"],
        "auth.result"
    );
    app.clock.advance(Duration::from_secs(86_401));
    assert_eq!(app.state.tokens.sweep(), 1);
    assert_eq!(echo.expect_close().await, 4401);
}

#[actix_web::test]
async fn chat_messages_reach_every_member_including_the_sender() {
    let app = spawn_app().await;
    let (mut ka, mut kb) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (ta, _, _) = signed_up(&app, &mut ka, "ann").await;
    let (tb, _, _) = signed_up(&app, &mut kb, "ben").await;
    let mut a = app.ws("/chat").await;
    assert_eq!(
        a.request(json!({"type":"auth","token":ta})).await["type"],
        "auth.result"
    );
    let bearer = format!("Bearer {tb}");
    let mut b = app
        .ws_with("/chat", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .unwrap();
    // Both are members as soon as their upgrade (b) or auth.result (a) arrived: a message sent
    // at once reaches both, with no settling first.
    let before = app.clock_secs() * 1000;
    a.send(json!({"type":"message","text":"hi"})).await;
    for ws in [&mut a, &mut b] {
        let m = ws.recv().await;
        assert_eq!(m["type"], "message");
        assert_eq!(m["from"], "ann");
        assert_eq!(m["text"], "hi");
        assert!(m["at"].as_u64().unwrap() >= before);
    }
    b.send(json!({"type":"message","text":"hey ann"})).await;
    assert_eq!(a.recv().await["from"], "ben");
    assert_eq!(b.recv().await["text"], "hey ann");

    assert_error(
        &a.request(json!({"type":"message","text":"  "})).await,
        "bad_request",
    );
    let long = "x".repeat(4097);
    assert_error(
        &a.request(json!({"type":"message","text":long})).await,
        "bad_request",
    );
    assert_error(
        &a.request(json!({"type":"login.begin"})).await,
        "bad_request",
    );
    let mut ws = app.ws("/ws").await;
    assert_error(
        &ws.request(json!({"type":"message","text":"hi"})).await,
        "bad_request",
    );
}

#[actix_web::test]
async fn the_endpoint_policy_comes_from_the_config() {
    let app = spawn_with(|c| {
        c.endpoints.paths.insert("/echo".into(), AuthPolicy::None);
        c.endpoints.paths.insert("/ws".into(), AuthPolicy::Required);
    })
    .await;
    let mut echo = app.ws("/echo").await;
    echo.send_text("open").await;
    assert!(matches!(echo.next_event(true).await, Event::Raw(t) if t == "open"));
    let mut ws = app.ws("/ws").await;
    ws.send(json!({"type":"login.begin"})).await;
    assert_eq!(ws.expect_close().await, 4401);
}

#[actix_web::test]
async fn an_embedding_app_can_replace_the_unauthorized_hook() {
    let seen: Arc<Mutex<Vec<(Transport, String, Reason)>>> = Arc::default();
    let log = seen.clone();
    let hook = move |e: &Unauthorized<'_>| {
        log.lock()
            .unwrap()
            .push((e.transport, e.path.to_owned(), e.reason));
        match e.path {
            "/echo" => Verdict::Allow,
            "/api/me" => Verdict::Close {
                code: 403,
                reason: "members only".into(),
            },
            _ => Verdict::Close {
                code: 4403,
                reason: "members only".into(),
            },
        }
    };
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_in(dir, |c| c.websocket.auth_deadline_ms = 100, Some(hook)).await;

    let mut echo = app.ws("/echo").await;
    echo.send_text("anonymous").await;
    assert!(matches!(echo.next_event(true).await, Event::Raw(t) if t == "anonymous"));

    let mut chat = app.ws("/chat").await;
    match chat.next_event(true).await {
        Event::Close(code, reason) => {
            assert_eq!((code, reason.as_str()), (Some(4403), "members only"))
        }
        other => panic!("expected close, got {other:?}"),
    }
    let (status, _, body) = app.get("/api/me", None).await;
    assert_eq!(status, 403);
    assert_eq!(body["message"], "members only");

    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&(
        Transport::WebSocket,
        "/echo".into(),
        Reason::NotAuthenticated
    )));
    assert!(seen.contains(&(Transport::WebSocket, "/chat".into(), Reason::Deadline)));
    assert!(seen.contains(&(Transport::Http, "/api/me".into(), Reason::Missing)));
}

#[actix_web::test]
async fn the_default_hook_is_disconnect() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_in(dir, |_| {}, Some(DisconnectHook)).await;
    assert_eq!(app.get("/api/me", None).await.0, 401);
}

#[actix_web::test]
async fn shutdown_closes_every_socket_with_going_away_and_releases_the_store() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws) = signed_up(&app, &mut key, "ivan").await;
    let mut echo = app.ws("/echo").await;
    assert_eq!(
        echo.request(json!({"type":"auth","token":token})).await["type"],
        "auth.result"
    );
    let shutdown = actix_web::rt::spawn(app.stop());
    assert_eq!(ws.expect_close().await, 1001);
    assert_eq!(echo.expect_close().await, 1001);
    let dir = shutdown.await.unwrap();
    let store = reopen_store(dir.path()).await;
    assert!(store.user_by_name("ivan").await.unwrap().is_some());
}
