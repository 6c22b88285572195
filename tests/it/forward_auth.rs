//! Forward authentication behind a real nginx (`auth_request`), in front of a tiny upstream that
//! reports the identity headers it receives. nginx comes from Debian (`.ci/run` installs it);
//! outside CI the test says so loudly and skips when it is missing, under `CI=true` it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

pub(crate) const NGINX: &str = "/usr/sbin/nginx";

/// Kills nginx (gracefully, so its workers go too) however the test ends.
pub(crate) struct Nginx(pub(crate) Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

pub(crate) fn nginx_available() -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "nginx is not installed at {NGINX}; .ci/run must install it (apt-get install nginx)"
        );
    }
    eprintln!("\n=====================================================================");
    eprintln!("SKIPPED forward_auth: nginx not found at {NGINX} (apt-get install nginx)");
    eprintln!("=====================================================================\n");
    false
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The upstream application: answers with the identity headers nginx passed on.
async fn whoami(req: HttpRequest) -> HttpResponse {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    HttpResponse::Ok().json(json!({
        "user": header("x-auth-user"),
        "userId": header("x-auth-user-id"),
        "path": req.path(),
    }))
}

fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let server =
        actix_web::HttpServer::new(|| actix_web::App::new().default_service(web::to(whoami)))
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run();
    actix_web::rt::spawn(server);
    addr
}

fn start_nginx(dir: &Path, port: u16, wsauthn: SocketAddr, upstream: SocketAddr) -> Nginx {
    let d = dir.display();
    let conf = format!(
        r#"
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /_wsauthn_verify {{
            internal;
            proxy_pass http://{wsauthn}/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location / {{
            auth_request /_wsauthn_verify;
            auth_request_set $auth_user $upstream_http_x_auth_user;
            auth_request_set $auth_user_id $upstream_http_x_auth_user_id;
            proxy_set_header X-Auth-User $auth_user;
            proxy_set_header X-Auth-User-Id $auth_user_id;
            proxy_pass http://{upstream};
        }}
    }}
}}
"#
    );
    run_nginx(dir, port, &conf)
}

/// Runs nginx with `conf` (written to `dir/nginx.conf`, `dir` its prefix) and waits until it
/// listens on `port`.
pub(crate) fn run_nginx(dir: &Path, port: u16, conf: &str) -> Nginx {
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
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
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "nginx did not start listening:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

async fn through_nginx(port: u16, bearer: Option<&str>, spoof: bool) -> (u16, Value) {
    let mut req = awc::Client::new().get(format!("http://127.0.0.1:{port}/app/page"));
    if let Some(token) = bearer {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    if spoof {
        req = req
            .insert_header(("X-Auth-User", "mallory"))
            .insert_header(("X-Auth-User-Id", "0"));
    }
    let mut res = req.send().await.expect("request through nginx");
    let body = res.body().await.expect("body");
    (
        res.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn nginx_auth_request_lets_valid_tokens_through_with_the_user_and_stops_the_rest() {
    if !nginx_available() {
        return;
    }
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (token, user_id, mut ws) = signed_up(&app, &mut key, "nina@example.com").await;
    let upstream = start_upstream();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _nginx = start_nginx(dir.path(), port, app.addr, upstream);

    let (status, body) = through_nginx(port, Some(&token), false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "nina@example.com");
    assert_eq!(body["userId"], user_id.as_str());
    assert_eq!(body["path"], "/app/page");

    let (status, body) = through_nginx(port, Some(&token), true).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["user"], "nina@example.com",
        "client-sent identity headers are replaced"
    );

    assert_eq!(through_nginx(port, None, true).await.0, 401);
    assert_eq!(
        through_nginx(port, Some(&"E".repeat(64)), false).await.0,
        401
    );

    assert_eq!(
        ws.request(json!({"type":"logout"})).await["type"],
        "logout.result"
    );
    assert_eq!(
        through_nginx(port, Some(&token), false).await.0,
        401,
        "revoked at once"
    );
}
