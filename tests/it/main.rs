//! The one integration test binary: a real server on port 0, real sled in a temp directory,
//! real WebSocket and HTTP clients, and a software ES256 authenticator.

mod accounts;
mod browser;
mod ceremonies;
mod close;
mod edge;
mod forward_auth;
mod helpers;
mod persistence;
mod sockets;
