//! Revocation fan-out across nodes (docs/benchmarks.md, "Several nodes, one PostgreSQL"): signs
//! up `SESSIONS` users on the first node, opens `SOCKETS` protected sockets (`/echo`, Bearer
//! header) spread over the other nodes, then logs the sessions out one after another on the
//! first node and measures, for every socket, the time from the logout frame to the socket's
//! close (4401) on its node.
//!
//! ```sh
//! cargo run --release --example fanout -- SOCKETS SESSIONS ws://A ws://B [ws://C …]
//! ```
//!
//! Prints the count, p50, p99 and max in milliseconds.

use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

const ORIGIN: &str = "http://localhost:8080";

type Socket = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

async fn open(url: &str, token: Option<&str>) -> Socket {
    let mut req = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
        .ws(url)
        .header("Origin", ORIGIN);
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    req.connect().await.expect("connect").1
}

async fn request(ws: &mut Socket, msg: Value) -> Value {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .expect("send");
    loop {
        match ws.next().await.expect("open").expect("frame") {
            Frame::Text(t) => return serde_json::from_slice(&t).expect("json"),
            Frame::Ping(p) => ws.send(Message::Pong(p)).await.expect("pong"),
            _ => {}
        }
    }
}

/// Signs a new user up on `/ws` at `node`; returns the socket (bound to the session) and token.
async fn sign_up(node: &str, name: &str) -> (Socket, String) {
    let mut key = SoftAuthenticator::new();
    let mut ws = open(&format!("{node}/ws"), None).await;
    let opts = request(
        &mut ws,
        json!({"type":"register.begin","id":1,"username":name,"token":true}),
    )
    .await;
    let credential = key.register(&opts["publicKey"], ORIGIN).expect("register");
    let done = request(
        &mut ws,
        json!({"type":"register.finish","id":2,"ceremonyId":opts["ceremonyId"],"credential":credential}),
    )
    .await;
    let token = done["authentication"]["token"].as_str().expect("token");
    (ws, token.to_owned())
}

#[actix_rt::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sockets, sessions, revoker, others @ ..] = args.as_slice() else {
        eprintln!("usage: fanout SOCKETS SESSIONS ws://REVOKER ws://OTHER [ws://OTHER …]");
        std::process::exit(2);
    };
    let (sockets, sessions): (usize, usize) = (sockets.parse().unwrap(), sessions.parse().unwrap());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut signed_up = Vec::new();
    for i in 0..sessions {
        signed_up.push(sign_up(revoker, &format!("fan{i}-{}", &run[..8])).await);
    }
    // Every socket waits for its close and reports when it came.
    let mut closes: Vec<Vec<tokio::sync::oneshot::Receiver<Instant>>> =
        (0..sessions).map(|_| Vec::new()).collect();
    let mut opening = futures_util::stream::FuturesUnordered::new();
    for j in 0..sockets {
        let session = j % sessions;
        let url = format!("{}/echo", others[j % others.len()]);
        let token = signed_up[session].1.clone();
        opening.push(async move { (session, open(&url, Some(&token)).await) });
        while opening.len() >= 64 || (j + 1 == sockets && !opening.is_empty()) {
            let (session, mut ws) = opening.next().await.expect("a socket");
            let (tx, rx) = tokio::sync::oneshot::channel();
            closes[session].push(rx);
            actix_rt::spawn(async move {
                while let Some(Ok(frame)) = ws.next().await {
                    match frame {
                        Frame::Close(_) => break,
                        Frame::Ping(p) => {
                            let _ = ws.send(Message::Pong(p)).await;
                        }
                        _ => {}
                    }
                }
                let _ = tx.send(Instant::now());
            });
        }
    }
    eprintln!(
        "{sockets} sockets open over {} nodes; revoking",
        others.len()
    );
    let mut millis = Vec::with_capacity(sockets);
    for ((mut ws, _), waiting) in signed_up.into_iter().zip(closes) {
        let started = Instant::now();
        ws.send(Message::Text(
            json!({"type":"logout","id":9}).to_string().into(),
        ))
        .await
        .expect("logout");
        for rx in waiting {
            let closed = rx.await.expect("closed");
            millis.push(closed.duration_since(started).as_secs_f64() * 1000.0);
        }
    }
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis[((millis.len() as f64 * q) as usize).min(millis.len() - 1)];
    println!(
        "sockets {} sessions {sessions} p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        millis.len(),
        at(0.5),
        at(0.99),
        millis[millis.len() - 1]
    );
}
