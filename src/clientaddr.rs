//! Who the client is: the peer address, or, behind a trusted reverse proxy, the address the
//! proxy says it forwarded for.
//!
//! `server.trusted_proxies` lists CIDR blocks. A request whose peer is in one of them may name
//! its client in `Forwarded: for=…` (RFC 7239) or `X-Forwarded-For`; the client is the rightmost
//! address in that chain that is not itself a trusted proxy (proxies append, so everything to
//! the left of the first untrusted hop is whatever that hop claimed). Anyone else's headers are
//! ignored, so a client cannot pick its own address. Domain code: plain strings in, no actix.

use std::net::IpAddr;

use ipnet::IpNet;

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `server.trusted_proxies`; the error names the entry.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "server.trusted_proxies[{i}] {entry:?} is not an address or CIDR block \
                             such as \"10.0.0.0/8\" or \"::1\""
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer`, or the one a trusted proxy forwarded for.
    pub fn client(
        &self,
        peer: IpAddr,
        forwarded: Option<&str>,
        x_forwarded_for: Option<&str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = match (forwarded, x_forwarded_for) {
            (Some(f), _) => forwarded_for(f),
            (None, Some(x)) => x.split(',').filter_map(|a| parse_node(a.trim())).collect(),
            (None, None) => Vec::new(),
        };
        chain
            .into_iter()
            .rev()
            .map(canonical)
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` addresses of a `Forwarded` header, in order.
fn forwarded_for(header: &str) -> Vec<IpAddr> {
    header
        .split(',')
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            key.eq_ignore_ascii_case("for")
                .then(|| parse_node(value.trim().trim_matches('"')))?
        })
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_may_name_the_client() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.9"), None, Some("198.51.100.1")),
            ip("203.0.113.9")
        );
        let local = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        // Spoofed by a client that is not a proxy: ignored.
        assert_eq!(
            local.client(ip("203.0.113.9"), None, Some("198.51.100.1")),
            ip("203.0.113.9")
        );
        // Through nginx on loopback: the address nginx appended.
        assert_eq!(
            local.client(ip("127.0.0.1"), None, Some("6.6.6.6, 198.51.100.1")),
            ip("198.51.100.1"),
            "what the client claimed to the left of the first untrusted hop is ignored"
        );
        assert_eq!(
            local.client(ip("127.0.0.1"), None, Some("198.51.100.1, 10.1.2.3")),
            ip("198.51.100.1"),
            "trusted hops are skipped from the right"
        );
        assert_eq!(
            local.client(
                ip("::ffff:127.0.0.1"),
                Some(r#"for="[2001:db8::7]:443";proto=https"#),
                None
            ),
            ip("2001:db8::7")
        );
        assert_eq!(
            local.client(ip("127.0.0.1"), None, Some("not an ip")),
            ip("127.0.0.1")
        );
        assert_eq!(local.client(ip("127.0.0.1"), None, None), ip("127.0.0.1"));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/8".into(), "nginx".into()]).unwrap_err();
        assert!(err.contains("server.trusted_proxies[1]"), "{err}");
    }
}
