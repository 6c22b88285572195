//! Unit tests of the session table, with a manual clock and (where persistence matters) a real
//! sled store in a temporary directory.

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::events::EndReason;
use std::time::Duration;

fn table(clock: &ManualClock) -> TokenTable {
    TokenTable::new(
        86_400,
        3_600,
        Arc::new(clock.clone()),
        None,
        Events::default(),
    )
}

fn user() -> Arc<UserView> {
    Arc::new(UserView {
        id: Uuid::new_v4(),
        name: "alice".into(),
        display_name: "Alice".into(),
    })
}

fn issue(t: &TokenTable, u: &Arc<UserView>) -> (IssuedToken, TokenInfo) {
    t.issue(u.clone(), SessionMeta::default()).unwrap()
}

#[test]
fn issued_tokens_are_64_upper_hex_and_distinct() {
    let t = table(&ManualClock::new());
    let (a, _) = issue(&t, &user());
    let (b, _) = issue(&t, &user());
    assert_eq!(a.as_str().len(), 64);
    assert!(a
        .as_str()
        .bytes()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    assert_ne!(a, b);
    assert_eq!(format!("{a:?}"), "IssuedToken(…)");
}

#[test]
fn lookup_finds_the_user_and_rejects_others() {
    let t = table(&ManualClock::new());
    let u = user();
    let (tok, info) = issue(&t, &u);
    let found = t.lookup(tok.as_str()).unwrap();
    assert_eq!(found.user.id, u.id);
    assert_eq!(found.session, info.session);
    assert_eq!(
        t.lookup(&tok.as_str().to_lowercase()).unwrap().user.id,
        u.id
    );
    assert_eq!(t.lookup("nope").unwrap_err(), TokenError::Malformed);
    assert_eq!(t.lookup(&"0".repeat(64)).unwrap_err(), TokenError::Invalid);
    assert_eq!(
        t.lookup(&"G".repeat(64)).unwrap_err(),
        TokenError::Malformed
    );
}

#[test]
fn the_table_keeps_no_raw_token() {
    let t = table(&ManualClock::new());
    let (tok, _) = issue(&t, &user());
    let raw = decode_hex_32(tok.as_str()).unwrap();
    assert!(t.inner.by_hash.iter().all(|e| *e.key() != raw));
    assert!(t
        .inner
        .by_hash
        .iter()
        .all(|e| *e.key() == openssl::sha::sha256(&raw)));
}

#[test]
fn idle_timeout_slides_with_use_and_expires_unused_tokens() {
    let clock = ManualClock::new();
    let t = table(&clock);
    let (tok, _) = issue(&t, &user());
    clock.advance(Duration::from_secs(3_000));
    assert!(t.lookup(tok.as_str()).is_ok());
    clock.advance(Duration::from_secs(3_000));
    assert!(t.lookup(tok.as_str()).is_ok(), "use slid the idle timer");
    clock.advance(Duration::from_secs(3_600));
    assert_eq!(t.lookup(tok.as_str()).unwrap_err(), TokenError::Invalid);
    assert!(t.is_empty(), "an expired session is removed on lookup");
}

#[test]
fn absolute_lifetime_ends_even_a_busy_token() {
    let clock = ManualClock::new();
    let t = table(&clock);
    let (tok, info) = issue(&t, &user());
    let _socket = t.watch(&info.session).unwrap();
    for _ in 0..24 {
        clock.advance(Duration::from_secs(3_599));
        assert!(t.lookup(tok.as_str()).is_ok());
    }
    clock.advance(Duration::from_secs(100));
    assert!(t.lookup(tok.as_str()).is_err());
}

#[test]
fn a_live_socket_keeps_an_idle_token_alive() {
    let clock = ManualClock::new();
    let t = table(&clock);
    let (tok, info) = issue(&t, &user());
    let socket = t.watch(&info.session).unwrap();
    clock.advance(Duration::from_secs(7_200));
    assert_eq!(t.sweep(), 0);
    drop(socket);
    t.touch(&info.session);
    assert!(t.lookup(tok.as_str()).is_ok());
    clock.advance(Duration::from_secs(3_600));
    assert_eq!(t.sweep(), 1);
}

#[tokio::test]
async fn revoking_fires_every_watching_socket() {
    let t = table(&ManualClock::new());
    let (tok, info) = issue(&t, &user());
    let mut a = t.watch(&info.session).unwrap();
    let mut b = t.watch(&info.session).unwrap();
    assert!(t.revoke(&info.session, EndReason::Logout).unwrap());
    a.fired().await;
    b.fired().await;
    assert!(t.lookup(tok.as_str()).is_err());
    assert!(t.watch(&info.session).is_none());
    assert!(!t.revoke(&info.session, EndReason::Logout).unwrap());
}

#[tokio::test]
async fn refresh_replaces_the_token_and_tells_sockets_the_new_expiry() {
    let clock = ManualClock::new();
    let t = table(&clock);
    let (old, info) = issue(&t, &user());
    let mut socket = t.watch(&info.session).unwrap();
    clock.advance(Duration::from_secs(1_000));
    let (new, refreshed) = t.refresh(&info.session).unwrap();
    assert_ne!(old, new);
    assert_eq!(refreshed.session, info.session);
    assert_eq!(refreshed.expires_at, info.expires_at + 1_000);
    assert_eq!(t.lookup(old.as_str()).unwrap_err(), TokenError::Invalid);
    assert_eq!(t.lookup(new.as_str()).unwrap().session, info.session);
    let expires_ms = clock.now_ms() + 86_400_000;
    assert_eq!(socket.changed().await, SessionSignal::Live { expires_ms });
}

#[test]
fn revoke_others_keeps_only_the_current_session_of_that_user() {
    let t = table(&ManualClock::new());
    let (alice, bob) = (user(), user());
    let (_, keep) = issue(&t, &alice);
    issue(&t, &alice);
    issue(&t, &alice);
    let (_, bobs) = issue(&t, &bob);
    assert_eq!(t.sessions_of(&alice.id, Some(&keep.session)).len(), 3);
    assert_eq!(t.revoke_others(&alice.id, &keep.session).unwrap(), 2);
    let left = t.sessions_of(&alice.id, Some(&keep.session));
    assert_eq!(left.len(), 1);
    assert!(left[0].current);
    assert_eq!(t.sessions_of(&bob.id, None)[0].id, bobs.session);
}

#[tokio::test]
async fn sessions_survive_a_reload_from_the_store_and_expired_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock = ManualClock::new();
    let record = crate::store::UserRecord {
        id: Uuid::new_v4(),
        name: "alice".into(),
        display_name: "Alice".into(),
        created_at: 0,
        passkeys: 1,
    };
    store.put_user_for_tests(&record).await.unwrap();
    let mk = || {
        TokenTable::new(
            86_400,
            3_600,
            Arc::new(clock.clone()),
            Some(store.clone()),
            Events::default(),
        )
    };
    let t = mk();
    let meta = SessionMeta {
        user_agent: Some("test-agent".into()),
        address: Some("127.0.0.1".parse().unwrap()),
        credential_id: Some("AQID".into()),
    };
    let (kept, info) = t.issue(Arc::new(record.view()), meta.clone()).unwrap();
    let (revoked, gone) = t.issue(Arc::new(record.view()), meta).unwrap();
    t.revoke(&gone.session, EndReason::Logout).unwrap();
    let socket_only = t
        .issue_for_socket(Arc::new(record.view()), SessionMeta::default())
        .unwrap();
    assert!(t.is_live(&socket_only.session));

    let reloaded = mk();
    assert_eq!(reloaded.load().await.unwrap(), 1);
    let found = reloaded.lookup(kept.as_str()).unwrap();
    assert_eq!(
        (found.session, found.user.name.as_str()),
        (info.session, "alice")
    );
    assert!(reloaded.lookup(revoked.as_str()).is_err());
    let view = &reloaded.sessions_of(&record.id, None)[0];
    assert_eq!(view.user_agent.as_deref(), Some("test-agent"));

    clock.advance(Duration::from_secs(86_401));
    assert_eq!(
        mk().load().await.unwrap(),
        0,
        "expired sessions are not loaded"
    );
    assert!(
        store.sessions().await.unwrap().is_empty(),
        "and are removed from disk"
    );
}

#[tokio::test]
async fn a_socket_only_session_is_listed_expires_and_ends_with_its_socket() {
    let clock = ManualClock::new();
    let t = table(&clock);
    let u = user();
    let info = t
        .issue_for_socket(u.clone(), SessionMeta::default())
        .unwrap();
    let listed = t.sessions_of(&u.id, Some(&info.session));
    assert_eq!(listed.len(), 1);
    assert!(listed[0].socket_only && listed[0].current);
    assert_eq!(t.user_of(&info.session), Some(u.id));
    // Like any session it can be revoked, and its sockets are told.
    let mut watch = t.watch(&info.session).unwrap();
    let other = t
        .issue_for_socket(u.clone(), SessionMeta::default())
        .unwrap();
    assert_eq!(t.revoke_others(&u.id, &other.session).unwrap(), 1);
    watch.fired().await;
    // It ends when its socket does; a session with a token does not.
    let (_, with_token) = issue(&t, &u);
    t.end_socket_session(&other.session);
    t.end_socket_session(&with_token.session);
    assert!(!t.is_live(&other.session));
    assert!(t.is_live(&with_token.session));
    // It reaches its absolute lifetime like any other, socket or not.
    let last = t
        .issue_for_socket(u.clone(), SessionMeta::default())
        .unwrap();
    let _open_socket = t.watch(&last.session).unwrap();
    clock.advance(std::time::Duration::from_secs(86_401));
    assert!(!t.is_live(&last.session));
}

#[test]
fn deleting_a_passkey_ends_the_sessions_it_opened_and_no_others() {
    let t = table(&ManualClock::new());
    let (alice, bob) = (user(), user());
    let by = |cred: &str| SessionMeta {
        credential_id: Some(cred.into()),
        ..SessionMeta::default()
    };
    let a1 = t.issue(alice.clone(), by("K1")).unwrap().1;
    let a2 = t.issue_for_socket(alice.clone(), by("K1")).unwrap();
    let a3 = t.issue(alice.clone(), by("K2")).unwrap().1;
    let b1 = t.issue(bob.clone(), by("K1")).unwrap().1;
    assert_eq!(t.revoke_opened_by(&alice.id, "K1").unwrap(), 2);
    assert!(!t.is_live(&a1.session) && !t.is_live(&a2.session));
    assert!(t.is_live(&a3.session), "opened by another passkey");
    assert!(t.is_live(&b1.session), "another user's session");
    assert_eq!(t.revoke_user(&alice.id).unwrap(), 1);
    assert!(t.is_live(&b1.session));
}

#[test]
fn a_deleted_user_gets_no_new_session_even_from_a_sign_in_that_passed_before() {
    let t = table(&ManualClock::new());
    let (gone, stays) = (user(), user());
    let before = issue(&t, &gone).1;
    assert_eq!(t.forget_user(&gone.id).unwrap(), 1);
    assert!(!t.is_live(&before.session));
    assert!(matches!(
        t.issue(gone.clone(), SessionMeta::default()),
        Err(Error::UnknownUser)
    ));
    assert!(t
        .issue_for_socket(gone.clone(), SessionMeta::default())
        .is_err());
    assert!(t.sessions_of(&gone.id, None).is_empty());
    assert!(t.issue(stays.clone(), SessionMeta::default()).is_ok());
}

#[tokio::test]
async fn past_the_cap_the_oldest_session_ends_even_after_a_reload_shuffled_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock = ManualClock::new();
    let record = crate::store::UserRecord {
        id: Uuid::new_v4(),
        name: "cap".into(),
        display_name: "Cap".into(),
        created_at: 0,
        passkeys: 1,
    };
    store.put_user_for_tests(&record).await.unwrap();
    let mk = || {
        TokenTable::new(
            86_400,
            3_600,
            Arc::new(clock.clone()),
            Some(store.clone()),
            Events::default(),
        )
        .with_sessions_per_user(3, WhenFull::EndOldest)
    };
    let t = mk();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            t.issue(Arc::new(record.view()), SessionMeta::default())
                .unwrap()
                .1
                .session,
        );
        clock.advance(Duration::from_secs(1));
    }
    // Reloaded, the sessions come back in token-hash order; the oldest still goes first.
    let reloaded = mk();
    assert_eq!(reloaded.load().await.unwrap(), 3);
    reloaded
        .issue(Arc::new(record.view()), SessionMeta::default())
        .unwrap();
    assert!(!reloaded.is_live(&ids[0]), "the oldest ended");
    assert!(reloaded.is_live(&ids[1]) && reloaded.is_live(&ids[2]));
}
