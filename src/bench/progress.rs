//! The load generator's progress line on stderr while it runs.

use std::io::{IsTerminal, Write as _};
use std::time::Duration;

use super::stats::Live;

/// The progress line: rewritten in place on a terminal, one line every few seconds otherwise.
pub struct Progress {
    quiet: bool,
    terminal: bool,
    last_plain: std::cell::Cell<Option<std::time::Instant>>,
}

/// How often the progress is written when stderr is not a terminal (a log, a test).
const PLAIN_EVERY: Duration = Duration::from_secs(5);
const BAR_WIDTH: usize = 24;

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            last_plain: std::cell::Cell::new(None),
        }
    }

    pub fn setup(&self, live: &Live, clients: usize, elapsed: Duration) {
        let ready = Live::get(&live.ready);
        let failed = Live::get(&live.setup_failed);
        self.write(&format!(
            "setting up: {ready}/{clients} users ready ({failed} failed), {:.1} s",
            elapsed.as_secs_f64()
        ));
    }

    pub fn running(&self, live: &Live, elapsed: Duration, total: Duration) {
        let fraction = (elapsed.as_secs_f64() / total.as_secs_f64().max(1e-9)).min(1.0);
        let filled = (fraction * BAR_WIDTH as f64) as usize;
        let ops = Live::get(&live.ops);
        let open = Live::get(&live.open_sockets);
        let open = if open > 0 {
            format!("  open {open}")
        } else {
            String::new()
        };
        self.write(&format!(
            "[{}{}] {:>5.1}/{:.0} s  ops {ops}  {:.0}/s  errors {}{open}",
            "#".repeat(filled),
            " ".repeat(BAR_WIDTH - filled),
            elapsed.as_secs_f64(),
            total.as_secs_f64(),
            ops as f64 / elapsed.as_secs_f64().max(1e-3),
            Live::get(&live.errors),
        ));
    }

    pub fn finish(&self) {
        if !self.quiet && self.terminal {
            eprintln!();
        }
    }

    fn write(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.terminal {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            return;
        }
        let now = std::time::Instant::now();
        if self
            .last_plain
            .get()
            .is_none_or(|last| now - last >= PLAIN_EVERY)
        {
            self.last_plain.set(Some(now));
            eprintln!("{line}");
        }
    }
}
