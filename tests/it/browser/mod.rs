//! Browser end-to-end tests (issue 3): the demo page at `/` and `web/wsauthn.js` in a real
//! headless Chromium, driven over the DevTools protocol, with a virtual authenticator holding
//! the passkeys, against a real server on a free port.
//!
//! Each test starts its own server and its own Chromium (killed on drop, panics included). Where
//! Chromium is missing the tests say so loudly and pass, except under `CI=true`, where they fail.
//! `WSAUTHN_UPDATE_SCREENSHOT=1` makes the screens test write the README's pictures
//! (`docs/screens/*.png`).

mod account;
mod cdp;
mod chat;
mod chromium;
mod cors;
mod origins;
mod page;
mod screens;
mod sign_in;

use std::net::TcpListener;
use std::time::Duration;

use wsauthn::state::AppState;
use wsauthn::{App, Config};

use page::{Browser, Page};

/// How long any single wait on the browser may take before the test fails. Generous: Chromium
/// shares two cores with the rest of the suite.
pub const BROWSER_PATIENCE: Duration = Duration::from_secs(30);

/// A server for the demo and a browser to use it.
pub struct Demo {
    pub browser: Browser,
    pub state: AppState,
    pub url: String,
    handle: wsauthn::ShutdownHandle,
    config: Config,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts the server and Chromium, or returns `None` (after saying so) where this machine
    /// has no Chromium and this is not CI.
    pub async fn start() -> Option<Demo> {
        Demo::start_with(|_| {}).await
    }

    /// Like [`Demo::start`], with the server's configuration changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Option<Demo> {
        let executable = match chromium::find() {
            Ok(path) => path,
            Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
                "no Chromium for the browser tests ({why}), and CI must run them: \
                 apt-get install chromium (.ci/run does), or set WSAUTHN_CHROMIUM"
            ),
            Err(why) => {
                skip_loudly(&why);
                return None;
            }
        };

        // The origin must be known before the server starts, so bind first and read the port.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        let url = format!("http://localhost:{port}");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(dir.path()).expect("embedded config");
        config.webauthn.origins = vec![url.clone()];
        config.server.static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/web").into();
        configure(&mut config);
        config.validate().expect("browser test config is valid");
        let (state, handle) = serve(config.clone(), listener).await;
        let browser = Browser::launch(&executable).await;
        Some(Demo {
            browser,
            state,
            url,
            handle,
            config,
            port,
            _dir: dir,
        })
    }

    /// Stops the server gracefully (every socket closes with 1001) and starts it again on the
    /// same port and data directory, as a deployment restarts it.
    pub async fn restart(self) -> Demo {
        let Demo {
            browser,
            state,
            url,
            handle,
            config,
            port,
            _dir,
        } = self;
        drop(state);
        handle.shutdown().await;
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the port again");
        let (state, handle) = serve(config.clone(), listener).await;
        Demo {
            browser,
            state,
            url,
            handle,
            config,
            port,
            _dir,
        }
    }

    /// A new person: a tab in a fresh browser context with its own authenticator, showing the
    /// demo.
    pub async fn visitor(&self) -> Page {
        let page = self.browser.new_page().await;
        page.open(&format!("{}/", self.url)).await;
        page
    }

    /// Waits (polling: the server has no event for it) until the chat room has `members`.
    pub async fn wait_for_chat_members(&self, members: usize) {
        let deadline = tokio::time::Instant::now() + BROWSER_PATIENCE;
        while self.state.chat.members() != members {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the chat room has {} members, not {members}",
                self.state.chat.members()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        let Demo {
            browser,
            state,
            handle,
            ..
        } = self;
        drop(browser);
        drop(state);
        handle.shutdown().await;
    }
}

async fn serve(config: Config, listener: TcpListener) -> (AppState, wsauthn::ShutdownHandle) {
    let app = App::builder(config)
        .listener(listener)
        .build()
        .await
        .expect("server starts");
    let state = app.state().clone();
    let handle = app.shutdown_handle();
    actix_web::rt::spawn(app.run());
    (state, handle)
}

/// Says, once per run and past the test harness's output capture (which would hide it for a
/// passing test), that the browser tests did not run.
fn skip_loudly(why: &str) {
    use std::io::Write;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bar = "!".repeat(72);
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\n  SKIPPING the browser tests: no Chromium ({why}).\n  \
             Install it (apt-get install chromium) or set WSAUTHN_CHROMIUM=/path/to/chrome.\n\
             {bar}\n"
        );
    });
}

// -- steps shared by the tests ------------------------------------------------------------------

/// Creates an account with a passkey through the form and waits until the page has settled:
/// signed in, confirmed by `GET /api/me`, and in the chat room.
pub async fn sign_up(page: &Page, username: &str, display_name: &str) {
    page.click("#tab-signup").await;
    page.fill("#username", username).await;
    page.fill("#display-name", display_name).await;
    page.click("#submit").await;
    wait_until_settled(page, username).await;
}

/// Waits until the page is signed in, `GET /api/me` has named the account, and the chat is live.
pub async fn wait_until_settled(page: &Page, username: &str) {
    page.wait_for(
        &format!("{username} is signed in, checked and chatting"),
        "document.body.dataset.state === 'signed-in' \
         && document.getElementById('me-check').dataset.state === 'ok' \
         && document.getElementById('chat-status').dataset.state === 'open'",
    )
    .await;
    assert_eq!(
        page.attribute("#me-check", "data-user").await,
        serde_json::json!(username),
        "GET /api/me names the account"
    );
}

/// Signs out and waits until the page's autofill request has ended. The virtual authenticator
/// answers a conditional request at once, as if the person had picked their passkey from the
/// list; so the passkey is taken out of the authenticator while the page signs out (its autofill
/// request then finds nothing and ends), and put back once the page has settled.
pub async fn sign_out_and_stay_out(page: &Page) {
    let passkeys = page.credentials().await;
    page.clear_credentials().await;
    page.click("#signout").await;
    page.wait_for(
        "the page is signed out and its autofill request has ended",
        "document.body.dataset.state === 'signed-out' && document.body.dataset.autofill === 'idle'",
    )
    .await;
    for passkey in passkeys {
        page.add_credential(passkey).await;
    }
}

/// Waits until the page shows an error and returns its words.
pub async fn error_shown(page: &Page) -> String {
    page.wait_for(
        "the page shows an error",
        "!document.getElementById('error').hidden && document.body.dataset.state === 'signed-out'",
    )
    .await;
    page.text("#error").await
}
