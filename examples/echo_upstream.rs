//! A WebSocket echo server with no wsauthn in it: the upstream of the proxy benchmark
//! (`docs/benchmarks.md`), measured directly and through a `[[proxy]]` path.
//!
//! ```sh
//! cargo run --release --example echo_upstream -- 127.0.0.1:9000
//! ```
//!
//! Every text and binary frame on any path comes back; pings are answered.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::AggregatedMessage;

async fn echo(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let mut stream = stream.max_frame_size(1 << 20).aggregate_continuations();
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = stream.recv().await {
            let sent = match message {
                AggregatedMessage::Text(text) => session.text(text).await,
                AggregatedMessage::Binary(bytes) => session.binary(bytes).await,
                AggregatedMessage::Ping(bytes) => session.pong(&bytes).await,
                AggregatedMessage::Pong(_) => Ok(()),
                AggregatedMessage::Close(reason) => {
                    let _ = session.close(reason).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    HttpServer::new(|| App::new().default_service(web::get().to(echo)))
        .workers(workers)
        .max_connections(100_000)
        .bind(addr)?
        .run()
        .await
}
