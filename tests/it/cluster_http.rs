//! The HTTP mirror's ceremonies on several nodes (docs/cluster.md): a `begin` on one node and
//! its `finish` on another work together, for registration, sign-in with a username and
//! usernameless sign-in; a ceremony is still used once across nodes, expires as on one node,
//! and of two nodes finishing it at once exactly one succeeds.
//!
//! Needs PostgreSQL: skipped loudly without it outside CI, failed under `CI=true`.

use std::time::Duration;

use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = app.call("POST", path, None, Some(body)).await;
    (status, body)
}

fn finish(opts: &Value, credential: &Value) -> Value {
    json!({"ceremonyId": opts["ceremonyId"], "credential": credential})
}

fn not_found(reply: &(u16, Value)) -> bool {
    reply.0 == 404 && reply.1["code"] == "ceremony_not_found"
}

#[actix_rt::test]
async fn http_ceremonies_begun_on_one_node_finish_on_another_and_only_once() {
    let Some([a, b, c]) = nodes().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();

    // Registration: begun on a, finished on b, replayed on c.
    let (status, opts) = post(
        &a,
        "/api/register/begin",
        json!({"username":"hedda","token":true}),
    )
    .await;
    assert_eq!(status, 200, "{opts}");
    assert!(opts.get("state").is_none(), "no state goes to the client");
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let (status, registered) = post(&b, "/api/register/finish", finish(&opts, &credential)).await;
    assert_eq!(
        (status, &registered["verified"]),
        (200, &json!("ok")),
        "{registered}"
    );
    let token = registered["authentication"]["token"].as_str().unwrap();
    assert_eq!(c.get("/api/me", Some(token)).await.0, 200);
    let replay = post(&c, "/api/register/finish", finish(&opts, &credential)).await;
    assert!(not_found(&replay), "{replay:?}");

    // Sign-in with a username: begun on b, finished on c, replayed on a.
    let (status, opts) = post(
        &b,
        "/api/login/begin",
        json!({"username":"hedda","token":true}),
    )
    .await;
    assert_eq!(status, 200, "{opts}");
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let (status, signed_in) = post(&c, "/api/login/finish", finish(&opts, &credential)).await;
    assert_eq!(
        (status, &signed_in["verified"]),
        (200, &json!("ok")),
        "{signed_in}"
    );
    let token = signed_in["authentication"]["token"].as_str().unwrap();
    assert_eq!(a.get("/api/me", Some(token)).await.0, 200);
    let replay = post(&a, "/api/login/finish", finish(&opts, &credential)).await;
    assert!(not_found(&replay), "{replay:?}");

    // Usernameless: begun on c, finished on a, replayed on b.
    let (status, opts) = post(&c, "/api/login/begin", json!({"token":true})).await;
    assert_eq!(status, 200, "{opts}");
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let (status, signed_in) = post(&a, "/api/login/finish", finish(&opts, &credential)).await;
    assert_eq!(
        (status, &signed_in["user"]["name"]),
        (200, &json!("hedda")),
        "{signed_in}"
    );
    let replay = post(&b, "/api/login/finish", finish(&opts, &credential)).await;
    assert!(not_found(&replay), "{replay:?}");

    // Adding a passkey, signed in: begun on a, finished on b (which has not seen the token).
    let mut second = SoftAuthenticator::new();
    let (status, _, opts) = a
        .call(
            "POST",
            "/api/register/begin",
            Some(token),
            Some(json!({"username":"hedda"})),
        )
        .await;
    assert_eq!(status, 200, "{opts}");
    let credential = second.register(&opts["publicKey"], ORIGIN).unwrap();
    let (status, _, added) = b
        .call(
            "POST",
            "/api/register/finish",
            Some(token),
            Some(finish(&opts, &credential)),
        )
        .await;
    assert_eq!((status, &added["verified"]), (200, &json!("ok")), "{added}");
    let (_, _, passkeys) = c.get("/api/passkeys", Some(token)).await;
    assert_eq!(
        passkeys["passkeys"].as_array().map(Vec::len),
        Some(2),
        "{passkeys}"
    );

    // A sign-in's ceremony finished as a registration, on another node: refused, and left in
    // place for its own finish.
    let (_, opts) = post(&a, "/api/login/begin", json!({"username":"hedda"})).await;
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let (_, other) = post(&c, "/api/register/begin", json!({"username":"ines"})).await;
    let registration = SoftAuthenticator::new()
        .register(&other["publicKey"], ORIGIN)
        .unwrap();
    let wrong_kind = post(&b, "/api/register/finish", finish(&opts, &registration)).await;
    assert!(not_found(&wrong_kind), "{wrong_kind:?}");
    let (status, _) = post(&b, "/api/login/finish", finish(&opts, &credential)).await;
    assert_eq!(status, 200, "the sign-in's ceremony was left in place");
}

#[actix_rt::test]
async fn an_expired_http_ceremony_is_refused_on_another_node() {
    let Some([a, b]) = nodes().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (_, opts) = post(&a, "/api/register/begin", json!({"username":"jonas"})).await;
    assert_eq!(opts["publicKey"]["timeout"], 300_000);
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    b.clock.advance(Duration::from_secs(301));
    let expired = post(&b, "/api/register/finish", finish(&opts, &credential)).await;
    assert!(not_found(&expired), "{expired:?}");
    let taken = post(&a, "/api/register/finish", finish(&opts, &credential)).await;
    assert!(not_found(&taken), "taken by the refusal: {taken:?}");
    let (status, _) = post(&a, "/api/login/begin", json!({"username":"jonas"})).await;
    assert_eq!(status, 404, "nothing was registered");
}

#[actix_rt::test]
async fn two_nodes_finishing_one_http_ceremony_at_once_let_exactly_one_through() {
    let Some([a, b, c]) = nodes().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (status, opts) = post(&a, "/api/register/begin", json!({"username":"karin"})).await;
    assert_eq!(status, 200);
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let (on_b, on_c) = futures_util::future::join(
        post(&b, "/api/register/finish", finish(&opts, &credential)),
        post(&c, "/api/register/finish", finish(&opts, &credential)),
    )
    .await;
    let won = [&on_b, &on_c].iter().filter(|r| r.0 == 200).count();
    assert_eq!(won, 1, "{on_b:?} {on_c:?}");
    assert!(not_found(&on_b) || not_found(&on_c), "{on_b:?} {on_c:?}");

    for round in 0..5 {
        let (_, opts) = post(
            &a,
            "/api/login/begin",
            json!({"username":"karin","token":true}),
        )
        .await;
        let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
        let (on_b, on_c) = futures_util::future::join(
            post(&b, "/api/login/finish", finish(&opts, &credential)),
            post(&c, "/api/login/finish", finish(&opts, &credential)),
        )
        .await;
        let won: Vec<_> = [&on_b, &on_c].into_iter().filter(|r| r.0 == 200).collect();
        assert_eq!(won.len(), 1, "round {round}: {on_b:?} {on_c:?}");
        assert!(
            not_found(&on_b) || not_found(&on_c),
            "round {round}: {on_b:?} {on_c:?}"
        );
    }
}
