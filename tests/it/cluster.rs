//! Several nodes on one PostgreSQL (docs/cluster.md): sessions made on one node work on every
//! node; revocations on any node close the affected sockets everywhere with 4401; a node whose
//! revocation feed is cut off refuses every token (fail closed), says so in `/readyz`, and when
//! it is back closes what was revoked meanwhile; a node killed with kill -9 loses nothing
//! acknowledged. Nodes are servers in this process (each its own data directory and pool), or
//! the real binary where a node must die.
//!
//! Needs PostgreSQL: skipped loudly without it outside CI, failed under `CI=true`.

use std::time::{Duration, Instant};

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

async fn me(app: &TestApp, token: &str) -> u16 {
    app.get("/api/me", Some(token)).await.0
}

/// Waits for the close of `ws` and returns its code and how long it took from `since`.
async fn closed(ws: &mut Ws, since: Instant) -> (u16, Duration) {
    let code = tokio::time::timeout(PATIENCE, ws.expect_close())
        .await
        .expect("the socket closes");
    (code, since.elapsed())
}

#[actix_rt::test]
async fn a_session_made_on_one_node_works_on_every_node_and_its_logout_closes_sockets_everywhere() {
    let Some([a, b, c]) = nodes().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, user_id, mut ceremony_ws) = signed_up(&a, &mut key, "nora").await;
    assert_eq!(
        me(&b, &token).await,
        200,
        "a token from node a works on node b"
    );
    let (status, _, verified) = c.get("/auth/verify", Some(&token)).await;
    assert_eq!(
        (status, verified["user"]["id"].as_str()),
        (200, Some(&*user_id))
    );
    // Signed up on a, signed in (by username) on c: the account and its passkey are shared.
    let mut on_c = c.ws("/ws").await;
    let signed_in = login(&mut on_c, &mut key, Some("nora"), true).await;
    assert_eq!(signed_in["verified"], "ok", "{signed_in}");
    let other = signed_in["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(me(&a, &other).await, 200);

    let mut on_b = echo_signed_in(&b, &token).await;
    let mut on_c_echo = echo_signed_in(&c, &token).await;
    let mut survivor = echo_signed_in(&b, &other).await;
    let started = Instant::now();
    let out = ceremony_ws.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    // Refused everywhere once the logout has returned (the feed has had its few ms).
    let (code_b, took_b) = closed(&mut on_b, started).await;
    let (code_c, took_c) = closed(&mut on_c_echo, started).await;
    assert_eq!((code_b, code_c), (4401, 4401));
    assert!(
        took_b.max(took_c) < Duration::from_millis(500),
        "sockets on other nodes closed after {took_b:?} and {took_c:?}"
    );
    for app in [&a, &b, &c] {
        assert_eq!(
            me(app, &token).await,
            401,
            "the logged-out token is refused"
        );
        assert_eq!(me(app, &other).await, 200, "the other session lives on");
    }
    let echoed = survivor.request(json!({"type":"ping","id":1})).await;
    assert_ne!(echoed["type"], "error", "{echoed}");
}

#[actix_rt::test]
async fn a_refresh_on_one_node_keeps_sockets_on_others_and_revocations_reach_them_by_any_path() {
    let Some([a, b]) = nodes().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&a, &mut key, "omar").await;
    let mut on_b = echo_signed_in(&b, &token).await;
    let (status, _, refreshed) = a
        .call("POST", "/api/sessions/refresh", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let fresh = refreshed["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(me(&b, &fresh).await, 200, "the new token works on b");
    assert_eq!(me(&b, &token).await, 401, "the old one no longer does");
    let echoed = on_b.request(json!({"type":"ping","id":1})).await;
    assert_ne!(echoed["type"], "error", "b's socket carried on: {echoed}");

    // sessions.revoke on b of the session a opened: listed on b, and its socket on b closes.
    let (_, _, list) = b.get("/api/sessions", Some(&fresh)).await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    let mut second = SoftAuthenticator::new();
    let (other_token, _, _other_ws) = signed_up(&a, &mut second, "omar2").await;
    let mut others_socket = echo_signed_in(&b, &other_token).await;
    let started = Instant::now();
    let (status, _, _) = b
        .call(
            "DELETE",
            "/api/sessions/00000000-0000-0000-0000-000000000000",
            Some(&fresh),
            None,
        )
        .await;
    assert_eq!(status, 404, "no such session");
    let id = sessions[0]["id"].as_str().unwrap();
    let (status, _, body) = a
        .call("DELETE", &format!("/api/sessions/{id}"), Some(&fresh), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (code, took) = closed(&mut on_b, started).await;
    assert_eq!(code, 4401, "after {took:?}");
    let echoed = others_socket.request(json!({"type":"ping","id":2})).await;
    assert_ne!(
        echoed["type"], "error",
        "another user's socket is untouched: {echoed}"
    );
}

#[actix_rt::test]
async fn two_nodes_registering_one_credential_id_at_once_give_it_to_exactly_one_account() {
    let Some([a, b]) = nodes().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    signed_up(&a, &mut key, "template").await;
    let record = a
        .state
        .store
        .credential(&key.credentials()[0].id)
        .await
        .unwrap()
        .unwrap();
    let mut cred = webauthn_rs::prelude::Credential::from(record.passkey.clone());
    cred.cred_id = vec![7u8; 16];
    let fresh = wsauthn::store::CredentialRecord {
        passkey: webauthn_rs::prelude::Passkey::from(cred),
        ..record
    };
    let mut tasks = Vec::new();
    for (i, store) in [&a, &b, &a, &b]
        .iter()
        .map(|n| n.state.store.clone())
        .enumerate()
    {
        let mut record = fresh.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let user = wsauthn::store::UserRecord {
                id: uuid::Uuid::new_v4(),
                name: format!("same-{}", i % 2),
                display_name: "same".into(),
                created_at: 0,
                passkeys: 1,
            };
            record.user_id = user.id;
            store
                .create_user(&user, &record)
                .await
                .map_err(|e| e.code())
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.iter().all(|o| o.is_ok()
        || *o == Err(wsauthn::ErrorCode::CredentialInUse)
        || *o == Err(wsauthn::ErrorCode::UsernameTaken)));
}

#[actix_rt::test]
async fn a_node_whose_listener_is_killed_catches_up_on_what_was_revoked_meanwhile() {
    let Some(url) = crate::pg_server::database_or_skip("the cluster tests").await else {
        return;
    };
    let (a, b) = (spawn_node(&url).await, spawn_node(&url).await);
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws_a) = signed_up(&a, &mut key, "pia").await;
    let mut on_b = echo_signed_in(&b, &token).await;
    let feed = format!(
        "wsauthn-feed-{}",
        b.state.store.as_postgres().unwrap().node()
    );
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(connection);
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&feed],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "b's listener was found and killed");
    // Revoked at once, while b's listener is down or reconnecting: the replay must catch it.
    let out = ws_a.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    let (code, _) = closed(&mut on_b, Instant::now()).await;
    assert_eq!(code, 4401);
    assert_eq!(me(&b, &token).await, 401);
    // The revoked sockets close as the replay applies, just before the feed confirms.
    ready_becomes(&b, 200).await;
}

#[actix_rt::test]
async fn deleting_a_passkey_on_one_node_ends_the_sessions_it_opened_on_another() {
    let Some([a, b]) = nodes().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&a, &mut key, "quin").await;
    let mut on_b = b.ws("/ws").await;
    let signed_in = login(&mut on_b, &mut key, Some("quin"), true).await;
    let opened_on_b = signed_in["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut socket = echo_signed_in(&b, &opened_on_b).await;
    let id = wsauthn::b64url(&key.credentials()[0].id);
    let path = format!("/api/passkeys/{id}?allowLast=true");
    let (status, _, body) = a.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["sessionsEnded"], 2,
        "the session on a and the one b opened: {body}"
    );
    let (code, _) = closed(&mut socket, Instant::now()).await;
    assert_eq!(code, 4401);
    assert_eq!(me(&b, &opened_on_b).await, 401);
}

#[actix_rt::test]
async fn a_revocation_that_commits_after_a_later_one_still_reaches_every_node() {
    let Some([a, b]) = nodes::<2>().await else {
        return;
    };
    let (mut kx, mut ky) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (token_x, user_x, _ws_x) = signed_up(&a, &mut kx, "xia").await;
    let (token_y, _, mut ws_y) = signed_up(&a, &mut ky, "yan").await;
    let mut x_on_b = echo_signed_in(&b, &token_x).await;
    let mut y_on_b = echo_signed_in(&b, &token_y).await;
    // x's sessions are deleted by a transaction that stays open a while: its log entry is
    // numbered before y's logout's, which is made meanwhile, but it commits after it.
    let url = &a.state.config.store.postgres_url;
    let (sql, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(connection);
    sql.batch_execute("BEGIN").await.unwrap();
    let user_x: uuid::Uuid = user_x.parse().unwrap();
    let deleted = sql
        .execute("DELETE FROM sessions WHERE user_id = $1", &[&user_x])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let commit_later = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sql.batch_execute("COMMIT").await.unwrap();
    };
    let (out, ()) = tokio::join!(ws_y.request(json!({"type":"logout","id":9})), commit_later);
    assert_eq!(out["type"], "logout.result", "{out}");
    let since = Instant::now();
    assert_eq!(closed(&mut y_on_b, since).await.0, 4401);
    let (code, took) = closed(&mut x_on_b, since).await;
    assert_eq!(code, 4401, "the revocation committed second reached b too");
    assert!(took < Duration::from_secs(2), "after {took:?}");
    assert_eq!(me(&b, &token_x).await, 401);
}

#[actix_rt::test]
async fn a_revoking_call_returns_only_once_every_other_node_refuses_the_token() {
    let Some([a, b, c]) = nodes::<3>().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws_a) = signed_up(&a, &mut key, "ima").await;
    // Cached on b and c: only the feed can tell them of the logout.
    assert_eq!((me(&b, &token).await, me(&c, &token).await), (200, 200));
    // b's listening backend is stopped (SIGSTOP): b hears nothing more and does not know it
    // yet, a silent partition of its feed alone.
    let url = &a.state.config.store.postgres_url;
    let (sql, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(connection);
    let feed = format!(
        "wsauthn-feed-{}",
        b.state.store.as_postgres().unwrap().node()
    );
    let pid: i32 = sql
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&feed],
        )
        .await
        .unwrap()
        .get(0);
    let signal = |which: libc::c_int| {
        // SAFETY: kill(2) with a plain signal number touches no memory of ours.
        let sent = unsafe { libc::kill(pid, which) };
        assert_eq!(sent, 0, "signal {which} to {pid}");
    };
    signal(libc::SIGSTOP);
    let started = Instant::now();
    let out = ws_a.request(json!({"type":"logout","id":9})).await;
    let took = started.elapsed();
    let after = (me(&b, &token).await, me(&c, &token).await);
    signal(libc::SIGCONT);
    assert_eq!(out["type"], "logout.result", "{out}");
    // c acknowledged at once; b, which could not, had stopped counting as live by the time the
    // call returned, and a feed that cannot read refuses every token by then.
    assert_eq!(
        after,
        (401, 401),
        "refused everywhere once the logout returned ({took:?})"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    // Resumed, b catches up and is ready again, the token still refused.
    ready_becomes(&b, 200).await;
    assert_eq!(me(&b, &token).await, 401);
}

#[actix_rt::test]
async fn a_node_that_stops_is_not_waited_for_by_revocations_on_the_others() {
    let Some([a, b, c]) = nodes::<3>().await else {
        return;
    };
    let mut key = SoftAuthenticator::new();
    let (token, _, mut ws_a) = signed_up(&a, &mut key, "ola").await;
    assert_eq!(me(&b, &token).await, 200, "cached on b");
    // Let c's first announcement arrive, then stop c gracefully: it says it is leaving.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    c.stop().await;
    let started = Instant::now();
    let out = ws_a.request(json!({"type":"logout","id":9})).await;
    let took = started.elapsed();
    assert_eq!(out["type"], "logout.result", "{out}");
    assert!(
        took < Duration::from_secs(1),
        "the logout waited {took:?} for a node that had left"
    );
    assert_eq!(me(&b, &token).await, 401);
}
