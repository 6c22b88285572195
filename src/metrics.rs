//! Prometheus metrics (`GET /metrics`, text exposition through `prometheus-client`).
//!
//! Invariant: recording is an atomic add and nothing else. Every labelled counter is created
//! when the server starts and held as a handle, so no label lookup or lock happens on a request;
//! histograms are [`AtomicHistogram`]s (fixed buckets of atomics) rather than the crate's, which
//! takes a lock per observation. Gauges that the server already tracks (open sockets, sessions)
//! are read when scraped. Domain code: no HTTP here; `http/` serves the text.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::error::ErrorCode;
use crate::events::{EndReason, Event};

/// Latency buckets, seconds: 100 µs to 10 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// A histogram of durations with fixed buckets, recorded with atomic adds only.
#[derive(Debug, Clone, Default)]
pub struct AtomicHistogram(Arc<HistogramInner>);

#[derive(Debug, Default)]
struct HistogramInner {
    /// Observations at or below each bucket's bound (not cumulative here).
    buckets: [AtomicU64; BUCKETS.len()],
    /// Observations above the last bound.
    over: AtomicU64,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let inner = &self.0;
        match BUCKETS.iter().position(|bound| secs <= *bound) {
            Some(i) => inner.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => inner.over.fetch_add(1, Ordering::Relaxed),
        };
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        inner.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &self.0;
        let mut cumulative = 0;
        let mut buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&inner.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        cumulative += inner.over.load(Ordering::Relaxed);
        buckets.push((f64::INFINITY, cumulative));
        let sum = inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, cumulative, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A gauge read when scraped.
struct ReadGauge(Box<dyn Fn() -> i64 + Send + Sync>);

impl std::fmt::Debug for ReadGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadGauge")
    }
}

impl EncodeMetric for ReadGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&(self.0)())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    ceremony: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    class: &'static str,
}

/// Every error code, for the pre-created `outcome` labels.
const CODES: [ErrorCode; ErrorCode::ALL.len()] = ErrorCode::ALL;

const REASONS: [EndReason; 6] = [
    EndReason::Logout,
    EndReason::Revoked,
    EndReason::Expired,
    EndReason::PasskeyRemoved,
    EndReason::SocketClosed,
    EndReason::SessionLimit,
];

/// Counters by (ceremony, outcome): index 0 is "ok", then [`CODES`] in order.
struct ByOutcome([Counter; CODES.len() + 1]);

impl ByOutcome {
    fn new(family: &Family<Outcome, Counter>, ceremony: &'static str) -> Self {
        let get = |outcome| family.get_or_create(&Outcome { ceremony, outcome }).clone();
        ByOutcome(std::array::from_fn(|i| match i {
            0 => get("ok"),
            i => get(CODES[i - 1].as_str()),
        }))
    }

    fn ok(&self) {
        self.0[0].inc();
    }

    fn failed(&self, code: ErrorCode) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.0[i + 1].inc();
        }
    }
}

/// The server's metrics. Cheap to clone (handles).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    registrations: ByOutcome,
    sign_ins: ByOutcome,
    sessions_ended: [Counter; REASONS.len()],
    sessions_created: Counter,
    rate_limited: Counter,
    http: [Counter; 5],
    pub sign_in: AtomicHistogram,
    pub signature_check: AtomicHistogram,
    pub connect: AtomicHistogram,
}

/// What the metrics read when scraped, from the rest of the server.
pub struct Sources {
    pub open_sockets: Box<dyn Fn() -> i64 + Send + Sync>,
    pub sessions: Box<dyn Fn() -> i64 + Send + Sync>,
    pub pending_ceremonies: Box<dyn Fn() -> i64 + Send + Sync>,
    pub store_flush: AtomicHistogram,
}

impl Metrics {
    pub fn new(sources: Sources) -> Self {
        let mut registry = Registry::with_prefix("wsauthn");
        let ceremonies = Family::<Outcome, Counter>::default();
        let ended = Family::<Reason, Counter>::default();
        let http = Family::<Class, Counter>::default();
        let inner = Inner {
            registrations: ByOutcome::new(&ceremonies, "register"),
            sign_ins: ByOutcome::new(&ceremonies, "login"),
            sessions_ended: std::array::from_fn(|i| {
                ended
                    .get_or_create(&Reason {
                        reason: REASONS[i].as_str(),
                    })
                    .clone()
            }),
            sessions_created: Counter::default(),
            rate_limited: Counter::default(),
            http: std::array::from_fn(|i| {
                let class = ["1xx", "2xx", "3xx", "4xx", "5xx"][i];
                http.get_or_create(&Class { class }).clone()
            }),
            sign_in: AtomicHistogram::default(),
            signature_check: AtomicHistogram::default(),
            connect: AtomicHistogram::default(),
            registry: Registry::default(),
        };
        registry.register(
            "ceremonies_finished",
            "Finished ceremonies by kind and outcome (ok or the error code)",
            ceremonies,
        );
        registry.register(
            "sessions_ended",
            "Sessions ended (revocations and expiries) by reason",
            ended,
        );
        registry.register(
            "sessions_created",
            "Sessions opened",
            inner.sessions_created.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests and frames refused by a limit (rate_limited, 429 or 503)",
            inner.rate_limited.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses by status class (WebSocket upgrades included)",
            http,
        );
        registry.register(
            "sign_in_seconds",
            "Time to verify a sign-in (login.finish), seconds",
            inner.sign_in.clone(),
        );
        registry.register(
            "signature_check_seconds",
            "Time to check one sign-in assertion (its parsing and signature), seconds",
            inner.signature_check.clone(),
        );
        registry.register(
            "connect_seconds",
            "Time from a WebSocket upgrade request to its 101, seconds",
            inner.connect.clone(),
        );
        registry.register(
            "store_flush_seconds",
            "Time of one durable store flush (group commit), seconds",
            sources.store_flush,
        );
        registry.register(
            "sockets_open",
            "WebSockets open",
            ReadGauge(sources.open_sockets),
        );
        registry.register(
            "sessions_live",
            "Sessions in the table",
            ReadGauge(sources.sessions),
        );
        registry.register(
            "ceremonies_pending",
            "Ceremonies begun and not finished",
            ReadGauge(sources.pending_ceremonies),
        );
        Metrics(Arc::new(Inner { registry, ..inner }))
    }

    /// Counts what a security event says.
    pub fn event(&self, event: &Event) {
        let m = &self.0;
        match event {
            Event::RegistrationSucceeded { .. } => m.registrations.ok(),
            Event::RegistrationFailed { code, .. } => m.registrations.failed(*code),
            Event::SignInSucceeded { .. } => m.sign_ins.ok(),
            Event::SignInFailed { code, .. } => m.sign_ins.failed(*code),
            Event::SessionCreated { .. } => {
                m.sessions_created.inc();
            }
            Event::SessionEnded { reason, .. } => {
                if let Some(i) = REASONS.iter().position(|r| r == reason) {
                    m.sessions_ended[i].inc();
                }
            }
            _ => {}
        }
    }

    /// Counts an HTTP response by status (limits' 429 and 503 also as `rate_limited`).
    pub fn http_response(&self, status: u16) {
        let m = &self.0;
        if let Some(c) = m.http.get(usize::from(status / 100).wrapping_sub(1)) {
            c.inc();
        }
        if status == 429 || status == 503 {
            m.rate_limited.inc();
        }
    }

    /// Counts a frame refused by a limit.
    pub fn rate_limited(&self) {
        self.0.rate_limited.inc();
    }

    pub fn sign_in(&self) -> &AtomicHistogram {
        &self.0.sign_in
    }

    pub fn signature_check(&self) -> &AtomicHistogram {
        &self.0.signature_check
    }

    pub fn connect(&self) -> &AtomicHistogram {
        &self.0.connect
    }

    /// The text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.0.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(Sources {
            open_sockets: Box::new(|| 7),
            sessions: Box::new(|| 3),
            pending_ceremonies: Box::new(|| 0),
            store_flush: AtomicHistogram::default(),
        })
    }

    #[test]
    fn events_and_observations_show_in_the_exposition() {
        let m = metrics();
        m.event(&Event::SignInFailed {
            user: None,
            code: ErrorCode::VerificationFailed,
        });
        m.event(&Event::SignInFailed {
            user: None,
            code: ErrorCode::VerificationFailed,
        });
        m.http_response(429);
        m.sign_in().observe(Duration::from_micros(300));
        let text = m.render().unwrap();
        assert!(text.contains(r#"wsauthn_ceremonies_finished_total{ceremony="login",outcome="verification_failed"} 2"#), "{text}");
        assert!(text
            .contains(r#"wsauthn_ceremonies_finished_total{ceremony="register",outcome="ok"} 0"#));
        assert!(text.contains("wsauthn_rate_limited_total 1"));
        assert!(text.contains(r#"wsauthn_http_responses_total{class="4xx"} 1"#));
        assert!(
            text.contains(r#"wsauthn_sign_in_seconds_bucket{le="0.0005"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"wsauthn_sign_in_seconds_bucket{le="0.00025"} 0"#));
        assert!(text.contains("wsauthn_sign_in_seconds_count 1"));
        assert!(
            text.contains(r#"wsauthn_sign_in_seconds_bucket{le="+Inf"} 1"#),
            "{text}"
        );
        assert!(text.contains("wsauthn_sockets_open 7"));
        assert!(text.ends_with("# EOF\n"));
    }
}
