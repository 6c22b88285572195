//! The process's log output: `tracing` lines in the format `[log] format` names ("text" for
//! people, "json" for collectors), through the buffered writer of [`crate::logwriter`] with its
//! bounds, filtered by `RUST_LOG` (default: info, webauthn-rs's client-data dumps off).
//!
//! Access lines (`[log] access`) have the target [`ACCESS_TARGET`]; the middleware in
//! `http/access.rs` and the socket loop write them.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};
use crate::logwriter::{self, LogGuard};

/// The target of access lines: `RUST_LOG=access=off` silences them like `[log] access = false`.
pub const ACCESS_TARGET: &str = "access";

/// The filter used without `RUST_LOG`: webauthn-rs logs what clients send it (at ERROR, byte by
/// byte) when it cannot parse it: client mistakes, which the server answers and notes at debug
/// itself.
pub const DEFAULT_FILTER: &str = "info,webauthn_rs_core=off,webauthn_rs=off";

/// Installs the global subscriber writing to stdout; keep the guard until the end of `main`
/// (dropping it writes out what is buffered).
pub fn init(config: &LogConfig) -> std::io::Result<LogGuard> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_FILTER.into());
    let (writer, guard) = match config.format {
        LogFormat::Text => logwriter::spawn(std::io::stdout())?,
        LogFormat::Json => logwriter::spawn_json(std::io::stdout())?,
    };
    let budget = logwriter::dependency_budget(&writer);
    let layer = match config.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_writer(writer)
            .with_filter(budget)
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            // {"timestamp","level","target","message",<fields>,"span":{"name","id",…}}
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(budget)
            .with_filter(filter())
            .boxed(),
    };
    tracing_subscriber::registry().with(layer).init();
    Ok(guard)
}
