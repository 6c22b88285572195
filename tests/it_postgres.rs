//! The end-to-end suite again, every server on PostgreSQL: the same modules as `tests/it/`
//! (included by path, not copied), with the harness (`helpers::on_test_backend`,
//! `binary::Server`) giving each server a database of its own on one test PostgreSQL per
//! process (`pg_server`).
//!
//! Left out, and why: `store` (the store suite already runs on both backends in `it`),
//! `crash` and `readiness` (kill -9 of sled mid-write and a full tmpfs under sled: sled's own
//! durability), `browser` (Chromium drives the same HTTP and WebSocket paths `accounts` and
//! `ceremonies` cover; minutes each), `deploy` and `config_cli` (the packaging and the command
//! line, not the store), `tls` (the listener, not the store), `embed` (the embedding API builds
//! its config in code, on sled).

#[path = "it/accounts.rs"]
mod accounts;
#[path = "it/backend_api.rs"]
mod backend_api;
#[path = "it/binary.rs"]
mod binary;
#[path = "it/ceremonies.rs"]
mod ceremonies;
#[path = "it/close.rs"]
mod close;
#[path = "it/cors.rs"]
mod cors;
#[path = "it/edge.rs"]
pub(crate) mod edge;
#[path = "it/forward_auth.rs"]
pub(crate) mod forward_auth;
#[path = "it/hardening.rs"]
mod hardening;
#[path = "it/helpers.rs"]
mod helpers;
#[path = "it/limits.rs"]
mod limits;
#[path = "it/logs.rs"]
mod logs;
#[path = "it/metrics.rs"]
mod metrics;
#[path = "it/persistence.rs"]
pub(crate) mod persistence;
#[path = "it/pg_server.rs"]
mod pg_server;
#[path = "it/proxy/mod.rs"]
mod proxy;
#[path = "it/self_service.rs"]
mod self_service;
#[path = "it/shutdown.rs"]
mod shutdown;
#[path = "it/sockets.rs"]
mod sockets;

/// Every server of this binary runs on PostgreSQL.
pub(crate) const ON_POSTGRES: bool = true;
