//! Smoke test of `wsauthn bench`: the binary runs a short load against a real server (in this
//! process, port 0, temporary sled) and its `--json` report shows operations and no errors.
//! Speed targets live in docs/benchmarks.md, not here: this only checks that the tool works.

use std::process::Command;

use serde_json::Value;
use wsauthn::{App, Config};

/// Starts a server with the per-socket limits raised, as docs/benchmarks.md says to for a load
/// run; returns its address and the handle that stops it.
async fn spawn_server(dir: &tempfile::TempDir) -> (std::net::SocketAddr, wsauthn::ShutdownHandle) {
    let mut config = Config::for_tests(dir.path()).expect("embedded config");
    config.server.static_dir = "".into();
    config.limits.ceremonies_per_minute = 1_000_000;
    config.websocket.messages_per_second = 1_000_000;
    config.websocket.message_burst = 1_000_000;
    config.server.max_connects_per_second = 0;
    config.validate().expect("config is valid");
    let app = App::build(config).await.expect("server starts");
    let addr = app.local_addr();
    let handle = app.shutdown_handle();
    actix_web::rt::spawn(app.run());
    (addr, handle)
}

/// Runs `wsauthn bench ARGS --json --quiet` against a fresh server and returns the parsed
/// report; the server is stopped before it returns.
async fn bench(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, server) = spawn_server(&dir).await;
    let report = run_bench(addr, args).await;
    server.shutdown().await;
    report
}

async fn run_bench(addr: std::net::SocketAddr, args: &[&str]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsauthn"));
    command
        .arg("bench")
        .args(["--url", &format!("ws://{addr}"), "--json", "--quiet"])
        .args(["--server-pid", &std::process::id().to_string()])
        .args(["--timeout", "5s", "--setup-timeout", "20s"])
        .args(args);
    let output = actix_web::rt::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("wsauthn bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[actix_web::test]
async fn login_bench_reports_sign_ins_and_no_errors() {
    let report = bench(&["--mode", "login", "--clients", "2", "--duration", "1s"]).await;

    assert_eq!(report["mode"], "login");
    assert_eq!(report["error_count"], 0, "{report:#}");
    let logins = report["operations"]["login"]["count"].as_u64().unwrap_or(0);
    assert!(logins > 0, "no sign-in counted: {report:#}");
    assert_eq!(report["ops"].as_u64(), Some(logins));
    let p99 = report["latency_ms"]["p99"].as_f64().expect("p99");
    let max = report["latency_ms"]["max"].as_f64().expect("max");
    assert!(p99 > 0.0 && p99 <= max, "{report:#}");
    let cpu = report["server"]["cpu_us_per_op"]
        .as_f64()
        .expect("server CPU");
    assert!(cpu > 0.0, "{report:#}");
}

#[actix_web::test]
async fn connect_bench_opens_protected_sockets_with_tokens() {
    let report = bench(&["--mode", "connect", "--clients", "4", "--duration", "1s"]).await;

    assert_eq!(report["error_count"], 0, "{report:#}");
    let connects = report["operations"]["connect"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert!(connects > 0, "no connect counted: {report:#}");
    // Every report sets the server's cost against the floor timed in the same run.
    let floor = report["floor"]["openssl_p256_verify_us"]
        .as_f64()
        .expect("floor");
    let ratio = report["server"]["cpu_per_op_over_floor"]
        .as_f64()
        .expect("ratio to the floor");
    let cpu = report["server"]["cpu_us_per_op"].as_f64().expect("CPU");
    assert!(
        floor > 0.0 && (ratio * floor - cpu).abs() < 1e-6 * cpu,
        "{report:#}"
    );
}

#[actix_web::test]
async fn mixed_bench_registers_signs_in_and_connects() {
    let report = bench(&["--mode", "mixed", "--clients", "8", "--duration", "2s"]).await;

    assert_eq!(report["error_count"], 0, "{report:#}");
    for op in ["register", "login", "connect"] {
        let count = report["operations"][op]["count"].as_u64().unwrap_or(0);
        assert!(count > 0, "no {op} counted: {report:#}");
    }
}

#[actix_web::test]
async fn idle_bench_holds_every_socket_and_reports_memory_per_socket() {
    let report = bench(&[
        "--mode",
        "idle",
        "--clients",
        "50",
        "--accounts",
        "5",
        "--duration",
        "1s",
    ])
    .await;

    assert_eq!(report["error_count"], 0, "{report:#}");
    assert_eq!(report["peak_open_sockets"], 50, "{report:#}");
    assert!(
        report["server"]["rss_per_socket_kib"].is_number(),
        "{report:#}"
    );
}

#[actix_web::test]
async fn frames_bench_times_echoed_frames_on_kept_open_sockets() {
    let report = bench(&[
        "--mode",
        "frames",
        "--clients",
        "2",
        "--frame-bytes",
        "100",
        "--duration",
        "1s",
    ])
    .await;

    assert_eq!(report["mode"], "frames");
    assert_eq!(report["error_count"], 0, "{report:#}");
    let frames = report["operations"]["frame"]["count"].as_u64().unwrap_or(0);
    assert!(frames > 10, "few frames counted: {report:#}");
}
