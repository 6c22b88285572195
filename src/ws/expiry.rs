//! A socket's timers on one `Sleep`: the heartbeat, and its session's absolute expiry (first a
//! warning, `expiring`, so the client can refresh in-band; then, at expiry, the session is ended,
//! which closes every socket bound to it with 4401). One timer rather than two keeps an idle
//! socket smaller (docs/benchmarks.md, memory per socket).
//!
//! Expiry deadlines are read from the shared [`Clock`] and turned into tokio deadlines; when the
//! timer fires early by that clock (tests move it by hand), the end is simply rescheduled.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

use crate::clock::{Clock, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Time to send `expiring`.
    Warn,
    /// Time to end the session.
    End,
}

/// What a firing of the timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Send the heartbeat ping (and check the socket has been heard from).
    Heartbeat,
    /// The armed expiry stage is due.
    Expiry(Stage),
}

pub struct SocketTimer {
    sleep: Pin<Box<Sleep>>,
    heartbeat_every: Duration,
    next_heartbeat: Instant,
    /// The armed expiry stage and when it is due.
    stage: Option<(Stage, Instant)>,
    expires_ms: Millis,
    warning_ms: Millis,
}

impl SocketTimer {
    /// The first heartbeat is one interval from now.
    pub fn new(heartbeat_every: Duration, warning_secs: u64) -> Self {
        let next_heartbeat = Instant::now() + heartbeat_every;
        SocketTimer {
            sleep: Box::pin(sleep_until(next_heartbeat)),
            heartbeat_every,
            next_heartbeat,
            stage: None,
            expires_ms: 0,
            warning_ms: warning_secs.saturating_mul(1000),
        }
    }

    /// The session's expiry, Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_ms / 1000
    }

    /// Starts (or restarts, after a refresh) the countdown to `expires_ms`.
    pub fn arm(&mut self, expires_ms: Millis, clock: &dyn Clock) {
        self.expires_ms = expires_ms;
        self.set_stage(
            Stage::Warn,
            expires_ms.saturating_sub(self.warning_ms),
            clock,
        );
    }

    /// After the warning: wait for the expiry itself.
    pub fn arm_end(&mut self, clock: &dyn Clock) {
        self.set_stage(Stage::End, self.expires_ms, clock);
    }

    pub fn disarm(&mut self) {
        self.stage = None;
        self.reschedule();
    }

    fn set_stage(&mut self, stage: Stage, at_ms: Millis, clock: &dyn Clock) {
        let wait = at_ms.saturating_sub(clock.now_ms());
        self.stage = Some((stage, Instant::now() + Duration::from_millis(wait)));
        self.reschedule();
    }

    fn reschedule(&mut self) {
        let at = match self.stage {
            Some((_, due)) => due.min(self.next_heartbeat),
            None => self.next_heartbeat,
        };
        if self.sleep.deadline() != at {
            self.sleep.as_mut().reset(at);
        }
    }

    /// Resolves when the heartbeat or the armed expiry stage is due (the expiry first when both
    /// are). Cancel-safe: nothing changes until it resolves.
    pub async fn fired(&mut self) -> Due {
        loop {
            self.sleep.as_mut().await;
            let now = Instant::now();
            if let Some((stage, due)) = self.stage {
                if due <= now {
                    self.stage = None;
                    self.reschedule();
                    return Due::Expiry(stage);
                }
            }
            if self.next_heartbeat <= now {
                // A late tick is not caught up: the next one is a full interval away.
                self.next_heartbeat = now + self.heartbeat_every;
                self.reschedule();
                return Due::Heartbeat;
            }
            self.reschedule();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Waits for the next firing and moves the wall clock along with tokio's (paused) clock.
    async fn next(
        timer: &mut SocketTimer,
        clock: &ManualClock,
        start: Instant,
        t0: Millis,
    ) -> (Due, u64) {
        let due = timer.fired().await;
        let elapsed = Instant::now() - start;
        let behind = elapsed.as_millis() as u64 - (clock.now_ms() - t0);
        clock.advance(Duration::from_millis(behind));
        (due, elapsed.as_secs())
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_come_every_interval_and_the_stages_in_order() {
        let clock = ManualClock::new();
        let t0 = clock.now_ms();
        let start = Instant::now();
        let mut timer = SocketTimer::new(Duration::from_secs(20), 60);
        // Expires in 100 s: the warning is due at 40 s, the end at 100 s.
        timer.arm(t0 + 100_000, &clock);
        let mut seen = Vec::new();
        while seen.len() < 6 {
            let (due, at) = next(&mut timer, &clock, start, t0).await;
            if due == Due::Expiry(Stage::Warn) {
                timer.arm_end(&clock);
            }
            seen.push((due, at));
        }
        assert_eq!(
            seen,
            vec![
                (Due::Heartbeat, 20),
                (Due::Expiry(Stage::Warn), 40),
                (Due::Heartbeat, 40),
                (Due::Heartbeat, 60),
                (Due::Heartbeat, 80),
                (Due::Expiry(Stage::End), 100),
            ]
        );
        assert_eq!(timer.expires_at(), (t0 + 100_000) / 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_moves_the_expiry_and_disarming_leaves_the_heartbeat() {
        let clock = ManualClock::new();
        let t0 = clock.now_ms();
        let start = Instant::now();
        let mut timer = SocketTimer::new(Duration::from_secs(20), 5);
        timer.arm(t0 + 30_000, &clock);
        assert_eq!(
            next(&mut timer, &clock, start, t0).await,
            (Due::Heartbeat, 20)
        );
        // Refreshed before the warning (due at 25 s): now expires at 70 s, warning at 65 s.
        timer.arm(t0 + 70_000, &clock);
        assert_eq!(
            next(&mut timer, &clock, start, t0).await,
            (Due::Heartbeat, 40)
        );
        assert_eq!(
            next(&mut timer, &clock, start, t0).await,
            (Due::Heartbeat, 60)
        );
        assert_eq!(
            next(&mut timer, &clock, start, t0).await,
            (Due::Expiry(Stage::Warn), 65)
        );
        timer.disarm();
        assert_eq!(
            next(&mut timer, &clock, start, t0).await,
            (Due::Heartbeat, 80)
        );
        assert_eq!(
            next(&mut timer, &clock, start, t0).await,
            (Due::Heartbeat, 100)
        );
    }
}
