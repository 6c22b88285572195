//! The real binary's configuration errors and `--check-config`: every error names the key, the
//! file and line or the variable, what was expected and an example; `--check-config` prints TOML
//! that loads back, with secrets redacted, and survives a closed stdout.

use std::process::Stdio;

use crate::edge::{run_to_exit, stderr_of, wsauthn};

const ADMIN_KEY: &str = "f3a1c9e07b5d42a8e6f1b3c5d7e9a0b2c4d6e8f0a1b3c5d7";

/// Runs the binary with `file` as its config file and `env` set; returns (exit code, stderr).
fn with_config(file: Option<&str>, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = wsauthn(&dir.path().join("data"));
    if let Some(text) = file {
        let path = dir.path().join("wsauthn.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(&path);
    }
    cmd.envs(env.iter().copied());
    let output = run_to_exit(cmd);
    (output.status.code(), stderr_of(&output))
}

fn assert_mentions(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(stderr.contains(part), "{part:?} is not in: {stderr}");
    }
}

#[test]
fn a_wrongly_typed_value_is_named_with_its_file_line_expectation_and_example() {
    let (code, stderr) = with_config(Some("[tokens]\n\nlifetime_secs = \"1d\"\n"), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_mentions(
        &stderr,
        &[
            "tokens.lifetime_secs",
            "wsauthn.toml line 3",
            "\"1d\"",
            "whole number of seconds",
            "lifetime_secs = 86400 in [tokens]",
        ],
    );
    let (code, stderr) = with_config(
        Some("[webauthn]\norigins = \"https://chat.example.com\"\n"),
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_mentions(
        &stderr,
        &[
            "webauthn.origins",
            "line 2",
            "list",
            "origins = [\"https://",
        ],
    );
    let (code, stderr) = with_config(None, &[("WSAUTHN__TOKENS__LIFETIME_SECS", "1d")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_mentions(
        &stderr,
        &[
            "environment variable WSAUTHN__TOKENS__LIFETIME_SECS",
            "WSAUTHN__TOKENS__LIFETIME_SECS=86400",
        ],
    );
}

#[test]
fn a_misspelled_policy_is_named_with_its_line_and_the_choices() {
    let (code, stderr) = with_config(Some("[endpoints.paths]\n\"/api/me\" = \"requierd\"\n"), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_mentions(
        &stderr,
        &[
            "endpoints.paths.\"/api/me\"",
            "line 2",
            "`required`",
            "`none`",
        ],
    );
}

#[test]
fn variables_that_look_like_ours_but_name_no_key_stop_the_binary() {
    let (code, stderr) = with_config(None, &[("WSAUTHN_SERVER_BIND", "0.0.0.0:8080")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_mentions(&stderr, &["WSAUTHN_SERVER_BIND", "WSAUTHN__SERVER__BIND"]);
    let (code, stderr) = with_config(None, &[("WSAUTHN__SERVER__BINDD", "0.0.0.0:8080")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_mentions(
        &stderr,
        &[
            "WSAUTHN__SERVER__BINDD",
            "did you mean WSAUTHN__SERVER__BIND?",
        ],
    );
}

#[test]
fn a_plain_http_origin_off_loopback_stops_the_binary() {
    let (code, stderr) = with_config(
        Some("[webauthn]\nrp_id = \"example.com\"\norigins = [\"http://chat.example.com\"]\n"),
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_mentions(
        &stderr,
        &[
            "webauthn.origins",
            "line 3",
            "http://",
            "https://chat.example.com",
        ],
    );
}

#[test]
fn check_config_prints_toml_that_loads_back_with_the_admin_key_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, "[tokens]\nlifetime_secs = 600\n").unwrap();
    let check = |config: &std::path::Path| {
        let mut cmd = wsauthn(&dir.path().join("data"));
        cmd.arg("--check-config")
            .arg("--config")
            .arg(config)
            .env("WSAUTHN__ADMIN__API_KEY", ADMIN_KEY);
        let output = run_to_exit(cmd);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = check(&file);
    assert!(!printed.contains(ADMIN_KEY), "{printed}");
    let table: toml::Table = printed.parse().expect("the output is TOML");
    assert_eq!(table["tokens"]["lifetime_secs"].as_integer(), Some(600));
    assert_eq!(table["admin"]["api_key"].as_str(), Some("<redacted>"));
    assert_eq!(
        table["endpoints"]["paths"]["/api/me"].as_str(),
        Some("required")
    );
    let pasted = dir.path().join("pasted.toml");
    std::fs::write(&pasted, &printed).unwrap();
    assert_eq!(
        check(&pasted),
        printed,
        "the printed config loads back as itself"
    );
}

#[test]
fn check_config_help_and_version_exit_cleanly_into_a_closed_pipe() {
    for args in [&["--check-config"][..], &["--help"], &["--version"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        // The reader is gone before the binary writes a byte: every write gets EPIPE.
        drop(reader);
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = wsauthn(dir.path());
        cmd.args(args).stdout(Stdio::from(writer));
        let output = run_to_exit(cmd);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[actix_web::test]
async fn the_binary_warns_at_start_when_no_origin_is_its_own_address() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: whatever port it gets, http://localhost:8080 is not it.
    let server = crate::binary::Server::start(&dir.path().join("a"));
    let warning = server.wait_for_line(|l| l.contains("is this server's own address"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("http://localhost:8080"), "{warning}");
    assert!(
        warning.contains(&format!("http://{}", server.addr)),
        "{warning}"
    );
    drop(server);

    let port = crate::forward_auth::free_port();
    let server = crate::binary::Server::start_with(&dir.path().join("b"), |cmd| {
        cmd.env("WSAUTHN__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env(
                "WSAUTHN__WEBAUTHN__ORIGINS",
                format!("[\"http://localhost:{port}\"]"),
            );
    });
    // The access line of a request written after start: the warning would be before it.
    let res = awc::Client::new()
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    let id = res.headers().get("x-request-id").unwrap().to_str().unwrap();
    server.wait_for_line(|l| l.contains(id));
    let lines = server.lines();
    assert!(
        !lines.iter().any(|l| l.contains("own address")),
        "{lines:#?}"
    );
}
