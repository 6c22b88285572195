//! The `wsauthn` binary: command line → config → tracing → `App::build(config).run()`, or
//! `wsauthn bench …` → the load generator in `wsauthn::bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use wsauthn::{App, Config};

const USAGE: &str = "\
wsauthn: passkey (WebAuthn) authentication server for real-time applications

Usage: wsauthn [--config PATH] [--check-config]
       wsauthn bench [OPTIONS]     load-test a server (wsauthn bench --help)

Options:
  --config PATH    TOML file whose keys override the embedded defaults (config/default.toml)
  --check-config   load and validate the configuration, print it, and exit
  -h, --help       this text
  -V, --version    the version

Environment: WSAUTHN__SECTION__KEY=value overrides any key; RUST_LOG sets log levels
(default: info).";

struct Args {
    config: Option<PathBuf>,
    check_only: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        config: None,
        check_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("wsauthn {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--config" => {
                let path = it.next().ok_or("--config needs a PATH")?;
                args.config = Some(PathBuf::from(path));
            }
            "--check-config" => args.check_only = true,
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(Some(args))
}

/// `wsauthn bench …`: runs the load generator and prints its report.
fn bench(args: impl Iterator<Item = String>) -> ExitCode {
    let options = match wsauthn::bench::parse_args(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{}", wsauthn::bench::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wsauthn bench: {e}");
            return ExitCode::from(2);
        }
    };
    let json = options.json;
    match wsauthn::bench::run(options) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.table());
            }
            if report.ops == 0 {
                eprintln!("wsauthn bench: no operation succeeded");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsauthn bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("bench") {
        return bench(argv.skip(1));
    }
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsauthn: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("wsauthn: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_only {
        println!("configuration is valid:\n{config:#?}");
        return ExitCode::SUCCESS;
    }
    let (log_writer, _flush_logs_at_exit) = match wsauthn::logwriter::spawn(std::io::stdout()) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("wsauthn: cannot start the log writer thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer;
        // webauthn-rs logs what clients send it (at ERROR, byte by byte) when it cannot parse
        // it: client mistakes, which the server answers and notes at debug itself.
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,webauthn_rs_core=off,webauthn_rs=off".into());
        let budget = wsauthn::logwriter::dependency_budget(&log_writer);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_writer(log_writer)
                    .with_filter(budget)
                    .with_filter(filter),
            )
            .init();
    }
    let result = actix_web::rt::System::new().block_on(async move {
        let app = App::build(config).await.map_err(|e| e.to_string())?;
        app.run().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsauthn: {e}");
            ExitCode::FAILURE
        }
    }
}
