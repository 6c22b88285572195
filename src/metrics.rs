//! Prometheus metrics (`GET /metrics`, text exposition through `prometheus-client`).
//!
//! Invariant: recording is an atomic add and nothing else. Every labelled counter is created
//! when the server starts and held as a handle, so no label lookup or lock happens on a request;
//! histograms are [`AtomicHistogram`]s (fixed buckets of atomics) rather than the crate's, which
//! takes a lock per observation. Gauges that the server already tracks (open sockets, sessions)
//! are read when scraped. Domain code: no HTTP here; `http/` serves the text.

mod histogram;
mod sockets;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::ErrorCode;
use crate::events::{EndReason, Event};
pub use histogram::AtomicHistogram;
use histogram::{ReadCounter, ReadGauge};
pub use sockets::{OpenClass, SocketClass};

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
    sockets: sockets::SocketGauges,
    revocation_fanout: AtomicHistogram,
}

/// What the metrics read when scraped, from the rest of the server.
pub struct Sources {
    pub open_sockets: Box<dyn Fn() -> i64 + Send + Sync>,
    pub sessions: Box<dyn Fn() -> i64 + Send + Sync>,
    pub pending_ceremonies: Box<dyn Fn() -> i64 + Send + Sync>,
    pub store_flush: AtomicHistogram,
    /// On a shared store: tokens looked up in it, and lookups the negative cache answered.
    pub token_store_lookups: Box<dyn Fn() -> u64 + Send + Sync>,
    pub token_negative_hits: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Metrics {
    pub fn new(sources: Sources) -> Self {
        let mut registry = Registry::with_prefix("wsauthn");
        let ceremonies = Family::<Outcome, Counter>::default();
        let ended = Family::<Reason, Counter>::default();
        let http = Family::<Class, Counter>::default();
        let by_kind = Family::<sockets::Kind, Gauge<i64, AtomicI64>>::default();
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
            sockets: sockets::SocketGauges::new(&by_kind),
            revocation_fanout: AtomicHistogram::default(),
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
            "sockets_open_by_kind",
            "WebSockets open by kind (ws, echo, chat, app: an application's own, proxy)",
            by_kind,
        );
        registry.register(
            "revocation_fanout_seconds",
            "Time from a session's end (revocation or expiry) to the close of each socket it \
             had, as the socket's loop sends its 4401, seconds",
            inner.revocation_fanout.clone(),
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
        registry.register(
            "token_store_lookups",
            "Tokens this node had not cached, looked up in the shared store (one query each)",
            ReadCounter(sources.token_store_lookups),
        );
        registry.register(
            "token_negative_cache_hits",
            "Tokens refused without a query because the shared store had lately said it does \
             not have them",
            ReadCounter(sources.token_negative_hits),
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

    /// Counts a socket of `class` open until the returned guard drops.
    pub fn socket_opened(&self, class: SocketClass) -> OpenClass {
        self.0.sockets.opened(class)
    }

    /// A socket closed because its session ended this long ago.
    pub fn revocation_fanout(&self) -> &AtomicHistogram {
        &self.0.revocation_fanout
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
    use std::time::Duration;

    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(Sources {
            open_sockets: Box::new(|| 7),
            sessions: Box::new(|| 3),
            pending_ceremonies: Box::new(|| 0),
            store_flush: AtomicHistogram::default(),
            token_store_lookups: Box::new(|| 5),
            token_negative_hits: Box::new(|| 2),
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
        assert!(
            text.contains("# TYPE wsauthn_token_store_lookups counter"),
            "{text}"
        );
        assert!(
            text.contains("wsauthn_token_store_lookups_total 5"),
            "{text}"
        );
        assert!(text.contains("wsauthn_token_negative_cache_hits_total 2"));
        let chat = m.socket_opened(SocketClass::Chat);
        let _proxied = m.socket_opened(SocketClass::Proxy);
        let _other = m.socket_opened(SocketClass::Proxy);
        drop(chat);
        m.revocation_fanout().observe(Duration::from_millis(3));
        m.revocation_fanout().observe(Duration::from_millis(30));
        m.revocation_fanout().observe(Duration::from_secs(30));
        let text = m.render().unwrap();
        assert!(
            text.contains(r#"wsauthn_sockets_open_by_kind{kind="proxy"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"wsauthn_sockets_open_by_kind{kind="chat"} 0"#));
        assert!(text.contains(r#"wsauthn_sockets_open_by_kind{kind="app"} 0"#));
        // Cumulative, as Prometheus reads them: each `le` counts everything at or below it.
        for (le, n) in [
            ("0.0025", 0),
            ("0.005", 1),
            ("0.025", 1),
            ("0.05", 2),
            ("10.0", 2),
        ] {
            let line = format!(r#"wsauthn_revocation_fanout_seconds_bucket{{le="{le}"}} {n}"#);
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains(r#"wsauthn_revocation_fanout_seconds_bucket{le="+Inf"} 3"#));
        assert!(text.contains("wsauthn_revocation_fanout_seconds_count 3"));
        assert!(text.ends_with("# EOF\n"));
    }
}
