//! The `wsauthn bench` command line.

use std::time::Duration;

use url::Url;

use super::{ConnectAuth, Mode, Options};

pub const USAGE: &str = "\
wsauthn bench: load generator for any server that speaks the wsauthn protocol

Usage: wsauthn bench [OPTIONS]

Options:
  --url URL              the server (default ws://127.0.0.1:8080); http(s) means ws(s)
  --origin ORIGIN        Origin header and client-data origin (default http://localhost:8080)
  --rp-id ID             relying-party id the server must name (default: the origin's host)
  --clients N            concurrent virtual users (default 16)
  --duration D           measured time, e.g. 30s, 500ms, 2m (default 10s)
  --rate R               operations per second over all users, paced (default: as fast as
                         each user gets replies); latency then counts from when each was due
  --mode MODE            register | login | connect | mixed | idle | http | frames
                         (default login)
                           login:   begin + finish with a token on a kept-open /ws socket
                           connect: open a protected socket with the token, one frame, then
                                    the closing handshake until the server ends the TCP stream
                           mixed:   1 register : 3 logins : 6 connects, at random
                           idle:    hold one authenticated protected socket per user
                           http:    GET --http-path with the token as Bearer (keep-alive)
                           frames:  on a kept-open protected socket, send a text frame and
                                    wait for its echo, back to back
  --json                 print the report as JSON on stdout instead of the table
  --server-pid PID       the server's process on this machine: CPU per operation, RSS
  --threads N            load threads, each with its own runtime (default 1)
  --timeout D            limit on each operation's reply (default 10s)
  --setup-timeout D      limit on the setup, before the measured window (default 120s)
  --setup-concurrency N  users setting up (or opening idle sockets) at once (default 16)
  --accounts N           accounts registered in setup; more users share them, each signing in
                         for its own token (default: one per user)
  --ws-path PATH         the ceremony socket (default /ws)
  --connect-path PATH    the protected socket (default /echo)
  --connect-url URL      the protected socket on another server (overrides --connect-path;
                         frames mode against an upstream directly)
  --frame-bytes N        frames mode: bytes per frame (default 64)
  --http-path PATH       what --mode http requests (default /api/me)
  --connect-auth HOW     header (Authorization: Bearer) | frame (first auth frame); default header
  --discoverable         usernameless sign-in (login.begin without a username)
  --ops-per-socket N     reopen the ceremony socket after N ceremonies (default 0: never)
  --source-ip IP[,IP..]  local addresses to connect from (spread ports over 127.0.0.x)
  --quiet                no progress line
  -h, --help             this text

Against a wsauthn server, raise its per-socket limits first, or they are what you measure:
WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE=1000000 WSAUTHN__WEBSOCKET__MESSAGES_PER_SECOND=1000000
WSAUTHN__WEBSOCKET__MESSAGE_BURST=1000000 WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE_PER_ADDRESS=100000000
WSAUTHN__SERVER__MAX_CONNECTS_PER_SECOND=0 (scripts/bench-server.sh sets them; docs/benchmarks.md).";

/// Parses the arguments after `bench`. `Ok(None)`: help was asked for.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut url = "ws://127.0.0.1:8080".to_owned();
    let mut ws_path = "/ws".to_owned();
    let mut connect_path = "/echo".to_owned();
    let mut connect_url = None;
    let mut http_path = "/api/me".to_owned();
    let mut rp_id = None;
    let mut o = Options {
        ceremony_url: String::new(),
        connect_url: String::new(),
        http_url: String::new(),
        origin: "http://localhost:8080".into(),
        rp_id: String::new(),
        clients: 16,
        duration: Duration::from_secs(10),
        rate: 0.0,
        mode: Mode::Login,
        threads: 1,
        timeout: Duration::from_secs(10),
        setup_timeout: Duration::from_secs(120),
        setup_concurrency: 16,
        accounts: 0,
        connect_auth: ConnectAuth::Header,
        discoverable: false,
        ops_per_socket: 0,
        source_ips: Vec::new(),
        server_pid: None,
        frame_bytes: 64,
        json: false,
        quiet: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--url" => url = value()?,
            "--origin" => o.origin = value()?,
            "--rp-id" => rp_id = Some(value()?),
            "--clients" => o.clients = number(&arg, &value()?)?,
            "--duration" => o.duration = duration(&arg, &value()?)?,
            "--rate" => o.rate = number(&arg, &value()?)?,
            "--mode" => o.mode = mode(&value()?)?,
            "--json" => o.json = true,
            "--server-pid" => o.server_pid = Some(number(&arg, &value()?)?),
            "--threads" => o.threads = number(&arg, &value()?)?,
            "--timeout" => o.timeout = duration(&arg, &value()?)?,
            "--setup-timeout" => o.setup_timeout = duration(&arg, &value()?)?,
            "--setup-concurrency" => o.setup_concurrency = number(&arg, &value()?)?,
            "--accounts" => o.accounts = number(&arg, &value()?)?,
            "--ws-path" => ws_path = value()?,
            "--connect-path" => connect_path = value()?,
            "--connect-url" => connect_url = Some(value()?),
            "--frame-bytes" => o.frame_bytes = number(&arg, &value()?)?,
            "--http-path" => http_path = value()?,
            "--connect-auth" => {
                o.connect_auth = match value()?.as_str() {
                    "header" => ConnectAuth::Header,
                    "frame" => ConnectAuth::Frame,
                    other => {
                        return Err(format!("--connect-auth: {other:?} is not header or frame"))
                    }
                }
            }
            "--discoverable" => o.discoverable = true,
            "--ops-per-socket" => o.ops_per_socket = number(&arg, &value()?)?,
            "--source-ip" => {
                for ip in value()?.split(',') {
                    let ip = ip
                        .trim()
                        .parse()
                        .map_err(|_| format!("--source-ip: {ip:?} is not an IP address"))?;
                    o.source_ips.push(ip);
                }
            }
            "--quiet" => o.quiet = true,
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if o.clients == 0 || o.threads == 0 {
        return Err("--clients and --threads must be at least 1".into());
    }
    if !(o.rate >= 0.0 && o.rate.is_finite()) {
        return Err("--rate must be a number of operations per second, 0 or more".into());
    }
    if o.duration.is_zero() || o.timeout.is_zero() {
        return Err("--duration and --timeout must be more than 0".into());
    }
    if o.accounts == 0 || o.accounts > o.clients {
        o.accounts = o.clients;
    }
    let base = websocket_base(&url)?;
    o.ceremony_url = join(&base, &ws_path)?;
    o.connect_url = match connect_url {
        Some(url) => websocket_base(&url)?.to_string(),
        None => join(&base, &connect_path)?,
    };
    o.http_url = join(&http_base(&base)?, &http_path)?;
    let origin = Url::parse(&o.origin).map_err(|e| format!("--origin {:?}: {e}", o.origin))?;
    o.origin = origin.origin().ascii_serialization();
    o.rp_id = match rp_id {
        Some(id) => id,
        None => origin
            .host_str()
            .ok_or("--origin has no host; give --rp-id")?
            .to_owned(),
    };
    Ok(Some(o))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: {value:?} is not a valid number"))
}

fn mode(value: &str) -> Result<Mode, String> {
    Ok(match value {
        "register" => Mode::Register,
        "login" => Mode::Login,
        "connect" => Mode::Connect,
        "mixed" => Mode::Mixed,
        "idle" => Mode::Idle,
        "http" => Mode::Http,
        "frames" => Mode::Frames,
        other => {
            return Err(format!(
                "--mode: {other:?} is not register, login, connect, mixed, idle, http or frames"
            ))
        }
    })
}

/// `30s`, `500ms`, `2m`, or plain seconds.
pub fn duration(name: &str, value: &str) -> Result<Duration, String> {
    let bad = || format!("{name}: {value:?} is not a duration such as 30s, 500ms or 2m");
    let (digits, unit) = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((value, ""), |i| value.split_at(i));
    let n: f64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// The server's base URL with a WebSocket scheme and no trailing path.
fn websocket_base(url: &str) -> Result<Url, String> {
    let mut parsed = Url::parse(url).map_err(|e| format!("--url {url:?}: {e}"))?;
    let scheme = match parsed.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(format!(
                "--url: scheme {other:?} is not ws, wss, http or https"
            ))
        }
    };
    parsed
        .set_scheme(scheme)
        .map_err(|()| format!("--url {url:?}: cannot use scheme {scheme}"))?;
    Ok(parsed)
}

/// The same server with an HTTP scheme.
fn http_base(base: &Url) -> Result<Url, String> {
    let mut http = base.clone();
    let scheme = if base.scheme() == "wss" {
        "https"
    } else {
        "http"
    };
    http.set_scheme(scheme)
        .map_err(|()| format!("--url {base}: cannot use scheme {scheme}"))?;
    Ok(http)
}

fn join(base: &Url, path: &str) -> Result<String, String> {
    base.join(path)
        .map(String::from)
        .map_err(|e| format!("path {path:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_point_at_a_local_server_with_its_default_origin() {
        let o = parse(&[]).unwrap().unwrap();
        assert_eq!(o.ceremony_url, "ws://127.0.0.1:8080/ws");
        assert_eq!(o.connect_url, "ws://127.0.0.1:8080/echo");
        assert_eq!(o.http_url, "http://127.0.0.1:8080/api/me");
        assert_eq!(o.origin, "http://localhost:8080");
        assert_eq!(o.rp_id, "localhost");
        assert_eq!(o.mode, Mode::Login);
    }

    #[test]
    fn options_are_read() {
        let o = parse(&[
            "--url",
            "https://auth.example.com",
            "--origin",
            "https://app.example.com/",
            "--rp-id",
            "example.com",
            "--clients",
            "64",
            "--duration",
            "1.5m",
            "--mode",
            "mixed",
            "--json",
            "--server-pid",
            "42",
            "--connect-path",
            "/chat",
            "--source-ip",
            "127.0.0.2,127.0.0.3",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.ceremony_url, "wss://auth.example.com/ws");
        assert_eq!(o.connect_url, "wss://auth.example.com/chat");
        assert_eq!(o.origin, "https://app.example.com");
        assert_eq!(o.rp_id, "example.com");
        assert_eq!((o.clients, o.duration), (64, Duration::from_secs(90)));
        assert_eq!(o.mode, Mode::Mixed);
        assert!(o.json);
        assert_eq!(o.server_pid, Some(42));
        assert_eq!(o.source_ips.len(), 2);
    }

    #[test]
    fn bad_values_are_refused_with_the_option_named() {
        assert!(parse(&["--mode", "storm"]).unwrap_err().contains("--mode"));
        assert!(parse(&["--clients", "0"]).is_err());
        assert!(parse(&["--duration", "soon"])
            .unwrap_err()
            .contains("--duration"));
        assert!(parse(&["--url", "ftp://x"]).is_err());
        assert!(parse(&["--clients"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(duration("d", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("d", "3").unwrap(), Duration::from_secs(3));
        assert_eq!(duration("d", "2m").unwrap(), Duration::from_secs(120));
        assert!(duration("d", "-1s").is_err());
    }
}
