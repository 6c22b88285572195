#![allow(dead_code)]
//! A throwaway PostgreSQL for tests: one server per test process, started on first use from
//! Debian's binaries (`/usr/lib/postgresql/*/bin`) on a temporary data directory, a free
//! loopback port and a socket directory of its own, and one database per caller.
//!
//! `initdb` and `postgres` refuse to run as root, so as root the server runs as the `postgres`
//! user (the child drops to it before `exec`). It is started from a thread that lives as long as
//! the process and asks the kernel to end it when that thread ends (`PR_SET_PDEATHSIG`), so no
//! server outlives the test run. `fsync` is off: these databases hold nothing worth a disk
//! flush; tests of durability on a crash use sled.
//!
//! Data directories of earlier runs whose server is gone are removed at start (a static's
//! temporary directory is never dropped).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The running test server.
pub struct TestPostgres {
    pub port: u16,
    pub bin: PathBuf,
    pub data: PathBuf,
    /// Kept until the process exits.
    _dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
    run_as: Option<(u32, u32)>,
}

static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();

/// The process's test server, started on first use; `Err` says why there is none.
pub fn server() -> Result<&'static TestPostgres, String> {
    SERVER.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// A fresh database's URL, or `None` after a loud note when PostgreSQL is missing (outside
/// CI); under `CI=true` a missing PostgreSQL fails the test.
pub async fn database_or_skip(what: &str) -> Option<String> {
    match server() {
        Ok(server) => Some(server.database(&fresh_name()).await),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL is missing ({why}), and CI must run {what}: .ci/run installs it")
        }
        Err(why) => {
            eprintln!("SKIPPED {what}: PostgreSQL is missing ({why}); apt-get install postgresql");
            None
        }
    }
}

/// A server of the caller's own (a test that restarts it must not disturb the others); stopped
/// when dropped.
pub fn start_private() -> Result<TestPostgres, String> {
    start()
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A database name unique in this server.
pub fn fresh_name() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

impl TestPostgres {
    /// The URL of `name`, created if it does not exist yet.
    pub async fn database(&self, name: &str) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        // Listening comes before taking sessions (recovery after a restart): retry a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (client, connection) = loop {
            match tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
                Ok(pair) => break pair,
                Err(e) if Instant::now() > deadline => panic!("the test PostgreSQL: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let task = tokio::spawn(connection);
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .is_ok_and(|row| row.is_some());
        if !exists {
            // The name is ours (fresh_name or a test's own), so it needs no quoting.
            if let Err(e) = client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
            {
                eprintln!("CREATE DATABASE {name}: {e}");
            }
        }
        drop(client);
        let _ = task.await;
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (fast shutdown: open connections are ended).
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data directory and port (after [`TestPostgres::stop`]).
    pub fn restart(&self) -> Result<(), String> {
        self.stop();
        let child = spawn_postgres(&self.bin, &self.data, self.port, self.run_as)?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        wait_ready(self.port)
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/postgres".into())
}

fn postgres_ids() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "no `postgres` user to run PostgreSQL as (root may not)".to_string())
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// Drops to `run_as` (and asks for SIGTERM when the spawning thread ends) before exec.
fn command(program: &Path, run_as: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = run_as {
                if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd
}

/// Removes `wsauthn-pg-*` directories whose postmaster is no longer running.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let young = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() < Duration::from_secs(600));
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("wsauthn-pg-")
            || young
        {
            continue;
        }
        let pid = std::fs::read_to_string(path.join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn start() -> Result<TestPostgres, String> {
    let bin = bin_dir()?;
    remove_stale();
    let run_as = postgres_ids()?;
    let dir = tempfile::Builder::new()
        .prefix("wsauthn-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let data = dir.path().join("data");
    let out = command(&bin.join("initdb"), run_as)
        .args(["-D"])
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = spawn_postgres(&bin, &data, port, run_as)?;
    wait_ready(port)?;
    Ok(TestPostgres {
        port,
        bin,
        data,
        _dir: dir,
        child: Mutex::new(Some(child)),
        run_as,
    })
}

/// Spawns the postmaster from a thread that stays alive (the death signal follows the thread).
fn spawn_postgres(
    bin: &Path,
    data: &Path,
    port: u16,
    run_as: Option<(u32, u32)>,
) -> Result<Child, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (bin, data) = (bin.to_owned(), data.to_owned());
    std::thread::spawn(move || {
        let socket_dir = data.parent().unwrap_or(&data).to_owned();
        let log = std::fs::File::create(socket_dir.join("postgres.log"));
        let mut cmd = command(&bin.join("postgres"), run_as);
        cmd.arg("-D").arg(&data).args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=400",
            "-k",
        ]);
        cmd.arg(&socket_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Ok(log) = log {
            cmd.stderr(log);
        }
        let _ = tx.send(cmd.spawn().map_err(|e| format!("postgres: {e}")));
        loop {
            std::thread::park();
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

fn wait_ready(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "PostgreSQL did not listen on port {port} within 30 s"
    ))
}
