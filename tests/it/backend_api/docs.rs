//! `docs/backend-api.md` is executable: every `sh` block followed by a `json` block is run with
//! `sh -c` (curl) against a real server and must print that answer, so the documented commands
//! and answers cannot drift from the server. curl comes from Debian; outside CI the test says so
//! loudly and skips when it is missing, under `CI=true` it fails.

use std::process::Command;

use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

use super::support::{current_session, with_admin_key, ADMIN_KEY};
use crate::helpers::*;

const DOC: &str = include_str!("../../../docs/backend-api.md");
/// The browser the documented session was opened from.
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

/// A documented command and the answer the document says it prints.
#[derive(Debug)]
struct Example {
    /// 1-based line of the command's fence, for failure messages.
    line: usize,
    command: String,
    answer: String,
}

/// The `sh` blocks that are followed, with nothing but blank lines between, by a `json` block.
fn examples(doc: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut command: Option<(usize, String)> = None;
    let mut lines = doc.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                command = None;
            }
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let body = body.join("\n");
        match (lang.trim(), command.take()) {
            ("json", Some((line, command))) => found.push(Example {
                line,
                command,
                answer: body,
            }),
            ("sh", _) => command = Some((index + 1, body)),
            _ => {}
        }
    }
    found
}

fn curl_available() -> bool {
    if Command::new("curl").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("curl is not installed; .ci/run must install it (apt-get install curl)");
    }
    eprintln!("\n=====================================================================");
    eprintln!("SKIPPED backend_api::docs: no curl on this machine (apt-get install curl)");
    eprintln!("=====================================================================\n");
    false
}

/// `text` with every `$NAME` of `vars` replaced by its value.
fn fill(text: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(text.to_owned(), |text, (name, value)| {
        text.replace(&format!("${name}"), value)
    })
}

#[test]
fn the_document_has_its_examples_and_each_is_a_command_with_an_answer() {
    let found = examples(DOC);
    assert_eq!(found.len(), 7, "{found:#?}");
    assert!(
        found.iter().all(|e| e.command.starts_with("curl ")),
        "{found:#?}"
    );
    assert!(
        found.iter().all(|e| e.answer.trim_start().starts_with('{')),
        "{found:#?}"
    );
}

#[actix_web::test]
async fn the_documented_curl_examples_print_the_documented_answers() {
    if !curl_available() {
        return;
    }
    let app = spawn_with(with_admin_key).await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app
        .ws_with("/ws", &[("Origin", ORIGIN), ("User-Agent", BROWSER)])
        .await
        .expect("the ceremony socket opens");
    let opts = ws
        .request(json!({"type":"register.begin","id":1,"username":"alice@example.com","displayName":"Alice","token":true}))
        .await;
    let credential = key
        .register(&opts["publicKey"], ORIGIN)
        .expect("authenticator registers");
    let result = ws
        .request(json!({"type":"register.finish","id":2,"ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = current_session(&app, &token).await;

    let shell = [
        ("WSAUTHN_ADMIN_KEY", ADMIN_KEY.to_owned()),
        ("WSAUTHN", app.url("")),
        ("TOKEN", token.clone()),
        ("USER_ID", result["user"]["id"].as_str().unwrap().to_owned()),
    ];
    let answers = [
        ("USER_ID", shell[3].1.clone()),
        ("SESSION_ID", session),
        (
            "CREDENTIAL_ID",
            result["credentialId"].as_str().unwrap().to_owned(),
        ),
        (
            "EXPIRES_AT",
            result["authentication"]["expiresAt"].to_string(),
        ),
        ("NOW", app.clock_secs().to_string()),
    ];

    for example in examples(DOC) {
        let command = example.command.clone();
        let env = shell.clone();
        let output = actix_web::rt::task::spawn_blocking(move || {
            Command::new("sh")
                .arg("-c")
                .arg(&command)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
        })
        .await
        .expect("the command's thread")
        .expect("sh runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        let context = || {
            format!(
                "docs/backend-api.md line {}: {}\nprinted: {printed}\nstderr: {}",
                example.line,
                example.command,
                String::from_utf8_lossy(&output.stderr)
            )
        };
        assert!(output.status.success(), "{}", context());
        let printed: Value = serde_json::from_str(&printed)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", context()));
        let documented = fill(&example.answer, &answers);
        let documented: Value = serde_json::from_str(&documented)
            .unwrap_or_else(|e| panic!("the documented answer is not JSON ({e}): {documented}"));
        assert_eq!(printed, documented, "{}", context());
    }
    assert_eq!(ws.expect_close().await, 4401, "revoked on the way");
}
