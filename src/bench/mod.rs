//! `wsauthn bench`: a load generator for any server that speaks the wsauthn protocol
//! (docs/protocol.md), and the numbers an operator chooses a server by.
//!
//! `--clients` virtual users ([`user`]) each carry a software ES256 authenticator
//! ([`crate::softkey`]), register an account, and then repeat the mode's operation on real
//! WebSockets until `--duration` has passed. Users are spread over `--threads` load threads, each a
//! single-threaded actix runtime with its own [`stats::Recorder`], merged at the end into a
//! [`Report`]: operations per second, latency percentiles (HdrHistogram), errors by code and,
//! with `--server-pid`, the server's CPU time per operation and its resident memory.
//!
//! Invariants: the measured window opens only once every user is set up, so setup costs
//! (registration, connection) are not in the numbers; operations that end after the deadline
//! are not counted; every wait is bounded (`--timeout` per operation, `--setup-timeout` for the
//! setup), so a run always ends.

mod args;
mod client;
mod floor;
mod procfs;
mod progress;
mod report;
pub mod stats;
mod user;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

pub use args::{parse_args, USAGE};
pub use floor::Floor;
pub use procfs::{sample as sample_process, ProcSample};
pub use report::{OpReport, Report, ServerReport};
use stats::{Live, Recorder};
use user::{ThreadCtx, VirtualUser};

/// How long the floor (one OpenSSL P-256 verification) is timed for, after the window.
const FLOOR_MEASUREMENT: Duration = Duration::from_secs(1);

/// What each virtual user does in the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Register a new account per operation, on a kept-open `/ws` socket.
    Register,
    /// Sign in (begin + finish, with a token) per operation, on a kept-open `/ws` socket.
    Login,
    /// Open a protected socket with the token, exchange one frame, close and read until the
    /// server ends the TCP stream.
    Connect,
    /// 1 register : 3 logins : 6 connects, chosen at random per operation.
    Mixed,
    /// Open one protected socket per user and hold it, answering heartbeats, until the end:
    /// how many authenticated idle sockets the server holds, and at what memory.
    Idle,
    /// An HTTP GET with the token as `Authorization: Bearer`, on kept-alive connections.
    Http,
    /// One protected socket per user, kept open; each operation sends a text frame of
    /// `frame_bytes` and waits for its echo (an echoing endpoint: `/echo`, or a `[[proxy]]`
    /// path to an echo server, docs/benchmarks.md).
    Frames,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Register => "register",
            Mode::Login => "login",
            Mode::Connect => "connect",
            Mode::Mixed => "mixed",
            Mode::Idle => "idle",
            Mode::Http => "http",
            Mode::Frames => "frames",
        }
    }
}

/// How a protected socket presents its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectAuth {
    /// `Authorization: Bearer` on the upgrade (native clients).
    Header,
    /// A first `{"type":"auth"}` frame (browsers).
    Frame,
}

/// A load run, as the command line describes it.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the ceremony socket is, e.g. `ws://127.0.0.1:8080/ws`.
    pub ceremony_url: String,
    /// Where the protected socket is, e.g. `ws://127.0.0.1:8080/echo`.
    pub connect_url: String,
    /// What `--mode http` requests, e.g. `http://127.0.0.1:8080/api/me`.
    pub http_url: String,
    /// Sent as `Origin` and written into client data; must be one the server accepts.
    pub origin: String,
    /// The relying-party id the authenticator expects in the server's options.
    pub rp_id: String,
    pub clients: usize,
    pub duration: Duration,
    /// Operations per second over all users (0: each user goes back to back).
    pub rate: f64,
    pub mode: Mode,
    pub threads: usize,
    pub timeout: Duration,
    pub setup_timeout: Duration,
    /// At most this many users set up (or, in idle mode, open their socket) at once.
    pub setup_concurrency: usize,
    /// Accounts registered in setup; users beyond them share one (`index % accounts`) and sign
    /// in to it for their own token. Registration is slow (durable, flushed): fewer accounts
    /// make setups of many users quick.
    pub accounts: usize,
    pub connect_auth: ConnectAuth,
    pub discoverable: bool,
    /// Reopen the ceremony socket after this many ceremonies (0: never).
    pub ops_per_socket: u64,
    /// Local addresses to connect from, round-robin per user (empty: the system's choice).
    pub source_ips: Vec<std::net::IpAddr>,
    pub server_pid: Option<u32>,
    /// Frames mode: the size of each frame.
    pub frame_bytes: usize,
    pub json: bool,
    pub quiet: bool,
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start a load thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot read the server process {pid}: {source}")]
    Server { pid: u32, source: std::io::Error },
    #[error("a load thread panicked")]
    Panicked,
}

/// What the load threads share with the coordinator.
pub struct Shared {
    pub options: Options,
    pub live: Live,
    /// Prefix of every username of this run, so runs against one server never collide.
    pub run_id: String,
    /// `None` during setup; then the deadline of the measured window.
    pub window: watch::Sender<Option<Instant>>,
    pub setup_gate: Arc<Semaphore>,
    /// Setup registrations run one at a time: each is flushed to disk, and a burst of them
    /// is a write storm the measured window should not inherit (see docs/benchmarks.md).
    pub register_gate: Arc<Semaphore>,
    pub accounts: user::Accounts,
}

/// Runs the load described by `options` and reports on it. Progress goes to stderr unless
/// `quiet`.
pub fn run(options: Options) -> Result<Report, BenchError> {
    let mut id = [0u8; 4];
    // Without randomness the run id falls back to the clock: it only has to differ per run.
    if getrandom::fill(&mut id).is_err() {
        id = (std::process::id() ^ now_nanos()).to_le_bytes();
    }
    let shared = Arc::new(Shared {
        run_id: id.iter().map(|b| format!("{b:02x}")).collect(),
        live: Live::default(),
        window: watch::channel(None).0,
        setup_gate: Arc::new(Semaphore::new(options.setup_concurrency.max(1))),
        register_gate: Arc::new(Semaphore::new(1)),
        accounts: (0..options.accounts.max(1))
            .map(|_| Default::default())
            .collect(),
        options,
    });
    let options = &shared.options;
    let server = |pid: u32| {
        procfs::sample(&pid.to_string()).map_err(|source| BenchError::Server { pid, source })
    };
    if let Some(pid) = options.server_pid {
        server(pid)?;
    }
    let threads = spawn_load_threads(&shared)?;
    let progress = progress::Progress::new(options.quiet);

    // Setup: wait (bounded) until every user is ready or has given up.
    let setup_started = Instant::now();
    let setup_deadline = setup_started + options.setup_timeout;
    while Live::get(&shared.live.ready) < options.clients as u64 && Instant::now() < setup_deadline
    {
        progress.setup(&shared.live, options.clients, setup_started.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let setup_time = setup_started.elapsed();

    // The measured window.
    let server_start = options.server_pid.map(server).transpose()?;
    let client_start = procfs::sample("self").ok();
    let started = Instant::now();
    let deadline = started + options.duration;
    shared.window.send_replace(Some(deadline));
    let mut peak_rss = server_start.map_or(0, |s| s.rss_kib);
    let mut peak_open = 0;
    // (open sockets, server RSS KiB), for the marginal cost of a socket.
    let mut rss_by_open = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let open = Live::get(&shared.live.open_sockets);
        if let Some(pid) = options.server_pid {
            if let Ok(s) = procfs::sample(&pid.to_string()) {
                peak_rss = peak_rss.max(s.rss_kib);
                rss_by_open.push((open, s.rss_kib));
            }
        }
        peak_open = peak_open.max(open);
        progress.running(&shared.live, now - started, options.duration);
        std::thread::sleep((deadline - now).min(Duration::from_millis(200)));
    }
    let elapsed = started.elapsed();
    let server_end = options.server_pid.map(server).transpose()?;
    let client_end = procfs::sample("self").ok();
    progress.finish();

    let mut recorder = Recorder::default();
    for thread in threads {
        let part = thread.join().map_err(|_| BenchError::Panicked)?;
        recorder.merge(&part);
    }
    let server = match (options.server_pid, server_start, server_end) {
        (Some(pid), Some(start), Some(end)) => {
            let mut report = ServerReport::new(pid, start, end, peak_rss.max(end.rss_kib));
            if peak_open > 0 {
                report.rss_marginal_per_socket_kib = report::marginal_kib_per_socket(&rss_by_open);
            }
            Some(report)
        }
        _ => None,
    };
    let client = match (client_start, client_end) {
        (Some(start), Some(end)) => Some(end.cpu().saturating_sub(start.cpu())),
        _ => None,
    };
    // The yardstick for the server's CPU per operation, timed now that the load is over.
    let floor = match floor::measure(FLOOR_MEASUREMENT) {
        Ok(floor) => Some(floor),
        Err(e) => {
            tracing::warn!(error = %e, "cannot time an OpenSSL P-256 verification");
            None
        }
    };
    Ok(Report::new(
        options,
        &recorder,
        report::Window {
            elapsed,
            setup: setup_time,
            setup_failed: Live::get(&shared.live.setup_failed),
            peak_open_sockets: peak_open,
        },
        server,
        client,
        floor,
    ))
}

/// Starts the load threads, each with its share of the users, each on its own runtime.
fn spawn_load_threads(
    shared: &Arc<Shared>,
) -> Result<Vec<std::thread::JoinHandle<Recorder>>, BenchError> {
    let options = &shared.options;
    let threads = options.threads.clamp(1, options.clients.max(1));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let shared = shared.clone();
        let users: Vec<usize> = (t..shared.options.clients).step_by(threads).collect();
        let handle = std::thread::Builder::new()
            .name(format!("bench-load-{t}"))
            .spawn(move || actix_web::rt::System::new().block_on(load_thread(shared, users)))
            .map_err(BenchError::Thread)?;
        handles.push(handle);
    }
    Ok(handles)
}

/// One load thread: its users run as tasks on this thread's runtime.
async fn load_thread(shared: Arc<Shared>, users: Vec<usize>) -> Recorder {
    let options = &shared.options;
    let sources: Vec<Option<std::net::IpAddr>> = if options.source_ips.is_empty() {
        vec![None]
    } else {
        options.source_ips.iter().copied().map(Some).collect()
    };
    let ctx = Rc::new(ThreadCtx {
        clients: sources
            .into_iter()
            .map(|ip| client::http_client(options.timeout, ip))
            .collect(),
        shared: shared.clone(),
        recorder: Default::default(),
    });
    let tasks: Vec<_> = users
        .into_iter()
        .map(|i| actix_web::rt::spawn(VirtualUser::new(i, ctx.clone()).run()))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let recorder = ctx.recorder.borrow().clone();
    recorder
}

fn now_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
