//! wsauthn: passkey (WebAuthn) authentication for real-time applications.
//!
//! Clients run passkey ceremonies as JSON frames over one WebSocket (`/ws`); a successful
//! ceremony can yield a bearer token that opens further WebSockets and authorizes HTTP calls,
//! and revoking it closes every socket that used it. See `docs/protocol.md` for the wire format.
//!
//! How the pieces fit:
//!
//! ```text
//!   http/ (routes, token-policy middleware)     ws/ (upgrade, socket loop, dispatch)
//!        │                                           │
//!        └──────────────┬────────────────────────────┘
//!                       ▼
//!   ceremony/ (begin/finish, pending state) ── tokens (SHA-256-keyed table, revocation)
//!                       │                      endpoints (policy, unauthorized hook)
//!                       ▼
//!                    store (sled: users, passkeys, credential-id index)
//! ```
//!
//! Around them, for running it: `config` (layers with the source of every value, errors that
//! name key, file and line), `logging` and `logwriter` (text or JSON lines, access lines),
//! `readiness` (`/readyz`), `tls` (rustls with certificate reloads) and `app` (start, signals,
//! graceful shutdown); `docs/deploy.md` puts them together.
//!
//! Domain modules (`ceremony`, `tokens`, `store`, `endpoints`, `protocol`) never import actix;
//! `http` and `ws` translate between the wire and the domain.
//!
//! Every socket runs the same loop (`ws/session.rs`: auth, deadlines, heartbeat, limits,
//! expiry, revocation, shutdown, the closing handshake) with a [`Handler`] that says what its
//! frames mean: the built-in `/ws`, `/echo` and `/chat`, an application's own socket
//! ([`socket`]), and the reverse proxy's relay to an upstream ([`proxy`]).
//!
//! Embedding (docs/embedding.md): an application builds a [`Wsauthn`], mounts it into its own
//! actix-web `App` (`.wrap(TokenPolicy)`, `.configure(|cfg| auth.configure(cfg))`) beside its own
//! routes, whose handlers take [`Authenticated`]; or it runs the whole server with
//! [`App::builder`], which is built from the same pieces. Both work under `#[actix_web::main]`
//! and `#[tokio::main]`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod aaguid;
pub mod account;
pub mod admin;
pub mod admission;
pub mod api;
pub mod app;
pub mod assertion;
pub mod bench;
pub mod ceremony;
pub mod chat;
pub mod clientaddr;
pub mod clock;
pub mod config;
pub mod embed;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod http;
pub mod logging;
pub mod logwriter;
pub mod metrics;
pub mod names;
pub mod protocol;
pub mod proxy;
pub mod ratelimit;
pub mod readiness;
pub mod recovery;
pub mod softkey;
pub mod state;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod ws;

pub use app::{App, AppBuilder, StartError};
pub use config::Config;
pub use embed::{ShutdownHandle, Wsauthn, WsauthnBuilder};
pub use endpoints::{AuthPolicy, Reason, Transport, Unauthorized, UnauthorizedHook, Verdict};
pub use error::{Error, ErrorCode};
pub use events::{Event, EventHook};
pub use http::{Authenticated, TokenPolicy};
pub use ws::{socket, Conn, Ending, Handler, Next, Stop};

/// Base64url without padding, as WebAuthn's JSON uses it.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
