//! The README's embedding example, whole: an application's own route beside wsauthn's in the
//! application's own actix-web `App`, under `#[tokio::main]`. `tests/it/embed.rs` checks that
//! the README shows exactly the part between the markers, and runs it.
//!
//! `cargo run --example readme`, then sign in on <http://localhost:8080/ws> and
//! `curl -H "Authorization: Bearer $TOKEN" http://localhost:8080/hello`.

// README: begin
use actix_web::{web, App, HttpServer};
use wsauthn::{AuthPolicy, Authenticated, Config, TokenPolicy, Wsauthn};

async fn hello(caller: Authenticated) -> String {
    format!("hello, {}", caller.user.name)
}

pub async fn serve(config: Config, listener: std::net::TcpListener) -> std::io::Result<()> {
    let auth = Wsauthn::builder(config)
        .policy("/hello", AuthPolicy::Required)
        .build()
        .await
        .map_err(std::io::Error::other)?;
    let mounted = auth.clone();
    let server = HttpServer::new(move || {
        let auth = mounted.clone();
        App::new()
            .wrap(TokenPolicy) // every path's token policy, the application's own included
            .configure(|cfg| auth.configure(cfg)) // /ws, /api/..., /echo, /chat, [[proxy]]
            .route("/hello", web::get().to(hello)) // the application's own route
    })
    .disable_signals() // auth.serve handles SIGINT and SIGTERM
    .listen(listener)?
    .run();
    auth.serve(server).await // at shutdown, sockets close with 1001 and the store is flushed
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = Config::load(None).map_err(std::io::Error::other)?;
    let listener = std::net::TcpListener::bind(config.bind_addr())?;
    serve(config, listener).await
}
// README: end
