//! Three nodes on one PostgreSQL behind a real nginx that balances round robin, with no
//! stickiness (docs/cluster.md's configuration): sign-up, sign-in, chat across the nodes and
//! logout, browser-free, every request and socket through nginx.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::forward_auth::{free_port, nginx_available, run_nginx, Nginx};
use crate::helpers::*;
use crate::persistence::http_at;

/// nginx on `port` in front of `nodes`, as docs/cluster.md shows it.
fn start_nginx(dir: &Path, port: u16, nodes: &[SocketAddr]) -> Nginx {
    let d = dir.display();
    let servers: String = nodes
        .iter()
        .map(|n| format!("        server {n};\n"))
        .collect();
    let conf = format!(
        r#"
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream wsauthn {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://wsauthn;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#
    );
    run_nginx(dir, port, &conf)
}

#[actix_rt::test]
async fn three_nodes_behind_round_robin_nginx_sign_up_sign_in_chat_and_log_out_as_one() {
    if !nginx_available() {
        return;
    }
    let Some(url) = crate::pg_server::database_or_skip("the nginx cluster test").await else {
        return;
    };
    let nodes = [
        spawn_node(&url).await,
        spawn_node(&url).await,
        spawn_node(&url).await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let _nginx = start_nginx(dir.path(), port, &addrs);
    let front = SocketAddr::from(([127, 0, 0, 1], port));

    let mut key = SoftAuthenticator::new();
    let mut signup = ws_at(front, "/ws").await;
    let result = register(&mut signup, &mut key, "tess", true).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut signin = ws_at(front, "/ws").await;
    let result = login(&mut signin, &mut key, Some("tess"), true).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let second = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..6 {
        // Round robin: these land on every node in turn.
        assert_eq!(http_at(front, "GET", "/api/me", &token).await.0, 200);
    }

    let mut chats = Vec::new();
    for _ in 0..3 {
        let mut chat = ws_at(front, "/chat").await;
        let reply = chat.request(json!({"type":"auth","token":token})).await;
        assert_eq!(reply["type"], "auth.result", "{reply}");
        chats.push(chat);
    }
    let per_node: Vec<u64> = nodes.iter().map(|n| n.state.open_sockets()).collect();
    assert_eq!(per_node.iter().sum::<u64>(), 5, "{per_node:?}");
    assert!(
        per_node.iter().all(|&n| n >= 1),
        "every node holds a socket: {per_node:?}"
    );
    chats[0]
        .send(json!({"type":"message","text":"hello, cluster"}))
        .await;
    for chat in &mut chats {
        let m = chat.recv().await;
        assert_eq!(
            (m["type"].as_str(), m["text"].as_str()),
            (Some("message"), Some("hello, cluster")),
            "{m}"
        );
    }

    let out = signup.request(json!({"type":"logout","id":9})).await;
    assert_eq!(out["type"], "logout.result", "{out}");
    for chat in &mut chats {
        assert_eq!(chat.expect_close().await, 4401);
    }
    for _ in 0..3 {
        assert_eq!(http_at(front, "GET", "/api/me", &token).await.0, 401);
        assert_eq!(http_at(front, "GET", "/api/me", &second).await.0, 200);
    }
}
