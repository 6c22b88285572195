//! Security events: every ceremony outcome, passkey change and session change.
//!
//! Each event goes to the structured audit log (tracing target `audit`, one line per event with
//! its fields) and to the embedding application's [`EventHook`], which can ship it to a SIEM, a
//! metrics counter or a webhook. Hooks run inline on the request path: keep them fast and hand
//! slow work to a channel.

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::error::ErrorCode;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `logout` with the session's own token.
    Logout,
    /// Revoked by its user from another session (one, or "all others").
    Revoked,
    /// Reached its absolute lifetime or idle timeout.
    Expired,
    /// The passkey that opened it was deleted.
    PasskeyRemoved,
    /// A socket-only session's socket closed or signed in again.
    SocketClosed,
    /// Its user opened more sessions than `limits.max_sessions_per_user`; the oldest ends.
    SessionLimit,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Revoked => "revoked",
            EndReason::Expired => "expired",
            EndReason::PasskeyRemoved => "passkey_removed",
            EndReason::SocketClosed => "socket_closed",
            EndReason::SessionLimit => "session_limit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    RegistrationSucceeded {
        user: Uuid,
        credential_id: String,
        new_account: bool,
    },
    RegistrationFailed {
        username: Option<String>,
        code: ErrorCode,
    },
    SignInSucceeded {
        user: Uuid,
        credential_id: String,
    },
    SignInFailed {
        user: Option<Uuid>,
        code: ErrorCode,
    },
    PasskeyAdded {
        user: Uuid,
        credential_id: String,
    },
    PasskeyRenamed {
        user: Uuid,
        credential_id: String,
    },
    PasskeyRemoved {
        user: Uuid,
        credential_id: String,
    },
    SessionCreated {
        user: Uuid,
        session: Uuid,
        address: Option<IpAddr>,
    },
    SessionRefreshed {
        user: Uuid,
        session: Uuid,
    },
    SessionEnded {
        user: Uuid,
        session: Uuid,
        reason: EndReason,
    },
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesCreated {
        user: Uuid,
        count: usize,
    },
    /// A recovery code signed in (and was spent); `remaining` codes are left.
    RecoveryCodeUsed {
        user: Uuid,
        remaining: usize,
        address: Option<IpAddr>,
    },
    /// A recovery attempt failed (`recovery_failed` or `rate_limited`); `user` when the
    /// username exists.
    RecoveryFailed {
        user: Option<Uuid>,
        code: ErrorCode,
        address: Option<IpAddr>,
    },
    /// A recovery session added a passkey and became an ordinary session.
    RecoveryCompleted {
        user: Uuid,
        credential_id: String,
    },
    DisplayNameChanged {
        user: Uuid,
    },
    /// The account was deleted by its owner.
    AccountDeleted {
        user: Uuid,
    },
}

impl Event {
    /// The event's name in the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Event::RegistrationSucceeded { .. } => "registration.succeeded",
            Event::RegistrationFailed { .. } => "registration.failed",
            Event::SignInSucceeded { .. } => "sign_in.succeeded",
            Event::SignInFailed { .. } => "sign_in.failed",
            Event::PasskeyAdded { .. } => "passkey.added",
            Event::PasskeyRenamed { .. } => "passkey.renamed",
            Event::PasskeyRemoved { .. } => "passkey.removed",
            Event::SessionCreated { .. } => "session.created",
            Event::SessionRefreshed { .. } => "session.refreshed",
            Event::SessionEnded { .. } => "session.ended",
            Event::RecoveryCodesCreated { .. } => "recovery.codes_created",
            Event::RecoveryCodeUsed { .. } => "recovery.code_used",
            Event::RecoveryFailed { .. } => "recovery.failed",
            Event::RecoveryCompleted { .. } => "recovery.completed",
            Event::DisplayNameChanged { .. } => "account.display_name_changed",
            Event::AccountDeleted { .. } => "account.deleted",
        }
    }
}

/// Receives every [`Event`]. Closures `Fn(&Event)` are hooks.
pub trait EventHook: Send + Sync + 'static {
    fn on_event(&self, event: &Event);
}

impl<F> EventHook for F
where
    F: Fn(&Event) + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// The event sink shared by the domain services: the audit log, the metrics (once attached)
/// and the optional hook.
#[derive(Clone, Default)]
pub struct Events {
    hook: Option<Arc<dyn EventHook>>,
    metrics: Arc<std::sync::OnceLock<crate::metrics::Metrics>>,
}

impl Events {
    pub fn new(hook: Option<Arc<dyn EventHook>>) -> Self {
        Events {
            hook,
            metrics: Arc::default(),
        }
    }

    /// Counts every event from now on (the metrics read the services these events come from,
    /// so they are made after them).
    pub fn attach_metrics(&self, metrics: crate::metrics::Metrics) {
        let _ = self.metrics.set(metrics);
    }

    pub fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.metrics.get()
    }

    pub fn emit(&self, event: Event) {
        audit(&event);
        if let Some(metrics) = self.metrics.get() {
            metrics.event(&event);
        }
        if let Some(hook) = &self.hook {
            hook.on_event(&event);
        }
    }
}

/// The `tracing` target of the audit log (a literal in each `info!` below: the macro needs one).
pub const AUDIT_TARGET: &str = "audit";

fn audit(event: &Event) {
    let name = event.name();
    match event {
        Event::RegistrationSucceeded {
            user,
            credential_id,
            new_account,
        } => tracing::info!(target: "audit", event = name, %user, credential_id, new_account),
        Event::RegistrationFailed { username, code } => {
            tracing::info!(target: "audit", event = name, username = username.as_deref(), code = code.as_str())
        }
        Event::SignInSucceeded {
            user,
            credential_id,
        }
        | Event::PasskeyAdded {
            user,
            credential_id,
        }
        | Event::PasskeyRenamed {
            user,
            credential_id,
        }
        | Event::PasskeyRemoved {
            user,
            credential_id,
        } => tracing::info!(target: "audit", event = name, %user, credential_id),
        Event::SignInFailed { user, code } => {
            tracing::info!(target: "audit", event = name, user = user.map(|u| u.to_string()), code = code.as_str())
        }
        Event::SessionCreated {
            user,
            session,
            address,
        } => {
            tracing::info!(target: "audit", event = name, %user, %session, address = address.map(|a| a.to_string()))
        }
        Event::SessionRefreshed { user, session } => {
            tracing::info!(target: "audit", event = name, %user, %session)
        }
        Event::SessionEnded {
            user,
            session,
            reason,
        } => {
            tracing::info!(target: "audit", event = name, %user, %session, reason = reason.as_str())
        }
        Event::RecoveryCodesCreated { user, count } => {
            tracing::info!(target: "audit", event = name, %user, count)
        }
        Event::RecoveryCodeUsed {
            user,
            remaining,
            address,
        } => {
            tracing::info!(target: "audit", event = name, %user, remaining, address = address.map(|a| a.to_string()))
        }
        Event::RecoveryFailed {
            user,
            code,
            address,
        } => {
            tracing::info!(target: "audit", event = name, user = user.map(|u| u.to_string()), code = code.as_str(), address = address.map(|a| a.to_string()))
        }
        Event::RecoveryCompleted {
            user,
            credential_id,
        } => tracing::info!(target: "audit", event = name, %user, credential_id),
        Event::DisplayNameChanged { user } | Event::AccountDeleted { user } => {
            tracing::info!(target: "audit", event = name, %user)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex;

    /// Collects what the fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_are_written_to_the_audit_target_and_given_to_the_hook() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
        let log = seen.clone();
        let hook: Arc<dyn EventHook> =
            Arc::new(move |e: &Event| log.lock().unwrap().push(e.clone()));
        let events = Events::new(Some(hook));
        let user = Uuid::nil();
        let event = Event::SessionEnded {
            user,
            session: user,
            reason: EndReason::Revoked,
        };
        tracing::subscriber::with_default(subscriber, || events.emit(event.clone()));
        let line = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(line.contains("audit:"), "{line}");
        assert!(line.contains("event=\"session.ended\""), "{line}");
        assert!(line.contains("reason=\"revoked\""), "{line}");
        assert_eq!(*seen.lock().unwrap(), vec![event]);
    }
}
