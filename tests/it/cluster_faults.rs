//! A cluster's failures (docs/cluster.md): a node cut off from PostgreSQL refuses every token,
//! cached ones included, says so in `/readyz`, and once it is back closes with 4401 the sockets
//! of sessions revoked meanwhile; a PostgreSQL restart is the same for every node at once; a
//! node killed with kill -9 loses nothing that was acknowledged.
//!
//! A node is cut off by a TCP relay between it and PostgreSQL that the test opens and shuts
//! (a partition, where `pg_terminate_backend` in `cluster.rs` is a killed backend).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

/// A TCP relay to PostgreSQL on `port` that can be cut (every connection dropped, new ones
/// refused) and healed.
struct Relay {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(port: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (o, l) = (open.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::Acquire) {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                l.lock().unwrap().push(link);
            }
        });
        Relay { addr, open, links }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::Release);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn heal(&self) {
        self.open.store(true, Ordering::Release);
    }
}

/// Two nodes on one fresh database: `a` connected directly, `b` through a [`Relay`] the test
/// can cut; `None` (skipped loudly, a failure under `CI=true`) without PostgreSQL.
async fn node_and_relayed_node() -> Option<(TestApp, TestApp, Relay)> {
    let url = crate::pg_server::database_or_skip("the cluster tests").await?;
    let server = crate::pg_server::server().expect("the server database_or_skip found");
    let relay = Relay::start(server.port).await;
    let db = url.rsplit('/').next().expect("a database name");
    let a = spawn_node(&url).await;
    let b = spawn_node(&format!("postgres://postgres@{}/{db}", relay.addr)).await;
    Some((a, b, relay))
}

#[actix_rt::test]
async fn a_node_cut_off_from_the_database_refuses_every_token_then_closes_what_was_revoked() {
    let Some((a, b, relay)) = node_and_relayed_node().await else {
        return;
    };
    let (mut kp, mut kq) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (revoked, _, mut ws_p) = signed_up(&a, &mut kp, "pat").await;
    let (kept, _, _ws_q) = signed_up(&a, &mut kq, "quinn").await;
    let mut doomed = echo_signed_in(&b, &revoked).await;
    assert_eq!(
        b.get("/api/me", Some(&kept)).await.0,
        200,
        "cached on b now"
    );

    relay.cut();
    assert_eq!(ready_becomes(&b, 503).await, "revocations_unconfirmed");
    assert_eq!(
        b.get("/api/me", Some(&kept)).await.0,
        401,
        "fail closed: a cached token is refused while b cannot confirm it"
    );
    assert_eq!(
        a.get("/api/me", Some(&kept)).await.0,
        200,
        "a is unaffected"
    );
    // Revoked while b is cut off.
    let out = ws_p.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");

    relay.heal();
    let code = tokio::time::timeout(PATIENCE, doomed.expect_close()).await;
    assert_eq!(code.expect("closed once b caught up"), 4401);
    ready_becomes(&b, 200).await;
    assert_eq!(b.get("/api/me", Some(&kept)).await.0, 200);
    assert_eq!(b.get("/api/me", Some(&revoked)).await.0, 401);
}

#[actix_rt::test]
async fn after_a_postgresql_restart_every_node_confirms_tokens_again_and_follows_revocations() {
    let server = match crate::pg_server::start_private() {
        Ok(server) => server,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL is missing ({why}), and CI must run the cluster tests")
        }
        Err(why) => return eprintln!("SKIPPED the restart test: PostgreSQL is missing ({why})"),
    };
    let url = server.database("restart").await;
    let (a, b) = (spawn_node(&url).await, spawn_node(&url).await);
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws) = signed_up(&a, &mut key, "rhea").await;
    let mut on_b = echo_signed_in(&b, &token).await;

    server.stop();
    assert_eq!(ready_becomes(&b, 503).await, "revocations_unconfirmed");
    assert_eq!(b.get("/api/me", Some(&token)).await.0, 401, "fail closed");
    server.restart().unwrap();
    ready_becomes(&a, 200).await;
    ready_becomes(&b, 200).await;
    assert_eq!(b.get("/api/me", Some(&token)).await.0, 200);
    let ping = on_b.request(json!({"type":"ping","id":1})).await;
    assert_ne!(
        ping["type"], "error",
        "the socket outlived the restart: {ping}"
    );
    // The pool's connections died with the server; the next statements reconnect.
    let mut out = ws.request(json!({"type":"logout","id":9})).await;
    if out["type"] != "logout.result" {
        out = ws.request(json!({"type":"logout","id":10})).await;
    }
    assert_eq!(out["type"], "logout.result", "{out}");
    let code = tokio::time::timeout(PATIENCE, on_b.expect_close()).await;
    assert_eq!(code.expect("closed"), 4401);
}

#[actix_rt::test]
async fn a_node_killed_with_kill_9_loses_nothing_and_another_signs_its_users_in() {
    let Some(url) = crate::pg_server::database_or_skip("the cluster tests").await else {
        return;
    };
    let on_db = |cmd: &mut std::process::Command| {
        cmd.env("WSAUTHN__STORE__BACKEND", "postgres")
            .env("WSAUTHN__STORE__POSTGRES_URL", &url);
    };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let doomed = crate::binary::Server::start_with(dirs.0.path(), on_db);
    let other = crate::binary::Server::start_with(dirs.1.path(), on_db);
    let mut key = SoftAuthenticator::new();
    let mut ws = ws_at(doomed.addr, "/ws").await;
    let result = register(&mut ws, &mut key, "sam", true).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    doomed.kill();
    let (status, me) = crate::persistence::http_at(other.addr, "GET", "/api/me", &token).await;
    assert_eq!((status, me["user"]["name"].as_str()), (200, Some("sam")));
    let mut ws = ws_at(other.addr, "/ws").await;
    assert_eq!(
        login(&mut ws, &mut key, Some("sam"), false).await["verified"],
        "ok"
    );
}

#[actix_rt::test]
async fn a_revocation_that_cannot_commit_is_not_acknowledged_and_can_be_made_again() {
    let Some((a, b, relay)) = node_and_relayed_node().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws_b) = signed_up(&b, &mut key, "cato").await;

    relay.cut();
    let out = ws_b.request(json!({"type":"logout","id":9})).await;
    assert_eq!(
        out["type"], "error",
        "a logout that did not commit is not acknowledged: {out}"
    );
    assert_eq!(out["code"], "internal", "{out}");
    relay.heal();
    ready_becomes(&b, 200).await;
    assert_eq!(
        a.get("/api/me", Some(&token)).await.0,
        200,
        "nothing was revoked, as the answer said"
    );
    let mut ws = b.ws("/ws").await;
    let reply = ws
        .request(json!({"type":"auth","token":token,"id":1}))
        .await;
    assert_eq!(reply["type"], "auth.result", "b takes it again: {reply}");
    let out = ws.request(json!({"type":"logout","id":2})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    assert_eq!(a.get("/api/me", Some(&token)).await.0, 401);
    assert_eq!(b.get("/api/me", Some(&token)).await.0, 401);
}
