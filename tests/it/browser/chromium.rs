//! Finds and launches headless Chromium with a fresh profile, and always kills it.
//!
//! Chromium runs in a process group of its own, so the guard's `Drop` (which runs on panic too)
//! ends the browser together with its renderer, GPU and crash-handler children.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use super::BROWSER_PATIENCE;

/// Where to look for the browser; `WSAUTHN_CHROMIUM` overrides.
const CANDIDATES: &[&str] = &[
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];

/// A running headless Chromium, killed when dropped.
pub struct Chromium {
    child: Child,
    /// The browser's DevTools WebSocket, `ws://127.0.0.1:<port>/devtools/browser/<id>`.
    pub devtools_url: String,
    _profile: tempfile::TempDir,
}

/// The browser executable, or why there is none.
pub fn find() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WSAUTHN_CHROMIUM") {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(format!("WSAUTHN_CHROMIUM={} is not a file", path.display())),
        };
    }
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .ok_or_else(|| format!("none of {} exists", CANDIDATES.join(", ")))
}

impl Chromium {
    /// Starts Chromium and waits for the DevTools address it prints on stderr.
    pub fn launch(executable: &std::path::Path) -> Chromium {
        use std::os::unix::process::CommandExt;

        let profile = tempfile::tempdir().expect("a temporary profile directory");
        // Chromium's singleton socket goes to TMPDIR; inside the profile it is removed with it.
        let tmp = profile.path().join("tmp");
        std::fs::create_dir(&tmp).expect("a temporary directory for Chromium");
        let mut child = Command::new(executable)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", executable.display()));

        // Read stderr on a thread until the address shows up, then keep draining it: a full pipe
        // would stall the browser.
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, address) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut waiting = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Some(tx) = &waiting else { continue };
                match line.split_once("DevTools listening on ") {
                    Some((_, url)) => {
                        let _ = tx.send(Ok(url.trim().to_owned()));
                        waiting = None;
                    }
                    None => seen.push(line),
                }
            }
            if let Some(tx) = waiting {
                let _ = tx.send(Err(seen.join("\n")));
            }
        });
        let mut chromium = Chromium {
            child,
            devtools_url: String::new(),
            _profile: profile,
        };
        match address.recv_timeout(BROWSER_PATIENCE) {
            Ok(Ok(url)) => chromium.devtools_url = url,
            Ok(Err(stderr)) => panic!("Chromium exited before listening; its stderr:\n{stderr}"),
            Err(_) => panic!("Chromium printed no DevTools address within {BROWSER_PATIENCE:?}"),
        }
        chromium
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The whole group: the browser and every helper process it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
