//! A token bucket: `burst` actions at once, refilled at `per_sec`, and a table of them per
//! client address. Time is passed in.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(per_sec: f64, burst: u32, now: Instant) -> Self {
        TokenBucket {
            capacity: f64::from(burst),
            per_sec,
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full again (nothing to remember).
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.per_sec >= self.capacity
    }
}

/// `count` actions per `per_secs` seconds per client address (IPv6 by /64), with a burst of
/// `count`. Idle addresses are forgotten by [`PerAddress::sweep`], so the table holds only
/// addresses seen lately.
pub struct PerAddress {
    buckets: DashMap<IpAddr, TokenBucket>,
    count: u32,
    per_sec: f64,
}

impl PerAddress {
    pub fn new(count: u32, per_secs: u64) -> Self {
        PerAddress {
            buckets: DashMap::new(),
            count,
            per_sec: f64::from(count) / Duration::from_secs(per_secs.max(1)).as_secs_f64(),
        }
    }

    /// Takes one action for `ip` if its allowance has one.
    pub fn try_take(&self, ip: IpAddr, now: Instant) -> bool {
        let key = crate::admission::address_key(ip);
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(self.per_sec, self.count, now))
            .try_take(now)
    }

    /// Forgets addresses whose allowance is full again; returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let before = self.buckets.len();
        self.buckets.retain(|_, b| !b.is_full(now));
        before.saturating_sub(self.buckets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_allowance_and_idle_ones_are_forgotten() {
        let t0 = Instant::now();
        let table = PerAddress::new(3, 60);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!((0..3).all(|_| table.try_take(a, t0)));
        assert!(!table.try_take(a, t0), "a's minute is used up");
        assert!(table.try_take(b, t0), "b is not a");
        assert!(
            table.try_take(a, t0 + Duration::from_secs(20)),
            "one back every 20 s"
        );
        // After 30 s b's single use is back, a's four are not.
        assert_eq!(table.sweep(t0 + Duration::from_secs(30)), 1);
        assert_eq!(table.sweep(t0 + Duration::from_secs(120)), 1);
        assert!(table.buckets.is_empty());
    }

    #[test]
    fn allows_a_burst_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 3, t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.try_take(later)), "refills up to the burst");
        assert!(!b.try_take(later), "but not beyond it");
    }
}
