//! Log output of the real binary: JSON lines for collectors, an access line per HTTP request and
//! per socket close tied together by request and socket ids, and never a secret in any line.

use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

use crate::binary::Server;
use crate::helpers::*;

/// A GET to the binary: (status, X-Request-Id).
async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = awc::Client::new().get(format!("http://{}{path}", server.addr));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let res = req.send().await.expect("http request");
    let id = res
        .headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned();
    (res.status().as_u16(), id)
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

#[actix_web::test]
async fn json_logs_have_an_access_line_per_request_and_socket_close_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |cmd| {
        cmd.env("WSAUTHN__LOG__FORMAT", "json");
    });
    let mut key = SoftAuthenticator::new();
    let mut ws = ws_at(server.addr, "/ws").await;
    let opts = register_begin(&mut ws, "alice", true).await;
    let challenge = opts["publicKey"]["challenge"].as_str().unwrap().to_owned();
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let result = ws
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_id = result["user"]["id"].as_str().unwrap().to_owned();

    let (status, me_id) = get(
        &server,
        "/api/me?secret=hunter2",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(status, 200);
    let (status, kept) = get(&server, "/healthz", &[("X-Request-Id", "proxy-7f3a.1")]).await;
    assert_eq!(
        (status, kept.as_str()),
        (200, "proxy-7f3a.1"),
        "a proxy's id is kept"
    );
    // The server closes this one: 1009, with the socket id of its upgrade line.
    ws.send_text("x".repeat(70 * 1024)).await;
    assert_eq!(ws.expect_close().await, 1009);

    let me = parse(&server.wait_for_line(|l| l.contains(&me_id) && l.contains("\"request\"")));
    assert_eq!(me["target"], "access");
    assert_eq!(me["method"], "GET");
    assert_eq!(me["path"], "/api/me", "the path without its query");
    assert_eq!(me["status"], 200);
    assert_eq!(me["user"], user_id.as_str());
    assert!(me["duration_ms"].as_f64().is_some(), "{me}");
    let health = parse(&server.wait_for_line(|l| l.contains("proxy-7f3a.1")));
    assert_eq!(health["path"], "/healthz");
    assert!(health.get("user").is_none(), "no token, no user: {health}");
    let closed = parse(&server.wait_for_line(|l| l.contains("socket closed")));
    assert_eq!(closed["target"], "access");
    assert_eq!(closed["path"], "/ws");
    assert_eq!(closed["code"], 1009);
    assert_eq!(closed["closed_by"], "server");
    assert_eq!(
        closed["user"],
        user_id.as_str(),
        "signed in by its registration"
    );
    let upgrade = parse(
        &server.wait_for_line(|l| l.contains("\"path\":\"/ws\"") && l.contains("\"status\":101")),
    );
    assert_eq!(upgrade["socket"], closed["socket"], "{upgrade} {closed}");
    assert!(upgrade["request_id"]
        .as_str()
        .is_some_and(|id| id.len() == 16));

    let lines = server.lines();
    for line in &lines {
        let value = parse(line);
        assert!(
            value["level"].is_string() && value["target"].is_string(),
            "{line}"
        );
        for secret in [token.as_str(), &token.to_lowercase(), &challenge, "hunter2"] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("registration")),
        "{lines:#?}"
    );
}

#[actix_web::test]
async fn text_logs_name_the_request_id_and_access_lines_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (_, id) = get(&server, "/healthz", &[]).await;
    let line = server.wait_for_line(|l| l.contains(&format!("request_id={id}")));
    assert!(
        line.contains("path=/healthz") && line.contains("status=200"),
        "{line}"
    );
    assert!(
        serde_json::from_str::<Value>(&line).is_err(),
        "text, not JSON: {line}"
    );
    drop(server);

    let server = Server::start_with(dir.path(), |cmd| {
        cmd.env("WSAUTHN__LOG__ACCESS", "false");
    });
    let (status, id) = get(&server, "/healthz", &[]).await;
    assert_eq!(status, 200, "X-Request-Id is sent either way");
    let (_, lines) = server.terminate();
    assert!(!lines.iter().any(|l| l.contains(&id)), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains(" access:")), "{lines:#?}");
}
