//! The shared state every handler and socket gets: cheap-to-clone handles, no globals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::admission::{Anonymous, Capacity};
use crate::ceremony::Ceremonies;
use crate::chat::ChatRoom;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::endpoints::{Endpoints, UnauthorizedHook};
use crate::events::Events;
use crate::store::Store;
use crate::tokens::TokenTable;

/// One `Arc` clone per handle: every socket task and request holds one pointer, not a copy of
/// each field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub ceremonies: Ceremonies,
    pub tokens: TokenTable,
    pub store: Store,
    pub endpoints: Arc<Endpoints>,
    pub hook: Arc<dyn UnauthorizedHook>,
    pub events: Events,
    pub chat: ChatRoom,
    pub clock: SharedClock,
    /// Allowed WebSocket `Origin` values, serialized as browsers send them (no trailing slash).
    pub origins: Arc<Vec<String>>,
    /// Connection and socket caps, from the open-file limit and the config.
    pub capacity: Capacity,
    /// Sockets not signed in, per client address.
    pub anonymous: Anonymous,
    /// Open sockets per user.
    pub per_user: crate::admission::PerUser,
    pub metrics: crate::metrics::Metrics,
    /// WebSocket upgrades per second, server-wide (`None`: no limit).
    pub connects: Option<std::sync::Mutex<crate::ratelimit::TokenBucket>>,
    /// Reverse proxies whose forwarded-for headers are believed.
    pub proxies: crate::clientaddr::TrustedProxies,
    /// Allowances of recovery-code attempts, per account and per address.
    pub recovery: crate::recovery::Limiter,
    /// The last answer of the store's readiness probe (`/readyz`).
    pub readiness: crate::readiness::Readiness,
    /// Ids of HTTP requests, for the access log and `X-Request-Id`.
    pub request_ids: crate::http::access::RequestIds,
    socket_ids: Arc<AtomicU64>,
    open_sockets: Arc<AtomicU64>,
    /// Set to true once when the server begins to shut down; sockets close with 1001.
    shutdown: Arc<watch::Sender<bool>>,
    /// Fires when the last clone of the state, and with it the store, is dropped. Declared last so
    /// it drops after every other field.
    released: Arc<Released>,
}

struct Released(watch::Sender<bool>);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        clock: SharedClock,
        hook: Arc<dyn UnauthorizedHook>,
        events: Events,
    ) -> Result<Self, crate::error::Error> {
        let tokens = TokenTable::new(
            config.tokens.lifetime_secs,
            config.tokens.idle_timeout_secs,
            clock.clone(),
            Some(store.clone()),
            events.clone(),
        )
        .with_sessions_per_user(
            config.limits.max_sessions_per_user,
            config.limits.when_sessions_full,
        );
        let ceremonies = Ceremonies::new(
            &config,
            store.clone(),
            tokens.clone(),
            clock.clone(),
            events.clone(),
        )?;
        let origins = config
            .origins()
            .map_err(|e| crate::error::Error::internal(e.to_string()))?
            .iter()
            .map(|u| u.origin().ascii_serialization())
            .collect();
        let workers = match config.server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let capacity = Capacity::derive(
            crate::admission::raise_open_file_limit(),
            workers,
            config.server.max_connections_per_worker,
            config.server.max_sockets,
        );
        let anonymous = Anonymous::new(config.limits.unauthenticated_sockets_per_address);
        let proxies = crate::clientaddr::TrustedProxies::parse(&config.server.trusted_proxies)
            .map_err(crate::error::Error::internal)?;
        let per_user = crate::admission::PerUser::new(config.limits.max_sockets_per_user);
        let open_sockets = Arc::new(AtomicU64::new(0));
        let store_flush = store.flush_times();
        let connects = match config.server.max_connects_per_second {
            0 => None,
            n => Some(std::sync::Mutex::new(crate::ratelimit::TokenBucket::new(
                f64::from(n),
                n,
                std::time::Instant::now(),
            ))),
        };
        // The gauges read the state they live in through a weak handle: the events (and so the
        // token table and the store) hold the metrics, so a strong one would keep the store
        // open forever.
        let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared>| {
            let read = |f: fn(&Shared) -> i64| {
                let weak = weak.clone();
                Box::new(move || weak.upgrade().map_or(0, |s| f(&s)))
                    as Box<dyn Fn() -> i64 + Send + Sync>
            };
            let count = |f: fn(&Shared) -> u64| {
                let weak = weak.clone();
                Box::new(move || weak.upgrade().map_or(0, |s| f(&s)))
                    as Box<dyn Fn() -> u64 + Send + Sync>
            };
            let metrics = crate::metrics::Metrics::new(crate::metrics::Sources {
                open_sockets: read(|s| s.open_sockets.load(Ordering::Relaxed) as i64),
                sessions: read(|s| s.tokens.len() as i64),
                pending_ceremonies: read(|s| s.ceremonies.pending().len() as i64),
                store_flush,
                token_store_lookups: count(|s| s.tokens.store_lookups().queried),
                token_negative_hits: count(|s| s.tokens.store_lookups().negative_hits),
            });
            events.attach_metrics(metrics.clone());
            Shared {
                metrics,
                connects,
                per_user,
                proxies,
                recovery: crate::recovery::Limiter::default(),
                request_ids: crate::http::access::RequestIds::new(),
                readiness: crate::readiness::Readiness::default(),
                capacity,
                anonymous,
                endpoints: Arc::new(Endpoints::from_config(&config.endpoints)),
                config: Arc::new(config),
                ceremonies,
                tokens,
                store,
                hook,
                events,
                chat: ChatRoom::default(),
                clock,
                origins: Arc::new(origins),
                socket_ids: Arc::new(AtomicU64::new(1)),
                open_sockets,
                shutdown: Arc::new(watch::channel(false).0),
                released: Arc::new(Released(watch::channel(false).0)),
            }
        });
        Ok(AppState(shared))
    }

    /// Takes one upgrade from the server-wide connect allowance.
    pub fn allow_connect(&self) -> bool {
        self.connects.as_ref().is_none_or(|bucket| {
            bucket
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .try_take(std::time::Instant::now())
        })
    }

    pub fn next_socket_id(&self) -> u64 {
        self.socket_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a socket open until the returned guard drops.
    pub fn socket_opened(&self) -> OpenSocket {
        self.open_sockets.fetch_add(1, Ordering::Relaxed);
        OpenSocket(self.open_sockets.clone())
    }

    /// The switch that tells every socket the server is going away.
    pub fn shutdown_switch(&self) -> Arc<watch::Sender<bool>> {
        self.shutdown.clone()
    }

    /// Resolves when the server begins to shut down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether the server has begun to shut down.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Becomes true once every clone of this state has been dropped (the store is closed).
    pub fn released_signal(&self) -> watch::Receiver<bool> {
        self.released.0.subscribe()
    }

    pub fn open_sockets(&self) -> u64 {
        self.open_sockets.load(Ordering::Relaxed)
    }

    /// A handle that does not keep the state (and so the store) alive.
    pub fn downgrade(&self) -> WeakState {
        WeakState(Arc::downgrade(&self.0))
    }
}

/// See [`AppState::downgrade`].
#[derive(Clone)]
pub struct WeakState(std::sync::Weak<Shared>);

impl WeakState {
    /// The state, while anything else still holds it.
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

pub struct OpenSocket(Arc<AtomicU64>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
