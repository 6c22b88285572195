//! Edges of the transport: the Origin check on upgrades, frame size and flood limits, frames the
//! protocol cannot read, the heartbeat, plain HTTP routes, and a binary that refuses bad config.

use std::process::{Command, Output, Stdio};

use awc::error::WsClientError;
use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

const EVIL: &str = "http://evil.example";

/// The status an upgrade was refused with; panics when it succeeded or failed otherwise.
fn refused_status(result: Result<Ws, WsClientError>) -> u16 {
    match result {
        Err(WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
        Err(other) => panic!("upgrade failed without a status: {other}"),
        Ok(_) => panic!("upgrade succeeded"),
    }
}

/// Sends a `ping` with `id` and asserts the `pong` echoes it: the socket is open and working.
async fn assert_still_answers(ws: &mut Ws, id: u64) {
    let reply = ws.request(json!({"type": "ping", "id": id})).await;
    assert_eq!(reply["type"], "pong", "{reply}");
    assert_eq!(reply["id"], id, "{reply}");
}

#[actix_web::test]
async fn upgrade_from_a_foreign_origin_is_refused_with_403() {
    let app = spawn_app().await;
    let (token, _, _ws) = signed_up(&app, &mut SoftAuthenticator::new(), "alice").await;
    let bearer = format!("Bearer {token}");

    let ws = app.ws_with("/ws", &[("Origin", EVIL)]).await;
    assert_eq!(refused_status(ws), 403);
    let echo = app
        .ws_with("/echo", &[("Origin", EVIL), ("Authorization", &bearer)])
        .await;
    assert_eq!(
        refused_status(echo),
        403,
        "a valid token does not excuse the origin"
    );

    let mut ws = app.ws_with("/ws", &[("Origin", ORIGIN)]).await.unwrap();
    assert_still_answers(&mut ws, 1).await;
    let mut echo = app
        .ws_with("/echo", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .unwrap();
    echo.send_text("hello").await;
    assert!(matches!(echo.next_event(true).await, Event::Raw(t) if t == "hello"));
}

#[actix_web::test]
async fn upgrade_without_origin_is_allowed_by_default() {
    let app = spawn_app().await;
    let mut ws = app.ws_with("/ws", &[]).await.unwrap();
    assert_still_answers(&mut ws, 1).await;
}

#[actix_web::test]
async fn upgrade_without_origin_is_refused_when_missing_origins_are_disallowed() {
    let app = spawn_with(|c| c.websocket.allow_missing_origin = false).await;
    assert_eq!(refused_status(app.ws_with("/ws", &[]).await), 403);
    let mut ws = app.ws("/ws").await;
    assert_still_answers(&mut ws, 1).await;
}

#[actix_web::test]
async fn frame_over_the_size_limit_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let mut ws = app.ws("/ws").await;
    ws.send_text("x".repeat(70 * 1024)).await;
    assert_eq!(ws.expect_close().await, 1009);
}

#[actix_web::test]
async fn frame_just_under_the_size_limit_is_answered() {
    let app = spawn_app().await;
    let mut ws = app.ws("/ws").await;
    let frame = json!({"type": "ping", "id": 7, "pad": "x".repeat(60 * 1024)}).to_string();
    assert!(frame.len() < 65_536);
    ws.send_text(frame).await;
    let reply = ws.recv().await;
    assert_eq!(reply["type"], "pong", "{reply}");
    assert_eq!(reply["id"], 7);
}

#[actix_web::test]
async fn flood_of_frames_closes_the_socket_with_1008() {
    let app = spawn_with(|c| {
        c.websocket.messages_per_second = 5;
        c.websocket.message_burst = 5;
    })
    .await;
    let mut ws = app.ws("/ws").await;
    for id in 0..20 {
        ws.send(json!({"type": "ping", "id": id})).await;
    }
    let mut pongs = 0;
    let code = loop {
        match ws.next_event(true).await {
            Event::Text(reply) => {
                assert_eq!(reply["type"], "pong", "{reply}");
                assert_eq!(reply["id"], pongs, "pongs come in order");
                pongs += 1;
            }
            Event::Close(code, _) => break code,
            other => panic!("expected pongs then a close, got {other:?}"),
        }
    };
    assert_eq!(code, Some(1008));
    assert!((1..20).contains(&pongs), "{pongs} pongs before the close");
}

#[actix_web::test]
async fn unreadable_frames_get_bad_request_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let mut ws = app.ws("/ws").await;
    let frames: &[(&str, Option<serde_json::Value>)] = &[
        (r#"{"type": "ping""#, None),
        ("[1, 2, 3]", None),
        ("\"ping\"", None),
        (r#"{"id": 5}"#, Some(json!(5))),
        (r#"{"type": "dance", "id": "x1"}"#, Some(json!("x1"))),
        (
            r#"{"type": "login.begin", "id": 9, "username": 42}"#,
            Some(json!(9)),
        ),
        (r#"{"type": "register.begin", "id": 10}"#, Some(json!(10))),
    ];
    for (n, (frame, id)) in frames.iter().enumerate() {
        ws.send_text(*frame).await;
        let reply = ws.recv().await;
        let message = assert_error(&reply, "bad_request");
        match id {
            Some(id) => assert_eq!(&reply["id"], id, "{frame} → {reply}"),
            None => assert!(reply.get("id").is_none(), "{frame} → {reply}"),
        }
        if frame.contains("dance") {
            assert!(message.contains("dance"), "{message}");
        }
        assert_still_answers(&mut ws, 100 + n as u64).await;
    }
}

#[actix_web::test]
async fn binary_frame_on_the_ceremony_socket_gets_bad_request_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let mut ws = app.ws("/ws").await;
    ws.send_binary(b"\x00\x01binary".to_vec()).await;
    assert_error(&ws.recv().await, "bad_request");
    assert_still_answers(&mut ws, 1).await;
}

#[actix_web::test]
async fn heartbeat_closes_a_socket_that_never_answers_pings_with_1001() {
    let app = spawn_with(|c| {
        c.websocket.heartbeat_interval_ms = 100;
        c.websocket.heartbeat_timeout_ms = 300;
    })
    .await;
    let mut ws = app.ws("/ws").await;
    // `next_event(false)` passes over the pings without answering them.
    match ws.next_event(false).await {
        Event::Close(code, _) => assert_eq!(code, Some(1001)),
        other => panic!("a silent client gets nothing but pings and the close: {other:?}"),
    }
}

#[actix_web::test]
async fn heartbeat_keeps_a_socket_that_answers_pings_open() {
    let app = spawn_with(|c| {
        c.websocket.heartbeat_interval_ms = 100;
        c.websocket.heartbeat_timeout_ms = 300;
    })
    .await;
    let mut ws = app.ws("/ws").await;
    // Six pings span at least 500 ms, well past the 300 ms timeout.
    ws.answer_pings(6).await;
    assert_still_answers(&mut ws, 1).await;
}

#[actix_web::test]
async fn healthz_answers_ok_and_an_unknown_path_is_404() {
    let app = spawn_app().await;
    let (status, _, body) = app.get("/healthz", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok"}));
    let (status, _, _) = app.get("/no/such/path", None).await;
    assert_eq!(status, 404);
}

/// The real binary with no inherited `WSAUTHN__` variables, a throwaway data directory and an
/// ephemeral port, so a config that is wrongly accepted cannot touch anything real.
pub(crate) fn wsauthn(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsauthn"));
    for (var, _) in std::env::vars().filter(|(v, _)| v.starts_with("WSAUTHN__")) {
        cmd.env_remove(var);
    }
    cmd.env("WSAUTHN__SERVER__DATA_DIR", data_dir)
        .env("WSAUTHN__SERVER__BIND", "127.0.0.1:0")
        .env("WSAUTHN__SERVER__STATIC_DIR", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to exit. A binary that wrongly starts serving is killed after [`PATIENCE`] (a
/// safety net, not a wait) and the test fails.
pub(crate) fn run_to_exit(mut cmd: Command) -> Output {
    let child = cmd.spawn().expect("spawn wsauthn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(PATIENCE) {
        Ok(output) => output.expect("wait for wsauthn"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("wsauthn did not exit: it started with a config it should refuse");
        }
    }
}

pub(crate) fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn binary_exits_2_naming_rp_id_when_it_does_not_match_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = wsauthn(dir.path());
    cmd.env("WSAUTHN__WEBAUTHN__RP_ID", "example.com");
    let output = run_to_exit(cmd);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("webauthn.rp_id"), "{stderr}");
    assert!(stderr.contains("example.com"), "{stderr}");
}

#[test]
fn binary_exits_2_naming_a_config_file_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = wsauthn(dir.path());
    cmd.args(["--config", "/nonexistent.toml"]);
    let output = run_to_exit(cmd);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent.toml"), "{stderr}");
}

#[test]
fn binary_exits_2_naming_an_unknown_key_in_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsauthn.toml");
    std::fs::write(&file, "[websocket]\nheartbeat_intreval_ms = 100\n").unwrap();
    let mut cmd = wsauthn(&dir.path().join("data"));
    cmd.arg("--config").arg(&file);
    let output = run_to_exit(cmd);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("heartbeat_intreval_ms"), "{stderr}");
}

#[test]
fn binary_prints_usage_and_exits_0_on_help() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = wsauthn(dir.path());
    cmd.arg("--help");
    let output = run_to_exit(cmd);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(stdout.contains("Usage: wsauthn"), "{stdout}");
    assert!(stdout.contains("--config PATH"), "{stdout}");
}

#[actix_web::test]
async fn a_worker_serves_at_most_max_connections_per_worker_at_once() {
    let app = spawn_with(|c| {
        c.server.workers = 1;
        c.server.max_connections_per_worker = 1;
    })
    .await;
    let mut first = app.ws("/ws").await;
    assert_eq!(first.request(json!({"type":"ping"})).await["type"], "pong");
    // Asserting that something does not happen needs a bound; 500 ms is far above a local upgrade.
    let waiting = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        app.ws_with("/ws", &[("Origin", ORIGIN)]),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a second connection waits while the first is open"
    );
    first.close().await;
    let mut next = tokio::time::timeout(PATIENCE, app.ws_with("/ws", &[("Origin", ORIGIN)]))
        .await
        .expect("served once the first connection is gone")
        .expect("upgrade");
    assert_eq!(next.request(json!({"type":"ping"})).await["type"], "pong");
}

#[actix_web::test]
async fn a_frame_that_breaks_the_websocket_protocol_closes_with_1002() {
    use std::io::{Read, Write};
    let app = spawn_app().await;
    let addr = app.addr;
    // A raw client: a real upgrade, then an unmasked frame, which RFC 6455 forbids from clients.
    let close = actix_web::rt::task::spawn_blocking(move || {
        let mut tcp = raw_upgrade(addr, "/ws");
        tcp.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
        let mut frame = [0u8; 4];
        tcp.read_exact(&mut frame).unwrap();
        (frame[0], u16::from_be_bytes([frame[2], frame[3]]))
    })
    .await
    .unwrap();
    assert_eq!(close, (0x88, 1002), "a close frame with code 1002");
}

#[actix_web::test]
async fn an_http_body_over_the_size_limit_or_not_json_gets_bad_request() {
    let app = spawn_app().await;
    let huge = json!({"username": "x".repeat(70_000)});
    let (status, _, body) = app.call("POST", "/api/login/begin", None, Some(huge)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let mut res = awc::Client::new()
        .post(app.url("/api/login/begin"))
        .insert_header(("Content-Type", "application/json"))
        .send_body("{not json")
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    assert_eq!(body["code"], "bad_request");
}
