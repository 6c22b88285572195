//! The `wsauthn` server: builds wsauthn's state ([`Wsauthn`]), binds the listener and mounts the
//! routes into an `HttpServer` of its own, from the same pieces an embedding application uses.
//! Tests bind port 0 and read the address back with [`App::local_addr`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::Config;
pub use crate::embed::RELEASE_WAIT;
use crate::embed::{ShutdownHandle, Wsauthn, WsauthnBuilder};
use crate::endpoints::UnauthorizedHook;
use crate::events::EventHook;
use crate::http::access::access_log;
use crate::http::{cors::cors, request_deadline, security_headers, TokenPolicy};
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// sled's data directory, or the PostgreSQL database, could not be opened.
    #[error("{0}")]
    Store(#[from] crate::store::OpenError),
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
    auth: WsauthnBuilder,
    listener: Option<TcpListener>,
}

impl AppBuilder {
    /// Replaces the default unauthorized hook (disconnect: HTTP 401, WebSocket close 4401).
    pub fn unauthorized_hook(mut self, hook: impl UnauthorizedHook) -> Self {
        self.auth = self.auth.unauthorized_hook(hook);
        self
    }

    /// Receives every security event (ceremony outcomes, passkey and session changes) besides
    /// the `audit` log.
    pub fn event_hook(mut self, hook: impl EventHook) -> Self {
        self.auth = self.auth.event_hook(hook);
        self
    }

    /// Replaces the clock (tests move time with [`crate::clock::ManualClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.auth = self.auth.clock(clock);
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
        let auth = self.auth.build().await?;
        let state = auth.state().clone();
        let config = state.config.clone();
        let addr = config.bind_addr();
        let listener = match self.listener {
            Some(listener) => listener,
            None => TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?,
        };
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let origins = state.origins.clone();
        let mounted = auth.clone();
        let mut server = actix_web::HttpServer::new(move || {
            let auth = mounted.clone();
            actix_web::App::new()
                .wrap(TokenPolicy)
                // Outside the token policy: preflights are answered before it runs.
                .wrap(from_fn(cors))
                .wrap(from_fn(request_deadline))
                .wrap(from_fn(crate::http::metrics::observe))
                .wrap(security_headers(&origins))
                // Outermost: the request id and the access line cover every layer's answer.
                .wrap(from_fn(access_log))
                .configure(|cfg| auth.configure(cfg))
                .configure(|cfg| auth.static_files(cfg))
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
        // On Tokio's spawn, not actix's: this runs under #[tokio::main] too.
        let hangups = crate::tls::Hangups::register();
        match tls {
            Some(tls) => {
                tracing::info!(certificate = %tls.current(), "tls on: https:// and wss:// only");
                tokio::spawn(crate::tls::watch(tls, hangups, state.shutdown_signal()));
            }
            None => {
                tokio::spawn(hangups_change_nothing(hangups, state.shutdown_signal()));
            }
        }
        tracing::info!(
            open_files = state.capacity.open_files,
            connections_per_worker = state.capacity.connections_per_worker,
            max_sockets = state.capacity.sockets,
            "connection caps"
        );
        let signals = crate::embed::signals();
        tracing::info!(addr = %local_addr, rp_id = %config.webauthn.rp_id, "wsauthn listening");
        if let Some(warning) = config.origin_warning(local_addr, config.tls()) {
            tracing::warn!("{warning}");
        }
        Ok(App {
            server,
            local_addr,
            auth,
            signals,
        })
    }
}

/// A built server, bound and ready to run.
pub struct App {
    server: Server,
    local_addr: SocketAddr,
    auth: Wsauthn,
    /// SIGINT/SIGTERM, listened for since before the server said it listens.
    signals: crate::embed::Signals,
}

impl App {
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            auth: Wsauthn::builder(config),
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
        self.auth.state()
    }

    /// A handle that shuts the server down gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.auth.shutdown_handle(&self.server)
    }

    /// Serves until SIGINT/SIGTERM or [`ShutdownHandle::shutdown`], then flushes the store and
    /// waits (up to [`RELEASE_WAIT`]) until the last handle to it is dropped, so the data
    /// directory can be opened again as soon as this returns.
    pub async fn run(self) -> std::io::Result<()> {
        self.auth.serve_until(self.server, self.signals).await
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
