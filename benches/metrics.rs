//! What recording a metric costs on a request: a pre-created counter's increment, a histogram
//! observation (fixed buckets of atomics), and counting a security event (the match plus one
//! increment), next to a bare atomic add. The claim (src/metrics.rs) is that each is a few
//! atomic adds: no lock, no label lookup.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use wsauthn::error::ErrorCode;
use wsauthn::events::Event;
use wsauthn::metrics::{AtomicHistogram, Metrics, Sources};

fn metrics(c: &mut Criterion) {
    let m = Metrics::new(Sources {
        open_sockets: Box::new(|| 0),
        sessions: Box::new(|| 0),
        pending_ceremonies: Box::new(|| 0),
        store_flush: AtomicHistogram::default(),
        token_store_lookups: Box::new(|| 0),
        token_negative_hits: Box::new(|| 0),
    });
    let mut group = c.benchmark_group("metrics");
    let bare = AtomicU64::new(0);
    group.bench_function("bare_atomic_add", |b| {
        b.iter(|| bare.fetch_add(black_box(1), Ordering::Relaxed))
    });
    group.bench_function("http_response_counter", |b| {
        b.iter(|| m.http_response(black_box(200)))
    });
    group.bench_function("histogram_observe", |b| {
        b.iter(|| m.sign_in().observe(black_box(Duration::from_micros(420))))
    });
    let event = Event::SignInFailed {
        user: None,
        code: ErrorCode::VerificationFailed,
    };
    group.bench_function("security_event", |b| b.iter(|| m.event(black_box(&event))));
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
