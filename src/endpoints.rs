//! Per-endpoint token policy and the unauthorized hook.
//!
//! The config says, per path, whether a bearer token is required. When a request or socket on a
//! protected path has no valid token, the [`UnauthorizedHook`] decides what happens. The default
//! hook disconnects: HTTP 401 (or 401 before a WebSocket upgrade), WebSocket close 4401. An
//! embedding application replaces it with [`crate::AppBuilder::unauthorized_hook`] to allow
//! anonymous use, log, or close with another code. Nothing here knows of actix.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;

use crate::config::EndpointsConfig;

/// Whether a path needs a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthPolicy {
    Required,
    None,
}

/// The policy table: exact paths, and prefixes written `/prefix/*` (the longest one that
/// matches wins); anything else gets the default.
#[derive(Debug, Clone)]
pub struct Endpoints {
    default: AuthPolicy,
    exact: HashMap<String, AuthPolicy>,
    /// `(prefix ending in '/', policy)`, longest first.
    prefixes: Vec<(String, AuthPolicy)>,
}

impl Endpoints {
    pub fn from_config(config: &EndpointsConfig) -> Self {
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        for (path, policy) in &config.paths {
            match path.strip_suffix('*') {
                Some(prefix) => prefixes.push((prefix.to_owned(), *policy)),
                None => {
                    exact.insert(path.clone(), *policy);
                }
            }
        }
        prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Endpoints {
            default: config.default,
            exact,
            prefixes,
        }
    }

    pub fn policy(&self, path: &str) -> AuthPolicy {
        if let Some(policy) = self.exact.get(path) {
            return *policy;
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(self.default, |(_, policy)| *policy)
    }
}

/// Where the unauthorized request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    WebSocket,
}

/// Why it is unauthorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No token was presented (HTTP without `Authorization`).
    Missing,
    /// A token was presented and is malformed, unknown, expired or revoked.
    InvalidToken,
    /// A protected socket sent another frame before a valid `auth`.
    NotAuthenticated,
    /// A protected socket sent no `auth` frame within the deadline.
    Deadline,
}

/// What the hook is told.
#[derive(Debug, Clone)]
pub struct Unauthorized<'a> {
    pub transport: Transport,
    pub path: &'a str,
    pub reason: Reason,
    pub peer: Option<IpAddr>,
}

/// What the hook decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The default: HTTP 401 with `WWW-Authenticate`; WebSocket close 4401 `unauthorized`.
    Disconnect,
    /// Let the request or socket through without a user.
    Allow,
    /// Refuse with another code: the HTTP status when it is 400–599 (else 401), and the
    /// WebSocket close code (1000–4999) with `reason`.
    Close { code: u16, reason: String },
}

/// Decides what happens to a request or socket without a valid token on a protected path.
pub trait UnauthorizedHook: Send + Sync + 'static {
    fn on_unauthorized(&self, event: &Unauthorized<'_>) -> Verdict;
}

/// The default hook: disconnect, and note it at debug level.
#[derive(Debug, Default, Clone, Copy)]
pub struct DisconnectHook;

impl UnauthorizedHook for DisconnectHook {
    fn on_unauthorized(&self, event: &Unauthorized<'_>) -> Verdict {
        tracing::debug!(path = event.path, reason = ?event.reason, transport = ?event.transport, "unauthorized");
        Verdict::Disconnect
    }
}

impl<F> UnauthorizedHook for F
where
    F: Fn(&Unauthorized<'_>) -> Verdict + Send + Sync + 'static,
{
    fn on_unauthorized(&self, event: &Unauthorized<'_>) -> Verdict {
        self(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn default_policy_protects_the_builtin_endpoints() {
        let e = Endpoints::from_config(&Config::embedded().unwrap().endpoints);
        assert_eq!(e.policy("/api/me"), AuthPolicy::Required);
        assert_eq!(e.policy("/echo"), AuthPolicy::Required);
        assert_eq!(e.policy("/chat"), AuthPolicy::Required);
        assert_eq!(e.policy("/ws"), AuthPolicy::None);
        assert_eq!(e.policy("/index.html"), AuthPolicy::None);
        assert_eq!(e.policy("/api/me/"), AuthPolicy::None, "exact match only");
        assert_eq!(
            e.policy("/api/passkeys/AbC"),
            AuthPolicy::Required,
            "prefix rule"
        );
        assert_eq!(e.policy("/api/passkeysX"), AuthPolicy::None);
    }

    #[test]
    fn closures_are_hooks() {
        let hook = |e: &Unauthorized<'_>| {
            if e.path == "/open" {
                Verdict::Allow
            } else {
                Verdict::Disconnect
            }
        };
        let event = |path| Unauthorized {
            transport: Transport::Http,
            path,
            reason: Reason::Missing,
            peer: None,
        };
        assert_eq!(hook.on_unauthorized(&event("/open")), Verdict::Allow);
        assert_eq!(hook.on_unauthorized(&event("/x")), Verdict::Disconnect);
    }
}
