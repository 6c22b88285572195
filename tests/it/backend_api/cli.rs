//! `wsauthn admin …`, the real binary, against a real server: finding a user, introspecting a
//! token from stdin, revoking (the user's socket closes with 4401) and deleting, and the errors
//! an operator sees.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use wsauthn::softkey::SoftAuthenticator;

use super::support::with_admin_key;
use super::ADMIN_KEY;
use crate::helpers::*;

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {:?}, stderr {:?}", self.stdout, self.stderr))
    }
}

/// Runs `wsauthn admin ARGS` on a thread of its own (the server answers on this one), with the
/// key in the environment (`key`) and `stdin` on its standard input.
async fn admin(app: &TestApp, args: &[&str], key: Option<&str>, stdin: &str) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsauthn"));
    cmd.arg("admin")
        .args(["--url", &app.url("")])
        .args(args)
        .env_remove(wsauthn::admin::cli::KEY_VARIABLE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(key) = key {
        cmd.env(wsauthn::admin::cli::KEY_VARIABLE, key);
    }
    let stdin = stdin.to_owned();
    actix_web::rt::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("run wsauthn admin");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait for wsauthn admin");
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

#[actix_web::test]
async fn the_admin_command_finds_introspects_revokes_and_deletes_a_user() {
    let app = spawn_with(with_admin_key).await;
    let mut key = SoftAuthenticator::new();
    let (token, id, _ws) = signed_up(&app, &mut key, "ada").await;
    let mut chat = app
        .ws_with(
            "/chat",
            &[
                ("Origin", ORIGIN),
                ("Authorization", &format!("Bearer {token}")),
            ],
        )
        .await
        .unwrap();

    let seen = admin(&app, &["user", "ada"], Some(ADMIN_KEY), "").await;
    assert_eq!(seen.code, Some(0), "{}", seen.stderr);
    let seen = seen.json();
    assert_eq!(
        (seen["user"]["id"].as_str(), seen["user"]["name"].as_str()),
        (Some(id.as_str()), Some("ada"))
    );
    assert_eq!(seen["passkeys"].as_array().unwrap().len(), 1, "{seen}");
    let by_id = admin(&app, &["user", &id], Some(ADMIN_KEY), "").await;
    assert_eq!(by_id.json()["user"]["name"], "ada");

    let active = admin(
        &app,
        &["introspect"],
        Some(ADMIN_KEY),
        &format!("{token}\n"),
    )
    .await;
    assert_eq!(active.code, Some(0), "{}", active.stderr);
    assert_eq!(
        (
            active.json()["active"].clone(),
            active.json()["sub"].clone()
        ),
        (true.into(), id.clone().into())
    );

    let revoked = admin(&app, &["revoke", "ada"], Some(ADMIN_KEY), "").await;
    assert_eq!(revoked.code, Some(0), "{}", revoked.stderr);
    assert_eq!(revoked.json()["revoked"], 1);
    assert_eq!(chat.expect_close().await, 4401);
    let inactive = admin(&app, &["introspect"], Some(ADMIN_KEY), &token).await;
    assert_eq!(inactive.json(), serde_json::json!({"active": false}));

    let unsure = admin(&app, &["delete", "ada"], Some(ADMIN_KEY), "").await;
    assert_eq!(unsure.code, Some(2));
    assert!(unsure.stderr.contains("--yes"), "{}", unsure.stderr);
    let deleted = admin(&app, &["delete", "ada", "--yes"], Some(ADMIN_KEY), "").await;
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert_eq!(deleted.json()["passkeysRemoved"], 1);
    let gone = admin(&app, &["user", "ada"], Some(ADMIN_KEY), "").await;
    assert_eq!(gone.code, Some(1));
    assert!(
        gone.stderr.contains("404") && gone.stderr.contains("unknown_user"),
        "{}",
        gone.stderr
    );
}

#[actix_web::test]
async fn the_admin_command_explains_a_missing_or_wrong_key_and_an_unreachable_server() {
    let app = spawn_with(with_admin_key).await;
    let none = admin(&app, &["user", "ada"], None, "").await;
    assert_eq!(none.code, Some(2));
    assert!(
        none.stderr.contains(wsauthn::admin::cli::KEY_VARIABLE),
        "{}",
        none.stderr
    );
    let wrong = admin(&app, &["user", "ada"], Some("not-the-key"), "").await;
    assert_eq!(wrong.code, Some(1));
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    assert!(
        !wrong.stderr.contains("not-the-key"),
        "the key is never echoed: {}",
        wrong.stderr
    );
    let stopped = app.url("");
    app.stop().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsauthn"));
    let out = cmd
        .args(["admin", "--url", &stopped, "user", "ada"])
        .env(wsauthn::admin::cli::KEY_VARIABLE, ADMIN_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach"), "{stderr}");
}
