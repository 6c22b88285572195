//! `/metrics`: off by default, behind the admin key when there is one, and counting what the
//! server did, in the Prometheus text format.

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

async fn scrape(app: &TestApp, bearer: Option<&str>) -> (u16, String) {
    let mut req = awc::Client::new().get(app.url("/metrics"));
    if let Some(b) = bearer {
        req = req.insert_header(("Authorization", format!("Bearer {b}")));
    }
    let mut res = req.send().await.unwrap();
    let body = res.body().await.unwrap();
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[actix_web::test]
async fn metrics_are_off_by_default() {
    let app = spawn_app().await;
    assert_eq!(scrape(&app, None).await.0, 404);
}

#[actix_web::test]
async fn metrics_count_ceremonies_sessions_sockets_limits_and_latencies() {
    let app = spawn_with(|c| {
        c.metrics.enabled = true;
        c.limits.ceremonies_per_minute_per_address = 4;
    })
    .await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "mia").await;
    login(&mut ws, &mut key, Some("mia"), true).await;
    let opts = login_begin(&mut ws, Some("mia"), false).await;
    let mut credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    credential["response"]["signature"] = json!("AAAA");
    ws.request(
        json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
    )
    .await;
    // The fourth begin is the address's last this minute; the fifth is refused.
    login_begin(&mut ws, None, false).await;
    assert_error(
        &ws.request(json!({"type":"login.begin"})).await,
        "rate_limited",
    );
    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let series = |s: &str| value(&text, s);
    assert_eq!(
        series(r#"wsauthn_ceremonies_finished_total{ceremony="register",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        series(r#"wsauthn_ceremonies_finished_total{ceremony="login",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        series(
            r#"wsauthn_ceremonies_finished_total{ceremony="login",outcome="verification_failed"}"#
        ),
        1.0
    );
    assert_eq!(
        series("wsauthn_sessions_created_total"),
        2.0,
        "the sign-up and the sign-in"
    );
    assert!(series("wsauthn_rate_limited_total") >= 1.0);
    assert_eq!(series("wsauthn_sign_in_seconds_count"), 2.0);
    assert_eq!(series("wsauthn_signature_check_seconds_count"), 2.0);
    assert!(
        series("wsauthn_store_flush_seconds_count") >= 1.0,
        "the registration flushed"
    );
    assert!(series("wsauthn_connect_seconds_count") >= 1.0);
    assert_eq!(series("wsauthn_sockets_open"), 1.0);
    assert!(text.ends_with("# EOF\n"));
}

#[actix_web::test]
async fn metrics_need_the_admin_key_when_one_is_set() {
    let key = "k".repeat(40);
    let app = spawn_with(|c| {
        c.metrics.enabled = true;
        c.admin.api_key = wsauthn::admin::ApiKey::new("k".repeat(40));
    })
    .await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("wrong")).await.0, 401);
    assert_eq!(scrape(&app, Some(&key)).await.0, 200);
}

#[actix_web::test]
async fn metrics_count_sockets_by_kind_and_time_the_revocations_that_close_them() {
    let app = spawn_with(|c| c.metrics.enabled = true).await;
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws) = signed_up(&app, &mut key, "noa").await;
    let bearer = format!("Bearer {token}");
    let headers = [("Origin", ORIGIN), ("Authorization", bearer.as_str())];
    let mut echo = app.ws_with("/echo", &headers).await.unwrap();
    let mut chat = app.ws_with("/chat", &headers).await.unwrap();
    let _anonymous = app.ws("/ws").await;
    let text = scrape(&app, None).await.1;
    let open = |text: &str, kind: &str| {
        value(
            text,
            &format!(r#"wsauthn_sockets_open_by_kind{{kind="{kind}"}}"#),
        )
    };
    assert_eq!(open(&text, "ws"), 2.0, "{text}");
    assert_eq!(open(&text, "echo"), 1.0);
    assert_eq!(open(&text, "chat"), 1.0);
    assert_eq!((open(&text, "app"), open(&text, "proxy")), (0.0, 0.0));
    assert_eq!(value(&text, "wsauthn_sockets_open"), 4.0);
    assert_eq!(value(&text, "wsauthn_revocation_fanout_seconds_count"), 0.0);

    ws.request(json!({"type":"logout"})).await;
    // The session's end closes every socket it had, the one that logged out too.
    for socket in [&mut ws, &mut echo, &mut chat] {
        assert_eq!(socket.expect_close().await, 4401);
    }
    // The sockets count until their closing handshake is over, which the close above answers.
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(&app, None).await.1;
        if open(&text, "echo") + open(&text, "chat") + open(&text, "ws") == 1.0 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        (open(&text, "echo"), open(&text, "chat")),
        (0.0, 0.0),
        "{text}"
    );
    assert_eq!(
        open(&text, "ws"),
        1.0,
        "the socket that never signed in stays"
    );
    assert_eq!(
        value(&text, "wsauthn_revocation_fanout_seconds_count"),
        3.0,
        "one for each socket the logout closed: {text}"
    );
    let within_a_second = value(
        &text,
        r#"wsauthn_revocation_fanout_seconds_bucket{le="1.0"}"#,
    );
    assert_eq!(within_a_second, 3.0, "{text}");
    let inf = value(
        &text,
        r#"wsauthn_revocation_fanout_seconds_bucket{le="+Inf"}"#,
    );
    assert_eq!(
        inf, 3.0,
        "buckets are cumulative and end at the count: {text}"
    );
}
