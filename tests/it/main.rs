//! The one integration test binary: a real server on port 0, real sled in a temp directory
//! (`tests/it_postgres.rs` runs most of these modules again on PostgreSQL),
//! real WebSocket and HTTP clients, and a software ES256 authenticator.

mod accounts;
mod backend_api;
mod binary;
mod browser;
mod ceremonies;
mod close;
mod cluster;
mod cluster_faults;
mod cluster_http;
mod cluster_nginx;
mod cluster_tokens;
mod config_cli;
mod cors;
mod crash;
mod deploy;
pub(crate) mod edge;
mod embed;
pub(crate) mod forward_auth;
mod hardening;
mod helpers;
mod limits;
mod logs;
mod metrics;
mod migrate;
pub(crate) mod persistence;
mod pg_server;
mod promises;
mod proxy;
mod readiness;
mod self_service;
mod shutdown;
mod sockets;
mod store;
pub(crate) mod tls;

/// This binary runs the suite on sled (`tests/it_postgres.rs` runs it on PostgreSQL).
pub(crate) const ON_POSTGRES: bool = false;
