//! Embedding wsauthn in an application's own actix-web server, the way the ecosystem's
//! middleware is: build a [`Wsauthn`] once, then in the `HttpServer::new` factory
//! `.wrap(TokenPolicy)` and `.configure(|cfg| auth.configure(cfg))`, and add the application's
//! own routes beside wsauthn's, HTTP handlers taking [`crate::Authenticated`] and sockets made
//! with [`crate::socket`]. The `wsauthn` server (`App`) is built from these same pieces.
//!
//! Invariants: one [`Wsauthn`] is one server's shared state (clones share it); it starts no
//! thread and needs nothing of the runtime but Tokio's, so it works under `#[actix_web::main]`
//! and `#[tokio::main]` alike; without a Tokio runtime [`WsauthnBuilder::build`] returns an
//! error saying so instead of panicking.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::StartError;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::endpoints::{AuthPolicy, DisconnectHook, UnauthorizedHook};
use crate::error::Error;
use crate::events::{EndReason, EventHook, Events};
use crate::state::{AppState, WeakState};
use crate::store::Store;

/// How often expired tokens and ceremonies are swept from memory.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How long a node on a shared store waits at start for its revocation feed to come up.
const FEED_PATIENCE: Duration = Duration::from_secs(10);
/// How long [`Wsauthn::serve`] waits, after the workers stop, for the last handles to the store
/// to drop.
pub const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Options to set before wsauthn's state is built.
pub struct WsauthnBuilder {
    config: Config,
    clock: SharedClock,
    hook: Arc<dyn UnauthorizedHook>,
    events: Option<Arc<dyn EventHook>>,
    policies: Vec<(String, AuthPolicy)>,
}

impl WsauthnBuilder {
    /// Replaces the default unauthorized hook (disconnect: HTTP 401, WebSocket close 4401).
    pub fn unauthorized_hook(mut self, hook: impl UnauthorizedHook) -> Self {
        self.hook = Arc::new(hook);
        self
    }

    /// Receives every security event (ceremony outcomes, passkey and session changes) besides
    /// the `audit` log.
    pub fn event_hook(mut self, hook: impl EventHook) -> Self {
        self.events = Some(Arc::new(hook));
        self
    }

    /// Replaces the clock (tests move time with [`crate::clock::ManualClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the policy of one of the application's paths, as an `[endpoints.paths]` key would
    /// (an exact path, or a prefix ending in `/*`); it wins over the config's.
    pub fn policy(mut self, path: impl Into<String>, policy: AuthPolicy) -> Self {
        self.policies.push((path.into(), policy));
        self
    }

    /// Opens the store and builds the shared state; starts the sweep of expired sessions on the
    /// current Tokio runtime.
    pub async fn build(self) -> Result<Wsauthn, StartError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(StartError::Setup(
                "wsauthn needs a Tokio runtime: build it inside #[actix_web::main] or \
                 #[tokio::main]"
                    .into(),
            ));
        };
        let mut config = self.config;
        config.endpoints.paths.extend(self.policies);
        config
            .validate()
            .map_err(|e| StartError::Setup(e.to_string()))?;
        let store = Store::open_config(&config).await?;
        // On a shared store, the revocation log is followed from before the sessions are read.
        let after =
            match store.as_postgres() {
                Some(pg) => Some(pg.last_revocation().await.map_err(|e| {
                    StartError::Setup(format!("reading the revocation log: {e:?}"))
                })?),
                None => None,
            };
        let state = AppState::new(
            config,
            store,
            self.clock,
            self.hook,
            Events::new(self.events),
        )
        .map_err(|e| StartError::Setup(format!("{e:?}")))?;
        let sessions = state
            .tokens
            .load()
            .await
            .map_err(|e| StartError::Setup(format!("loading sessions: {e:?}")))?;
        tracing::info!(sessions, "sessions loaded");
        if let Some(pg) = state.store.as_postgres() {
            let pg_out = pg.clone();
            pg.on_chat(Box::new(state.chat.deliverer()));
            state
                .chat
                .relay_to(Box::new(move |frame| pg_out.relay_chat(frame)));
        }
        if let Some(after) = after {
            let feed = state.tokens.follow(after, state.shutdown_signal());
            let confirmed = match feed {
                Some(feed) => feed.wait_confirmed(FEED_PATIENCE).await,
                None => false,
            };
            if !confirmed {
                tracing::warn!("the revocation feed is not up yet: tokens are refused until it is");
            }
        }
        runtime.spawn(sweep_while_alive(
            state.downgrade(),
            state.shutdown_signal(),
        ));
        // sled: reopened by itself once it fails and the disk works again.
        if let Some(watch) = state.store.watch_sled(state.shutdown_signal()) {
            runtime.spawn(watch);
        }
        Ok(Wsauthn {
            state,
            finished: Arc::new(watch::channel(false).0),
        })
    }
}

/// Sweeps expired tokens and ceremonies until the server shuts down or its state is dropped
/// (it holds only a weak handle, so it never keeps the store open).
async fn sweep_while_alive(state: WeakState, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        let Some(state) = state.upgrade() else {
            return;
        };
        let tokens = state.tokens.sweep();
        let ceremonies = state.ceremonies.pending().sweep();
        state.ceremonies.sweep_allowances();
        if tokens + ceremonies > 0 {
            tracing::debug!(tokens, ceremonies, "swept expired entries");
        }
    }
}

/// wsauthn inside an application: its state, routes and lifecycle. Cheap to clone.
#[derive(Clone)]
pub struct Wsauthn {
    state: AppState,
    /// Set once [`Wsauthn::serve`] has released everything, the store included.
    finished: Arc<watch::Sender<bool>>,
}

impl Wsauthn {
    pub fn builder(config: Config) -> WsauthnBuilder {
        WsauthnBuilder {
            config,
            clock: Arc::new(SystemClock),
            hook: Arc::new(DisconnectHook),
            events: None,
            policies: Vec::new(),
        }
    }

    /// The shared state: sessions, store, config. Keep a clone to act on sessions.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Mounts wsauthn into an application's `App` (one call per worker, in the `HttpServer`
    /// factory): its state, the ceremony socket `/ws`, `/echo` and `/chat`, the HTTP mirror of
    /// the ceremonies, the account and session endpoints, `/auth/verify`, `/metrics`, the
    /// backend API, and the `[[proxy]]` paths. Static files are not mounted (see
    /// [`Wsauthn::static_files`]).
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.state.clone()));
        crate::http::routes(cfg, self.state.config.websocket.max_frame_bytes);
        crate::proxy::routes(cfg, &self.state);
    }

    /// Mounts `server.static_dir` (the demo page and `wsauthn.js`) at `/`, when it is set and
    /// exists. Mount it last: it answers every path nothing else did.
    pub fn static_files(&self, cfg: &mut web::ServiceConfig) {
        let dir = &self.state.config.server.static_dir;
        if dir.as_os_str().is_empty() {
            return;
        }
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "static_dir not found; serving no static files");
            return;
        }
        // The client package's tooling (npm's node_modules) lives in the same folder; it is not
        // part of the site.
        cfg.service(
            actix_files::Files::new("/", dir)
                .index_file("index.html")
                .path_filter(|path, _| !path.starts_with("node_modules")),
        );
    }

    /// Closes every socket with 1001 (going away), at once; sockets opened from now on are
    /// closed as soon as they open. For a graceful stop, before the server's.
    pub fn close_sockets(&self) {
        self.state.shutdown_switch().send_replace(true);
    }

    /// Ends every session of `user` and closes their sockets with 4401; answers once that is
    /// on disk. Returns how many sessions ended.
    pub async fn revoke_user(&self, user: &Uuid) -> Result<usize, Error> {
        Ok(crate::admin::revoke_user(&self.state, user).await?.revoked)
    }

    /// Ends one session and closes its sockets with 4401; answers once that is on disk.
    /// Returns whether it existed.
    pub async fn revoke_session(&self, session: &Uuid) -> Result<bool, Error> {
        let ended = self.state.tokens.revoke(session, EndReason::Revoked)?;
        self.state.store.flush().await?;
        Ok(ended)
    }

    /// A handle that stops `server` gracefully, its sockets closed with 1001 first.
    pub fn shutdown_handle(&self, server: &Server) -> ShutdownHandle {
        ShutdownHandle {
            server: server.handle(),
            sockets: self.state.shutdown_switch(),
            finished: self.finished.subscribe(),
        }
    }

    /// Runs `server` (an `HttpServer` built with `.disable_signals()`) until SIGINT or SIGTERM
    /// or [`ShutdownHandle::shutdown`]: sockets are closed with 1001, the workers stop, then the
    /// store is flushed and, once the last handle to it is dropped (within [`RELEASE_WAIT`]),
    /// released, so the data directory can be opened again when this returns.
    pub async fn serve(self, server: Server) -> std::io::Result<()> {
        self.serve_until(server, signals()).await
    }

    /// [`Wsauthn::serve`], with the signals listened for since `signal` was made.
    pub(crate) async fn serve_until(self, server: Server, signal: Signals) -> std::io::Result<()> {
        let on_signal = self.shutdown_handle(&server);
        let signals = tokio::spawn(async move {
            signal.await;
            tracing::info!("signal received; shutting down");
            on_signal.shutdown().await;
        });
        let result = server.await;
        signals.abort();
        let Wsauthn { state, finished } = self;
        if let Err(e) = state.store.flush().await {
            tracing::error!(error = ?e, "final flush failed");
        }
        // Worker threads and socket tasks drop their copies of the state as they wind down.
        let mut released = state.released_signal();
        drop(state);
        let waited = tokio::time::timeout(RELEASE_WAIT, released.wait_for(|done| *done)).await;
        if waited.is_err() {
            tracing::warn!("shut down with the store still open after {RELEASE_WAIT:?}");
        }
        finished.send_replace(true);
        tracing::info!("stopped");
        result
    }
}

/// Stops a running server: every socket is closed with 1001 (going away), the workers stop, and
/// `shutdown` returns once [`Wsauthn::serve`] has released the store.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    sockets: Arc<watch::Sender<bool>>,
    finished: watch::Receiver<bool>,
}

impl ShutdownHandle {
    pub async fn shutdown(&self) {
        self.sockets.send_replace(true);
        self.server.stop(true).await;
        let mut finished = self.finished.clone();
        let _ = finished.wait_for(|done| *done).await;
    }
}

pub(crate) type Signals = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// SIGINT or SIGTERM, listened for from the moment this is called (not from the first poll), so
/// a signal that arrives while the server is still starting is not lost to the default action.
pub(crate) fn signals() -> Signals {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        Box::pin(async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    tracing::warn!("cannot listen for SIGINT/SIGTERM; falling back to Ctrl-C");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        })
    }
    #[cfg(not(unix))]
    {
        Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
