//! Bearer tokens: starting a session (token issue, as every sign-in with `"token": true` does)
//! and looking a token up (as every protected HTTP request and socket upgrade does), in a table
//! of 100,000 live sessions wired as the server wires it (persisted to sled). Target: lookup
//! under 1 µs.
//!
//! The clock stands still, so no session comes due for its once-a-minute last-use write during
//! the run: that write (a sled insert, the same cost as in `issue_and_revoke_persisted_session`)
//! is paid at most once per session per minute, not per lookup.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use common::meta;
use criterion::{criterion_group, criterion_main, Criterion};
use uuid::Uuid;
use wsauthn::clock::ManualClock;
use wsauthn::endpoints::DisconnectHook;
use wsauthn::events::{EndReason, Events};
use wsauthn::protocol::UserView;
use wsauthn::state::AppState;
use wsauthn::store::Store;
use wsauthn::Config;

const LIVE_SESSIONS: usize = 100_000;

fn tokens(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(dir.path()).expect("sled opens");
    let state = AppState::new(
        Config::for_tests(dir.path()).expect("embedded config"),
        store,
        Arc::new(ManualClock::new()),
        Arc::new(DisconnectHook),
        Events::new(None),
    )
    .expect("state");
    let table = &state.tokens;
    let user = Arc::new(UserView {
        id: Uuid::new_v4(),
        name: "bench@example.com".into(),
        display_name: "Bench".into(),
    });
    // One account per session: one account holds at most `limits.max_sessions_per_user`
    // (default 100), and issuing past that ends its oldest, whose tokens would no longer look up.
    let issued: Vec<_> = (0..LIVE_SESSIONS)
        .map(|i| {
            let owner = Arc::new(UserView {
                id: Uuid::new_v4(),
                name: format!("bench{i}@example.com"),
                display_name: "Bench".into(),
            });
            table.issue(owner, meta()).expect("issued").0
        })
        .collect();
    let mut group = c.benchmark_group("tokens");

    // Issued and revoked at once, so the table stays at its size however long criterion runs.
    group.bench_function("issue_and_revoke_persisted_session", |b| {
        b.iter(|| {
            let (token, info) = table.issue(user.clone(), meta()).expect("issued");
            table
                .revoke(&info.session, EndReason::Logout)
                .expect("revoked");
            token
        })
    });

    let mut i = 0;
    group.bench_function("lookup_token_in_100k_sessions", |b| {
        b.iter(|| {
            i = (i + 1) % LIVE_SESSIONS;
            table.lookup(black_box(issued[i].as_str())).expect("live")
        })
    });

    let unknown = "AB".repeat(32);
    group.bench_function("lookup_unknown_token", |b| {
        b.iter(|| table.lookup(black_box(&unknown)).is_err())
    });
    group.bench_function("lookup_malformed_token", |b| {
        b.iter(|| table.lookup(black_box("not-a-token")).is_err())
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
