//! The access line of a WebSocket when it ends (`[log] access`, target `access`): path, close
//! code and who closed (`server`, `client`, `gone` without a close, `shutdown` when the task was
//! dropped), duration, user id, socket id. The upgrade's own access line (its request
//! id, status 101) carries the same socket id.

use std::time::Instant;

use super::closing::Ending;
use super::dispatch::SocketCtx;
use crate::http::access::millis;
use crate::logging::ACCESS_TARGET;
use crate::state::AppState;

/// Kept with the socket from its upgrade; written when the socket's context drops.
pub(super) struct SocketLog {
    opened: Instant,
    end: End,
}

enum End {
    /// The loop did not say how it ended: its task was dropped (the server stopped).
    Dropped,
    /// The server closed it with this code.
    Server(u16),
    /// The client closed it, with this code if it gave one.
    Client(Option<u16>),
    /// The connection went away without a close.
    Gone,
}

impl SocketLog {
    pub(super) fn opened() -> Self {
        SocketLog {
            opened: Instant::now(),
            end: End::Dropped,
        }
    }

    /// How the loop ended.
    pub(super) fn closing(&mut self, ending: &Ending) {
        self.end = match ending {
            Ending::Server(close) | Ending::Failed(close) => End::Server(close.code),
            Ending::Client(reason) => End::Client(reason.as_ref().map(|r| u16::from(r.code))),
            Ending::Gone => End::Gone,
        };
    }

    pub(super) fn write(&self, state: &AppState, ctx: &SocketCtx) {
        if !state.config.log.access {
            return;
        }
        let (closed_by, code) = match self.end {
            End::Server(code) => ("server", Some(code)),
            End::Client(code) => ("client", code),
            End::Gone => ("gone", None),
            End::Dropped => ("shutdown", None),
        };
        tracing::info!(
            target: ACCESS_TARGET,
            path = &*ctx.path,
            code,
            closed_by,
            duration_ms = millis(self.opened),
            user = ctx.caller.user.as_ref().map(|u| tracing::field::display(u.id)),
            socket = ctx.id,
            "socket closed"
        );
    }
}
