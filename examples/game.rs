//! A small game server with wsauthn embedded: players sign up and in with a passkey on
//! wsauthn's `/ws` (or its HTTP mirror), then race to click on `/play`, the game's own socket,
//! which wsauthn authenticates (an `Authorization: Bearer` header, or a first `auth` frame),
//! keeps alive, warns before the token expires and closes with 4401 when the session ends. The
//! game's HTTP routes take the caller from the `Authenticated` extractor; `/resign` ends the
//! caller's session through the game's own handle on wsauthn, which closes their socket.
//!
//! ```sh
//! cargo run --example game            # on http://127.0.0.1:8080, or --config FILE's address
//! ```
//!
//! Protocol on `/play`: the server sends `{"type":"welcome","player","scores"}` once the socket
//! is in, then `{"type":"score","player","score"}` to everyone whenever anyone scores; a player
//! sends `{"type":"click"}` to score. `GET /scores` answers `{"you","expiresAt","scores"}`.
//! `tests/it/embed.rs` runs this program end to end; `docs/embedding.md` walks through it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use wsauthn::ws::{ByteString, Message};
use wsauthn::{AuthPolicy, Authenticated, Config, Conn, Handler, Next, Stop, TokenPolicy, Wsauthn};

/// The scoreboard all players share, and the news of every score.
#[derive(Clone)]
struct Board {
    scores: Arc<Mutex<BTreeMap<String, u64>>>,
    news: broadcast::Sender<String>,
}

impl Board {
    fn new() -> Self {
        Board {
            scores: Arc::default(),
            news: broadcast::channel(256).0,
        }
    }

    fn scores(&self) -> Value {
        json!(*self.scores.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn click(&self, player: &str) {
        let score = {
            let mut scores = self.scores.lock().unwrap_or_else(|e| e.into_inner());
            let score = scores.entry(player.to_owned()).or_default();
            *score += 1;
            *score
        };
        let news = json!({"type": "score", "player": player, "score": score});
        let _ = self.news.send(news.to_string());
    }
}

/// One player's socket: wsauthn runs it (auth, heartbeat, expiry, revocation), this says what
/// its frames mean.
struct Player {
    board: Board,
    news: broadcast::Receiver<String>,
    name: String,
}

impl Player {
    fn new(board: &Board) -> Self {
        Player {
            board: board.clone(),
            news: board.news.subscribe(),
            name: String::new(),
        }
    }
}

impl Handler for Player {
    /// The socket is in: its user is known.
    async fn open(&mut self, conn: &mut Conn<'_>) -> Result<(), Stop> {
        self.name = conn.user().map(|u| u.name.clone()).unwrap_or_default();
        let welcome =
            json!({"type": "welcome", "player": self.name, "scores": self.board.scores()});
        conn.text(welcome.to_string()).await
    }

    async fn text(&mut self, conn: &mut Conn<'_>, text: ByteString) -> Result<(), Stop> {
        let frame: Value = serde_json::from_str(&text).unwrap_or_default();
        if frame["type"] == "click" {
            self.board.click(&self.name);
            Ok(())
        } else {
            let error = json!({"type": "error", "message": "send {\"type\":\"click\"}"});
            conn.text(error.to_string()).await
        }
    }

    /// Everyone's scores, as they happen.
    async fn next(&mut self) -> Next {
        loop {
            match self.news.recv().await {
                Ok(news) => return Next::Send(Message::Text(news.into())),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    return Next::Stop(Stop::close(1001, "game over"))
                }
            }
        }
    }
}

/// `GET /scores`: who is asking, and the board.
async fn scores(caller: Authenticated, board: web::Data<Board>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "you": caller.user.name,
        "expiresAt": caller.expires_at,
        "scores": board.scores(),
    }))
}

/// `POST /resign`: ends the caller's session; wsauthn closes their sockets with 4401.
async fn resign(
    caller: Authenticated,
    auth: web::Data<Wsauthn>,
) -> Result<HttpResponse, wsauthn::Error> {
    auth.revoke_session(&caller.session).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Serves the game on `listener` until SIGINT or SIGTERM.
pub async fn serve(config: Config, listener: TcpListener) -> std::io::Result<()> {
    let auth = Wsauthn::builder(config)
        .policy("/play", AuthPolicy::Required)
        .policy("/scores", AuthPolicy::Required)
        .policy("/resign", AuthPolicy::Required)
        .build()
        .await
        .map_err(std::io::Error::other)?;
    let board = Board::new();
    let mounted = auth.clone();
    let server = HttpServer::new(move || {
        let auth = mounted.clone();
        let board = board.clone();
        App::new()
            .wrap(TokenPolicy)
            .configure(|cfg| auth.configure(cfg))
            .app_data(web::Data::new(auth.clone()))
            .app_data(web::Data::new(board.clone()))
            .route("/scores", web::get().to(scores))
            .route("/resign", web::post().to(resign))
            .route("/play", wsauthn::socket(move |_req| Player::new(&board)))
            // Last: the demo page (`server.static_dir`), to sign up and in from a browser.
            .configure(|cfg| auth.static_files(cfg))
    })
    .disable_signals()
    .listen(listener)?
    .run();
    auth.serve(server).await
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let file = std::env::args().skip_while(|a| a != "--config").nth(1);
    let config =
        Config::load(file.as_deref().map(std::path::Path::new)).map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(config.bind_addr())?;
    println!("the game is on http://{}", listener.local_addr()?);
    serve(config, listener).await
}
