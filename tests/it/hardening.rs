//! Attacks from the hardening review, each reproduced through the real server: a socket signed
//! in without a token must still have a session that is listed, expires and can be revoked; one
//! socket has one identity; username sign-in checks the user handle.

use std::time::Duration;

use serde_json::{json, Value};
use wsauthn::softkey::{encode_b64url, SoftAuthenticator};

use crate::helpers::*;

/// The socket's session as `sessions.list` shows it to a socket of the same user.
fn session_of(list: &Value, predicate: impl Fn(&Value) -> bool) -> Vec<&Value> {
    list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| predicate(s))
        .collect()
}

#[actix_web::test]
async fn a_socket_signed_in_without_a_token_has_a_session_others_can_see_and_revoke() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut owner) = signed_up(&app, &mut key, "alice").await;
    let mut tokenless = app.ws("/ws").await;
    let result = login(&mut tokenless, &mut key, Some("alice"), false).await;
    assert_eq!(result["verified"], "ok", "{result}");
    assert!(result.get("authentication").is_none());

    let list = owner.request(json!({"type":"sessions.list"})).await;
    let socket_only = session_of(&list, |s| s["socketOnly"] == true);
    assert_eq!(socket_only.len(), 1, "{list}");
    assert_eq!(
        socket_only[0]["credentialId"],
        encode_b64url(&key.credentials()[0].id)
    );
    let revoked = owner.request(json!({"type":"sessions.revokeOthers"})).await;
    assert_eq!(revoked["revoked"], 1, "{revoked}");
    assert_eq!(tokenless.expect_close().await, 4401);
    assert_eq!(
        owner.request(json!({"type":"ping","id":1})).await["type"],
        "pong"
    );
}

#[actix_web::test]
async fn a_socket_signed_in_without_a_token_ends_at_the_session_lifetime() {
    let app = spawn_with(|c| {
        c.tokens.lifetime_secs = 6;
        c.tokens.expiry_warning_secs = 1;
    })
    .await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    let result = register(&mut ws, &mut key, "bob", false).await;
    assert_eq!(result["verified"], "ok", "{result}");
    app.clock.advance(Duration::from_secs(9));
    app.state.tokens.sweep();
    assert_eq!(ws.expect_close().await, 4401);
}

#[actix_web::test]
async fn a_token_less_socket_session_ends_when_the_socket_closes() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut owner) = signed_up(&app, &mut key, "cora").await;
    let mut tokenless = app.ws("/ws").await;
    login(&mut tokenless, &mut key, None, false).await;
    let count = |list: &Value| list["sessions"].as_array().unwrap().len();
    assert_eq!(
        count(&owner.request(json!({"type":"sessions.list"})).await),
        2
    );
    tokenless.close().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let list = owner.request(json!({"type":"sessions.list"})).await;
        if count(&list) == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {list}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The attack that was possible: someone who once signed in adds their own passkey; the owner
/// deletes it, and every session it opened, token or not, ends with it.
#[actix_web::test]
async fn deleting_a_passkey_ends_every_session_it_opened() {
    let app = spawn_app().await;
    let (mut owners, mut intruders) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (owner_token, _, mut owner) = signed_up(&app, &mut owners, "dana").await;
    let added = register(&mut owner, &mut intruders, "dana", false).await;
    assert_eq!(added["verified"], "ok", "{added}");
    let mut intruder = app.ws("/ws").await;
    login(&mut intruder, &mut intruders, Some("dana"), false).await;
    let mut intruder_chat = app.ws("/chat").await;
    let with_token = login(&mut app.ws("/ws").await, &mut intruders, None, true).await;
    let intruder_token = with_token["authentication"]["token"].as_str().unwrap();
    assert_eq!(
        intruder_chat
            .request(json!({"type":"auth","token":intruder_token}))
            .await["type"],
        "auth.result"
    );

    let intruders_id = encode_b64url(&intruders.credentials()[0].id);
    let deleted = owner
        .request(json!({"type":"passkeys.delete","credentialId":intruders_id}))
        .await;
    assert_eq!(deleted["sessionsEnded"], 2, "{deleted}");
    assert_eq!(intruder.expect_close().await, 4401);
    assert_eq!(intruder_chat.expect_close().await, 4401);
    assert_eq!(app.get("/api/me", Some(intruder_token)).await.0, 401);
    assert_eq!(app.get("/api/me", Some(&owner_token)).await.0, 200);
    assert_eq!(owner.request(json!({"type":"ping"})).await["type"], "pong");
}

#[actix_web::test]
async fn deleting_a_passkey_with_keep_sessions_leaves_its_sessions() {
    let app = spawn_app().await;
    let (mut laptop, mut phone) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (_, _, mut ws) = signed_up(&app, &mut laptop, "emil").await;
    register(&mut ws, &mut phone, "emil", false).await;
    let mut on_phone = app.ws("/ws").await;
    login(&mut on_phone, &mut phone, Some("emil"), false).await;
    let phone_id = encode_b64url(&phone.credentials()[0].id);
    let deleted = ws
        .request(json!({"type":"passkeys.delete","credentialId":phone_id,"keepSessions":true}))
        .await;
    assert_eq!(deleted["sessionsEnded"], 0, "{deleted}");
    assert_eq!(
        on_phone.request(json!({"type":"ping"})).await["type"],
        "pong"
    );
}

/// One socket, one identity, one session: signing in as bob on a socket bound to alice's token
/// rebinds it to bob's new session.
#[actix_web::test]
async fn a_new_sign_in_on_a_bound_socket_replaces_its_identity_and_session() {
    let app = spawn_app().await;
    let (mut ka, mut kb) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (alice_token, alice_id, _) = signed_up(&app, &mut ka, "alice").await;
    let (_, bob_id, _) = signed_up(&app, &mut kb, "bob").await;
    let mut ws = app.ws("/ws").await;
    let authed = ws.request(json!({"type":"auth","token":alice_token})).await;
    assert_eq!(authed["user"]["id"], alice_id.as_str());
    let as_bob = login(&mut ws, &mut kb, Some("bob"), false).await;
    assert_eq!(as_bob["user"]["id"], bob_id.as_str(), "{as_bob}");

    // refresh mints a token for the socket's session, which is bob's now.
    let refreshed = ws.request(json!({"type":"refresh"})).await;
    let bob_token = refreshed["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get("/api/me", Some(&bob_token)).await.2["user"]["id"],
        bob_id.as_str()
    );
    // Ending alice's session leaves the socket alone; ending bob's closes it.
    let (_, _, list) = app.get("/api/sessions", Some(&alice_token)).await;
    let alices = session_of(&list, |s| s["current"] == true)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/sessions/{alices}");
    assert_eq!(
        app.call("DELETE", &path, Some(&alice_token), None).await.0,
        200
    );
    assert_eq!(ws.request(json!({"type":"ping"})).await["type"], "pong");
    let (_, _, list) = app.get("/api/sessions", Some(&bob_token)).await;
    let bobs = session_of(&list, |s| s["current"] == true)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/sessions/{bobs}");
    assert_eq!(
        app.call("DELETE", &path, Some(&bob_token), None).await.0,
        200
    );
    assert_eq!(ws.expect_close().await, 4401);
}

#[actix_web::test]
async fn signing_in_again_on_a_token_less_socket_ends_its_previous_session() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _) = signed_up(&app, &mut key, "finn").await;
    let mut ws = app.ws("/ws").await;
    login(&mut ws, &mut key, Some("finn"), false).await;
    login(&mut ws, &mut key, None, false).await;
    let (_, _, list) = app.get("/api/sessions", Some(&token)).await;
    assert_eq!(
        session_of(&list, |s| s["socketOnly"] == true).len(),
        1,
        "{list}"
    );
}

/// WebAuthn L3 §7.2 step 6 on the username path: alice's passkey returning bob's user handle.
#[actix_web::test]
async fn username_sign_in_with_another_accounts_user_handle_fails() {
    let app = spawn_app().await;
    let (mut ka, mut kb) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    signed_up(&app, &mut ka, "alice").await;
    signed_up(&app, &mut kb, "bob").await;
    let mut ws = app.ws("/ws").await;
    let opts = login_begin(&mut ws, Some("alice"), true).await;
    let mut credential = ka.login(&opts["publicKey"], ORIGIN).unwrap();
    credential["response"]["userHandle"] = json!(encode_b64url(&kb.credentials()[0].user_handle));
    let result = ws
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    assert!(assert_error(&result, "verification_failed").contains("user handle"));
    // Its own handle, or none at all (allowed by the spec on this path), signs in.
    for handle in [
        json!(encode_b64url(&ka.credentials()[0].user_handle)),
        Value::Null,
    ] {
        let opts = login_begin(&mut ws, Some("alice"), true).await;
        let mut credential = ka.login(&opts["publicKey"], ORIGIN).unwrap();
        credential["response"]["userHandle"] = handle;
        let result = ws
            .request(json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
            .await;
        assert_eq!(result["verified"], "ok", "{result}");
    }
}

/// Adding a passkey over HTTP is authorized by a session, which must still be live at finish.
#[actix_web::test]
async fn a_passkey_cannot_be_added_after_the_session_that_began_it_ended() {
    let app = spawn_app().await;
    let (mut owners, mut intruders) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (token, _, _) = signed_up(&app, &mut owners, "gail").await;
    let (status, _, opts) = app
        .call(
            "POST",
            "/api/register/begin",
            Some(&token),
            Some(json!({"username":"gail"})),
        )
        .await;
    assert_eq!(status, 200, "{opts}");
    let credential = intruders.register(&opts["publicKey"], ORIGIN).unwrap();
    let (_, _, list) = app.get("/api/sessions", Some(&token)).await;
    let id = session_of(&list, |s| s["current"] == true)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/sessions/{id}");
    assert_eq!(app.call("DELETE", &path, Some(&token), None).await.0, 200);
    let (status, _, body) = app
        .call(
            "POST",
            "/api/register/finish",
            None,
            Some(json!({"ceremonyId":opts["ceremonyId"],"credential":credential})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let gail = app.state.store.user_by_name("gail").await.unwrap().unwrap();
    assert_eq!(
        app.state
            .store
            .credentials_of(&gail.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn the_demo_and_static_files_cannot_be_framed_or_sniffed() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let app = spawn_with(|c| c.server.static_dir = web).await;
    for path in ["/", "/wsauthn.js", "/healthz"] {
        let res = awc::Client::new().get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
    }
}

/// A body trickled at a byte a second cannot hold a connection past the request deadline.
#[actix_web::test]
async fn a_trickled_request_body_gets_408_and_loses_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(|c| c.server.request_timeout_ms = 500).await;
    for (framing, piece) in [
        ("Content-Length: 60000", &b"1"[..]),
        ("Transfer-Encoding: chunked", &b"1\r\n1\r\n"[..]),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let head = format!(
            "POST /api/login/begin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let (mut reader, mut writer) = tcp.into_split();
        let trickle = actix_web::rt::spawn(async move {
            // One byte of body (in a chunk of its own) every 200 ms, until the server hangs up.
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if writer.write_all(piece).await.is_err() {
                    break;
                }
            }
        });
        let mut reply = Vec::new();
        tokio::time::timeout(PATIENCE, reader.read_to_end(&mut reply))
            .await
            .expect("the server ends the connection")
            .ok();
        trickle.abort();
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 408"), "{framing}: {reply}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{framing}: the connection lived {:?}",
            started.elapsed()
        );
    }
}

/// A raw client: upgrades `/ws`, sends `bytes`, and returns the first frame's opcode and close
/// code, read as soon as the server sends it.
async fn raw_socket_close(app: &TestApp, bytes: Vec<u8>) -> (u8, u16) {
    use std::io::{Read, Write};
    let addr = app.addr;
    actix_web::rt::task::spawn_blocking(move || {
        let mut tcp = raw_upgrade(addr, "/ws");
        tcp.write_all(&bytes).unwrap();
        let mut frame = [0u8; 4];
        tcp.read_exact(&mut frame).unwrap();
        (frame[0], u16::from_be_bytes([frame[2], frame[3]]))
    })
    .await
    .unwrap()
}

/// A masked client frame header (mask key 0: the payload goes as is).
fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![if fin { 0x80 } else { 0 } | opcode, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

#[actix_web::test]
async fn a_message_over_the_limit_in_two_fragments_closes_with_1009() {
    let app = spawn_app().await;
    let mut bytes = frame_header(false, 1, 33_000);
    bytes.extend(vec![b' '; 33_000]);
    bytes.extend(frame_header(true, 0, 33_000));
    bytes.extend(vec![b' '; 33_000]);
    assert_eq!(raw_socket_close(&app, bytes).await, (0x88, 1009));
}

/// Refused from the header alone: no payload is sent, so the answer cannot wait for one.
#[actix_web::test]
async fn a_frame_header_announcing_a_tebibyte_closes_with_1009_at_once() {
    let app = spawn_app().await;
    let bytes = frame_header(true, 2, 1 << 40);
    assert_eq!(raw_socket_close(&app, bytes).await, (0x88, 1009));
}

#[actix_web::test]
async fn sockets_not_signed_in_are_capped_per_address_and_signing_in_frees_a_slot() {
    let app = spawn_with(|c| c.limits.unauthenticated_sockets_per_address = 3).await;
    let mut key = SoftAuthenticator::new();
    // Signed up on a socket of its own, which then counts no more.
    let (token, _, _signed_up) = signed_up(&app, &mut key, "hana").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws("/ws").await);
    }
    let err = app.ws_with("/ws", &[("Origin", ORIGIN)]).await.err();
    assert!(
        matches!(&err, Some(awc::error::WsClientError::InvalidResponseStatus(s)) if s.as_u16() == 429),
        "{err:?}"
    );
    // A socket with a token does not count; nor does one that signed in.
    let bearer = format!("Bearer {token}");
    app.ws_with("/echo", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .expect("a signed-in socket is not capped");
    let signed_in = login(&mut open[1], &mut key, Some("hana"), false).await;
    assert_eq!(signed_in["verified"], "ok");
    let mut again = app.ws("/ws").await;
    assert_eq!(again.request(json!({"type":"ping"})).await["type"], "pong");
}

#[actix_web::test]
async fn a_ws_socket_that_does_not_sign_in_is_closed_when_it_goes_quiet() {
    let app = spawn_with(|c| c.websocket.unauthenticated_idle_ms = 300).await;
    let mut quiet = app.ws("/ws").await;
    let mut busy = app.ws("/ws").await;
    login_begin(&mut busy, None, false).await;
    let started = std::time::Instant::now();
    assert_eq!(quiet.expect_close().await, 4408);
    assert!(started.elapsed() < Duration::from_secs(3));
    // With a ceremony pending it may take the ceremony's whole timeout.
    assert_eq!(busy.request(json!({"type":"ping"})).await["type"], "pong");
    let mut key = SoftAuthenticator::new();
    let (_, _, mut signed_in) = signed_up(&app, &mut key, "ines").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        signed_in.request(json!({"type":"ping"})).await["type"],
        "pong"
    );
}

#[actix_web::test]
async fn at_the_socket_cap_upgrades_get_503_and_http_is_still_served() {
    let app = spawn_with(|c| c.server.max_sockets = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws("/ws").await);
    }
    let err = app.ws_with("/ws", &[("Origin", ORIGIN)]).await.err();
    assert!(
        matches!(&err, Some(awc::error::WsClientError::InvalidResponseStatus(s)) if s.as_u16() == 503),
        "{err:?}"
    );
    assert_eq!(app.get("/healthz", None).await.0, 200);
    assert_eq!(
        open[0].request(json!({"type":"ping"})).await["type"],
        "pong"
    );
}

/// The real binary under a 300-descriptor limit: the caps follow the limit, so a client that
/// opens sockets until refused gets 503s while health checks and open sockets are still served.
#[actix_web::test]
async fn at_the_open_file_limit_health_checks_and_open_sockets_are_still_served() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let server = crate::persistence::Server::start_with(dir.path(), |cmd| {
        cmd.env("WSAUTHN__SERVER__WORKERS", "2");
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 300,
                    rlim_max: 300,
                };
                match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
    });
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        let attempt = awc::Client::new()
            .ws(format!("ws://{}/ws", server.addr))
            .connect()
            .await;
        match attempt {
            Ok((_, framed)) => open.push(framed),
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => {
                assert_eq!(s.as_u16(), 503);
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            Err(e) => panic!("after {} sockets: {e}", open.len()),
        }
    }
    assert!(
        refused >= 5 && open.len() > 100,
        "{} open, {refused} refused",
        open.len()
    );
    let health = awc::Client::new()
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .expect("healthz answers at the limit");
    assert_eq!(health.status().as_u16(), 200);
    use futures_util::{SinkExt, StreamExt};
    let first = &mut open[0];
    first
        .send(awc::ws::Message::Text(r#"{"type":"ping","id":1}"#.into()))
        .await
        .unwrap();
    match tokio::time::timeout(PATIENCE, first.next()).await {
        Ok(Some(Ok(awc::ws::Frame::Text(t)))) => {
            let reply: serde_json::Value = serde_json::from_slice(&t).unwrap();
            assert_eq!(reply["type"], "pong");
        }
        other => panic!("{other:?}"),
    }
    drop(server);
}

/// webauthn-rs logs unparsable authenticator data byte by byte at ERROR; 50 such requests must
/// cost the log a few lines, not megabytes.
#[actix_web::test]
async fn malformed_authenticator_data_does_not_flood_the_log() {
    use wsauthn::softkey::decode_b64url;
    let dir = tempfile::tempdir().unwrap();
    // The default log filter, as an operator runs it.
    let server = crate::persistence::Server::start_with(dir.path(), |cmd| {
        cmd.env_remove("RUST_LOG");
    });
    let mut key = SoftAuthenticator::new();
    for i in 0..50 {
        let mut ws = ws_at(server.addr, "/ws").await;
        let opts = register_begin(&mut ws, &format!("flood{i}"), false).await;
        let mut credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
        // A well-formed attestation object whose authenticator data (its last member) ends in
        // junk where the credential's COSE key should be.
        let att = credential["response"]["attestationObject"]
            .as_str()
            .unwrap();
        let mut bytes = decode_b64url(att).unwrap();
        let len = bytes.len();
        bytes[len - 40..].fill(0xA5);
        credential["response"]["attestationObject"] = json!(encode_b64url(&bytes));
        let reply = ws
            .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
            .await;
        assert_eq!(reply["type"], "error", "{reply}");
    }
    // Let the writer's 50 ms batches out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = server.lines();
    let bytes: usize = output.iter().map(String::len).sum();
    assert!(
        bytes < 64 * 1024,
        "{bytes} bytes of log for 50 bad requests"
    );
    // The audit log is ours: never held back, one line per failed registration.
    let audited = output
        .iter()
        .filter(|l| l.contains("registration.failed"))
        .count();
    assert_eq!(audited, 50);
    assert!(
        !output.iter().any(|l| l.contains("ERROR")),
        "client mistakes are not errors: {:?}",
        output.iter().find(|l| l.contains("ERROR"))
    );
}

/// Names that read as another's: refused, or the same account as the original.
#[actix_web::test]
async fn lookalike_usernames_cannot_pose_as_another_account() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "josé@example.com").await;
    let mut other = app.ws("/ws").await;
    for invisible in [
        "jos\u{e9}\u{200B}@example.com",
        "jos\u{e9}\u{2060}@example.com",
        "jo\u{00AD}s\u{e9}@example.com",
        "\u{202E}moc.elpmaxe@\u{e9}soj",
    ] {
        let reply = other
            .request(json!({"type":"register.begin","username":invisible}))
            .await;
        assert_error(&reply, "bad_request");
    }
    for same in [
        "jose\u{301}@example.com",
        "ＪＯＳÉ@example.com",
        "JOSÉ@EXAMPLE.COM",
    ] {
        let reply = other
            .request(json!({"type":"register.begin","username":same}))
            .await;
        assert_error(&reply, "username_taken");
        let opts = login_begin(&mut other, Some(same), false).await;
        assert_eq!(
            opts["publicKey"]["allowCredentials"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    let reply = other
        .request(
            json!({"type":"register.begin","username":"mallory","displayName":"Jos\u{e9}\u{202E}"}),
        )
        .await;
    assert_error(&reply, "bad_request");
    let id = encode_b64url(&key.credentials()[0].id);
    let reply = ws
        .request(json!({"type":"passkeys.rename","credentialId":id,"label":"phone\u{2066}"}))
        .await;
    assert_error(&reply, "bad_request");
}

/// After its last passkey is deleted, the account still exists for both ceremonies: its name is
/// taken, sign-in says why it cannot proceed, and a session still signed in can re-enrol.
#[actix_web::test]
async fn an_account_without_passkeys_is_named_the_same_way_by_both_ceremonies() {
    let app = spawn_app().await;
    let (mut old, mut new) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (token, user_id, mut ws) = signed_up(&app, &mut old, "kim").await;
    let id = encode_b64url(&old.credentials()[0].id);
    let deleted = ws
        .request(json!({"type":"passkeys.delete","credentialId":id,"allowLast":true,"keepSessions":true}))
        .await;
    assert_eq!(deleted["type"], "passkeys.delete.result", "{deleted}");
    let mut other = app.ws("/ws").await;
    let reply = other
        .request(json!({"type":"login.begin","username":"kim"}))
        .await;
    assert!(assert_error(&reply, "no_passkey").contains("no passkey"));
    let reply = other
        .request(json!({"type":"register.begin","username":"kim"}))
        .await;
    assert_error(&reply, "username_taken");
    // The session kept can add a new passkey, which then signs in.
    let mut kept = app.ws("/ws").await;
    kept.request(json!({"type":"auth","token":token})).await;
    let added = register(&mut kept, &mut new, "kim", false).await;
    assert_eq!(added["user"]["id"], user_id.as_str(), "{added}");
    let result = login(&mut other, &mut new, Some("kim"), false).await;
    assert_eq!(result["verified"], "ok", "{result}");
}

/// A registration whose authenticator data is rebuilt by `alter(credential id, COSE key,
/// trailing bytes)`: the attestation object is re-encoded ("none" attestation) around it.
fn altered_registration(
    key: &mut SoftAuthenticator,
    opts: &Value,
    alter: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>, &mut Vec<u8>),
) -> Value {
    use wsauthn::softkey::decode_b64url;
    let mut credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let att = decode_b64url(
        credential["response"]["attestationObject"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    // `authData` is the last member: its byte-string header follows the key.
    let at = att.windows(8).position(|w| w == b"authData").unwrap() + 8;
    let (header, len) = match att[at] {
        0x58 => (2, usize::from(att[at + 1])),
        0x59 => (
            3,
            usize::from(u16::from_be_bytes([att[at + 1], att[at + 2]])),
        ),
        other => panic!("unexpected header {other:#x}"),
    };
    let auth_data = &att[at + header..at + header + len];
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let mut id = auth_data[55..55 + id_len].to_vec();
    let mut cose = auth_data[55 + id_len..].to_vec();
    let mut trailing = Vec::new();
    alter(&mut id, &mut cose, &mut trailing);
    let mut data = auth_data[..53].to_vec();
    data.extend_from_slice(&(id.len() as u16).to_be_bytes());
    data.extend(&id);
    data.extend(&cose);
    data.extend(&trailing);
    let mut object = att[..at].to_vec();
    object.push(0x59);
    object.extend_from_slice(&(data.len() as u16).to_be_bytes());
    object.extend(data);
    credential["response"]["attestationObject"] = json!(encode_b64url(&object));
    if !id.is_empty() {
        credential["id"] = json!(encode_b64url(&id));
        credential["rawId"] = json!(encode_b64url(&id));
    }
    credential
}

/// Changes to a registration's credential id, COSE key and trailing bytes.
type Alteration = dyn FnOnce(&mut Vec<u8>, &mut Vec<u8>, &mut Vec<u8>);

/// Each of these would register (and the last could then never sign in); all are refused.
#[actix_web::test]
async fn malformed_registrations_are_refused() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Box<Alteration>)> = vec![
        (
            "a 1024-byte credential id",
            Box::new(|id, _, _| id.resize(1024, 7)),
        ),
        ("an empty credential id", Box::new(|id, _, _| id.clear())),
        (
            "trailing bytes with ED clear",
            Box::new(|_, _, t| t.extend([0, 1, 2])),
        ),
        (
            "alg -35 (ES384) on a P-256 key",
            Box::new(|_, cose, _| {
                // {3: -7} → {3: -35}: 0x03 0x26 → 0x03 0x38 0x22.
                let at = cose.windows(2).position(|w| w == [0x03, 0x26]).unwrap();
                cose.splice(at..at + 2, [0x03, 0x38, 0x22]);
            }),
        ),
    ];
    for (i, (what, alter)) in cases.into_iter().enumerate() {
        let mut ws = app.ws("/ws").await;
        let mut key = SoftAuthenticator::new();
        let opts = register_begin(&mut ws, &format!("odd{i}"), false).await;
        let credential = altered_registration(&mut key, &opts, alter);
        let reply = ws
            .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
            .await;
        assert_error(&reply, "verification_failed");
        assert!(
            app.state
                .store
                .user_by_name(&format!("odd{i}"))
                .await
                .unwrap()
                .is_none(),
            "{what}"
        );
    }
    // The unaltered path still registers, and a 1023-byte id is allowed.
    let mut ws = app.ws("/ws").await;
    let mut key = SoftAuthenticator::new();
    let opts = register_begin(&mut ws, "longest", false).await;
    let credential = altered_registration(&mut key, &opts, |id, _, _| id.resize(1023, 7));
    let reply = ws
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(reply["verified"], "ok", "{reply}");
}
