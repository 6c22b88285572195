//! Tokens across nodes on one PostgreSQL (docs/cluster.md), where they are looked up: an
//! application's own route that takes its caller from the `Authenticated` extractor, in an
//! application that does not wrap the policy middleware, takes a token another node issued
//! and refuses a revoked one; so does the application's own socket, by its upgrade's header.
//! A node asks the database once for a token it does not have (the negative cache), for a
//! minute, and still takes tokens issued after that.
//!
//! Needs PostgreSQL: skipped loudly without it outside CI, failed under `CI=true`.

use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App, HttpServer};
use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;
use wsauthn::{AuthPolicy, Authenticated, Config, Wsauthn};

use crate::helpers::*;

/// The application's own route: who is calling, by the extractor alone.
async fn whoami(caller: Authenticated) -> String {
    caller.user.name.clone()
}

/// A node as an application embeds it (docs/embedding.md), on the database `url`, that mounts
/// wsauthn without `.wrap(TokenPolicy)` and adds its own `/whoami` and its own socket `/mine`
/// (an echo, tokens required). Returns its address and the handle that stops it.
async fn embedded_node(
    url: &str,
    dir: &tempfile::TempDir,
) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let mut config = Config::for_tests(dir.path()).expect("embedded config");
    config.server.static_dir = "".into();
    config.store.backend = wsauthn::store::BackendKind::Postgres;
    config.store.postgres_url = url.to_owned();
    let auth = Wsauthn::builder(config)
        .policy("/mine", AuthPolicy::Required)
        .build()
        .await
        .expect("built");
    let listener = TcpListener::bind("127.0.0.1:0").expect("port 0");
    let addr = listener.local_addr().expect("address");
    let server = HttpServer::new(move || {
        let auth = auth.clone();
        App::new()
            .configure(|cfg| auth.configure(cfg))
            .route("/whoami", web::get().to(whoami))
            .route("/mine", wsauthn::socket(|_req| wsauthn::ws::builtin::Echo))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listens")
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, handle)
}

/// A node and an embedded application node on one fresh database (with the data directory
/// that keeps the latter alive); `None` (skipped loudly, a failure under `CI=true`) without
/// PostgreSQL.
async fn node_and_embedded_node() -> Option<(
    TestApp,
    SocketAddr,
    actix_web::dev::ServerHandle,
    tempfile::TempDir,
)> {
    let url = crate::pg_server::database_or_skip("the cluster tests").await?;
    let a = spawn_node(&url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (b, server) = embedded_node(&url, &dir).await;
    Some((a, b, server, dir))
}

/// `GET path` on `addr`: the status, the `WWW-Authenticate` challenge and the body.
async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = awc::Client::new().get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let mut res = req.send().await.expect("request");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let body = res.body().await.expect("body");
    let body = String::from_utf8_lossy(&body).into_owned();
    (res.status().as_u16(), challenge, body)
}

/// Opens `path` on `addr` with `Authorization: Bearer`; the status of a refused upgrade.
async fn upgrade_with(addr: SocketAddr, path: &str, token: &str) -> Result<Ws, u16> {
    let connected = awc::Client::new()
        .ws(format!("ws://{addr}{path}"))
        .header("Origin", ORIGIN)
        .bearer_auth(token)
        .connect()
        .await;
    match connected {
        Ok((_, framed)) => Ok(Ws::from_framed(framed)),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("cannot open {path}: {e}"),
    }
}

/// Opens `/echo` on `addr` and signs it in with `token` by its first frame.
async fn echo_at(addr: SocketAddr, token: &str) -> Ws {
    let mut ws = ws_at(addr, "/echo").await;
    let reply = ws.request(json!({"type":"auth","token":token})).await;
    assert_eq!(reply["type"], "auth.result", "{reply}");
    ws
}

#[actix_rt::test]
async fn an_applications_extractor_without_the_middleware_takes_another_nodes_token_not_a_revoked_one(
) {
    let Some((a, b, server, _dir)) = node_and_embedded_node().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws_a) = signed_up(&a, &mut key, "rhea").await;

    let (status, challenge, body) = get(b, "/whoami", Some(&token)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "rhea"),
        "a token issued on node a is the caller of b's own route ({challenge})"
    );
    assert_eq!(get(b, "/whoami", Some(&token)).await.0, 200, "now cached");
    let (status, challenge, _) = get(b, "/whoami", None).await;
    assert_eq!(status, 401);
    assert!(!challenge.contains("invalid_token"), "{challenge}");

    // Revoked on a while b has it cached: b's sockets on it closing show b has applied it.
    let mut on_b = echo_at(b, &token).await;
    let out = ws_a.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    assert_eq!(on_b.expect_close().await, 4401);
    let (status, challenge, _) = get(b, "/whoami", Some(&token)).await;
    assert_eq!(status, 401, "the revoked token is refused on b");
    assert!(challenge.contains("invalid_token"), "{challenge}");

    // Revoked on a before b ever saw it: b asks the database, which no longer has it.
    let mut other = SoftAuthenticator::new();
    let (unseen, _, mut ws_other) = signed_up(&a, &mut other, "sol").await;
    let out = ws_other.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    let (status, challenge, _) = get(b, "/whoami", Some(&unseen)).await;
    assert_eq!(
        status, 401,
        "a token revoked before b saw it is refused on b"
    );
    assert!(challenge.contains("invalid_token"), "{challenge}");
    server.stop(true).await;
}

#[actix_rt::test]
async fn an_applications_socket_without_the_middleware_takes_another_nodes_token_by_its_header() {
    let Some((a, b, server, _dir)) = node_and_embedded_node().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws_a) = signed_up(&a, &mut key, "tove").await;

    let mut mine = upgrade_with(b, "/mine", &token)
        .await
        .unwrap_or_else(|status| panic!("a token from node a opens b's socket: {status}"));
    mine.send(json!({"hi":1})).await;
    assert_eq!(mine.recv().await, json!({"hi":1}));
    let out = ws_a.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    assert_eq!(mine.expect_close().await, 4401, "revoked on a: closed on b");
    assert_eq!(
        upgrade_with(b, "/mine", &token).await.err(),
        Some(401),
        "and refused there from then on"
    );
    server.stop(true).await;
}

/// A node on the database `url` that serves `/metrics`.
async fn node_with_metrics(url: &str) -> TestApp {
    let url = url.to_owned();
    spawn_with(move |c| {
        c.store.backend = wsauthn::store::BackendKind::Postgres;
        c.store.postgres_url = url;
        c.metrics.enabled = true;
    })
    .await
}

/// `app`'s lookups of tokens in the database and those its negative cache answered, as its
/// `/metrics` says.
async fn lookups(app: &TestApp) -> (u64, u64) {
    let mut res = awc::Client::new()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    let body = res.body().await.expect("body");
    let text = String::from_utf8_lossy(&body);
    let series = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    (
        series("wsauthn_token_store_lookups_total"),
        series("wsauthn_token_negative_cache_hits_total"),
    )
}

async fn me(app: &TestApp, token: &str) -> u16 {
    app.get("/api/me", Some(token)).await.0
}

#[actix_rt::test]
async fn a_node_asks_the_database_once_for_a_token_it_does_not_have_and_still_takes_new_ones() {
    let Some(url) = crate::pg_server::database_or_skip("the cluster tests").await else {
        return;
    };
    let a = spawn_node(&url).await;
    let b = node_with_metrics(&url).await;
    let mut key = SoftAuthenticator::new();
    let (revoked, _, mut ws_a) = signed_up(&a, &mut key, "ulla").await;
    let out = ws_a.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    assert_eq!(lookups(&b).await, (0, 0));

    assert_eq!(me(&b, &revoked).await, 401);
    assert_eq!(lookups(&b).await, (1, 0), "b asked the database");
    assert_eq!(me(&b, &revoked).await, 401);
    assert_eq!(lookups(&b).await, (1, 1), "and not again");

    // The database itself: with `sessions` locked, a query for the token would wait.
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL");
    actix_web::rt::spawn(connection);
    admin
        .batch_execute("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let request = awc::Client::builder()
        .timeout(2 * PATIENCE)
        .finish()
        .get(b.url("/api/me"))
        .bearer_auth(&revoked)
        .send();
    let answered = tokio::time::timeout(PATIENCE, request).await;
    admin.batch_execute("ROLLBACK").await.expect("unlock");
    let status = answered
        .ok()
        .and_then(Result::ok)
        .map(|r| r.status().as_u16());
    assert_eq!(
        status,
        Some(401),
        "b waited on the locked table: it asked again"
    );

    // Any well-formed token the database does not have, likewise.
    let never = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
    .to_uppercase();
    assert_eq!(me(&b, &never).await, 401);
    assert_eq!(me(&b, &never).await, 401);
    assert_eq!(lookups(&b).await, (2, 3));

    // A token issued after those entries is taken (one query, then cached).
    let mut other = SoftAuthenticator::new();
    let (fresh, _, _ws) = signed_up(&a, &mut other, "vera").await;
    assert_eq!(me(&b, &fresh).await, 200, "a new token from a works on b");
    assert_eq!(me(&b, &fresh).await, 200);
    assert_eq!(lookups(&b).await, (3, 3));

    // After a minute the database is asked again.
    b.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(me(&b, &revoked).await, 401);
    assert_eq!(me(&b, &revoked).await, 401);
    assert_eq!(lookups(&b).await, (4, 4));
}

#[actix_rt::test]
async fn wsauthns_own_routes_without_the_middleware_take_another_nodes_token() {
    let Some((a, b, server, _dir)) = node_and_embedded_node().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&a, &mut key, "tess").await;
    // Never seen on b, whose application mounts wsauthn's routes without TokenPolicy.
    let (status, _, body) = get(b, "/api/sessions", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sessions\""), "{body}");
    server.stop(true).await;
}
