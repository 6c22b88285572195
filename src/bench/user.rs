//! A virtual user: one software authenticator, one account, a kept-open ceremony socket, and a
//! loop of operations until the run's deadline.
//!
//! Life of a user: setup, wait for the measured window to open, then operate until the deadline.
//! Setup (every mode but `register`) gets the user an account and a token: the first
//! `--accounts` users register one each; the others wait for the account they share
//! (`index % accounts`) and sign in to it for a token of their own. A shared account's
//! authenticator reports no signature counter (as synced passkeys do), so its users' sign-ins
//! may overlap. Operations that end
//! after the deadline are not counted, so the window's count matches the server's CPU samples.
//! A failed operation is counted by code; the socket is reopened unless the failure was an
//! `error` frame (after which the protocol keeps the socket open).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::client::Socket;
use super::stats::{Live, Op, OpError, Recorder};
use super::{Mode, Shared};
use crate::softkey::SoftAuthenticator;

mod ops;

/// What every user of one load thread shares.
pub struct ThreadCtx {
    pub shared: Arc<Shared>,
    pub clients: Vec<awc::Client>,
    pub recorder: RefCell<Recorder>,
}

/// Pause after a failed connection before the next attempt, so a down server is not spun on.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How often a user checks whether the account it shares has been registered.
const ACCOUNT_POLL: Duration = Duration::from_millis(20);

/// An account and the authenticator holding its passkey, shared by the users that sign in to it.
pub struct Account {
    username: String,
    key: Mutex<SoftAuthenticator>,
}

/// The accounts of a run: set once by the user that registers each (`None`: it failed).
pub type Accounts = Vec<OnceLock<Option<Arc<Account>>>>;

pub struct VirtualUser {
    index: usize,
    ctx: Rc<ThreadCtx>,
    account: Arc<Account>,
    username: String,
    token: Option<String>,
    ceremony_socket: Option<Socket>,
    ops_on_socket: u64,
    registrations: u64,
    rng: u64,
}

impl VirtualUser {
    pub fn new(index: usize, ctx: Rc<ThreadCtx>) -> Self {
        let username = format!("bench-{}-{index}", ctx.shared.run_id);
        let mut key = SoftAuthenticator::new();
        if ctx.shared.options.accounts < ctx.shared.options.clients {
            key.counter_step = 0;
        }
        let account = Arc::new(Account {
            username: username.clone(),
            key: Mutex::new(key),
        });
        VirtualUser {
            index,
            ctx,
            account,
            username,
            token: None,
            ceremony_socket: None,
            ops_on_socket: 0,
            registrations: 0,
            // Any odd seed will do for xorshift; the index spreads users apart.
            rng: 0x9E37_79B9_7F4A_7C15 ^ ((index as u64) << 1 | 1),
        }
    }

    fn client(&self) -> &awc::Client {
        let clients = &self.ctx.clients;
        &clients[self.index % clients.len()]
    }

    fn live(&self) -> &Live {
        &self.ctx.shared.live
    }

    /// Runs the user's whole life; returns once the deadline has passed.
    pub async fn run(mut self) {
        let shared = self.ctx.shared.clone();
        let set_up = self.setup().await;
        Live::add(&self.live().ready);
        let mut window = shared.window.subscribe();
        let window = match window.wait_for(Option::is_some).await {
            Ok(w) => *w,
            Err(_) => None,
        };
        let (Some(deadline), true) = (window, set_up) else {
            Live::add(&self.live().done);
            return;
        };
        match shared.options.mode {
            Mode::Idle => self.idle(deadline).await,
            Mode::Frames => self.frames(deadline).await,
            _ => self.operate(deadline).await,
        }
        if let Some(ws) = self.ceremony_socket.take() {
            ws.close().await;
        }
        Live::add(&self.live().done);
    }

    /// Registers the user's account (and so gets a token) when the mode needs one.
    async fn setup(&mut self) -> bool {
        if self.ctx.shared.options.mode == Mode::Register {
            return true;
        }
        let shared = self.ctx.shared.clone();
        let accounts = shared.options.accounts.max(1);
        let owner = self.index < accounts;
        if !owner {
            match self
                .shared_account(&shared.accounts[self.index % accounts])
                .await
            {
                Some(account) => self.account = account,
                None => {
                    Live::add(&self.live().setup_failed);
                    return false;
                }
            }
        }
        let result = {
            let gate = if owner {
                &shared.register_gate
            } else {
                &shared.setup_gate
            };
            let _permit = gate.acquire().await;
            let username = self.username.clone();
            let op = if owner { Op::Register } else { Op::Login };
            self.with_ceremony_socket(op, &username).await
        };
        if owner {
            let account = result.is_ok().then(|| self.account.clone());
            let _ = shared.accounts[self.index].set(account);
        }
        if let Err(e) = result {
            self.ctx.recorder.borrow_mut().failure(&e);
            Live::add(&self.live().setup_failed);
            return false;
        }
        if matches!(self.ctx.shared.options.mode, Mode::Idle | Mode::Frames) {
            // The idle socket is the protected one; free this descriptor for it.
            if let Some(ws) = self.ceremony_socket.take() {
                ws.close().await;
            }
        }
        true
    }

    /// Waits (within the setup timeout) for the account this user shares to be registered.
    async fn shared_account(&self, slot: &OnceLock<Option<Arc<Account>>>) -> Option<Arc<Account>> {
        let give_up = Instant::now() + self.ctx.shared.options.setup_timeout;
        while Instant::now() < give_up {
            if let Some(account) = slot.get() {
                return account.clone();
            }
            tokio::time::sleep(ACCOUNT_POLL).await;
        }
        None
    }

    /// Repeats operations until the deadline: back to back, or with `--rate` one every
    /// `clients / rate` seconds. Paced latencies count from when the operation was due, not
    /// from when it started, so a server that falls behind shows it (no coordinated omission).
    async fn operate(&mut self, deadline: Instant) {
        let (rate, clients) = (
            self.ctx.shared.options.rate,
            self.ctx.shared.options.clients,
        );
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(clients as f64 / rate));
        // Paced users start spread over one interval, not all at once.
        let spread = interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(self.index as f64 / clients as f64)
        });
        let mut due = Instant::now() + spread;
        while Instant::now() < deadline {
            let started = match interval {
                Some(interval) => {
                    tokio::time::sleep_until(due.into()).await;
                    let this = due;
                    due += interval;
                    this
                }
                None => Instant::now(),
            };
            if Instant::now() >= deadline {
                break;
            }
            let op = self.pick();
            let result = match op {
                Op::Connect => self.connect().await,
                Op::Http => self.http_get().await,
                _ => {
                    let name = self.next_username(op);
                    self.with_ceremony_socket(op, &name).await
                }
            };
            let ended = Instant::now();
            if ended > deadline {
                break;
            }
            match result {
                Ok(()) => {
                    self.ctx.recorder.borrow_mut().success(op, ended - started);
                    Live::add(&self.live().ops);
                }
                Err(e) => {
                    self.ctx.recorder.borrow_mut().failure(&e);
                    Live::add(&self.live().errors);
                    if matches!(e, OpError::Connect | OpError::Http(_)) {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
    }

    /// Opens one protected socket, then holds it (answering heartbeats) until the deadline.
    async fn idle(&mut self, deadline: Instant) {
        let gate = self.ctx.shared.setup_gate.clone();
        let permit = gate.acquire().await;
        let started = Instant::now();
        let opened = self.open_protected().await;
        drop(permit);
        let mut socket = match opened {
            Ok(socket) => socket,
            Err(e) => {
                self.ctx.recorder.borrow_mut().failure(&e);
                Live::add(&self.live().errors);
                return;
            }
        };
        self.ctx
            .recorder
            .borrow_mut()
            .success(Op::Open, started.elapsed());
        Live::add(&self.live().ops);
        Live::add(&self.live().open_sockets);
        let held = socket.hold(deadline).await;
        Live::sub(&self.live().open_sockets);
        if let Err(e) = held {
            self.ctx.recorder.borrow_mut().failure(&e);
            Live::add(&self.live().errors);
        }
        socket.close().await;
    }

    /// Frames mode: round trips of one frame on a protected socket opened before the clock
    /// starts, back to back until the deadline; a socket that fails is opened again.
    async fn frames(&mut self, deadline: Instant) {
        let frame = "f".repeat(self.ctx.shared.options.frame_bytes);
        let mut socket = None;
        while Instant::now() < deadline {
            let open = match socket.as_mut() {
                Some(open) => open,
                None => match self.open_protected().await {
                    Ok(opened) => socket.insert(opened),
                    Err(e) => {
                        self.ctx.recorder.borrow_mut().failure(&e);
                        Live::add(&self.live().errors);
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                },
            };
            let started = Instant::now();
            let result = open.echo(&frame).await;
            let ended = Instant::now();
            if ended > deadline {
                break;
            }
            match result {
                Ok(()) => {
                    self.ctx
                        .recorder
                        .borrow_mut()
                        .success(Op::Frame, ended - started);
                    Live::add(&self.live().ops);
                }
                Err(e) => {
                    self.ctx.recorder.borrow_mut().failure(&e);
                    Live::add(&self.live().errors);
                    socket = None;
                }
            }
        }
        if let Some(socket) = socket {
            socket.close().await;
        }
    }

    /// The next operation: the mode's own, or for `mixed` one of 1 register : 3 logins :
    /// 6 connects.
    fn pick(&mut self) -> Op {
        match self.ctx.shared.options.mode {
            Mode::Register => Op::Register,
            Mode::Login => Op::Login,
            Mode::Connect => Op::Connect,
            Mode::Idle => Op::Open,
            Mode::Http => Op::Http,
            Mode::Frames => Op::Frame,
            Mode::Mixed => match self.next_random() % 10 {
                0 => Op::Register,
                1..=3 => Op::Login,
                _ => Op::Connect,
            },
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: cheap and good enough to blend operations.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn next_username(&mut self, op: Op) -> String {
        if op != Op::Register {
            return self.username.clone();
        }
        self.registrations += 1;
        format!("{}-{}", self.username, self.registrations)
    }
}
