//! Who may hold a connection: the caps that keep one client, or a flood of idle sockets, from
//! taking every descriptor the process has.
//!
//! - The process's open-file limit is raised to its hard limit at start, and the connection caps
//!   are derived from it with headroom ([`Capacity::derive`]): WebSockets stop being admitted
//!   (503) while there is still room for short HTTP requests (health checks, sign-ins over
//!   HTTP) and the store's files.
//! - Sockets that are not signed in are capped per client address (IPv4 address, IPv6 /64):
//!   past the cap an upgrade gets 429. A socket stops counting the moment it signs in.
//!
//! Nothing here knows of actix: the upgrade handler asks, and holds the returned guard.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

/// Descriptors kept back from connections: the store's files, logs, the listener, DNS.
const FILE_HEADROOM: u64 = 64;
/// Of the connections left, the share kept for short HTTP requests once sockets fill the rest.
const HTTP_SHARE_PERCENT: u64 = 5;

/// The limits derived from the open-file limit and the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Connections each worker accepts (actix's `max_connections`).
    pub connections_per_worker: usize,
    /// WebSockets open at once across the server.
    pub sockets: u64,
    /// The process's open-file limit they come from.
    pub open_files: u64,
}

impl Capacity {
    /// `configured_per_worker` and `configured_sockets` (0: no cap of its own) are lowered to
    /// what `open_files` descriptors can hold.
    pub fn derive(
        open_files: u64,
        workers: usize,
        configured_per_worker: usize,
        configured_sockets: u64,
    ) -> Capacity {
        let connections = open_files.saturating_sub(FILE_HEADROOM).max(1);
        let workers = workers.max(1) as u64;
        let per_worker = (connections / workers).max(1);
        let per_worker = per_worker.min(configured_per_worker as u64);
        let usable = per_worker * workers;
        let sockets = (usable - usable * HTTP_SHARE_PERCENT / 100).max(1);
        let sockets = match configured_sockets {
            0 => sockets,
            n => n.min(sockets),
        };
        Capacity {
            connections_per_worker: usize::try_from(per_worker).unwrap_or(usize::MAX),
            sockets,
            open_files,
        }
    }
}

/// Raises the soft open-file limit to the hard one and returns it (or the current soft limit
/// when it cannot be read or raised).
#[cfg(unix)]
pub fn raise_open_file_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    }
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> u64 {
    u64::MAX
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one subscriber's block).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open sockets counted per key (a client address, a user), each capped. Cheap to clone.
#[derive(Clone)]
pub struct SocketCount<K: std::hash::Hash + Eq + Copy> {
    inner: Arc<CountInner<K>>,
}

struct CountInner<K: std::hash::Hash + Eq> {
    max: u64,
    counts: DashMap<K, AtomicU64>,
}

/// Counts one socket against its key until dropped (the socket closes, signs in, or moves to
/// another user).
pub struct Slot<K: std::hash::Hash + Eq + Copy> {
    table: SocketCount<K>,
    key: K,
}

/// Sockets not signed in, per client address (see [`address_key`]).
pub type Anonymous = SocketCount<IpAddr>;
/// A socket not signed in, counted against its address.
pub type AnonymousSlot = Slot<IpAddr>;
/// Sockets per user.
pub type PerUser = SocketCount<uuid::Uuid>;
/// A socket counted against its user.
pub type UserSlot = Slot<uuid::Uuid>;

impl<K: std::hash::Hash + Eq + Copy> SocketCount<K> {
    pub fn new(max: u64) -> Self {
        SocketCount {
            inner: Arc::new(CountInner {
                max,
                counts: DashMap::new(),
            }),
        }
    }

    /// A slot for one more socket of `key`, or `None` when it holds the most already.
    pub fn admit_key(&self, key: K) -> Option<Slot<K>> {
        let entry = self
            .inner
            .counts
            .entry(key)
            .or_insert_with(|| AtomicU64::new(0));
        let admitted = entry
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.inner.max).then_some(n + 1)
            })
            .is_ok();
        drop(entry);
        admitted.then(|| Slot {
            table: self.clone(),
            key,
        })
    }

    /// Sockets counted for `key`.
    pub fn count_key(&self, key: K) -> u64 {
        self.inner
            .counts
            .get(&key)
            .map_or(0, |n| n.load(Ordering::Acquire))
    }
}

impl SocketCount<IpAddr> {
    /// A slot for a socket from `ip`'s address (IPv6 by /64).
    pub fn admit(&self, ip: IpAddr) -> Option<AnonymousSlot> {
        self.admit_key(address_key(ip))
    }

    /// Sockets from `ip`'s address not signed in.
    pub fn count(&self, ip: IpAddr) -> u64 {
        self.count_key(address_key(ip))
    }
}

impl<K: std::hash::Hash + Eq + Copy> Drop for Slot<K> {
    fn drop(&mut self) {
        let counts = &self.table.inner.counts;
        if let Some(n) = counts.get(&self.key) {
            n.fetch_sub(1, Ordering::AcqRel);
        }
        counts.remove_if(&self.key, |_, n| n.load(Ordering::Acquire) == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_room_for_files_and_http_below_the_open_file_limit() {
        // This sandbox's limit: 20,000 descriptors, 2 workers, the default 25,000 per worker.
        let c = Capacity::derive(20_000, 2, 25_000, 0);
        assert_eq!(
            c.connections_per_worker,
            (20_000 - FILE_HEADROOM as usize) / 2
        );
        assert!(c.sockets < 2 * c.connections_per_worker as u64);
        assert!(2 * c.connections_per_worker as u64 + FILE_HEADROOM <= 20_000);
        // A lower configured cap wins; so does a socket cap of its own.
        assert_eq!(
            Capacity::derive(1_000_000, 2, 100, 0).connections_per_worker,
            100
        );
        assert_eq!(Capacity::derive(1_000_000, 2, 100, 50).sockets, 50);
        assert_eq!(Capacity::derive(10, 4, 100, 0).connections_per_worker, 1);
    }

    #[test]
    fn anonymous_sockets_are_capped_per_address_and_ipv6_per_64() {
        let table = Anonymous::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let (one, two) = (table.admit(a).unwrap(), table.admit(a).unwrap());
        assert!(table.admit(a).is_none());
        assert!(table.admit("192.0.2.2".parse().unwrap()).is_some());
        drop(one);
        let three = table.admit(a).expect("a slot came free");
        drop((two, three));
        assert_eq!(table.count(a), 0);

        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _x = table.admit(v6("2001:db8:1:2::1")).unwrap();
        let _y = table.admit(v6("2001:db8:1:2:ffff::9")).unwrap();
        assert!(
            table.admit(v6("2001:db8:1:2:abcd::1")).is_none(),
            "same /64"
        );
        assert!(table.admit(v6("2001:db8:1:3::1")).is_some(), "another /64");
    }
}
