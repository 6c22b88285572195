//! Which headers cross the proxy, each way.
//!
//! Invariants: hop-by-hop headers (RFC 9110 §7.6.1: `Connection`, the headers it names,
//! `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, and the
//! proxy's own `Proxy-Authorization` / `Proxy-Authenticate`) never cross. Toward the upstream,
//! the caller's `Authorization` never goes (wsauthn consumed it) and no `X-Wsauthn-*` header the
//! client sent survives, whatever its case: the only ones the upstream sees are the ones
//! wsauthn sets from the session it checked.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use uuid::Uuid;

use crate::protocol::UserView;

/// The user's id (uuid), set only for a request or socket with a valid session.
pub const USER_ID: &str = "x-wsauthn-user-id";
/// The user's name as stored (UTF-8).
pub const USER_NAME: &str = "x-wsauthn-user-name";
/// The session's id (uuid).
pub const SESSION_ID: &str = "x-wsauthn-session-id";
/// Every header of ours starts so; any the client sends is dropped.
const OURS: &str = "x-wsauthn-";

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// What the upstream is told about where a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub peer: Option<IpAddr>,
    /// `http` or `https`, as the client reached wsauthn.
    pub scheme: &'a str,
}

/// Headers named by `Connection` (hop-by-hop too, RFC 9110 §7.6.1).
fn named_by_connection(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

fn crosses(name: &HeaderName, named: &[String]) -> bool {
    let name = name.as_str();
    !HOP_BY_HOP.contains(&name) && !named.iter().any(|n| n == name)
}

/// The request headers to send upstream. `upgrade`: the WebSocket handshake's own headers stay
/// behind too (the client toward the upstream makes its own key and version; extensions and
/// subprotocols are not relayed).
pub fn to_upstream(
    incoming: &HeaderMap,
    from: Origin<'_>,
    upgrade: bool,
) -> Vec<(HeaderName, HeaderValue)> {
    let named = named_by_connection(incoming);
    let mut out: Vec<(HeaderName, HeaderValue)> = incoming
        .iter()
        .filter(|(name, _)| crosses(name, &named))
        .filter(|(name, _)| {
            let name = name.as_str();
            !(name == "authorization"
                || name == "host"
                || name == "x-forwarded-for"
                || name == "x-forwarded-proto"
                || name == "x-forwarded-host"
                || name.starts_with(OURS)
                || (upgrade && name.starts_with("sec-websocket-")))
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let earlier = incoming
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(peer) = from.peer {
        let chain = match earlier.is_empty() {
            true => peer.to_string(),
            false => format!("{earlier}, {peer}"),
        };
        push(&mut out, "x-forwarded-for", &chain);
    }
    push(&mut out, "x-forwarded-proto", from.scheme);
    if let Some(host) = incoming.get(header::HOST) {
        out.push((HeaderName::from_static("x-forwarded-host"), host.clone()));
    }
    out
}

/// Who the request or socket is signed in as, for the upstream.
pub fn identity(user: &UserView, session: &Uuid) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(3);
    push(&mut out, USER_ID, &user.id.to_string());
    push(&mut out, USER_NAME, &user.name);
    push(&mut out, SESSION_ID, &session.to_string());
    out
}

fn push(out: &mut Vec<(HeaderName, HeaderValue)>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        out.push((HeaderName::from_static(name), value));
    }
}

/// The upstream's response headers to pass on: all but hop-by-hop ones and `Content-Length`
/// (the response body says its own length).
pub fn from_upstream(incoming: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    let named = named_by_connection(incoming);
    incoming
        .iter()
        .filter(move |(name, _)| crosses(name, &named) && *name != header::CONTENT_LENGTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(out: &[(HeaderName, HeaderValue)]) -> Vec<&str> {
        out.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn value<'a>(out: &'a [(HeaderName, HeaderValue)], name: &str) -> Vec<&'a str> {
        out.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn spoofed_identity_headers_and_the_callers_token_never_reach_the_upstream() {
        let incoming = headers(&[
            ("X-Wsauthn-User-Id", "00000000-0000-0000-0000-000000000000"),
            ("x-wsauthn-user-name", "admin"),
            ("X-WSAUTHN-SESSION-ID", "forged"),
            ("X-Wsauthn-Anything", "x"),
            ("Authorization", "Bearer 00"),
            ("Accept", "text/plain"),
        ]);
        let from = Origin {
            peer: None,
            scheme: "http",
        };
        let mut out = to_upstream(&incoming, from, false);
        assert_eq!(names(&out), vec!["accept", "x-forwarded-proto"]);

        let user = UserView {
            id: Uuid::from_u128(7),
            name: "zoë@example.com".into(),
            display_name: "Zoë".into(),
        };
        out.extend(identity(&user, &Uuid::from_u128(9)));
        assert_eq!(value(&out, USER_ID), vec![Uuid::from_u128(7).to_string()]);
        assert_eq!(out.iter().filter(|(n, _)| n == USER_NAME).count(), 1);
        assert_eq!(
            out.iter()
                .find(|(n, _)| n == USER_NAME)
                .unwrap()
                .1
                .as_bytes(),
            "zoë@example.com".as_bytes()
        );
        assert_eq!(
            value(&out, SESSION_ID),
            vec![Uuid::from_u128(9).to_string()]
        );
    }

    #[test]
    fn hop_by_hop_headers_stay_behind_each_way() {
        let incoming = headers(&[
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Secret-Hop", "1"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic eA=="),
            ("Host", "app.example.com"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("Cookie", "a=1"),
        ]);
        let from = Origin {
            peer: Some("192.0.2.1".parse().unwrap()),
            scheme: "https",
        };
        let out = to_upstream(&incoming, from, false);
        assert_eq!(
            names(&out),
            vec![
                "cookie",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host"
            ]
        );
        assert_eq!(
            value(&out, "x-forwarded-for"),
            vec!["203.0.113.9, 192.0.2.1"]
        );
        assert_eq!(value(&out, "x-forwarded-proto"), vec!["https"]);
        assert_eq!(value(&out, "x-forwarded-host"), vec!["app.example.com"]);

        let response = headers(&[
            ("Connection", "close, X-Hop"),
            ("X-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "5"),
            ("Set-Cookie", "b=2"),
            ("Set-Cookie", "c=3"),
            ("X-Upstream", "yes"),
        ]);
        let mut passed: Vec<&str> = from_upstream(&response).map(|(n, _)| n.as_str()).collect();
        // A HeaderMap iterates in its hash order, which is random per process.
        passed.sort_unstable();
        assert_eq!(passed, vec!["set-cookie", "set-cookie", "x-upstream"]);
    }

    #[test]
    fn an_upgrade_leaves_the_handshake_headers_behind() {
        let incoming = headers(&[
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
            ("Origin", "http://localhost:8080"),
        ]);
        let from = Origin {
            peer: None,
            scheme: "http",
        };
        assert_eq!(
            names(&to_upstream(&incoming, from, true)),
            vec!["origin", "x-forwarded-proto"]
        );
    }
}
