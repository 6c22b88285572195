//! `docs/proxy.md`'s backend and config, run as the document shows them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;
use wsauthn::Config;

use super::*;

const DOC: &str = include_str!("../../../docs/proxy.md");

/// The body of the document's one block fenced as `lang`.
fn block(lang: &str) -> String {
    let fence = format!("```{lang}\n");
    let start = DOC.find(&fence).unwrap_or_else(|| panic!("a {lang} block")) + fence.len();
    let len = DOC[start..].find("```\n").expect("the block ends");
    DOC[start..start + len].to_owned()
}

/// The documented backend, on `port`; killed when dropped.
struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_backend(port: u16, dir: &tempfile::TempDir) -> Backend {
    let script = dir.path().join("upstream.py");
    std::fs::write(&script, block("python")).unwrap();
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(&script)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().expect("stdout");
    let backend = Backend(child);
    // aiohttp says `======== Running on http://127.0.0.1:PORT ========` once it listens; the
    // rest of its output is drained, so it never writes to a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Running on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(PATIENCE)
        .expect("the documented backend says it is running");
    backend
}

#[actix_web::test]
async fn the_documented_backend_and_config_work_as_documented() {
    if !python_has("aiohttp", "python3 -m pip install aiohttp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let _backend = start_backend(port, &dir);
    let toml = block("toml").replace("127.0.0.1:9000", &format!("127.0.0.1:{port}"));
    let documented = Config::from_layers(Some(("docs/proxy.md".into(), toml)), std::iter::empty())
        .expect("the documented config is valid");
    let app = spawn_with(move |c| {
        c.proxy = documented.proxy;
        c.endpoints.paths.extend(documented.endpoints.paths);
    })
    .await;
    let mut key = SoftAuthenticator::new();
    let (token, _, _ws) = signed_up(&app, &mut key, "alice@example.com").await;

    // curl -H "Authorization: Bearer $TOKEN" http://localhost:8080/game
    let mut res = awc::Client::new()
        .get(app.url("/game"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(
        DOC.contains(&format!("# {body}\n")),
        "the document shows {body}"
    );
    // curl -i http://localhost:8080/game
    assert_eq!(app.get("/game", None).await.0, 401);
    assert!(DOC.contains("# HTTP/1.1 401 Unauthorized"));
    // websocat -H "Authorization: Bearer $TOKEN" ws://localhost:8080/game
    let bearer = format!("Bearer {token}");
    let mut ws = app
        .ws_with("/game", &[("Origin", ORIGIN), ("Authorization", &bearer)])
        .await
        .expect("upgrade");
    ws.send_text("hi").await;
    let Event::Raw(answer) = ws.next_event(true).await else {
        panic!("a text frame")
    };
    assert!(
        DOC.contains(&format!("hi\n# {answer}\n")),
        "the document shows {answer}"
    );
    // A browser's socket: the first frame authenticates it.
    let mut ws = app.ws("/game").await;
    let result = ws.request(json!({"type":"auth","token":token})).await;
    assert_eq!(result["type"], "auth.result");
    ws.send_text("hi").await;
    assert!(matches!(ws.next_event(true).await, Event::Raw(a) if a == answer));
}
