//! Embedding: the example programs (`examples/`) run end to end over real sockets, the README's
//! snippet under the runtime `#[tokio::main]` builds, and the documents show the programs the
//! suite runs, character for character.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;
use wsauthn::Config;

use crate::helpers::*;

#[allow(dead_code)]
#[path = "../../examples/game.rs"]
mod game;
#[allow(dead_code)]
#[path = "../../examples/readme.rs"]
mod readme;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A config for an example server on `dir`, with what `configure` changes.
fn config(dir: &tempfile::TempDir, configure: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::for_tests(dir.path()).expect("embedded config");
    config.server.static_dir = "".into();
    configure(&mut config);
    config
}

/// Signs a new user up on `addr`'s `/ws`; returns the token and the user id.
async fn sign_up(addr: SocketAddr, name: &str) -> (String, String) {
    let mut key = SoftAuthenticator::new();
    let mut ws = ws_at(addr, "/ws").await;
    let result = register(&mut ws, &mut key, name, true).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, result["user"]["id"].as_str().unwrap().to_owned())
}

async fn http(method: &str, addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, Value) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = awc::Client::new().request(method, format!("http://{addr}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let mut res = req.send().await.expect("request");
    let body = res.body().await.expect("body");
    let json =
        serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    (res.status().as_u16(), json)
}

/// Opens `path` on `addr` with `Authorization: Bearer`.
async fn ws_with_token(addr: SocketAddr, path: &str, token: &str) -> Ws {
    let (_, framed) = awc::Client::new()
        .ws(format!("ws://{addr}{path}"))
        .header("Origin", ORIGIN)
        .bearer_auth(token)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    Ws::from_framed(framed)
}

#[actix_web::test]
async fn the_game_example_serves_its_own_socket_and_routes_behind_wsauthn() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    actix_web::rt::spawn(game::serve(config(&dir, |_| {}), listener));
    let (ann, _) = sign_up(addr, "ann").await;
    let (bob, _) = sign_up(addr, "bob").await;

    // The game's HTTP route: its policy and the extractor.
    assert_eq!(http("GET", addr, "/scores", None).await.0, 401);
    let (status, body) = http("GET", addr, "/scores", Some(&ann)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["you"], "ann");
    assert!(body["expiresAt"].as_u64().unwrap() > 0);

    // The game's socket: a header token, or a first auth frame answered by wsauthn.
    let mut a = ws_with_token(addr, "/play", &ann).await;
    assert_eq!(
        a.recv().await,
        json!({"type":"welcome","player":"ann","scores":{}})
    );
    let mut b = ws_at(addr, "/play").await;
    let result = b.request(json!({"type":"auth","id":1,"token":bob})).await;
    assert_eq!(result["type"], "auth.result", "{result}");
    assert_eq!(b.recv().await["type"], "welcome");
    let mut early = ws_at(addr, "/play").await;
    early.send(json!({"type":"click"})).await;
    assert_eq!(early.expect_close().await, 4401, "no click before auth");

    a.send(json!({"type":"click"})).await;
    let news = json!({"type":"score","player":"ann","score":1});
    assert_eq!(a.recv().await, news);
    assert_eq!(b.recv().await, news);
    assert_eq!(
        http("GET", addr, "/scores", Some(&bob)).await.1["scores"],
        json!({"ann":1})
    );

    // The game ends a session through its own handle on wsauthn: the player's socket closes.
    assert_eq!(http("POST", addr, "/resign", Some(&bob)).await.0, 204);
    assert_eq!(b.expect_close().await, 4401);
    assert_eq!(http("GET", addr, "/scores", Some(&bob)).await.0, 401);
    a.send(json!({"type":"click"})).await;
    assert_eq!(a.recv().await["score"], 2, "other players play on");
}

#[actix_web::test]
async fn the_games_socket_is_warned_before_its_token_expires_and_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = config(&dir, |c| {
        c.tokens.lifetime_secs = 2;
        c.tokens.expiry_warning_secs = 1;
    });
    actix_web::rt::spawn(game::serve(config, listener));
    let (token, _) = sign_up(addr, "cyd").await;
    let mut ws = ws_with_token(addr, "/play", &token).await;
    assert_eq!(ws.recv().await["type"], "welcome");
    assert_eq!(ws.recv().await["type"], "expiring");
    assert_eq!(ws.expect_close().await, 4401);
}

/// Runs `serve` the way `#[tokio::main]` does: on a multi-threaded Tokio runtime of its own,
/// with no actix system and no `LocalSet`.
fn under_tokio_main<F>(serve: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = std::io::Result<()>>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        if let Err(e) = runtime.block_on(serve()) {
            panic!("the server failed: {e}");
        }
    });
}

#[actix_web::test]
async fn the_readme_snippet_serves_under_tokio_main() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = config(&dir, |_| {});
    under_tokio_main(move || readme::serve(config, listener));
    let (token, _) = sign_up(addr, "dee").await;
    assert_eq!(http("GET", addr, "/hello", None).await.0, 401);
    assert_eq!(
        http("GET", addr, "/hello", Some(&token)).await,
        (200, json!("hello, dee"))
    );
    // Sockets, with their timers, run there too.
    let mut echo = ws_with_token(addr, "/echo", &token).await;
    echo.send(json!({"ping":1})).await;
    assert_eq!(echo.recv().await, json!({"ping":1}));
}

#[actix_web::test]
async fn the_whole_server_runs_under_tokio_main_too() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = config(&dir, |_| {});
    under_tokio_main(move || async move {
        let app = wsauthn::App::builder(config)
            .listener(listener)
            .build()
            .await;
        app.map_err(std::io::Error::other)?.run().await
    });
    let (token, _) = sign_up(addr, "eve").await;
    assert_eq!(http("GET", addr, "/api/me", Some(&token)).await.0, 200);
}

#[test]
fn building_without_a_tokio_runtime_is_an_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let build = wsauthn::Wsauthn::builder(config(&dir, |_| {})).build();
    let mut build = std::pin::pin!(build);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match build.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(e)) => {
            let message = e.to_string();
            assert!(message.contains("#[tokio::main]"), "{message}");
            assert!(message.contains("#[actix_web::main]"), "{message}");
        }
        std::task::Poll::Ready(Ok(_)) => panic!("built without a runtime"),
        std::task::Poll::Pending => panic!("waited for a runtime that is not there"),
    }
}

/// The ```rust blocks of a Markdown file.
fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start().starts_with("```")) {
            (None, true) if line.trim_start() == "```rust" => current = Some(String::new()),
            (Some(block), true) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_readme_shows_the_snippet_the_suite_runs() {
    let example = read("examples/readme.rs");
    let snippet = example
        .split("// README: begin\n")
        .nth(1)
        .and_then(|rest| rest.split("// README: end").next())
        .expect("markers in examples/readme.rs");
    let blocks = rust_blocks(&read("README.md"));
    assert!(
        blocks.iter().any(|b| b == snippet),
        "README.md must show examples/readme.rs between its markers, exactly"
    );
}

#[test]
fn the_embedding_guide_shows_the_programs_the_suite_runs() {
    let guide = read("docs/embedding.md");
    let blocks = rust_blocks(&guide);
    let game = read("examples/game.rs");
    assert!(
        blocks.contains(&game),
        "docs/embedding.md must show examples/game.rs whole"
    );
    for block in &blocks {
        assert!(
            game.contains(block.as_str()) || read("examples/readme.rs").contains(block.as_str()),
            "a block of docs/embedding.md that no example holds:\n{block}"
        );
    }
}

#[actix_web::test]
async fn the_policy_middleware_refuses_everything_when_wsauthn_is_not_mounted() {
    use actix_web::{test, web, App, HttpResponse};
    let app = test::init_service(
        App::new()
            .wrap(wsauthn::TokenPolicy)
            .route("/open", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/open").to_request()).await;
    assert_eq!(res.status(), 500, "fails closed");
}

#[actix_web::test]
async fn an_applications_socket_checks_its_token_even_without_the_policy_middleware() {
    use actix_web::{App, HttpServer};
    let dir = tempfile::tempdir().unwrap();
    let auth = wsauthn::Wsauthn::builder(config(&dir, |_| {}))
        .policy("/mine", wsauthn::AuthPolicy::Required)
        .build()
        .await
        .expect("built");
    let mounted = auth.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        let auth = mounted.clone();
        // No TokenPolicy: the socket route checks the header itself.
        App::new()
            .configure(|cfg| auth.configure(cfg))
            .route("/mine", wsauthn::socket(|_req| wsauthn::ws::builtin::Echo))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    let (token, _) = sign_up(addr, "fay").await;
    let refused = awc::Client::new()
        .ws(format!("ws://{addr}/mine"))
        .bearer_auth("F".repeat(64))
        .connect()
        .await;
    assert!(matches!(
        refused,
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) if s == 401
    ));
    let mut ws = ws_with_token(addr, "/mine", &token).await;
    ws.send(json!({"hi":1})).await;
    assert_eq!(ws.recv().await, json!({"hi":1}));
    let mut frame_first = ws_at(addr, "/mine").await;
    frame_first.send(json!({"hi":2})).await;
    assert_eq!(frame_first.expect_close().await, 4401);
}
