//! `GET /readyz`: ready while the store takes writes to disk and the server is not shutting
//! down; `/healthz` stays liveness. The full disk is a real one: a small tmpfs filled up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::binary::Server;
use crate::helpers::*;

async fn get_at(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let mut res = awc::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("http request");
    let body = res.body().await.expect("body");
    (
        res.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn readyz_is_ready_while_the_store_takes_writes_and_503_once_shutting_down() {
    let app = spawn_app().await;
    let (status, body) = get_at(app.addr, "/readyz").await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    // What `ShutdownHandle::shutdown` does first; the workers then drain.
    app.state.shutdown_switch().send_replace(true);
    let (status, body) = get_at(app.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["reason"], "shutting_down");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(get_at(app.addr, "/healthz").await.0, 200, "still alive");
}

/// A tmpfs of its own, unmounted (after the server using it is gone) when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None` (with a loud note) where mounting is not allowed; under `CI=true` that fails.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap().keep();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(SmallDisk(dir));
        }
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("cannot mount a tmpfs (CI runs as root and must be able to)");
        }
        eprintln!("\nSKIPPED readiness on a full disk: cannot mount a tmpfs (not root?)\n");
        None
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0xA5u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[actix_web::test]
async fn readyz_is_503_once_the_data_directory_is_on_a_full_disk() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    let server = Server::start(&disk.path().join("data"));
    let (status, body) = get_at(server.addr, "/readyz").await;
    assert_eq!((status, &body), (200, &json!({"status": "ready"})));
    disk.fill();
    // The last answer stands for up to a second; the disk being full shows at the next probe
    // that needs a page the disk no longer has.
    let deadline = Instant::now() + PATIENCE;
    let body = loop {
        let (status, body) = get_at(server.addr, "/readyz").await;
        if status == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} {body} on a full disk"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["reason"], "store_not_writable", "{body}");
    assert!(
        !body.to_string().contains(disk.path().to_str().unwrap()),
        "no path: {body}"
    );
    assert_eq!(get_at(server.addr, "/healthz").await.0, 200, "still alive");
    server.wait_for_line(|l| l.contains("readiness: the store does not take writes"));
    drop(server);
}
