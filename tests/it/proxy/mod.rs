//! Proxy mode end to end: wsauthn in front of a backend in another process and language
//! (`upstream.py`, Python's aiohttp), over real sockets. Where aiohttp is missing these tests
//! say so loudly and pass, except under `CI=true`, where they fail (`.ci/run` installs it).

mod config;
mod docs;
mod http;
mod limits;
mod socket;
mod tls;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use tokio::sync::mpsc;
use wsauthn::endpoints::AuthPolicy;
use wsauthn::proxy::ProxyConfig;
use wsauthn::Config;

use crate::helpers::*;

const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/proxy/upstream.py");

/// Whether `python3` can import `module`; says why not, once per module and loudly, or fails
/// under `CI=true`.
pub fn python_has(module: &'static str, install: &'static str) -> bool {
    static FOUND: OnceLock<std::sync::Mutex<Vec<(&'static str, bool)>>> = OnceLock::new();
    let found = FOUND.get_or_init(Default::default);
    let mut found = found.lock().unwrap();
    if let Some((_, ok)) = found.iter().find(|(m, _)| *m == module) {
        return *ok;
    }
    let probe = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    let ok = matches!(&probe, Ok(out) if out.status.success());
    found.push((module, ok));
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Python's {module} is missing, and CI must run the proxy tests: {install} (.ci/run does)");
    }
    let bar = "!".repeat(72);
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\n  SKIPPING the tests that need Python's {module}.\n  Install it: {install}\n{bar}\n"
    );
    false
}

/// The upstream process, killed however the test ends; its events arrive as JSON lines.
pub struct Upstream {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    events: mpsc::UnboundedReceiver<Value>,
}

impl Upstream {
    /// Starts `upstream.py`, or `None` without aiohttp.
    pub fn start() -> Option<Upstream> {
        Upstream::start_with(&[])
    }

    /// Starts `upstream.py` with these environment variables (`CERT`, `KEY`: HTTPS).
    pub fn start_with(env: &[(&str, &str)]) -> Option<Upstream> {
        if !python_has("aiohttp", "python3 -m pip install aiohttp") {
            return None;
        }
        let mut child = Command::new("python3")
            .arg(UPSTREAM)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the upstream says where it listens");
        let listening: Value = serde_json::from_str(&line).expect("json");
        let port = listening["port"].as_u64().expect("port") as u16;
        let (tx, events) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if let Ok(event) = serde_json::from_str(&line) {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        Some(Upstream {
            child,
            _stdin: stdin,
            port,
            events,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next event named `name` (earlier ones of other names are skipped).
    pub async fn event(&mut self, name: &str) -> Value {
        loop {
            let event = tokio::time::timeout(PATIENCE, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for the upstream's {name}"))
                .expect("the upstream runs");
            if event["event"] == name {
                return event;
            }
        }
    }

    /// The next event, if one comes within `wait`.
    pub async fn maybe_event(&mut self, wait: std::time::Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// `POST /control/<what>` on the upstream itself (not through the proxy).
    pub async fn control(&self, what: &str) {
        let url = format!("{}/control/{what}", self.url());
        let res = awc::Client::new().post(url).send().await.expect("control");
        assert_eq!(res.status(), 200);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/game` and everything under it go to `upstream`, and need a token.
pub fn proxy_game_to(config: &mut Config, upstream: &str) {
    config.proxy = vec![ProxyConfig {
        path: "/game".into(),
        upstream: upstream.into(),
    }];
    config
        .endpoints
        .paths
        .insert("/game".into(), AuthPolicy::Required);
    config
        .endpoints
        .paths
        .insert("/game/*".into(), AuthPolicy::Required);
}

/// A server proxying `/game` to `upstream`.
pub async fn proxied(upstream: &Upstream, configure: impl FnOnce(&mut Config)) -> TestApp {
    let url = upstream.url();
    spawn_with(move |c| {
        proxy_game_to(c, &url);
        configure(c);
    })
    .await
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
