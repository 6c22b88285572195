//! The checks a well-typed configuration must still pass before the server starts; each
//! failure is a [`Problem`] naming one key, which the loader turns into an error that also says
//! where the key's value came from.

use std::net::{IpAddr, SocketAddr};

use url::Url;

use super::explain::KeyPath;
use super::Config;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key to change.
    pub key: KeyPath,
    /// What is wrong, as a predicate of the key: "must be at least 1, not 0".
    pub message: String,
    /// A good value, as TOML (`"https://example.com"`); `None`: the key's usual example.
    pub example: Option<String>,
}

/// The keys of the two origin lists.
pub(super) const ORIGINS: &[&str] = &["webauthn", "origins"];
pub(super) const RELATED_ORIGINS: &[&str] = &["webauthn", "related_origins"];

fn problem(key: &[&str], message: impl Into<String>) -> Problem {
    Problem {
        key: key.iter().map(|k| k.to_string()).collect(),
        message: message.into(),
        example: None,
    }
}

fn at_least_1(key: &[&str], value: u64) -> Result<(), Problem> {
    match value {
        0 => Err(problem(key, "must be at least 1, not 0")),
        _ => Ok(()),
    }
}

impl Config {
    /// The first problem, if any.
    pub(super) fn problems(&self) -> Result<(), Problem> {
        let s = &self.server;
        if let Err(message) = crate::clientaddr::TrustedProxies::parse(&s.trusted_proxies) {
            return Err(Problem {
                example: Some("[\"127.0.0.1\", \"10.0.0.0/8\"]".into()),
                ..problem(
                    &["server", "trusted_proxies"],
                    format!("is refused: {message}"),
                )
            });
        }
        self.store_problems()?;
        if s.bind.parse::<SocketAddr>().is_err() {
            return Err(problem(
                &["server", "bind"],
                format!("is {:?}, which is not an address:port", s.bind),
            ));
        }
        at_least_1(
            &["server", "max_connections_per_worker"],
            s.max_connections_per_worker as u64,
        )?;
        match (s.tls_cert.as_os_str().is_empty(), s.tls_key.as_os_str().is_empty()) {
            (true, false) => {
                return Err(problem(
                    &["server", "tls_key"],
                    "is set while server.tls_cert is empty: TLS needs both (or neither, for plain HTTP)",
                ))
            }
            (false, true) => {
                return Err(problem(
                    &["server", "tls_cert"],
                    "is set while server.tls_key is empty: TLS needs both (or neither, for plain HTTP)",
                ))
            }
            _ => {}
        }
        self.webauthn_problems()?;
        let t = &self.tokens;
        at_least_1(&["tokens", "lifetime_secs"], t.lifetime_secs)?;
        at_least_1(&["tokens", "idle_timeout_secs"], t.idle_timeout_secs)?;
        if t.expiry_warning_secs >= t.lifetime_secs {
            return Err(problem(
                &["tokens", "expiry_warning_secs"],
                format!(
                    "is {}, but it must be smaller than tokens.lifetime_secs ({})",
                    t.expiry_warning_secs, t.lifetime_secs
                ),
            ));
        }
        let ws = &self.websocket;
        if ws.max_frame_bytes < 1024 {
            return Err(problem(
                &["websocket", "max_frame_bytes"],
                format!("is {}, but it must be at least 1024", ws.max_frame_bytes),
            ));
        }
        at_least_1(
            &["websocket", "heartbeat_interval_ms"],
            ws.heartbeat_interval_ms,
        )?;
        if ws.heartbeat_timeout_ms <= ws.heartbeat_interval_ms {
            return Err(problem(
                &["websocket", "heartbeat_timeout_ms"],
                format!(
                    "is {}, but it must be greater than websocket.heartbeat_interval_ms ({})",
                    ws.heartbeat_timeout_ms, ws.heartbeat_interval_ms
                ),
            ));
        }
        at_least_1(&["websocket", "auth_deadline_ms"], ws.auth_deadline_ms)?;
        at_least_1(
            &["websocket", "messages_per_second"],
            ws.messages_per_second.into(),
        )?;
        at_least_1(&["websocket", "message_burst"], ws.message_burst.into())?;
        let l = &self.limits;
        at_least_1(
            &["limits", "max_pending_ceremonies"],
            l.max_pending_ceremonies as u64,
        )?;
        at_least_1(
            &["limits", "ceremonies_per_minute"],
            l.ceremonies_per_minute.into(),
        )?;
        at_least_1(
            &["limits", "max_username_chars"],
            l.max_username_chars as u64,
        )?;
        at_least_1(
            &["limits", "max_passkeys_per_user"],
            l.max_passkeys_per_user.into(),
        )?;
        at_least_1(
            &["limits", "unauthenticated_sockets_per_address"],
            l.unauthenticated_sockets_per_address,
        )?;
        self.admin
            .api_key
            .check()
            .map_err(|message| problem(&["admin", "api_key"], message))?;
        if let Err(p) = crate::proxy::validate(&self.proxy) {
            let index = p.index.to_string();
            return Err(problem(&["proxy", index.as_str(), p.field], p.message));
        }
        for path in self.endpoints.paths.keys() {
            let key = ["endpoints", "paths", path.as_str()];
            if !path.starts_with('/') {
                return Err(Problem {
                    example: Some("\"required\"".into()),
                    ..problem(&key, "names a path that does not start with '/'")
                });
            }
            if path.contains('*') && !path.ends_with("/*") {
                return Err(problem(
                    &key,
                    "has a '*' that does not end a prefix: write \"/api/*\"",
                ));
            }
        }
        Ok(())
    }

    fn store_problems(&self) -> Result<(), Problem> {
        const URL: &[&str] = &["store", "postgres_url"];
        let url = &self.store.postgres_url;
        let example = Some("\"postgres://wsauthn@127.0.0.1:5432/wsauthn\"".to_owned());
        match self.store.backend {
            crate::store::BackendKind::Sled => Ok(()),
            crate::store::BackendKind::Postgres if url.is_empty() => Err(Problem {
                example,
                ..problem(URL, "is empty, but store.backend is \"postgres\"")
            }),
            crate::store::BackendKind::Postgres => match crate::store::PgStore::check_url(url) {
                Ok(()) => Ok(()),
                Err(why) => Err(Problem {
                    example,
                    ..problem(URL, format!("is not a PostgreSQL URL: {why}"))
                }),
            },
        }
    }

    fn webauthn_problems(&self) -> Result<(), Problem> {
        let w = &self.webauthn;
        if w.rp_id.is_empty() || w.rp_id.contains(['/', ':']) {
            return Err(problem(
                &["webauthn", "rp_id"],
                format!("is {:?}, but it must be a bare domain", w.rp_id),
            ));
        }
        if w.origins.is_empty() {
            return Err(problem(
                &["webauthn", "origins"],
                "is empty, but it must list at least one origin",
            ));
        }
        // Related origins need not be under the rp id; they only have to be origins.
        for origin in &w.related_origins {
            parse_origin(RELATED_ORIGINS, origin)?;
        }
        for origin in &w.origins {
            let url = parse_origin(ORIGINS, origin)?;
            let host = url.host_str().unwrap_or_default();
            if !(host == w.rp_id || host.ends_with(&format!(".{}", w.rp_id))) {
                return Err(Problem {
                    example: Some(format!("{host:?}")),
                    ..problem(
                        &["webauthn", "rp_id"],
                        format!(
                            "is {:?}, which is not the host, or a suffix of the host, of origin {:?} \
                             (webauthn.origins)",
                            w.rp_id,
                            origin.trim_end_matches('/')
                        ),
                    )
                });
            }
        }
        at_least_1(
            &["webauthn", "ceremony_timeout_secs"],
            w.ceremony_timeout_secs,
        )
    }
}

impl Config {
    /// A warning when no origin in `webauthn.origins` is this server's own address (`local`,
    /// with `https` when it speaks TLS): a browser that opens the server directly cannot sign
    /// in. Behind a reverse proxy that serves one of the origins that is as it should be.
    pub fn origin_warning(&self, local: SocketAddr, tls: bool) -> Option<String> {
        let scheme = if tls { "https" } else { "http" };
        let ours = self.webauthn.origins.iter().any(|o| {
            let Ok(url) = Url::parse(o) else {
                return false;
            };
            let host_matches = match local.ip() {
                ip if ip.is_unspecified() => true,
                ip if ip.is_loopback() => is_loopback_host(&url),
                // A name may resolve to the address; an address must be it.
                ip => match url.host() {
                    Some(url::Host::Domain(_)) => !is_loopback_host(&url),
                    Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4) == ip,
                    Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6) == ip,
                    None => false,
                },
            };
            url.scheme() == scheme
                && url.port_or_known_default() == Some(local.port())
                && host_matches
        });
        (!ours).then(|| {
            format!(
                "none of webauthn.origins ({}) is this server's own address ({scheme}://{local}): \
                 browsers that open it directly cannot sign in. Behind a reverse proxy that serves \
                 one of the origins this is as it should be",
                self.webauthn.origins.join(", ")
            )
        })
    }
}

/// Whether `host` is one that browsers treat as secure over plain HTTP: `localhost` (and its
/// subdomains, RFC 6761) or a loopback address.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// One entry of `webauthn.origins`, parsed: `https://host[:port]`, or `http://` on a loopback
/// host (browsers refuse passkeys over plain HTTP anywhere else).
pub(super) fn parse_origin(key: &[&str], s: &str) -> Result<Url, Problem> {
    let url = Url::parse(s).map_err(|e| problem(key, format!("has {s:?}, not a URL ({e})")))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
        return Err(problem(
            key,
            format!("has {s:?}, which is not an origin (scheme://host[:port], no path)"),
        ));
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        let mut secure = url.clone();
        let https = match secure.set_scheme("https") {
            Ok(()) => secure.origin().ascii_serialization(),
            Err(()) => "https://example.com".into(),
        };
        return Err(Problem {
            example: Some(format!("[{https:?}]")),
            ..problem(
                key,
                format!(
                    "has {s:?}: plain http:// is only for localhost and loopback addresses \
                     (browsers allow passkeys nowhere else without TLS); use https://"
                ),
            )
        });
    }
    Ok(url)
}
