//! An `https` upstream: reached over TLS, HTTP and WebSocket alike, and only with a
//! certificate the server trusts (the real binary, with `SSL_CERT_FILE` naming the test's own
//! certificate authority, or without it).

use std::process::Command;

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use super::*;
use crate::persistence::Server;

/// A self-signed certificate for `localhost`: (directory, cert.pem, key.pem).
fn certificate() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem").display().to_string();
    let key = dir.path().join("key.pem").display().to_string();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-keyout", &key, "-out", &cert])
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (dir, cert, key)
}

/// The binary, proxying `/game` to `https://localhost:<port>`; `trust`: with `SSL_CERT_FILE`.
fn binary(data: &std::path::Path, port: u16, trust: Option<&str>) -> Server {
    std::fs::create_dir_all(data).unwrap();
    let config = data.join("wsauthn.toml");
    std::fs::write(
        &config,
        format!(
            "[[proxy]]\npath = \"/game\"\nupstream = \"https://localhost:{port}\"\n\n\
             [endpoints.paths]\n\"/game\" = \"required\"\n\"/game/*\" = \"required\"\n"
        ),
    )
    .unwrap();
    Server::start_with(&data.join("db"), |cmd| {
        cmd.arg("--config").arg(&config);
        match trust {
            Some(file) => cmd.env("SSL_CERT_FILE", file),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
    })
}

async fn sign_up(addr: std::net::SocketAddr) -> String {
    let mut key = SoftAuthenticator::new();
    let mut ws = ws_at(addr, "/ws").await;
    let result = register(&mut ws, &mut key, "tess", true).await;
    result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn an_https_upstream_is_reached_over_tls_only_with_a_trusted_certificate() {
    let (dir, cert, key) = certificate();
    let Some(mut upstream) = Upstream::start_with(&[("CERT", &cert), ("KEY", &key)]) else {
        return;
    };
    let trusted = binary(&dir.path().join("trusted"), upstream.port, Some(&cert));
    let token = sign_up(trusted.addr).await;
    let mut res = awc::Client::new()
        .get(format!("http://{}/game/tls?x=1", trusted.addr))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let seen: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen["path"], "/game/tls?x=1");
    assert_eq!(upstream.event("http").await["path"], "/game/tls?x=1");
    let (_, framed) = awc::Client::new()
        .ws(format!("ws://{}/game/ws", trusted.addr))
        .header("Origin", ORIGIN)
        .bearer_auth(&token)
        .connect()
        .await
        .expect("the proxied socket opens");
    let mut ws = Ws::from_framed(framed);
    assert_eq!(ws.recv().await["type"], "hello");
    ws.send(json!({"over":"tls"})).await;
    assert_eq!(ws.recv().await, json!({"over":"tls"}));

    // Without the certificate authority, the upstream is not trusted: 502, nothing reaches it.
    let untrusted = binary(&dir.path().join("untrusted"), upstream.port, None);
    let token = sign_up(untrusted.addr).await;
    let res = awc::Client::new()
        .get(format!("http://{}/game/tls", untrusted.addr))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 502);
}
