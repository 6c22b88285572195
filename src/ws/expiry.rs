//! A socket's view of its session's absolute expiry: first a warning (`expiring`) so the
//! client can refresh in-band, then, at expiry, the session is ended (which closes every socket
//! bound to it with 4401).
//!
//! Deadlines are read from the shared [`Clock`] and turned into a tokio timer; when the timer
//! fires early by that clock (tests move it by hand), the end is simply rescheduled.

use std::future::pending;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{sleep, Instant, Sleep};

use crate::clock::{Clock, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Time to send `expiring`.
    Warn,
    /// Time to end the session.
    End,
}

pub struct ExpiryTimer {
    sleep: Pin<Box<Sleep>>,
    stage: Option<Stage>,
    expires_ms: Millis,
    warning_ms: Millis,
}

impl ExpiryTimer {
    pub fn new(warning_secs: u64) -> Self {
        ExpiryTimer {
            sleep: Box::pin(sleep(Duration::ZERO)),
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
        self.stage = Some(Stage::Warn);
        self.schedule(expires_ms.saturating_sub(self.warning_ms), clock);
    }

    /// After the warning: wait for the expiry itself.
    pub fn arm_end(&mut self, clock: &dyn Clock) {
        self.stage = Some(Stage::End);
        self.schedule(self.expires_ms, clock);
    }

    pub fn disarm(&mut self) {
        self.stage = None;
    }

    fn schedule(&mut self, at_ms: Millis, clock: &dyn Clock) {
        let wait = at_ms.saturating_sub(clock.now_ms());
        self.sleep
            .as_mut()
            .reset(Instant::now() + Duration::from_millis(wait));
    }

    /// Resolves when the current stage is due; never while disarmed.
    pub async fn fired(&mut self) -> Stage {
        match self.stage {
            Some(stage) => {
                self.sleep.as_mut().await;
                self.stage = None;
                stage
            }
            None => pending().await,
        }
    }
}
