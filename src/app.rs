//! Assembles the server: opens the store, builds the shared state, binds the listener and
//! mounts the routes. Tests bind port 0 and read the address back with [`App::local_addr`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::web;
use tokio::sync::watch;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::endpoints::{DisconnectHook, UnauthorizedHook};
use crate::events::{EventHook, Events};
use crate::http::access::access_log;
use crate::http::{cors::cors, enforce_policy, request_deadline, routes, security_headers};
use crate::state::AppState;
use crate::store::Store;

/// How often expired tokens and ceremonies are swept from memory.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How long `run` waits, after the workers stop, for the last handles to the store to drop.
pub const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the data directory {path}: {source}")]
    Store {
        path: std::path::PathBuf,
        source: sled::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Setup(String),
}

/// Options an embedding application can set before the server starts.
pub struct AppBuilder {
    config: Config,
    clock: SharedClock,
    hook: Arc<dyn UnauthorizedHook>,
    events: Option<Arc<dyn EventHook>>,
    listener: Option<TcpListener>,
}

impl AppBuilder {
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

    /// Serves on an already bound listener instead of binding `server.bind`. Tests and embedding
    /// applications use it to know the port (and so the origin) before the server starts.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Opens the store, binds the listener and prepares the server; call [`App::run`] next.
    pub async fn build(self) -> Result<App, StartError> {
        let config = self.config;
        let store = Store::open(&config.server.data_dir).map_err(|source| StartError::Store {
            path: config.server.data_dir.clone(),
            source,
        })?;
        let state = AppState::new(
            config,
            store,
            self.clock,
            self.hook,
            Events::new(self.events),
        )
        .map_err(|e| StartError::Setup(format!("{e:?}")))?;
        let config = state.config.clone();
        let addr = config.bind_addr();
        let listener = match self.listener {
            Some(listener) => listener,
            None => TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?,
        };
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let static_dir = Some(config.server.static_dir.clone())
            .filter(|d| !d.as_os_str().is_empty())
            .filter(|d| {
                let exists = d.is_dir();
                if !exists {
                    tracing::warn!(dir = %d.display(), "static_dir not found; serving no static files");
                }
                exists
            });
        let data = web::Data::new(state.clone());
        let body_limit = config.websocket.max_frame_bytes;
        let origins = state.origins.clone();
        let mut server = actix_web::HttpServer::new(move || {
            let static_dir = static_dir.clone();
            actix_web::App::new()
                .app_data(data.clone())
                .wrap(from_fn(enforce_policy))
                // Outside the token policy: preflights are answered before it runs.
                .wrap(from_fn(cors))
                .wrap(from_fn(request_deadline))
                .wrap(from_fn(crate::http::metrics::observe))
                .wrap(security_headers(&origins))
                // Outermost: the request id and the access line cover every layer's answer.
                .wrap(from_fn(access_log))
                .configure(move |cfg| routes(cfg, static_dir.as_deref(), body_limit))
        })
        .max_connections(state.capacity.connections_per_worker)
        .shutdown_timeout(5)
        // Signals are handled in `run`, so sockets can be closed with 1001 before the workers stop.
        .disable_signals();
        if config.server.workers > 0 {
            server = server.workers(config.server.workers);
        }
        let tls = match config.tls() {
            true => Some(Arc::new(crate::tls::Tls::load(
                &config.server.tls_cert,
                &config.server.tls_key,
            )?)),
            false => None,
        };
        let server = match &tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls.server_config()?),
            None => server.listen(listener),
        }
        .map_err(|source| StartError::Bind { addr, source })?
        .run();
        let hangups = crate::tls::Hangups::register();
        match tls {
            Some(tls) => {
                tracing::info!(certificate = %tls.current(), "tls on: https:// and wss:// only");
                actix_web::rt::spawn(crate::tls::watch(tls, hangups, state.shutdown_signal()));
            }
            None => {
                actix_web::rt::spawn(hangups_change_nothing(hangups, state.shutdown_signal()));
            }
        }
        let (stop_sweeper, stopped) = tokio::sync::oneshot::channel();
        actix_web::rt::spawn(sweep_until(state.clone(), stopped));
        tracing::info!(
            open_files = state.capacity.open_files,
            connections_per_worker = state.capacity.connections_per_worker,
            max_sockets = state.capacity.sockets,
            "connection caps"
        );
        tracing::info!(addr = %local_addr, rp_id = %config.webauthn.rp_id, "wsauthn listening");
        if let Some(warning) = config.origin_warning(local_addr, config.tls()) {
            tracing::warn!("{warning}");
        }
        Ok(App {
            server,
            local_addr,
            state,
            stop_sweeper,
            finished: watch::channel(false).0,
        })
    }
}

/// Sweeps expired tokens and ceremonies until the server stops.
async fn sweep_until(state: AppState, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = &mut stopped => return,
        }
        let tokens = state.tokens.sweep();
        let ceremonies = state.ceremonies.pending().sweep();
        state.ceremonies.sweep_allowances();
        if tokens + ceremonies > 0 {
            tracing::debug!(tokens, ceremonies, "swept expired entries");
        }
    }
}

/// A built server, bound and ready to run.
pub struct App {
    server: Server,
    local_addr: SocketAddr,
    state: AppState,
    stop_sweeper: tokio::sync::oneshot::Sender<()>,
    /// Set once `run` has released everything, the store included.
    finished: watch::Sender<bool>,
}

impl App {
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            clock: Arc::new(SystemClock),
            hook: Arc::new(DisconnectHook),
            events: None,
            listener: None,
        }
    }

    /// Builds with the default clock and hook.
    pub async fn build(config: Config) -> Result<App, StartError> {
        App::builder(config).build().await
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state, for embedding applications and tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that shuts the server down gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            server: self.server.handle(),
            sockets: self.state.shutdown_switch(),
            finished: self.finished.subscribe(),
        }
    }

    /// Serves until SIGINT/SIGTERM or [`ShutdownHandle::shutdown`], then flushes the store and
    /// waits (up to [`RELEASE_WAIT`]) until the last handle to it is dropped, so the data
    /// directory can be opened again as soon as this returns.
    pub async fn run(self) -> std::io::Result<()> {
        let on_signal = self.shutdown_handle();
        actix_web::rt::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received; shutting down");
            on_signal.shutdown().await;
        });
        let result = self.server.await;
        let _ = self.stop_sweeper.send(());
        if let Err(e) = self.state.store.flush().await {
            tracing::error!(error = ?e, "final flush failed");
        }
        // Worker threads and socket tasks drop their copies of the state as they wind down.
        let mut released = self.state.released_signal();
        drop(self.state);
        let waited = tokio::time::timeout(RELEASE_WAIT, released.wait_for(|done| *done)).await;
        if waited.is_err() {
            tracing::warn!("shut down with the store still open after {RELEASE_WAIT:?}");
        }
        self.finished.send_replace(true);
        tracing::info!("stopped");
        result
    }
}

/// Stops a running server: every socket is closed with 1001 (going away), the workers stop, and
/// `shutdown` returns once [`App::run`] has released the store.
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

/// Without TLS there is nothing to reload, but SIGHUP (`systemctl reload`) must not end the
/// process, as it would by default.
async fn hangups_change_nothing(
    mut hangups: crate::tls::Hangups,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = hangups.next() => {
                tracing::info!("SIGHUP: nothing to reload (no TLS certificate configured)");
            }
            changed = shutdown.changed() => match changed {
                Ok(()) if !*shutdown.borrow() => {}
                _ => return,
            },
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
