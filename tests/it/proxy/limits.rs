//! Limits through the proxy: the frame-size limit both ways, and backpressure: a slow client
//! holds the upstream back, a slow upstream holds the client back, and neither makes the server
//! buffer without bound or stops a revocation from reaching the socket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use wsauthn::softkey::SoftAuthenticator;

use super::socket::open_with_header;
use super::*;

/// Frames of the floods below: the size limit, 64 KiB.
const FRAME: usize = 65_536;
/// 4,000 of them are 250 MiB, far beyond what the kernel's socket buffers on the way hold.
const FLOOD: usize = 4_000;
/// How long a side stays slow before the test looks at how far the other got.
const STALL: Duration = Duration::from_secs(1);

#[actix_web::test]
async fn frames_over_the_size_limit_are_refused_from_either_side() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "big").await;
    // From the client: 1009, as on any socket; the upstream is told the client went away.
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_text("x".repeat(FRAME + 1)).await;
    assert_eq!(ws.expect_close().await, 1009);
    assert_eq!(upstream.event("ws_closed").await["code"], 1001);
    // From the upstream: the upstream gets 1009, the client 1011.
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_text(format!("big:{}", FRAME + 1)).await;
    assert_eq!(ws.expect_close().await, 1011);
    assert_eq!(upstream.event("ws_closed").await["code"], 1009);
}

#[actix_web::test]
async fn a_client_that_reads_nothing_holds_the_upstream_back_and_loses_nothing() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "slowpoke").await;
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_text(format!("flood:{FLOOD}:{FRAME}")).await;
    tokio::time::sleep(STALL).await;
    let mut sent = 0;
    while let Some(event) = upstream.maybe_event(Duration::from_millis(10)).await {
        if event["event"] == "flooded" {
            sent = event["sent"].as_u64().unwrap() as usize;
        }
    }
    assert!(
        sent < FLOOD / 4,
        "the upstream sent {sent} of {FLOOD} frames to a client that read none"
    );
    // Now it reads: every frame arrives, whole and in order.
    let mut got = 0;
    while got < FLOOD {
        match ws.next_event(true).await {
            Event::Binary(b) => {
                assert_eq!(b.len(), FRAME);
                got += 1;
            }
            other => panic!("frame {got}: {other:?}"),
        }
    }
    ws.send_text("count").await;
    assert_eq!(ws.recv().await["type"], "count");
}

#[actix_web::test]
async fn an_upstream_that_reads_nothing_holds_the_client_back_and_loses_nothing() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    // The flood limit would close a client sending this fast; this one is allowed to.
    let app = proxied(&upstream, |c| {
        c.websocket.messages_per_second = 1_000_000;
        c.websocket.message_burst = 1_000_000;
    })
    .await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "stuck").await;
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_text("pause").await;
    upstream.event("paused").await;
    let (mut tx, mut rx) = ws.split();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let sender = actix_web::rt::spawn(async move {
        let payload = actix_web::web::Bytes::from(vec![7u8; FRAME]);
        for _ in 0..FLOOD {
            tx.send(Message::Binary(payload.clone()))
                .await
                .expect("send");
            counter.fetch_add(1, Ordering::Relaxed);
        }
        tx
    });
    tokio::time::sleep(STALL).await;
    let stalled_at = sent.load(Ordering::Relaxed);
    assert!(
        stalled_at < FLOOD / 4,
        "the client sent {stalled_at} of {FLOOD} frames to an upstream that read none"
    );
    upstream.control("resume").await;
    let mut echoed = 0;
    while echoed < FLOOD {
        let frame = tokio::time::timeout(PATIENCE, rx.next())
            .await
            .expect("echoes keep coming");
        match frame {
            Some(Ok(Frame::Binary(b))) => {
                assert_eq!(b.len(), FRAME);
                echoed += 1;
            }
            Some(Ok(Frame::Ping(_))) => {}
            other => panic!("echo {echoed}: {other:?}"),
        }
    }
    let tx = sender.await.expect("the sender finished");
    drop((tx, rx));
}

#[actix_web::test]
async fn revocation_reaches_a_proxied_socket_whose_client_reads_nothing() {
    let Some(mut upstream) = Upstream::start() else {
        return;
    };
    let app = proxied(&upstream, |_| {}).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ceremony) = signed_up(&app, &mut key, "deaf").await;
    let mut ws = open_with_header(&app, &token, &[]).await;
    ws.recv().await;
    ws.send_text(format!("flood:{FLOOD}:{FRAME}")).await;
    upstream.event("flooded").await;
    tokio::time::sleep(STALL / 2).await;
    let sockets = app.state.open_sockets();
    assert_eq!(
        ceremony.request(serde_json::json!({"type":"logout"})).await["type"],
        "logout.result"
    );
    // The proxied socket's session is gone at once, and the socket within the closing
    // handshake's bound (its close frame cannot even be queued: the client reads nothing).
    assert_eq!(app.get("/game/x", Some(&token)).await.0, 401);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while app.state.open_sockets() >= sockets {
        assert!(
            std::time::Instant::now() < deadline,
            "the socket outlived its session"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(ws);
}
