//! Graceful shutdown of the real binary: SIGTERM closes every socket with 1001, the process
//! exits 0 once the store is flushed and released, and nothing it acknowledged is lost.

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::binary::Server;
use crate::helpers::*;

async fn status_of(addr: std::net::SocketAddr, path: &str, bearer: &str) -> u16 {
    awc::Client::new()
        .get(format!("http://{addr}{path}"))
        .insert_header(("Authorization", format!("Bearer {bearer}")))
        .send()
        .await
        .expect("http request")
        .status()
        .as_u16()
}

#[actix_web::test]
async fn sighup_without_tls_reloads_nothing_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut ws = ws_at(server.addr, "/ws").await;
    server.signal("HUP");
    server.wait_for_line(|l| l.contains("SIGHUP: nothing to reload"));
    let pong = ws.request(json!({"type":"ping","id":1})).await;
    assert_eq!(pong["type"], "pong", "the socket is still open");
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
}

#[actix_web::test]
async fn sigterm_closes_every_socket_with_1001_exits_0_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut alice = SoftAuthenticator::new();
    let mut ws = ws_at(server.addr, "/ws").await;
    let result = register(&mut ws, &mut alice, "alice", true).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut other = ws_at(server.addr, "/ws").await;
    let signed_in = login(&mut other, &mut alice, Some("alice"), true).await;
    let revoked = signed_in["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut echo = ws_at(server.addr, "/echo").await;
    let auth = echo.request(json!({"type":"auth","token":token})).await;
    assert_eq!(auth["type"], "auth.result", "{auth}");
    let mut idle = ws_at(server.addr, "/ws").await;

    // Acknowledged the instant before the signal: a new account, and a revocation.
    let mut bob = SoftAuthenticator::new();
    let mut ws_bob = ws_at(server.addr, "/ws").await;
    let result = register(&mut ws_bob, &mut bob, "bob", false).await;
    assert_eq!(result["verified"], "ok", "{result}");
    assert_eq!(
        other.request(json!({"type":"logout"})).await["type"],
        "logout.result"
    );
    assert_eq!(other.expect_close().await, 4401);

    server.signal("TERM");
    for socket in [&mut ws, &mut echo, &mut idle, &mut ws_bob] {
        match socket.next_event(true).await {
            Event::Close(code, reason) => {
                assert_eq!(code, Some(1001), "{reason}");
                assert_eq!(reason, "server shutting down");
            }
            other => panic!("expected a 1001 close, got {other:?}"),
        }
    }
    let (status, lines) = server.wait_for_exit();
    assert!(status.success(), "{status}: {lines:#?}");
    assert!(lines
        .iter()
        .any(|l| l.contains("signal received; shutting down")));
    assert!(
        !lines.iter().any(|l| l.contains("store still open")),
        "the store was released: {lines:#?}"
    );

    let server = Server::start(dir.path());
    for (name, key) in [("alice", &mut alice), ("bob", &mut bob)] {
        let mut ws = ws_at(server.addr, "/ws").await;
        let result = login(&mut ws, key, Some(name), false).await;
        assert_eq!(result["verified"], "ok", "{name}: {result}");
    }
    assert_eq!(status_of(server.addr, "/api/me", &token).await, 200);
    assert_eq!(status_of(server.addr, "/api/me", &revoked).await, 401);
}

#[actix_web::test]
async fn sigterm_the_moment_the_server_says_it_listens_still_shuts_it_down_gracefully() {
    // The handlers are in place before the server logs that it listens, so a signal sent on
    // that line is not lost to the default action (death by SIGTERM, nothing flushed).
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path());
        server.signal("TERM");
        let (status, lines) = server.wait_for_exit();
        assert!(status.success(), "{status}: {lines:#?}");
        assert!(lines.iter().any(|l| l.contains("stopped")), "{lines:#?}");
    }
}
