//! Failed sign-ins per account, with backoff: after `free` failed finishes in a row an account's
//! sign-ins wait 1 s, then 2, 4, … up to `max`, doubling with each further failure; a success
//! clears it. Never a permanent lockout (an attacker could otherwise lock anyone out), but
//! guessing at a stolen-but-locked authenticator, or flooding an account with bad assertions,
//! slows to a crawl. Time is passed in; state is in memory (a restart forgives).

use dashmap::DashMap;
use uuid::Uuid;

use crate::clock::Millis;
use crate::error::Error;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// No sign-in before this.
    wait_until: Millis,
}

pub struct SignInAttempts {
    failures: DashMap<Uuid, Failures>,
    free: u32,
    max_ms: Millis,
}

impl SignInAttempts {
    pub fn new(free: u32, max_secs: u64) -> Self {
        SignInAttempts {
            failures: DashMap::new(),
            free,
            max_ms: max_secs.saturating_mul(1000),
        }
    }

    /// `rate_limited` while the account waits out its backoff.
    pub fn check(&self, user: &Uuid, now: Millis) -> Result<(), Error> {
        if self.failures.is_empty() {
            return Ok(());
        }
        match self.failures.get(user) {
            Some(f) if f.wait_until > now => Err(Error::RateLimited(
                "Too many failed sign-ins for this account; wait a little and try again.",
            )),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, user: &Uuid, now: Millis) {
        let mut f = self.failures.entry(*user).or_insert(Failures {
            count: 0,
            wait_until: 0,
        });
        f.count = f.count.saturating_add(1);
        if f.count > self.free {
            let doublings = (f.count - self.free - 1).min(30);
            let wait = 1000u64.saturating_mul(1 << doublings).min(self.max_ms);
            f.wait_until = now.saturating_add(wait);
        }
    }

    pub fn succeeded(&self, user: &Uuid) {
        if !self.failures.is_empty() {
            self.failures.remove(user);
        }
    }

    /// Forgets accounts whose backoff ended long enough ago (`max` idle); returns how many.
    pub fn sweep(&self, now: Millis) -> usize {
        let before = self.failures.len();
        self.failures
            .retain(|_, f| f.wait_until.saturating_add(self.max_ms) > now);
        before.saturating_sub(self.failures.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_free_failures_and_a_success_clears_it() {
        let a = SignInAttempts::new(3, 900);
        let (u, other) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            a.failed(&u, 0);
        }
        assert!(a.check(&u, 0).is_ok(), "three failures are free");
        a.failed(&u, 0);
        assert!(a.check(&u, 999).is_err());
        assert!(a.check(&u, 1000).is_ok(), "1 s after the fourth");
        a.failed(&u, 1000);
        assert!(
            a.check(&u, 2999).is_err() && a.check(&u, 3000).is_ok(),
            "2 s after the fifth"
        );
        for _ in 0..40 {
            a.failed(&u, 3000);
        }
        assert!(
            a.check(&u, 3000 + 900_000).is_ok(),
            "never past the maximum"
        );
        assert!(
            a.check(&other, 3000).is_ok(),
            "other accounts are not touched"
        );
        a.succeeded(&u);
        assert!(a.check(&u, 3000).is_ok());
        a.failed(&other, 0);
        assert_eq!(a.sweep(2_000_000), 1);
    }
}
