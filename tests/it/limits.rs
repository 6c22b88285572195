//! Limits that hold against a client trying to walk around them: per client address (across
//! connections and HTTP, IPv4 and IPv6 /64), behind a trusted reverse proxy, and under pressure.
//! Client addresses are simulated with `X-Forwarded-For` from 127.0.0.1, trusted here.

use std::time::Duration;

use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

/// POST with a JSON body, as a proxy forwarding for `client` sends it.
async fn post_as(
    app: &TestApp,
    client: &str,
    path: &str,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut res = awc::Client::new()
        .post(app.url(path))
        .insert_header(("X-Forwarded-For", client))
        .send_json(&body)
        .await
        .expect("http request");
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.body().await.unwrap();
    (
        res.status().as_u16(),
        retry,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn behind_a_proxy(c: &mut wsauthn::Config) {
    c.server.trusted_proxies = vec!["127.0.0.1".into()];
}

#[actix_web::test]
async fn one_address_cannot_fill_the_pending_ceremony_cap_and_others_still_register() {
    let app = spawn_with(|c| {
        behind_a_proxy(c);
        c.limits.max_pending_ceremonies = 50;
        c.limits.pending_ceremonies_per_address = 10;
    })
    .await;
    let mut refused = 0;
    for _ in 0..50 {
        let (status, retry, body) =
            post_as(&app, "198.51.100.7", "/api/login/begin", json!({})).await;
        if status == 429 {
            assert_eq!(body["code"], "rate_limited");
            assert!(retry.is_some(), "429 says when to come back");
            refused += 1;
        }
    }
    assert_eq!(refused, 40, "10 pending from one address, the rest refused");
    // The same /64 is one client; another address is not.
    let (status, _, _) = post_as(&app, "2001:db8:1:2::1", "/api/login/begin", json!({})).await;
    assert_eq!(status, 200);
    let mut key = SoftAuthenticator::new();
    let (status, _, opts) = post_as(
        &app,
        "198.51.100.8",
        "/api/register/begin",
        json!({"username":"legit","token":true}),
    )
    .await;
    assert_eq!(status, 200, "{opts}");
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let (status, _, result) = post_as(
        &app,
        "198.51.100.8",
        "/api/register/finish",
        json!({"ceremonyId":opts["ceremonyId"],"credential":credential}),
    )
    .await;
    assert_eq!(
        (status, &result["verified"]),
        (200, &json!("ok")),
        "{result}"
    );
    // The session records the client, not the proxy.
    let token = result["authentication"]["token"].as_str().unwrap();
    let (_, _, sessions) = app.get("/api/sessions", Some(token)).await;
    assert_eq!(
        sessions["sessions"][0]["address"], "198.51.100.8",
        "{sessions}"
    );
}

#[actix_web::test]
async fn when_the_cap_is_full_old_ceremonies_give_way_before_the_ceremony_timeout() {
    let app = spawn_with(|c| {
        behind_a_proxy(c);
        c.limits.max_pending_ceremonies = 20;
        c.limits.ceremony_timeout_under_pressure_secs = 30;
    })
    .await;
    for i in 0..20 {
        let (status, _, _) = post_as(
            &app,
            &format!("198.51.100.{i}"),
            "/api/login/begin",
            json!({}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = post_as(&app, "203.0.113.1", "/api/login/begin", json!({})).await;
    assert_eq!(status, 429, "full of fresh ceremonies");
    app.clock.advance(Duration::from_secs(31));
    let (status, _, _) = post_as(&app, "203.0.113.1", "/api/login/begin", json!({})).await;
    assert_eq!(
        status, 200,
        "the flood's ceremonies gave way long before the 300 s timeout"
    );
}

#[actix_web::test]
async fn the_per_address_ceremony_allowance_holds_across_reconnects_and_http() {
    let app = spawn_with(|c| {
        behind_a_proxy(c);
        c.limits.ceremonies_per_minute_per_address = 5;
    })
    .await;
    let mut allowed = 0;
    for _ in 0..4 {
        // A fresh socket each time: reconnecting resets nothing.
        let mut ws = app.ws("/ws").await;
        for _ in 0..2 {
            let reply = ws.request(json!({"type":"login.begin"})).await;
            if reply["type"] == "login.options" {
                allowed += 1;
            } else {
                assert_error(&reply, "rate_limited");
            }
        }
    }
    assert_eq!(allowed, 5);
    let (status, _, _) = post_as(&app, "127.0.0.1", "/api/login/begin", json!({})).await;
    assert_eq!(status, 429, "HTTP draws on the same allowance");
    let (status, _, _) = post_as(&app, "198.51.100.9", "/api/login/begin", json!({})).await;
    assert_eq!(status, 200, "another client has its own");
}

#[actix_web::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_changes_nothing() {
    let app = spawn_with(|c| c.limits.ceremonies_per_minute_per_address = 3).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        // Each request claims another address; the peer is not a trusted proxy.
        let (status, _, _) = post_as(
            &app,
            &format!("198.51.100.{i}"),
            "/api/login/begin",
            json!({}),
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
}

/// Bad assertions against one account: after the free failures its sign-ins wait, doubling;
/// other accounts are untouched; time (not an operator) lifts it, and a success clears it.
#[actix_web::test]
async fn failed_sign_ins_back_an_account_off_without_locking_it_out() {
    let app = spawn_with(|c| c.limits.failed_sign_ins_before_backoff = 2).await;
    let (mut victim, mut other) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    signed_up(&app, &mut victim, "vera").await;
    signed_up(&app, &mut other, "otto").await;
    let mut ws = app.ws("/ws").await;
    for _ in 0..3 {
        let opts = login_begin(&mut ws, Some("vera"), false).await;
        let mut credential = victim.login(&opts["publicKey"], ORIGIN).unwrap();
        credential["response"]["signature"] = json!("AAAA");
        let reply = ws
            .request(json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
            .await;
        assert_error(&reply, "verification_failed");
    }
    // Third failure: the account waits 1 s; by name and usernameless alike.
    let reply = ws
        .request(json!({"type":"login.begin","username":"vera"}))
        .await;
    assert_error(&reply, "rate_limited");
    let opts = login_begin(&mut ws, None, false).await;
    let credential = victim.login(&opts["publicKey"], ORIGIN).unwrap();
    let reply = ws
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    assert_error(&reply, "rate_limited");
    let result = login(&mut app.ws("/ws").await, &mut other, Some("otto"), false).await;
    assert_eq!(result["verified"], "ok", "other accounts are not slowed");
    app.clock.advance(Duration::from_millis(1_100));
    let result = login(&mut ws, &mut victim, Some("vera"), false).await;
    assert_eq!(result["verified"], "ok", "{result}");
}

#[actix_web::test]
async fn an_account_holds_at_most_its_sessions_and_the_oldest_ends_or_the_new_one_is_refused() {
    for when_full in [
        wsauthn::tokens::WhenFull::EndOldest,
        wsauthn::tokens::WhenFull::Refuse,
    ] {
        let app = spawn_with(|c| {
            c.limits.max_sessions_per_user = 3;
            c.limits.when_sessions_full = when_full;
        })
        .await;
        let mut key = SoftAuthenticator::new();
        let (first, _, _) = signed_up(&app, &mut key, "sam").await;
        let mut echo = app.ws("/echo").await;
        echo.request(json!({"type":"auth","token":first})).await;
        for _ in 0..2 {
            let r = login(&mut app.ws("/ws").await, &mut key, Some("sam"), true).await;
            assert_eq!(r["verified"], "ok");
        }
        let fourth = login(&mut app.ws("/ws").await, &mut key, Some("sam"), true).await;
        match when_full {
            wsauthn::tokens::WhenFull::EndOldest => {
                assert_eq!(fourth["verified"], "ok", "{fourth}");
                assert_eq!(echo.expect_close().await, 4401, "the oldest session ended");
                assert_eq!(app.get("/api/me", Some(&first)).await.0, 401);
            }
            wsauthn::tokens::WhenFull::Refuse => {
                assert_error(&fourth, "rate_limited");
                assert_eq!(app.get("/api/me", Some(&first)).await.0, 200);
            }
        }
        let (_, _, list) = app.get("/api/sessions", Some(&first)).await;
        if when_full == wsauthn::tokens::WhenFull::Refuse {
            assert_eq!(list["sessions"].as_array().unwrap().len(), 3);
        }
    }
}

#[actix_web::test]
async fn an_account_holds_at_most_its_sockets() {
    let app = spawn_with(|c| c.limits.max_sockets_per_user = 2).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _signup) = signed_up(&app, &mut key, "suki").await;
    let bearer = format!("Bearer {token}");
    // The sign-up socket counts as one.
    let second = app
        .ws_with("/echo", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .expect("second socket");
    let third = app
        .ws_with("/echo", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .err();
    assert!(
        matches!(&third, Some(awc::error::WsClientError::InvalidResponseStatus(s)) if s.as_u16() == 429),
        "{third:?}"
    );
    let mut by_frame = app.ws("/ws").await;
    assert_error(
        &by_frame.request(json!({"type":"auth","token":token})).await,
        "rate_limited",
    );
    second.close().await;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let reply = by_frame.request(json!({"type":"auth","token":token})).await;
        if reply["type"] == "auth.result" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a slot came free: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_reconnect_storm_is_spread_out_by_the_connect_rate() {
    let app = spawn_with(|c| c.server.max_connects_per_second = 5).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(match app.ws_with("/ws", &[("Origin", ORIGIN)]).await {
            Ok(_) => 101,
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => s.as_u16(),
            Err(e) => panic!("{e}"),
        });
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 101).count(),
        5,
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s == 101 || *s == 503));
    assert_eq!(
        app.get("/healthz", None).await.0,
        200,
        "HTTP is not limited"
    );
}
