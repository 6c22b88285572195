//! Log output off the request path: a formatted line is appended to a shared buffer (a lock and
//! a copy, no system call), and a writer thread writes the buffer out every
//! [`FLUSH_EVERY`]. Under load that is one `write` per 50 ms instead of one per line (the audit
//! log writes two lines per sign-in, docs/benchmarks.md).
//!
//! What this costs: a line reaches stdout up to 50 ms after it was logged, and a crash (not a
//! stop: [`LogGuard`] writes what is buffered) loses at most the last 50 ms of lines; the
//! store's own unflushed window is longer (docs/guarantees.md). Nothing is dropped: past
//! [`MAX_BUFFERED`] bytes the logging thread writes the buffer out itself, so a stalled stdout
//! slows logging down, as writing to stdout directly would, instead of growing memory.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How often buffered lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes past which the logging thread writes them out itself.
pub const MAX_BUFFERED: usize = 1024 * 1024;

struct Shared {
    /// Lines not yet written.
    buffer: Mutex<Vec<u8>>,
    /// The output. Held while a batch is taken from `buffer` and written, so batches go out in
    /// the order they were taken.
    out: Mutex<Box<dyn Write + Send>>,
    stopping: Mutex<bool>,
    wake: Condvar,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a log lock leaves bytes, not broken invariants.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes out everything buffered so far.
    fn write_out(&self) {
        let mut out = lock(&self.out);
        let batch = std::mem::take(&mut *lock(&self.buffer));
        if !batch.is_empty() {
            // A failing stdout has nowhere to report to; the lines are lost either way.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
        }
    }
}

/// A [`MakeWriter`] for `tracing_subscriber::fmt` that buffers lines for the writer thread.
#[derive(Clone)]
pub struct BufferedWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread and writes out what is buffered when dropped (keep it until the end
/// of `main`).
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `out` (stdout in the server).
pub fn spawn<W: Write + Send + 'static>(out: W) -> io::Result<(BufferedWriter, LogGuard)> {
    let shared = Arc::new(Shared {
        buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
        out: Mutex::new(Box::new(out)),
        stopping: Mutex::new(false),
        wake: Condvar::new(),
    });
    let thread = {
        let shared = shared.clone();
        thread::Builder::new()
            .name("log writer".into())
            .spawn(move || loop {
                let stopping = lock(&shared.stopping);
                let (stopping, _) = shared
                    .wake
                    .wait_timeout(stopping, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner);
                let stop = *stopping;
                drop(stopping);
                shared.write_out();
                if stop {
                    return;
                }
            })?
    };
    Ok((
        BufferedWriter {
            shared: shared.clone(),
        },
        LogGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        *lock(&self.shared.stopping) = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Lines logged after the thread's last batch.
        self.shared.write_out();
    }
}

/// The writer `tracing_subscriber::fmt` gets for one event (it writes the formatted line in
/// one call).
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let full = {
            let mut buffer = lock(&self.shared.buffer);
            buffer.extend_from_slice(bytes);
            buffer.len() >= MAX_BUFFERED
        };
        if full {
            self.shared.write_out();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.bytes.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn every_line_arrives_in_order_and_the_guard_writes_the_rest() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                thread::spawn(move || {
                    for i in 0..2000 {
                        // Long lines, so the buffer also fills and is written by loggers.
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(200));
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = sink.text();
        assert_eq!(text.lines().count(), 8000);
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_lone_line_is_written_within_the_flush_interval() {
        let sink = Sink::default();
        let (writer, _guard) = spawn(sink.clone()).unwrap();
        writer.make_writer().write_all(b"alone\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.text() != "alone\n" {
            assert!(Instant::now() < deadline, "the line was not written");
            thread::sleep(Duration::from_millis(5));
        }
    }
}
