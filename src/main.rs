//! The `wsauthn` binary: command line → config → tracing → `App::build(config).run()`, or
//! `wsauthn bench …` → the load generator in `wsauthn::bench`, or `wsauthn admin …` → a client of
//! a running server's backend API (`wsauthn::admin::cli`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use wsauthn::{App, Config};

const USAGE: &str = "\
wsauthn: passkey (WebAuthn) authentication server for real-time applications

Usage: wsauthn [--config PATH] [--check-config]
       wsauthn bench [OPTIONS]     load-test a server (wsauthn bench --help)
       wsauthn migrate --from sled --to postgres [--config PATH]
                                   copy server.data_dir's sled store into the (empty)
                                   PostgreSQL database at store.postgres_url, and count it
       wsauthn admin COMMAND       the backend API of a running server (wsauthn admin --help)

Options:
  --config PATH    TOML file whose keys override the embedded defaults (config/default.toml)
  --check-config   load and validate the configuration, print it as TOML, and exit
  -h, --help       this text
  -V, --version    the version

Environment: WSAUTHN__SECTION__KEY=value overrides any key; RUST_LOG sets log levels
(default: info).";

struct Args {
    config: Option<PathBuf>,
    check_only: bool,
}

/// Writes `text` to stdout. A closed pipe (`wsauthn --check-config | head`) is not an error: the
/// reader has what it wanted. Any other failure is reported on stderr.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsauthn: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the command line asks for besides serving.
enum Parsed {
    Serve(Args),
    Exit(ExitCode),
}

fn parse_args() -> Result<Parsed, String> {
    let mut args = Args {
        config: None,
        check_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Exit(print(&format!("{USAGE}\n")))),
            "-V" | "--version" => {
                let version = format!("wsauthn {}\n", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Exit(print(&version)));
            }
            "--config" => {
                let path = it.next().ok_or("--config needs a PATH")?;
                args.config = Some(PathBuf::from(path));
            }
            "--check-config" => args.check_only = true,
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(Parsed::Serve(args))
}

/// `wsauthn bench …`: runs the load generator and prints its report.
fn bench(args: impl Iterator<Item = String>) -> ExitCode {
    let options = match wsauthn::bench::parse_args(args) {
        Ok(Some(options)) => options,
        Ok(None) => return print(&format!("{}\n", wsauthn::bench::USAGE)),
        Err(e) => {
            eprintln!("wsauthn bench: {e}");
            return ExitCode::from(2);
        }
    };
    let json = options.json;
    match wsauthn::bench::run(options) {
        Ok(report) => {
            let printed = match json {
                true => print(&format!("{}\n", report.to_json())),
                false => print(&report.table()),
            };
            if printed != ExitCode::SUCCESS {
                return printed;
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

/// `wsauthn migrate --from sled --to postgres [--config PATH]`.
fn migrate(args: impl Iterator<Item = String>) -> ExitCode {
    let (mut from, mut to, mut config) = (None, None, None);
    let mut args = args;
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--from" => &mut from,
            "--to" => &mut to,
            "--config" => &mut config,
            other => {
                eprintln!("wsauthn migrate: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        *slot = args.next();
    }
    if from.as_deref() != Some("sled") || to.as_deref() != Some("postgres") {
        eprintln!("wsauthn migrate: only --from sled --to postgres is supported");
        return ExitCode::from(2);
    }
    let config = match Config::load(config.as_deref().map(std::path::Path::new)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("wsauthn: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_web::rt::System::new().block_on(async move {
        use wsauthn::clock::Clock;
        let dir = &config.server.data_dir;
        let sled = wsauthn::store::SledStore::open(dir)
            .map_err(|e| format!("cannot open the data directory {}: {e}", dir.display()))?;
        let url = &config.store.postgres_url;
        let pg = wsauthn::store::PgStore::connect(url)
            .await
            .map_err(|e| format!("cannot use PostgreSQL at store.postgres_url: {e}"))?;
        let now = wsauthn::clock::SystemClock.now_ms();
        wsauthn::store::copy_sled_to_postgres(&sled, &pg, now)
            .await
            .map_err(|e| match e {
                wsauthn::Error::Internal(detail) => detail,
                other => other.to_string(),
            })
    });
    match result {
        Ok(copied) => print(&format!("migrated: {copied}\n")),
        Err(e) => {
            eprintln!("wsauthn migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `wsauthn admin …`: one call to a running server's backend API.
fn admin(args: impl Iterator<Item = String>) -> ExitCode {
    use wsauthn::admin::cli::{self, CliError};
    let failed = |e: CliError| {
        eprintln!("wsauthn admin: {e}");
        match e {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::FAILURE,
        }
    };
    let options = match cli::parse_args(args) {
        Ok(Some(options)) => options,
        Ok(None) => return print(&format!("{}\n", cli::USAGE)),
        Err(e) => return failed(e),
    };
    let key = match cli::read_key(&options) {
        Ok(key) => key,
        Err(e) => return failed(e),
    };
    // A token to introspect comes on stdin, like the key, out of `ps`'s sight.
    let token = match options.command {
        cli::Command::Introspect => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                return failed(CliError::Usage(format!(
                    "cannot read the token from stdin: {e}"
                )));
            }
            Some(line)
        }
        _ => None,
    };
    let answer = actix_web::rt::System::new().block_on(cli::run(&options, &key, token));
    match answer {
        Ok(text) => print(&format!("{text}\n")),
        Err(e) => failed(e),
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    match argv.peek().map(String::as_str) {
        Some("bench") => return bench(argv.skip(1)),
        Some("admin") => return admin(argv.skip(1)),
        Some("migrate") => return migrate(argv.skip(1)),
        _ => {}
    }
    let args = match parse_args() {
        Ok(Parsed::Serve(args)) => args,
        Ok(Parsed::Exit(code)) => return code,
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
        let bind = config.bind_addr();
        if bind.port() != 0 {
            if let Some(warning) = config.origin_warning(bind, config.tls()) {
                eprintln!("wsauthn: warning: {warning}");
            }
        }
        return match config.to_toml() {
            Ok(text) => print(&text),
            Err(e) => {
                eprintln!("wsauthn: cannot print the configuration: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let _flush_logs_at_exit = match wsauthn::logging::init(&config.log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("wsauthn: cannot start the log writer thread: {e}");
            return ExitCode::FAILURE;
        }
    };
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
