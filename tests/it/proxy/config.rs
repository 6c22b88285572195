//! A bad `[[proxy]]` table stops the real binary at start, naming its key.

use crate::edge::{run_to_exit, stderr_of, wsauthn};

/// Runs the binary with `proxy` as its config file; returns its exit code and stderr.
fn start_with(proxy: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsauthn.toml");
    std::fs::write(&file, proxy).unwrap();
    let mut cmd = wsauthn(&dir.path().join("data"));
    cmd.arg("--config").arg(&file);
    let output = run_to_exit(cmd);
    (output.status.code(), stderr_of(&output))
}

#[test]
fn a_proxy_path_over_a_built_in_route_stops_the_server_naming_the_key() {
    let (code, stderr) = start_with(
        "[[proxy]]\npath = \"/game\"\nupstream = \"http://127.0.0.1:9000\"\n\n\
         [[proxy]]\npath = \"/api/game\"\nupstream = \"http://127.0.0.1:9001\"\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("proxy[1].path"), "{stderr}");
    assert!(
        stderr.contains("\"/api/game\", which overlaps the built-in route /api"),
        "{stderr}"
    );
}

#[test]
fn a_proxy_upstream_that_is_not_an_http_url_stops_the_server_naming_the_key() {
    let (code, stderr) =
        start_with("[[proxy]]\npath = \"/game\"\nupstream = \"ws://127.0.0.1:9000\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("proxy[0].upstream"), "{stderr}");
    assert!(stderr.contains("must be an http(s) URL"), "{stderr}");
}

#[test]
fn a_proxy_table_with_an_unknown_key_stops_the_server_naming_it() {
    let (code, stderr) =
        start_with("[[proxy]]\npath = \"/game\"\nupstrem = \"http://127.0.0.1:9000\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("proxy[0].upstrem"), "{stderr}");
}
