//! The `[[proxy]]` tables: which path prefixes go to which upstream, checked before anything
//! starts so a bad entry stops the server naming its key (`proxy[0].path`, `proxy[0].upstream`).
//!
//! Invariants of a valid entry: `path` is a prefix of whole segments (`/game` takes `/game` and
//! `/game/…`, never `/gamer`) that overlaps no built-in route and no other entry; `upstream` is
//! an `http` or `https` origin (no path, query, fragment or credentials), so the request's own
//! path and query go to it unchanged.

use serde::{Deserialize, Serialize};
use url::Url;

/// One `[[proxy]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The path prefix: `"/game"` serves `/game` and `/game/...`.
    pub path: String,
    /// Where HTTP requests and WebSocket upgrades under `path` go: `http://host:port`.
    pub upstream: String,
}

/// The paths wsauthn serves itself, each with everything under it.
pub const BUILT_IN: &[&str] = &[
    "/ws",
    "/echo",
    "/chat",
    "/healthz",
    "/metrics",
    "/api",
    "/auth",
    "/introspect",
    "/admin",
];

/// Whether prefix `a` and prefix `b` (each with everything under it) share a path.
fn overlap(a: &str, b: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|r| r.starts_with('/'))
    };
    under(a, b) || under(b, a)
}

/// What is wrong with one key of one `[[proxy]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProblem {
    /// Which table: `proxy[index]`.
    pub index: usize,
    /// `path` or `upstream`.
    pub field: &'static str,
    /// What is wrong, as a predicate of the key: `is "/api", which overlaps …`.
    pub message: String,
}

impl std::fmt::Display for ProxyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proxy[{}].{} {}", self.index, self.field, self.message)
    }
}

/// Checks every entry; the first problem names its key and says what is wrong.
pub fn validate(entries: &[ProxyConfig]) -> Result<(), ProxyProblem> {
    for (index, entry) in entries.iter().enumerate() {
        let fail = |field, message: String| {
            Err(ProxyProblem {
                index,
                field,
                message,
            })
        };
        if let Err(why) = check_path(&entry.path) {
            return fail("path", format!("is {:?}, but it {why}", entry.path));
        }
        if let Some(b) = BUILT_IN.iter().find(|b| overlap(&entry.path, b)) {
            return fail(
                "path",
                format!(
                    "is {:?}, which overlaps the built-in route {b}; choose a path outside {}",
                    entry.path,
                    BUILT_IN.join(", ")
                ),
            );
        }
        if let Some((j, other)) = entries[..index]
            .iter()
            .enumerate()
            .find(|(_, other)| overlap(&entry.path, &other.path))
        {
            return fail(
                "path",
                format!(
                    "is {:?}, which overlaps proxy[{j}].path {:?}",
                    entry.path, other.path
                ),
            );
        }
        let url = match upstream_url(&entry.upstream) {
            Ok(url) => url,
            Err(why) => return fail("upstream", format!("is {:?}, but it {why}", entry.upstream)),
        };
        // One host and port speaks TLS or not: the connector decides by them (`connect.rs`).
        let authority = |u: &Url| (u.host_str().map(str::to_owned), u.port_or_known_default());
        if let Some((j, other)) = entries[..index].iter().enumerate().find(|(_, other)| {
            upstream_url(&other.upstream)
                .is_ok_and(|o| authority(&o) == authority(&url) && o.scheme() != url.scheme())
        }) {
            return fail(
                "upstream",
                format!(
                    "is {:?}, which names the host and port of proxy[{j}].upstream {:?} with \
                     another scheme",
                    entry.upstream, other.upstream
                ),
            );
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') || path == "/" {
        return Err("must be a path prefix such as \"/game\" (starting with '/', not \"/\" alone)");
    }
    if path.ends_with('/') || path.contains("//") {
        return Err(
            "must not end with '/' or hold an empty segment (\"/game\" also takes \"/game/...\")",
        );
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err("must not hold \".\" or \"..\" segments");
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()+,;=:@/".contains(c);
    if !path.chars().all(plain) {
        return Err("may hold only letters, digits and -._~!$&'()+,;=:@ (no '*', '{', '}', '?', '#', '%' or spaces)");
    }
    Ok(())
}

/// The upstream as a URL, if it is an `http(s)` origin.
pub fn upstream_url(upstream: &str) -> Result<Url, &'static str> {
    const SHAPE: &str =
        "must be an http(s) URL such as \"http://127.0.0.1:9000\" (no path, query or credentials)";
    let url = Url::parse(upstream).map_err(|_| SHAPE)?;
    let origin_only = matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !origin_only {
        return Err(SHAPE);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(path: &str, upstream: &str) -> Result<(), String> {
        validate(&[ProxyConfig {
            path: path.into(),
            upstream: upstream.into(),
        }])
        .map_err(|p| p.to_string())
    }

    #[test]
    fn a_prefix_and_an_http_origin_are_accepted() {
        assert_eq!(one("/game", "http://127.0.0.1:9000"), Ok(()));
        assert_eq!(one("/apps/chat-v2", "https://chat.internal/"), Ok(()));
        assert_eq!(
            one("/wsx", "http://[::1]:9000"),
            Ok(()),
            "not /ws: whole segments"
        );
    }

    #[test]
    fn paths_over_built_in_routes_are_refused_naming_the_key() {
        for path in [
            "/ws",
            "/api",
            "/api/me",
            "/api/games",
            "/auth/verify",
            "/admin",
            "/echo/x",
        ] {
            let err = one(path, "http://127.0.0.1:9000").unwrap_err();
            assert!(err.starts_with("proxy[0].path"), "{err}");
            assert!(err.contains("overlaps the built-in route"), "{err}");
        }
    }

    #[test]
    fn malformed_paths_are_refused_naming_the_key() {
        for path in [
            "", "/", "game", "/game/", "/a//b", "/game/*", "/g/{id}", "/a b", "/a/../b", "/%41",
        ] {
            let err = one(path, "http://127.0.0.1:9000").unwrap_err();
            assert!(err.starts_with("proxy[0].path"), "{path:?}: {err}");
        }
    }

    #[test]
    fn upstreams_that_are_not_http_origins_are_refused_naming_the_key() {
        for upstream in [
            "ftp://127.0.0.1",
            "ws://127.0.0.1:9000",
            "127.0.0.1:9000",
            "http://127.0.0.1:9000/base",
            "http://127.0.0.1:9000/?q=1",
            "http://user:pw@127.0.0.1:9000",
            "http://",
            "mailto:a@b",
            "",
        ] {
            let err = one("/game", upstream).unwrap_err();
            assert!(err.starts_with("proxy[0].upstream"), "{upstream:?}: {err}");
            assert!(err.contains("http(s) URL"), "{err}");
        }
    }

    #[test]
    fn one_host_and_port_cannot_be_both_http_and_https() {
        let entries = [
            ProxyConfig {
                path: "/a".into(),
                upstream: "https://up.internal:9000".into(),
            },
            ProxyConfig {
                path: "/b".into(),
                upstream: "http://up.internal:9000".into(),
            },
        ];
        let err = validate(&entries).unwrap_err().to_string();
        assert!(err.starts_with("proxy[1].upstream"), "{err}");
        assert!(err.contains("proxy[0].upstream"), "{err}");
    }

    #[test]
    fn entries_that_overlap_each_other_are_refused() {
        let entries = [
            ProxyConfig {
                path: "/game".into(),
                upstream: "http://127.0.0.1:9000".into(),
            },
            ProxyConfig {
                path: "/game/admin".into(),
                upstream: "http://127.0.0.1:9001".into(),
            },
        ];
        let err = validate(&entries).unwrap_err().to_string();
        assert!(err.starts_with("proxy[1].path"), "{err}");
        assert!(err.contains("proxy[0].path"), "{err}");
    }
}
