//! `wsauthn admin …`: the backend API from a shell, for an operator holding `admin.api_key`.
//! A client of the running server's HTTP API (`docs/backend-api.md`), nothing more: it opens no
//! data directory, so it works against any node, and what it may do is what the key allows.
//!
//! The key comes from the environment (`WSAUTHN__ADMIN__API_KEY`, the variable the server reads)
//! or a file (`--key-file`), never from the command line, where `ps` would show it.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

pub const USAGE: &str = "\
wsauthn admin: the backend API of a running server (docs/backend-api.md)

Usage: wsauthn admin [--url URL] [--key-file PATH] COMMAND

Commands:
  user NAME|ID         the user, their passkeys and sessions (JSON)
  revoke NAME|ID       end every session of the user (their sockets close with 4401)
  delete NAME|ID --yes delete the user, their passkeys and sessions
  introspect           read a token from stdin and say whether it is active (RFC 7662)

Options:
  --url URL        the server (default http://127.0.0.1:8080)
  --key-file PATH  a file holding admin.api_key (default: $WSAUTHN__ADMIN__API_KEY)
  -h, --help       this text

Exit status: 0 done, 1 refused or failed (the server's message on stderr), 2 bad usage.";

/// The environment variable the key is read from, the server's own.
pub const KEY_VARIABLE: &str = "WSAUTHN__ADMIN__API_KEY";

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Revoke(String),
    Delete(String),
    Introspect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub url: url::Url,
    pub key_file: Option<std::path::PathBuf>,
    pub command: Command,
}

/// Why a call did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The server refused or could not be reached (exit status 1).
    #[error("{0}")]
    Failed(String),
}

/// Parses the arguments after `admin`; `Ok(None)` for `--help`.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, CliError> {
    let usage = |m: &str| CliError::Usage(format!("{m}\n\n{USAGE}"));
    let mut url = None;
    let mut key_file = None;
    let mut words = Vec::new();
    let mut yes = false;
    let mut it = args;
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--url" => url = Some(it.next().ok_or_else(|| usage("--url needs a URL"))?),
            "--key-file" => {
                key_file = Some(it.next().ok_or_else(|| usage("--key-file needs a PATH"))?)
            }
            "--yes" => yes = true,
            "--key" => return Err(usage("the key is not taken on the command line (ps shows it); use $WSAUTHN__ADMIN__API_KEY or --key-file")),
            flag if flag.starts_with('-') => return Err(usage(&format!("unknown option {flag:?}"))),
            word => words.push(word.to_owned()),
        }
    }
    let url = url.as_deref().unwrap_or("http://127.0.0.1:8080");
    let url = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| usage(&format!("--url {url:?} is not an http(s) URL")))?;
    let command = match words.as_slice() {
        [c, who] if c == "user" => Command::User(who.clone()),
        [c, who] if c == "revoke" => Command::Revoke(who.clone()),
        [c, who] if c == "delete" && yes => Command::Delete(who.clone()),
        [c, _] if c == "delete" => {
            return Err(usage(
                "delete removes the account for good; add --yes to mean it",
            ))
        }
        [c] if c == "introspect" => Command::Introspect,
        [] => return Err(usage("which command?")),
        other => return Err(usage(&format!("cannot read {:?}", other.join(" ")))),
    };
    Ok(Some(Options {
        url,
        key_file: key_file.map(Into::into),
        command,
    }))
}

/// Reads the key: the file's first line, or the environment variable.
pub fn read_key(options: &Options) -> Result<String, CliError> {
    let key = match &options.key_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?,
        None => std::env::var(KEY_VARIABLE).map_err(|_| {
            CliError::Usage(format!(
                "no key: set ${KEY_VARIABLE} or pass --key-file PATH"
            ))
        })?,
    };
    let key = key.lines().next().unwrap_or("").trim().to_owned();
    if key.is_empty() {
        return Err(CliError::Usage("the admin key is empty".into()));
    }
    Ok(key)
}

/// Runs the command against the server; the server's JSON answer, pretty-printed.
pub async fn run(
    options: &Options,
    key: &str,
    stdin_token: Option<String>,
) -> Result<String, CliError> {
    let api = Api::new(&options.url, key)?;
    let answer = match &options.command {
        Command::User(who) => api.user(who).await?,
        Command::Revoke(who) => {
            let id = api.user_id(who).await?;
            api.call(
                awc::http::Method::POST,
                &format!("/admin/users/{id}/revoke"),
                None,
            )
            .await?
        }
        Command::Delete(who) => {
            let id = api.user_id(who).await?;
            api.call(
                awc::http::Method::DELETE,
                &format!("/admin/users/{id}"),
                None,
            )
            .await?
        }
        Command::Introspect => {
            let token = stdin_token.unwrap_or_default();
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("token", token.trim())
                .finish();
            api.call(awc::http::Method::POST, "/introspect", Some(body))
                .await?
        }
    };
    serde_json::to_string_pretty(&answer).map_err(|e| CliError::Failed(e.to_string()))
}

struct Api<'a> {
    client: awc::Client,
    /// The server's URL as awc is given it: `http` even for an `https` server, whose TLS the
    /// connector adds (as toward a proxy's upstreams, `crate::proxy`).
    base: String,
    key: &'a str,
}

impl<'a> Api<'a> {
    fn new(url: &url::Url, key: &'a str) -> Result<Self, CliError> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let secure = (url.scheme() == "https").then(|| (host.clone(), port));
        let upstreams = crate::proxy::Upstreams::new(secure)
            .map_err(|e| CliError::Failed(format!("TLS: {e}")))?;
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            _ => host,
        };
        Ok(Api {
            client: upstreams.0,
            base: format!("http://{host}:{port}"),
            key,
        })
    }

    async fn call(
        &self,
        method: awc::http::Method,
        path: &str,
        form: Option<String>,
    ) -> Result<Value, CliError> {
        let target = format!("{}{path}", self.base);
        let request = self
            .client
            .request(method, &target)
            .timeout(TIMEOUT)
            .insert_header(("Authorization", format!("Bearer {}", self.key)));
        let sent = match form {
            Some(body) => {
                request
                    .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                    .send_body(body)
                    .await
            }
            None => request.send().await,
        };
        let mut response =
            sent.map_err(|e| CliError::Failed(format!("cannot reach {target}: {e}")))?;
        let status = response.status();
        let body = response
            .body()
            .limit(16 << 20)
            .await
            .map_err(|e| CliError::Failed(format!("reading the answer of {target}: {e}")))?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let why = value["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        let code = value["code"].as_str().unwrap_or("");
        Err(CliError::Failed(
            format!("{status} {code}: {why}").replace(" : ", ": "),
        ))
    }

    /// The user named `who`: a user id, or else a username.
    async fn user(&self, who: &str) -> Result<Value, CliError> {
        match who.parse::<Uuid>() {
            Ok(id) => {
                self.call(awc::http::Method::GET, &format!("/admin/users/{id}"), None)
                    .await
            }
            Err(_) => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("username", who)
                    .finish();
                self.call(
                    awc::http::Method::GET,
                    &format!("/admin/users?{query}"),
                    None,
                )
                .await
            }
        }
    }

    async fn user_id(&self, who: &str) -> Result<Uuid, CliError> {
        if let Ok(id) = who.parse() {
            return Ok(id);
        }
        let user = self.user(who).await?;
        user["user"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| {
                CliError::Failed(format!("the server's answer names no user id: {user}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<Options>, CliError> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn commands_parse_and_delete_needs_yes() {
        let o = parse("user alice").unwrap().unwrap();
        assert_eq!(o.command, Command::User("alice".into()));
        assert_eq!(o.url.as_str(), "http://127.0.0.1:8080/");
        let o = parse("--url https://auth.example.com delete bob --yes")
            .unwrap()
            .unwrap();
        assert_eq!(o.command, Command::Delete("bob".into()));
        assert!(matches!(parse("delete bob"), Err(CliError::Usage(m)) if m.contains("--yes")));
        assert!(matches!(parse("--key k user a"), Err(CliError::Usage(m)) if m.contains("ps")));
        assert!(matches!(
            parse("--url ftp://x user a"),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(parse(""), Err(CliError::Usage(_))));
        assert!(matches!(parse("frobnicate"), Err(CliError::Usage(_))));
        assert!(parse("--help").unwrap().is_none());
    }
}
