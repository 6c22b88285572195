//! The in-process cost of a full sign-in through our code (`login_begin` + `login_finish`:
//! pending state, sled reads, the assertion check, counter write, token issue) against the
//! floor the target is set in, one OpenSSL P-256 verify (what `openssl speed ecdsap256` times:
//! `ECDSA_do_verify` of a digest with a ready key); beside them the assertion check alone
//! (src/assertion), ring's bare P-256 verify inside it, and webauthn-rs's
//! `finish_passkey_authentication`, which did the check before. Only server-side work is timed:
//! the authenticator signs outside the clock.
//!
//! `cargo bench --bench sign_in`; it ends by printing ours ÷ the floor. docs/benchmarks.md
//! records the numbers.

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{meta, SignInFixture, ORIGIN, USERNAME};
use criterion::{criterion_group, criterion_main, Criterion};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use webauthn_rs::prelude::Url;
use wsauthn::assertion::{AssertionState, Challenge, KnownCredential, Policy, PublicKey, Verifier};

/// Every timed iteration of a bench, warm-up included, for the ratios printed at the end.
#[derive(Default)]
struct Total(Cell<(Duration, u64)>);

impl Total {
    fn add(&self, timed: Duration, iters: u64) {
        let (sum, n) = self.0.get();
        self.0.set((sum + timed, n + iters));
    }

    fn mean(&self) -> f64 {
        let (sum, n) = self.0.get();
        sum.as_secs_f64() / n.max(1) as f64
    }
}

fn sign_in(c: &mut Criterion) {
    let mut f = SignInFixture::new();
    let meta = meta();
    let (floor_total, ours_total, bare_total) =
        (Total::default(), Total::default(), Total::default());
    let mut group = c.benchmark_group("sign_in");
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("openssl_p256_verify_floor", |b| {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let key = EcKey::generate(&group).expect("key");
        let public = EcKey::from_public_key(&group, key.public_key()).expect("public key");
        let digest = openssl::sha::sha256(b"authenticator data and client data hash");
        let signature = EcdsaSig::sign(&digest, &key).expect("signs");
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let ok = black_box(&signature).verify(black_box(&digest), &public);
                assert!(ok.expect("verifies"));
            }
            let timed = started.elapsed();
            floor_total.add(timed, iters);
            timed
        })
    });

    group.bench_function("ours_login_begin_and_finish_with_token", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let (id, options) = f
                    .runtime
                    .block_on(f.ceremonies.login_begin(
                        Some(USERNAME),
                        true,
                        None,
                        wsauthn::Transport::WebSocket,
                    ))
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
            ours_total.add(timed, iters);
            timed
        })
    });

    group.bench_function("ours_login_begin", |b| {
        b.iter(|| {
            let (id, options) = f
                .runtime
                .block_on(f.ceremonies.login_begin(
                    Some(USERNAME),
                    true,
                    None,
                    wsauthn::Transport::WebSocket,
                ))
                .expect("login.begin");
            f.ceremonies.pending().cancel(&id);
            options
        })
    });

    // The assertion check alone: §7.2 steps 5-22 on a ready state, no store, no token.
    let origin = Url::parse(ORIGIN).expect("origin");
    let verifier =
        Verifier::new("localhost", &[origin], Duration::from_secs(300)).expect("verifier");
    let known = KnownCredential {
        cred_id: f.passkey.cred_id().clone(),
        key: PublicKey::from_passkey(&f.passkey).expect("key"),
        counter: 0,
        backup_eligible: false,
        backup_state: false,
    };
    group.bench_function("ours_assertion_check", |b| {
        let (options, _) = f
            .webauthn
            .start_passkey_authentication(std::slice::from_ref(&f.passkey))
            .expect("start");
        let state = AssertionState {
            challenge: Challenge::from_bytes(options.public_key.challenge.as_ref())
                .expect("32 bytes"),
            policy: Policy::USERNAME,
            allowed: vec![known.clone()],
        };
        let credential = f.assertion(&options);
        b.iter(|| {
            verifier
                .finish_login(black_box(&credential), &state)
                .expect("verifies")
        })
    });

    group.bench_function("ring_p256_verify_inside_it", |b| {
        let (options, _) = f
            .webauthn
            .start_passkey_authentication(std::slice::from_ref(&f.passkey))
            .expect("start");
        let credential = f.assertion(&options);
        let response = &credential.response;
        let client_data_hash = openssl::sha::sha256(&response.client_data_json);
        b.iter(|| {
            assert!(known.key.verify(
                black_box(&response.authenticator_data),
                &client_data_hash,
                &response.signature
            ))
        })
    });

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
            bare_total.add(timed, iters);
            timed
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
    let (floor, ours, bare) = (floor_total.mean(), ours_total.mean(), bare_total.mean());
    if floor > 0.0 && ours > 0.0 {
        println!(
            "sign_in: ours (login.begin + login.finish with a token) {:.1} µs / OpenSSL P-256 \
             verify {:.1} µs = {:.2} (means of every timed iteration)",
            ours * 1e6,
            floor * 1e6,
            ours / floor
        );
    }
    if floor > 0.0 && bare > 0.0 {
        println!(
            "sign_in: webauthn-rs finish_passkey_authentication {:.1} µs = {:.2} × the floor",
            bare * 1e6,
            bare / floor
        );
    }
}

criterion_group!(benches, sign_in);
criterion_main!(benches);
