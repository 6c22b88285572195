//! The in-process cost of a full sign-in through our code (`login_begin` + `login_finish`:
//! pending state, sled reads, counter write, token issue) next to webauthn-rs's bare
//! `finish_passkey_authentication` on the same passkey, so our overhead over the library shows
//! as a ratio. Only server-side work is timed: the authenticator signs outside the clock.
//!
//! `cargo bench --bench sign_in`; docs/benchmarks.md records the numbers and the ratio.

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{meta, SignInFixture, USERNAME};
use criterion::{criterion_group, criterion_main, Criterion};

fn sign_in(c: &mut Criterion) {
    let mut f = SignInFixture::new();
    let meta = meta();
    // Every timed iteration of the two, warm-up included, for the ratio printed at the end.
    let bare_total = Cell::new((Duration::ZERO, 0u64));
    let ours_total = Cell::new((Duration::ZERO, 0u64));
    let add = |total: &Cell<(Duration, u64)>, timed: Duration, iters: u64| {
        let (sum, n) = total.get();
        total.set((sum + timed, n + iters));
    };
    let mut group = c.benchmark_group("sign_in");
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("webauthn_rs_bare_finish_passkey_authentication", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let (options, state) = f
                    .webauthn
                    .start_passkey_authentication(std::slice::from_ref(&f.passkey))
                    .expect("start");
                let credential = f.assertion(&options);
                let started = Instant::now();
                let result = f
                    .webauthn
                    .finish_passkey_authentication(black_box(&credential), &state);
                timed += started.elapsed();
                black_box(result.expect("verifies"));
            }
            add(&bare_total, timed, iters);
            timed
        })
    });

    group.bench_function("ours_login_begin_and_finish_with_token", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let (id, options) = f
                    .ceremonies
                    .login_begin(Some(USERNAME), true, None)
                    .expect("login.begin");
                timed += started.elapsed();
                let credential = f.assertion(&options);
                let started = Instant::now();
                let signed_in = f.runtime.block_on(f.ceremonies.login_finish(
                    &id,
                    black_box(&credential),
                    true,
                    wsauthn::Transport::WebSocket,
                    &meta,
                ));
                timed += started.elapsed();
                black_box(signed_in.expect("signs in"));
            }
            add(&ours_total, timed, iters);
            timed
        })
    });

    group.bench_function("ours_login_begin", |b| {
        b.iter(|| {
            let (id, options) = f
                .ceremonies
                .login_begin(Some(USERNAME), true, None)
                .expect("login.begin");
            f.ceremonies.pending().cancel(&id);
            options
        })
    });

    // What the load generator pays per sign-in on the client side.
    group.bench_function("softkey_es256_assertion", |b| {
        let (options, _) = f
            .webauthn
            .start_passkey_authentication(std::slice::from_ref(&f.passkey))
            .expect("start");
        b.iter(|| f.assertion_json(&options))
    });
    group.finish();
    let mean = |total: &Cell<(Duration, u64)>| {
        let (sum, n) = total.get();
        sum.as_secs_f64() / n.max(1) as f64
    };
    let (bare, ours) = (mean(&bare_total), mean(&ours_total));
    if bare > 0.0 && ours > 0.0 {
        println!(
            "sign_in: ours (login.begin + login.finish with a token) {:.1} µs / bare \
             finish_passkey_authentication {:.1} µs = {:.2} (means of every timed iteration)",
            ours * 1e6,
            bare * 1e6,
            ours / bare
        );
    }
}

criterion_group!(benches, sign_in);
criterion_main!(benches);
