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
//!
//! Bounded output: a line longer than [`MAX_LINE`] is cut there (and says how much was cut), and
//! lines from dependencies (any target outside `wsauthn`) pass at most
//! [`DEPENDENCY_LINES_PER_SEC`] a second ([`dependency_budget`]); the writer thread reports how
//! many it held back. A client cannot make the server write without bound by making a library
//! log what it sent.
//!
//! In JSON mode ([`spawn_json`]) every line the writer itself writes is one JSON object too: a
//! cut line becomes `{"message":"log line cut",...,"line":"<its start>"}`, and the note of lines
//! held back is an object, so a collector never sees a broken line.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

mod json;
use json::{cut_json, held_back_note};

/// How often buffered lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes past which the logging thread writes them out itself.
pub const MAX_BUFFERED: usize = 1024 * 1024;
/// The longest line written; longer ones are cut.
pub const MAX_LINE: usize = 4096;
/// Lines a second that dependencies may log (burst: one second's worth).
pub const DEPENDENCY_LINES_PER_SEC: u32 = 20;

/// A per-event filter for `tracing_subscriber`: our own lines always pass; other targets'
/// lines pass at most [`DEPENDENCY_LINES_PER_SEC`] a second, and the rest are counted for
/// `writer` to report.
pub fn dependency_budget<S>(
    writer: &BufferedWriter,
) -> tracing_subscriber::filter::DynFilterFn<
    S,
    impl Fn(&tracing::Metadata<'_>, &tracing_subscriber::layer::Context<'_, S>) -> bool,
> {
    let shared = writer.shared.clone();
    let bucket = Mutex::new(crate::ratelimit::TokenBucket::new(
        f64::from(DEPENDENCY_LINES_PER_SEC),
        DEPENDENCY_LINES_PER_SEC,
        std::time::Instant::now(),
    ));
    // Dynamic: decided per event, not cached per callsite.
    tracing_subscriber::filter::dynamic_filter_fn(move |meta, _| {
        if is_ours(meta.target()) || !meta.is_event() {
            return true;
        }
        let allowed = lock(&bucket).try_take(std::time::Instant::now());
        if !allowed {
            shared
                .suppressed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        allowed
    })
}

/// Our own targets: the crate's modules, the audit log and the access log (never held back).
fn is_ours(target: &str) -> bool {
    target.starts_with("wsauthn")
        || target == crate::events::AUDIT_TARGET
        || target == crate::logging::ACCESS_TARGET
}

/// `bytes` cut to [`MAX_LINE`] with a note of what was cut, or as they are.
fn bounded(bytes: &[u8], json: bool) -> std::borrow::Cow<'_, [u8]> {
    if bytes.len() <= MAX_LINE {
        return std::borrow::Cow::Borrowed(bytes);
    }
    if json {
        return std::borrow::Cow::Owned(cut_json(bytes));
    }
    let mut line = bytes[..MAX_LINE].to_vec();
    line.extend_from_slice(format!("… ({} bytes cut)\n", bytes.len() - MAX_LINE).as_bytes());
    std::borrow::Cow::Owned(line)
}

struct Shared {
    /// Lines not yet written.
    buffer: Mutex<Vec<u8>>,
    /// The output. Held while a batch is taken from `buffer` and written, so batches go out in
    /// the order they were taken.
    out: Mutex<Box<dyn Write + Send>>,
    stopping: Mutex<bool>,
    wake: Condvar,
    /// Dependency lines held back since the last report.
    suppressed: std::sync::atomic::AtomicU64,
    /// Lines are JSON objects: the writer's own lines must be too.
    json: bool,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a log lock leaves bytes, not broken invariants.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes out everything buffered so far.
    fn write_out(&self) {
        let mut out = lock(&self.out);
        let suppressed = self
            .suppressed
            .swap(0, std::sync::atomic::Ordering::Relaxed);
        if suppressed > 0 {
            let note = held_back_note(suppressed, self.json);
            lock(&self.buffer).extend_from_slice(note.as_bytes());
        }
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

/// Starts the writer thread over `out` (stdout in the server), for text lines.
pub fn spawn<W: Write + Send + 'static>(out: W) -> io::Result<(BufferedWriter, LogGuard)> {
    start(out, false)
}

/// As [`spawn`], for lines that are JSON objects.
pub fn spawn_json<W: Write + Send + 'static>(out: W) -> io::Result<(BufferedWriter, LogGuard)> {
    start(out, true)
}

fn start<W: Write + Send + 'static>(out: W, json: bool) -> io::Result<(BufferedWriter, LogGuard)> {
    let shared = Arc::new(Shared {
        json,
        buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
        out: Mutex::new(Box::new(out)),
        stopping: Mutex::new(false),
        wake: Condvar::new(),
        suppressed: std::sync::atomic::AtomicU64::new(0),
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
            buffer.extend_from_slice(&bounded(bytes, self.shared.json));
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
    fn a_line_longer_than_the_limit_is_cut_and_says_so() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        let long = format!("{}\n", "7, ".repeat(70_000));
        writer.make_writer().write_all(long.as_bytes()).unwrap();
        writer.make_writer().write_all(b"short\n").unwrap();
        drop(guard);
        let text = sink.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{}", text.len());
        assert!(lines[0].len() < MAX_LINE + 64);
        assert!(lines[0].ends_with(&format!("({} bytes cut)", long.len() - MAX_LINE)));
        assert_eq!(lines[1], "short");
    }

    #[test]
    fn in_json_mode_a_cut_line_and_the_writers_notes_are_json_objects() {
        let sink = Sink::default();
        let (writer, guard) = spawn_json(sink.clone()).unwrap();
        let long = format!(
            "{}\n",
            serde_json::json!({"message": "big", "data": "\"\u{1}é".repeat(5000)})
        );
        writer.make_writer().write_all(long.as_bytes()).unwrap();
        writer
            .make_writer()
            .write_all(b"{\"message\":\"short\"}\n")
            .unwrap();
        writer
            .shared
            .suppressed
            .store(3, std::sync::atomic::Ordering::Relaxed);
        drop(guard);
        let text = sink.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                assert!(l.len() <= MAX_LINE, "{}", l.len());
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
            })
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["message"], "log line cut");
        assert_eq!(lines[0]["bytes"], long.len());
        // serde_json writes keys in order: "data" comes first.
        let start = lines[0]["line"].as_str().unwrap();
        assert!(start.starts_with("{\"data\":\"\\\""), "{start}");
        assert_eq!(lines[1]["message"], "short");
        assert!(lines[2]["message"]
            .as_str()
            .unwrap()
            .contains("held back 3"));
    }

    #[test]
    fn dependency_lines_are_rate_limited_and_ours_are_not() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        let budget = dependency_budget(&writer);
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(budget),
        );
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..500 {
                tracing::error!(target: "webauthn_rs_core::core", i, "unparsed bytes");
                tracing::info!(target: "audit", i, "ours");
                tracing::info!(target: "access", i, "ours");
            }
        });
        drop(guard);
        let text = sink.text();
        let theirs = text
            .lines()
            .filter(|l| l.contains("unparsed bytes"))
            .count();
        let ours = text.lines().filter(|l| l.contains("ours")).count();
        assert_eq!(ours, 1000, "audit and access lines are never held back");
        assert!(theirs <= DEPENDENCY_LINES_PER_SEC as usize + 5, "{theirs}");
        assert!(
            text.contains("held back"),
            "the writer says lines were held back"
        );
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
