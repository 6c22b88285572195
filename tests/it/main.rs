//! The one integration test binary: a real server on port 0, real sled in a temp directory,
//! real WebSocket and HTTP clients, and a software ES256 authenticator.

mod accounts;
mod backend_api;
mod binary;
mod browser;
mod ceremonies;
mod close;
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
pub(crate) mod persistence;
mod promises;
mod proxy;
mod readiness;
mod self_service;
mod shutdown;
mod sockets;
pub(crate) mod tls;
