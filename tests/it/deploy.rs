//! `docs/deploy.md` as it is written: its systemd unit passes `systemd-analyze verify`, its config
//! loads, its nginx block proxies `https://` and `wss://` to a real server, and its backup and
//! restore commands, run as written, bring the data back.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::binary::Server;
use crate::forward_auth::{free_port, nginx_available, Nginx, NGINX};
use crate::helpers::*;
use crate::tls::{client, echoes, request, wss_from, Ca};

const DOC: &str = include_str!("../../docs/deploy.md");

/// The fenced block after `<!-- test: name -->`.
fn block(name: &str) -> String {
    let marker = format!("<!-- test: {name} -->");
    let after = DOC
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/deploy.md has no {marker}"))
        .1;
    let fenced = after
        .trim_start()
        .strip_prefix("```")
        .expect("a fence follows");
    let body = fenced.split_once('\n').expect("an info string line").1;
    body.split_once("```")
        .expect("a closing fence")
        .0
        .to_owned()
}

/// `text` with `from` replaced; panics when the document no longer has `from`, so the test and
/// the document cannot drift apart silently.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "docs/deploy.md no longer has {from:?}");
    text.replace(from, to)
}

#[test]
fn the_documented_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("systemd-analyze is missing; .ci/run installs systemd");
        }
        eprintln!("\nSKIPPED: systemd-analyze not found (apt-get install systemd)\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = swap(
        &block("systemd"),
        "/usr/local/bin/wsauthn",
        env!("CARGO_BIN_EXE_wsauthn"),
    );
    let path = dir.path().join("wsauthn.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("wsauthn.service"),
        "warnings about the unit: {stderr}"
    );
}

#[test]
fn the_documented_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wsauthn.toml");
    std::fs::write(&path, block("config")).unwrap();
    let mut cmd = crate::edge::wsauthn(&dir.path().join("data"));
    // The document's own data_dir, not the harness's.
    cmd.env_remove("WSAUTHN__SERVER__DATA_DIR")
        .arg("--check-config")
        .arg("--config")
        .arg(&path);
    let output = crate::edge::run_to_exit(cmd);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        crate::edge::stderr_of(&output)
    );
    assert!(stdout.contains("rp_id = \"example.com\""), "{stdout}");
    assert!(stdout.contains("format = \"json\""), "{stdout}");
}

fn start_nginx(dir: &Path, site: &str, ports: &[u16]) -> Nginx {
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n\
         client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n{site}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx(child);
    let deadline = Instant::now() + PATIENCE;
    for port in ports {
        while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    nginx
}

#[actix_web::test]
async fn the_documented_nginx_proxy_serves_https_and_wss_with_one_request_id() {
    if !nginx_available() {
        return;
    }
    let (http_port, https_port) = (free_port(), free_port());
    let origin = format!("https://localhost:{https_port}");
    let page = origin.clone();
    let app = spawn_with(move |c| c.webauthn.origins = vec![page]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key, _) = ca.leaf("localhost", 2);
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut site = block("nginx");
    for (from, to) in [
        (
            "listen 80;".to_owned(),
            format!("listen 127.0.0.1:{http_port};"),
        ),
        (
            "listen 443 ssl;".to_owned(),
            format!("listen 127.0.0.1:{https_port} ssl;"),
        ),
        (
            "server 127.0.0.1:8080;".to_owned(),
            format!("server {};", app.addr),
        ),
        (
            "/etc/letsencrypt/live/example.com/fullchain.pem".to_owned(),
            cert_path.display().to_string(),
        ),
        (
            "/etc/letsencrypt/live/example.com/privkey.pem".to_owned(),
            key_path.display().to_string(),
        ),
    ] {
        site = swap(&site, &from, &to);
    }
    let _nginx = start_nginx(dir.path(), &site, &[http_port, https_port]);
    let config = ca.client_config();

    let res = client(&config)
        .get(format!("{origin}/healthz"))
        .send()
        .await
        .expect("https through nginx");
    assert_eq!(res.status(), 200);
    let id = res.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "nginx's $request_id (32 hex digits) came back, not one of wsauthn's: {id}"
    );
    let res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(format!("http://127.0.0.1:{http_port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 301);
    let location = res.headers().get("location").unwrap().to_str().unwrap();
    assert!(location.starts_with("https://"), "{location}");

    // Sign up through the proxy from a page on the proxy's origin, then use the token.
    let mut ws = wss_from(
        &config,
        format!("wss://localhost:{https_port}/ws"),
        &origin,
        None,
    )
    .await;
    let opts = request(
        &mut ws,
        json!({"type":"register.begin","username":"nora","token":true}),
    )
    .await;
    let credential = SoftAuthenticator::new()
        .register(&opts["publicKey"], &origin)
        .unwrap();
    let finish =
        json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential});
    let result = request(&mut ws, finish).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut res = client(&config)
        .get(format!("{origin}/api/me"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    let me: serde_json::Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    assert_eq!(me["user"]["name"], "nora", "{me}");
    let echo_url = format!("wss://localhost:{https_port}/echo");
    let mut echo = wss_from(&config, echo_url, &origin, Some(&token)).await;
    echoes(&mut echo, "through nginx").await;
    // The ceremony socket is still open through the proxy.
    let pong = request(&mut ws, json!({"type":"ping","id":1})).await;
    assert_eq!(pong["type"], "pong");
}

/// Runs a documented shell block line by line: `systemctl stop|start wsauthn` stop (SIGTERM)
/// or start the real binary on `data`; every other line runs in `sh` with the document's paths
/// moved under `root`.
fn run_documented(name: &str, root: &Path, server: &mut Option<Server>) {
    let data = root.join("lib/wsauthn/data");
    for line in block(name).lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line {
            "systemctl stop wsauthn" => {
                let (status, lines) = server.take().expect("a server to stop").terminate();
                assert!(status.success(), "{status}: {lines:#?}");
            }
            "systemctl start wsauthn" => {
                assert!(server.is_none(), "started twice");
                *server = Some(Server::start(&data));
            }
            command => {
                let command = swap(command, "/var/", &format!("{}/", root.display()));
                let output = Command::new("sh")
                    .arg("-ec")
                    .arg(&command)
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{command}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
}

async fn api_me(server: &Server, token: &str) -> u16 {
    awc::Client::new()
        .get(format!("http://{}/api/me", server.addr))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn the_documented_backup_and_restore_bring_the_data_back_as_it_was() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("lib/wsauthn")).unwrap();
    std::fs::create_dir_all(root.path().join("backups")).unwrap();
    let data = root.path().join("lib/wsauthn/data");
    let mut server = Some(Server::start(&data));
    let mut alice = SoftAuthenticator::new();
    let running = server.as_ref().unwrap();
    let mut ws = ws_at(running.addr, "/ws").await;
    let result = register(&mut ws, &mut alice, "alice", true).await;
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    run_documented("backup", root.path(), &mut server);

    // After the backup: a new account, and alice's token revoked.
    let running = server.as_ref().unwrap();
    let mut bob = SoftAuthenticator::new();
    let mut ws = ws_at(running.addr, "/ws").await;
    assert_eq!(
        register(&mut ws, &mut bob, "bob", false).await["verified"],
        "ok"
    );
    let mut ws = ws_at(running.addr, "/ws").await;
    let auth = ws.request(json!({"type":"auth","token":token})).await;
    assert_eq!(auth["type"], "auth.result", "{auth}");
    assert_eq!(
        ws.request(json!({"type":"logout"})).await["type"],
        "logout.result"
    );
    assert_eq!(api_me(running, &token).await, 401);

    run_documented("restore", root.path(), &mut server);

    let running = server.as_ref().unwrap();
    let mut ws = ws_at(running.addr, "/ws").await;
    let result = login(&mut ws, &mut alice, Some("alice"), false).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let mut ws = ws_at(running.addr, "/ws").await;
    let begin = ws
        .request(json!({"type":"login.begin","username":"bob"}))
        .await;
    assert_error(&begin, "unknown_user");
    assert_eq!(
        api_me(running, &token).await,
        200,
        "as it was at the backup"
    );
    assert!(root.path().join("lib/wsauthn/data.replaced").is_dir());
}
