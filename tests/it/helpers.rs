#![allow(dead_code)]
//! Test harness: a real server on port 0 with a temporary sled directory, and real WebSocket and
//! HTTP clients (awc). `spawn_app` is the zero-to-production pattern.

use std::net::SocketAddr;
use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{self, CloseCode, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use wsauthn::clock::ManualClock;
use wsauthn::softkey::SoftAuthenticator;
use wsauthn::state::AppState;
use wsauthn::{App, Config, UnauthorizedHook};

pub const ORIGIN: &str = "http://localhost:8080";
/// The User-Agent of the test WebSocket client (sessions record it).
pub const WS_USER_AGENT: &str = "wsauthn-tests-ws/1.0";
/// How long any single wait in a test may take before it fails (not a readiness sleep).
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub state: AppState,
    pub handle: wsauthn::ShutdownHandle,
    pub dir: std::sync::Arc<tempfile::TempDir>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn clock_secs(&self) -> u64 {
        use wsauthn::clock::Clock;
        self.clock.now_ms() / 1000
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Opens a WebSocket with the browser origin.
    pub async fn ws(&self, path: &str) -> Ws {
        self.ws_with(path, &[("Origin", ORIGIN)])
            .await
            .unwrap_or_else(|e| panic!("cannot open {path}: {e}"))
    }

    /// Opens a WebSocket with the given headers (`User-Agent` defaults to [`WS_USER_AGENT`]); the
    /// error says why the upgrade failed.
    pub async fn ws_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Ws, awc::error::WsClientError> {
        let mut req = awc::Client::new()
            .ws(self.ws_url(path))
            .max_frame_size(1 << 20);
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
        {
            req = req.header("User-Agent", WS_USER_AGENT);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (_, framed) = req.connect().await?;
        Ok(Ws { framed })
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (u16, Option<String>, Value) {
        self.call("GET", path, bearer, None).await
    }

    /// Any HTTP request, with an optional Bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Option<String>, Value) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = awc::Client::new()
            .request(method, self.url(path))
            .insert_header(("User-Agent", "wsauthn-tests/1.0"));
        if let Some(token) = bearer {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut res = match body {
            Some(body) => req.send_json(&body).await,
            None => req.send().await,
        }
        .expect("http request");
        let status = res.status().as_u16();
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.body().await.expect("body");
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, www, json)
    }

    /// Stops the server and waits until it has released the data directory.
    pub async fn stop(self) -> std::sync::Arc<tempfile::TempDir> {
        let TestApp {
            state, handle, dir, ..
        } = self;
        drop(state);
        handle.shutdown().await;
        dir
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
    spawn_in(dir, configure, None::<wsauthn::endpoints::DisconnectHook>).await
}

pub async fn spawn_in<H: UnauthorizedHook>(
    dir: std::sync::Arc<tempfile::TempDir>,
    configure: impl FnOnce(&mut Config),
    hook: Option<H>,
) -> TestApp {
    let mut config = Config::for_tests(dir.path()).expect("embedded config");
    on_test_backend(&mut config, dir.path()).await;
    configure(&mut config);
    config.validate().expect("test config is valid");
    let clock = ManualClock::new();
    let mut builder = App::builder(config).clock(std::sync::Arc::new(clock.clone()));
    if let Some(hook) = hook {
        builder = builder.unauthorized_hook(hook);
    }
    start(builder, clock, dir).await
}

/// A node of a cluster: a server on the PostgreSQL database `url` (docs/cluster.md).
pub async fn spawn_node(url: &str) -> TestApp {
    let url = url.to_owned();
    spawn_with(move |c| {
        c.store.backend = wsauthn::store::BackendKind::Postgres;
        c.store.postgres_url = url;
    })
    .await
}

/// `N` nodes on one fresh PostgreSQL database, or `None` (skipped loudly; a failure under
/// `CI=true`) where PostgreSQL cannot run.
pub async fn nodes<const N: usize>() -> Option<[TestApp; N]> {
    let url = crate::pg_server::database_or_skip("the cluster tests").await?;
    let mut nodes = Vec::with_capacity(N);
    for _ in 0..N {
        nodes.push(spawn_node(&url).await);
    }
    nodes.try_into().ok()
}

/// Waits (up to [`PATIENCE`]) until `/readyz` on `app` answers `status` (with `reason`, when
/// 503: the store's own probe may fail first); returns its reason.
pub async fn ready_becomes(app: &TestApp, status: u16) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (got, _, body) = app.get("/readyz", None).await;
        let reason = body["reason"].as_str().unwrap_or("").to_owned();
        if got == status && (status == 200 || reason == "revocations_unconfirmed") {
            return reason;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed {got}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Opens `/echo` on `app` and signs it in with `token` by its first frame.
pub async fn echo_signed_in(app: &TestApp, token: &str) -> Ws {
    let mut ws = app.ws("/echo").await;
    let reply = ws.request(json!({"type":"auth","token":token})).await;
    assert_eq!(reply["type"], "auth.result", "{reply}");
    ws
}

/// Points the config at the backend this test binary runs on: sled in `dir` (`tests/it`), or
/// a PostgreSQL database of `dir`'s own (`tests/it_postgres.rs`), the same one each time the
/// same `dir` is used, so a restart finds its data. Without PostgreSQL (outside CI) the
/// PostgreSQL binary says so loudly and runs on sled.
pub async fn on_test_backend(config: &mut Config, dir: &std::path::Path) {
    if !crate::ON_POSTGRES {
        return;
    }
    if let Some(url) = postgres_for(dir).await {
        config.store.backend = wsauthn::store::BackendKind::Postgres;
        config.store.postgres_url = url;
    }
}

/// The store a server on `dir` used, opened again (sled: only once that server released it).
pub async fn reopen_store(dir: &std::path::Path) -> wsauthn::store::Store {
    let url = match crate::ON_POSTGRES {
        true => postgres_for(dir).await,
        false => None,
    };
    match url {
        Some(url) => wsauthn::store::Store::from_postgres(
            wsauthn::store::PgStore::connect(&url)
                .await
                .expect("PostgreSQL"),
        ),
        None => wsauthn::store::Store::open(dir).expect("the store was released"),
    }
}

/// [`postgres_for`] from synchronous code (the binary's tests): `None` on sled.
pub fn postgres_for_blocking(dir: &std::path::Path) -> Option<String> {
    if !crate::ON_POSTGRES {
        return None;
    }
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(postgres_for(&dir))
    })
    .join()
    .expect("database for the binary")
}

/// The database of `dir` on the test PostgreSQL (see [`on_test_backend`]).
pub async fn postgres_for(dir: &std::path::Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let server = match crate::pg_server::server() {
        Ok(server) => server,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL is missing ({why}), and CI must run the suite on it")
        }
        Err(why) => {
            eprintln!("NOT ON POSTGRES: PostgreSQL is missing ({why}); this test ran on sled");
            return None;
        }
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    Some(
        server
            .database(&format!("d_{:016x}", hasher.finish()))
            .await,
    )
}

/// Builds and runs the server in the test's runtime.
async fn start(
    builder: wsauthn::AppBuilder,
    clock: ManualClock,
    dir: std::sync::Arc<tempfile::TempDir>,
) -> TestApp {
    let app = builder.build().await.expect("server starts");
    let addr = app.local_addr();
    let state = app.state().clone();
    let handle = app.shutdown_handle();
    actix_web::rt::spawn(app.run());
    TestApp {
        addr,
        clock,
        state,
        handle,
        dir,
    }
}

/// What a test client sees next on a socket.
#[derive(Debug)]
pub enum Event {
    Text(Value),
    Raw(String),
    Binary(Vec<u8>),
    Close(Option<u16>, String),
    Eof,
}

pub struct Ws {
    framed: Framed<BoxedSocket, ws::Codec>,
}

/// The sending half of a split [`Ws`].
pub type WsSink = futures_util::stream::SplitSink<Framed<BoxedSocket, ws::Codec>, Message>;
/// The reading half of a split [`Ws`].
pub type WsStream = futures_util::stream::SplitStream<Framed<BoxedSocket, ws::Codec>>;

impl Ws {
    /// Wraps a socket opened some other way.
    pub fn from_framed(framed: Framed<BoxedSocket, ws::Codec>) -> Ws {
        Ws { framed }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.framed
            .send(Message::Text(text.into().into()))
            .await
            .expect("send");
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.framed
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// The next frame, answering pings (as every client library does) unless `answer_pings` is
    /// false.
    pub async fn next_event(&mut self, answer_pings: bool) -> Event {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.framed.next())
                .await
                .expect("timed out waiting for a frame");
            match frame {
                None => return Event::Eof,
                Some(Err(_)) => return Event::Eof,
                Some(Ok(Frame::Text(bytes))) => {
                    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
                    return match serde_json::from_str(&text) {
                        Ok(v) => Event::Text(v),
                        Err(_) => Event::Raw(text),
                    };
                }
                Some(Ok(Frame::Binary(bytes))) => return Event::Binary(bytes.to_vec()),
                Some(Ok(Frame::Close(reason))) => {
                    // Answered as every client library does, so the server can end the
                    // connection (it waits for the answer before it does).
                    let _ = self.framed.send(Message::Close(reason.clone())).await;
                    return Event::Close(
                        reason.as_ref().map(|r| u16::from(r.code)),
                        reason.and_then(|r| r.description).unwrap_or_default(),
                    );
                }
                Some(Ok(Frame::Ping(bytes))) => {
                    if answer_pings {
                        let _ = self.framed.send(Message::Pong(bytes)).await;
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next JSON frame; panics on anything else.
    pub async fn recv(&mut self) -> Value {
        match self.next_event(true).await {
            Event::Text(v) => v,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    pub async fn request(&mut self, value: Value) -> Value {
        self.send(value).await;
        self.recv().await
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match self.next_event(true).await {
                Event::Close(code, _) => return code.expect("close frame carries a code"),
                Event::Eof => panic!("connection ended without a close frame"),
                _ => {}
            }
        }
    }

    /// Sends a close frame with `code` and `reason` (the socket stays readable for the answer).
    pub async fn send_close(&mut self, code: u16, reason: &str) {
        let reason = awc::ws::CloseReason {
            code: CloseCode::from(code),
            description: Some(reason.to_owned()),
        };
        self.framed
            .send(Message::Close(Some(reason)))
            .await
            .expect("send close");
    }

    /// The socket's two halves, to send and read at once.
    pub fn split(self) -> (WsSink, WsStream) {
        self.framed.split()
    }

    pub async fn close(mut self) {
        let _ = self
            .framed
            .send(Message::Close(Some(CloseCode::Normal.into())))
            .await;
    }
}

/// Asserts `reply` is an error frame with `code` and returns its message.
pub fn assert_error(reply: &Value, code: &str) -> String {
    assert_eq!(reply["type"], "error", "expected error {code}, got {reply}");
    assert_eq!(reply["code"], code, "{reply}");
    let message = reply["message"].as_str().expect("message").to_owned();
    assert!(!message.is_empty());
    message
}

/// `register.begin` → the options frame.
pub async fn register_begin(ws: &mut Ws, username: &str, token: bool) -> Value {
    let opts = ws
        .request(json!({"type":"register.begin","id":1,"username":username,"token":token}))
        .await;
    assert_eq!(opts["type"], "register.options", "{opts}");
    opts
}

/// A full registration; returns the `register.result` (or error) frame.
pub async fn register(
    ws: &mut Ws,
    key: &mut SoftAuthenticator,
    username: &str,
    token: bool,
) -> Value {
    let opts = register_begin(ws, username, token).await;
    let credential = key
        .register(&opts["publicKey"], ORIGIN)
        .expect("authenticator registers");
    ws.request(json!({"type":"register.finish","id":2,"ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await
}

/// `login.begin` (discoverable when `username` is None) → the options frame.
pub async fn login_begin(ws: &mut Ws, username: Option<&str>, token: bool) -> Value {
    let mut begin = json!({"type":"login.begin","id":3,"token":token});
    if let Some(name) = username {
        begin["username"] = json!(name);
    }
    let opts = ws.request(begin).await;
    assert_eq!(opts["type"], "login.options", "{opts}");
    opts
}

/// A full sign-in; returns the `login.result` (or error) frame.
pub async fn login(
    ws: &mut Ws,
    key: &mut SoftAuthenticator,
    username: Option<&str>,
    token: bool,
) -> Value {
    let opts = login_begin(ws, username, token).await;
    let credential = key
        .login(&opts["publicKey"], ORIGIN)
        .expect("authenticator signs");
    ws.request(json!({"type":"login.finish","id":4,"ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await
}

/// Registers `username` on a fresh socket with a token; returns (token, user id, socket).
pub async fn signed_up(
    app: &TestApp,
    key: &mut SoftAuthenticator,
    username: &str,
) -> (String, String, Ws) {
    let mut ws = app.ws("/ws").await;
    let result = register(&mut ws, key, username, true).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let id = result["user"]["id"].as_str().expect("user id").to_owned();
    (token, id, ws)
}

/// Opens a WebSocket on a server at `addr` (for example a `wsauthn` child process) with the
/// browser origin.
pub async fn ws_at(addr: SocketAddr, path: &str) -> Ws {
    let (_, framed) = awc::Client::new()
        .ws(format!("ws://{addr}{path}"))
        .max_frame_size(1 << 20)
        .header("Origin", ORIGIN)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot open {path} on {addr}: {e}"));
    Ws { framed }
}

impl Ws {
    /// Answers server pings until `count` of them have arrived; panics on any other frame, so
    /// it also shows the socket stayed open and quiet meanwhile.
    pub async fn answer_pings(&mut self, count: usize) {
        let mut seen = 0;
        while seen < count {
            let frame = tokio::time::timeout(PATIENCE, self.framed.next())
                .await
                .expect("timed out waiting for a ping");
            match frame {
                Some(Ok(Frame::Ping(bytes))) => {
                    seen += 1;
                    self.framed
                        .send(Message::Pong(bytes))
                        .await
                        .expect("send pong");
                }
                other => panic!("expected ping {} of {count}, got {other:?}", seen + 1),
            }
        }
    }
}

/// A server with an event hook installed.
pub async fn spawn_with_events(
    dir: std::sync::Arc<tempfile::TempDir>,
    hook: impl wsauthn::EventHook,
) -> TestApp {
    let clock = ManualClock::new();
    let builder = App::builder(Config::for_tests(dir.path()).expect("embedded config"))
        .clock(std::sync::Arc::new(clock.clone()))
        .event_hook(hook);
    start(builder, clock, dir).await
}

/// A raw client for what no client library sends: a blocking TCP connection to `addr` that has
/// done a real WebSocket upgrade of `path` (and checked the 101); frames are written by hand.
pub fn raw_upgrade(addr: SocketAddr, path: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}
