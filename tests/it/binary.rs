//! The real `wsauthn` binary as a child process: started on a port of its own with a throwaway
//! environment, its stdout collected line by line, stopped with SIGTERM or SIGKILL.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::helpers::PATIENCE;

/// Every line the child wrote to stdout so far, and a signal for each new one.
#[derive(Default)]
pub(crate) struct Output {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// A `wsauthn` child process on a port of its own; killed (SIGKILL) when dropped, so a failing
/// test leaves no server behind.
pub(crate) struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Every line it wrote to stdout so far.
    pub output: Arc<Output>,
}

impl Server {
    /// Starts the real binary on `data_dir` and waits for its `wsauthn listening` log line.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, |_| {})
    }

    /// As [`Server::start`], with the command adjusted first (environment, limits).
    pub fn start_with(data_dir: &Path, adjust: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsauthn"));
        for (var, _) in std::env::vars().filter(|(v, _)| v.starts_with("WSAUTHN_")) {
            cmd.env_remove(var);
        }
        cmd.env("WSAUTHN__SERVER__BIND", "127.0.0.1:0")
            .env("WSAUTHN__SERVER__DATA_DIR", data_dir)
            .env("WSAUTHN__SERVER__STATIC_DIR", "")
            .env("RUST_LOG", "info")
            // All test clients share 127.0.0.1 (tests of the limit set it themselves).
            .env(
                "WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE_PER_ADDRESS",
                "1000000",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = crate::helpers::postgres_for_blocking(data_dir) {
            cmd.env("WSAUTHN__STORE__BACKEND", "postgres")
                .env("WSAUTHN__STORE__POSTGRES_URL", url);
        }
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn wsauthn");
        let stdout = child.stdout.take().expect("piped stdout");
        let output = Arc::new(Output::default());
        let lines = output.clone();
        // Keeps draining so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lines.lock().unwrap().push(line);
                lines.grew.notify_all();
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            output,
        };
        let line = server.wait_for_line(|l| listening_addr(l).is_some());
        server.addr = listening_addr(&line).expect("the listening line names the address");
        server
    }

    /// The first line (from the start) that `matches`, waiting up to [`PATIENCE`] for it.
    pub fn wait_for_line(&self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.output.lines.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| matches(l)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no such line in wsauthn's output:\n{}",
                lines.join("\n")
            );
            lines = self.output.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lines.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`"TERM"`, `"HUP"`) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// SIGTERM, then waits for the process to exit (up to [`PATIENCE`]).
    pub fn terminate(self) -> (ExitStatus, Vec<String>) {
        self.signal("TERM");
        self.wait_for_exit()
    }

    /// Waits for the process to exit by itself (up to [`PATIENCE`]): its status and output.
    pub fn wait_for_exit(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for wsauthn") {
                // The reader thread sees EOF right after; the last lines are those before it.
                let _ = self.wait_for_line(|l| l.contains("stopped"));
                return (status, self.lines());
            }
            assert!(Instant::now() < deadline, "wsauthn did not exit on SIGTERM");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// SIGKILL, then reap: the data directory is free again when this returns.
    pub fn kill(mut self) {
        self.child.kill().expect("kill wsauthn");
        self.child.wait().expect("reap wsauthn");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `addr` of the `wsauthn listening` log line, text (`addr=127.0.0.1:PORT`) or JSON.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("wsauthn listening")?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["addr"].as_str()?.parse().ok();
    }
    let value = rest
        .split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))?;
    value.parse().ok()
}
