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

/// Registers `name` with a token on a fresh socket: the `register.result`, or the error frame.
async fn try_register(
    addr: std::net::SocketAddr,
    key: &mut wsauthn::softkey::SoftAuthenticator,
    name: &str,
) -> Value {
    let mut ws = ws_at(addr, "/ws").await;
    register(&mut ws, key, name, true).await
}

/// Waits until `/readyz` answers `want`.
async fn readyz_becomes(addr: std::net::SocketAddr, want: u16) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = get_at(addr, "/readyz").await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz still {status} {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_store_recovers_by_itself_once_a_full_disk_has_room_again() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    let data = disk.path().join("data");
    let server = Server::start(&data);
    let mut before = wsauthn::softkey::SoftAuthenticator::new();
    let kept = try_register(server.addr, &mut before, "before").await;
    assert_eq!(kept["verified"], "ok", "{kept}");

    disk.fill();
    readyz_becomes(server.addr, 503).await;
    // Full: registrations fail with an error, never a false "ok" (a few may still fit in space
    // sled holds already; keep going until one is refused).
    let mut refused = None;
    for i in 0..200 {
        let mut key = wsauthn::softkey::SoftAuthenticator::new();
        let reply = try_register(server.addr, &mut key, &format!("full{i}")).await;
        if reply["type"] == "error" {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a full disk refuses registrations");
    assert_eq!(refused["code"], "internal", "{refused}");

    // Room again: without a restart, the store takes writes, and sign-ins and registrations work.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    let body = readyz_becomes(server.addr, 200).await;
    assert_eq!(body, json!({"status": "ready"}));
    let mut after = wsauthn::softkey::SoftAuthenticator::new();
    let added = try_register(server.addr, &mut after, "after").await;
    assert_eq!(added["verified"], "ok", "{added}");
    let mut ws = ws_at(server.addr, "/ws").await;
    let signed_in = login(&mut ws, &mut before, Some("before"), true).await;
    assert_eq!(signed_in["verified"], "ok", "{signed_in}");
    server.wait_for_line(|l| l.contains("the store takes writes again"));

    // Nothing acknowledged was lost across the failure and the reopening.
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
    let server = Server::start(&data);
    for (key, name) in [(&mut before, "before"), (&mut after, "after")] {
        let mut ws = ws_at(server.addr, "/ws").await;
        let reply = login(&mut ws, key, Some(name), false).await;
        assert_eq!(reply["verified"], "ok", "{name}: {reply}");
    }
}

/// An ext4 file system in a file of its own, loop-mounted with `errors=remount-ro`: the kernel
/// turns it read-only (as on a disk error) when told to, with the server's files open on it.
struct Ext4Disk {
    image: PathBuf,
    mount: PathBuf,
}

impl Ext4Disk {
    /// `None` (with a loud note) where loop devices cannot be used; under `CI=true` that fails.
    fn mount() -> Option<Ext4Disk> {
        let dir = std::env::temp_dir().join(format!("wsauthn-ext4-{}", uuid::Uuid::new_v4()));
        let disk = Ext4Disk {
            image: dir.with_extension("img"),
            mount: dir,
        };
        std::fs::create_dir_all(&disk.mount).unwrap();
        let made = std::fs::File::create(&disk.image)
            .and_then(|f| f.set_len(64 << 20))
            .is_ok()
            && Command::new("mkfs.ext4")
                .args(["-q", "-F"])
                .arg(&disk.image)
                .status()
                .is_ok_and(|s| s.success());
        if made && disk.attach() {
            return Some(disk);
        }
        if std::env::var_os("CI").is_some_and(|v| v == "true") {
            panic!("cannot loop-mount an ext4 image (CI runs as root and must be able to)");
        }
        eprintln!("\nSKIPPED the read-only file system test: cannot loop-mount ext4 (not root?)\n");
        None
    }

    fn attach(&self) -> bool {
        Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&self.image)
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The loop device under the mount, as `/sys/fs/ext4` names it.
    fn device(&self) -> String {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let target = self.mount.to_str().unwrap();
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(target))
            .expect("mounted");
        line.split(' ')
            .next()
            .unwrap()
            .trim_start_matches("/dev/")
            .to_owned()
    }

    /// An ext4 error: the kernel remounts the file system read-only at once.
    fn fail(&self) {
        let trigger = format!("/sys/fs/ext4/{}/trigger_fs_error", self.device());
        std::fs::write(&trigger, "wsauthn test").unwrap();
    }

    /// What an operator does next: detach the read-only file system (the server's files on it
    /// stay open), check a copy of it (the kernel keeps the first one's error state for as
    /// long as the server holds it open), and mount that where the first one was.
    fn repair(&mut self) {
        assert!(Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status()
            .unwrap()
            .success());
        let copy = self.image.with_extension("repaired.img");
        std::fs::copy(&self.image, &copy).unwrap();
        let _ = std::fs::remove_file(&self.image);
        self.image = copy;
        let _ = Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(&self.image)
            .output();
        assert!(self.attach(), "mount the checked file system again");
    }
}

impl Drop for Ext4Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_dir(&self.mount);
    }
}

#[actix_web::test]
async fn the_store_recovers_by_itself_once_a_read_only_file_system_is_writable_again() {
    let Some(mut disk) = Ext4Disk::mount() else {
        return;
    };
    let data = disk.mount.join("data");
    let server = Server::start(&data);
    let mut before = wsauthn::softkey::SoftAuthenticator::new();
    let kept = try_register(server.addr, &mut before, "before").await;
    assert_eq!(kept["verified"], "ok", "{kept}");

    disk.fail();
    let body = readyz_becomes(server.addr, 503).await;
    assert_eq!(body["reason"], "store_not_writable", "{body}");
    let mut key = wsauthn::softkey::SoftAuthenticator::new();
    let refused = try_register(server.addr, &mut key, "refused").await;
    assert_eq!(
        refused["code"], "internal",
        "no false ok on a read-only disk: {refused}"
    );

    disk.repair();
    readyz_becomes(server.addr, 200).await;
    let mut after = wsauthn::softkey::SoftAuthenticator::new();
    let added = try_register(server.addr, &mut after, "after").await;
    assert_eq!(added["verified"], "ok", "{added}");
    let mut ws = ws_at(server.addr, "/ws").await;
    let signed_in = login(&mut ws, &mut before, Some("before"), false).await;
    assert_eq!(signed_in["verified"], "ok", "{signed_in}");
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
    let server = Server::start(&data);
    for (key, name) in [(&mut before, "before"), (&mut after, "after")] {
        let mut ws = ws_at(server.addr, "/ws").await;
        let reply = login(&mut ws, key, Some(name), false).await;
        assert_eq!(reply["verified"], "ok", "{name}: {reply}");
    }
}
