//! Typed configuration: embedded defaults, an optional TOML file, `WSAUTHN__SECTION__KEY`
//! environment overrides, and validation before anything starts.
//!
//! Invariant: a `Config` that exists has been validated. The defaults are `config/default.toml`
//! itself, compiled in, so the documented defaults and the real ones cannot drift apart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::endpoints::AuthPolicy;

/// The documented default configuration, compiled into the binary.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "WSAUTHN__";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub webauthn: WebauthnConfig,
    pub tokens: TokenConfig,
    pub websocket: WebSocketConfig,
    pub limits: LimitsConfig,
    pub endpoints: EndpointsConfig,
    pub admin: AdminConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub data_dir: PathBuf,
    pub static_dir: PathBuf,
    pub workers: usize,
    pub max_connections_per_worker: usize,
    pub max_sockets: u64,
    pub max_connects_per_second: u32,
    pub request_timeout_ms: u64,
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResidentKey {
    Required,
    Preferred,
    Discouraged,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnConfig {
    pub rp_id: String,
    pub rp_name: String,
    pub origins: Vec<String>,
    /// Origins on other domains that may use this rp id (WebAuthn related origin requests),
    /// served as `/.well-known/webauthn` and accepted like `origins`.
    #[serde(default)]
    pub related_origins: Vec<String>,
    pub ceremony_timeout_secs: u64,
    pub resident_key: ResidentKey,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub lifetime_secs: u64,
    pub idle_timeout_secs: u64,
    pub expiry_warning_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    pub max_frame_bytes: usize,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_timeout_ms: u64,
    pub auth_deadline_ms: u64,
    pub unauthenticated_idle_ms: u64,
    pub allow_missing_origin: bool,
    pub messages_per_second: u32,
    pub message_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_pending_ceremonies: usize,
    pub pending_ceremonies_per_address: u32,
    pub ceremony_timeout_under_pressure_secs: u64,
    pub ceremonies_per_minute: u32,
    pub ceremonies_per_minute_per_address: u32,
    pub failed_sign_ins_before_backoff: u32,
    pub max_sessions_per_user: usize,
    pub when_sessions_full: crate::tokens::WhenFull,
    pub max_sockets_per_user: u64,
    pub sign_in_backoff_max_secs: u64,
    pub max_username_chars: usize,
    pub max_passkeys_per_user: u32,
    pub unauthenticated_sockets_per_address: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointsConfig {
    pub default: AuthPolicy,
    pub paths: BTreeMap<String, AuthPolicy>,
}

/// The backend API (`docs/backend-api.md`); an empty key turns it off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub api_key: crate::admin::ApiKey,
}

/// Why the configuration cannot be used. Each message names the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// The embedded defaults alone (`config/default.toml`), which a unit test checks are valid.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::from_layers(None, std::iter::empty())
    }

    /// Loads the configuration the binary runs with: defaults, then the file (if any), then the
    /// process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Some((path.to_owned(), text))
            }
            None => None,
        };
        Config::from_layers(file, std::env::vars())
    }

    /// Builds a config from an optional file (path, text) and environment variables; pure, so
    /// tests do not touch the process environment.
    pub fn from_layers(
        file: Option<(PathBuf, String)>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut merged = parse_toml(Path::new("<embedded default>"), DEFAULT_TOML)?;
        if let Some((path, text)) = file {
            merge(&mut merged, parse_toml(&path, &text)?);
        }
        for (var, value) in env {
            if let Some(rest) = var.strip_prefix(ENV_PREFIX) {
                apply_env(&mut merged, &var, rest, &value)?;
            }
        }
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// A configuration for tests and embedding: defaults with a different data directory and
    /// an ephemeral port.
    pub fn for_tests(data_dir: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::embedded()?;
        config.server.bind = "127.0.0.1:0".into();
        config.server.data_dir = data_dir.to_owned();
        config.server.workers = 2;
        // Every test client comes from 127.0.0.1: the per-address allowance would be shared by
        // the whole suite's ceremonies. Tests of that limit set it themselves.
        config.limits.ceremonies_per_minute_per_address = 1_000_000;
        Ok(config)
    }

    /// Checks everything that can be checked before the server starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if let Err(msg) = crate::clientaddr::TrustedProxies::parse(&self.server.trusted_proxies) {
            return invalid(msg);
        }
        if self.server.bind.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "server.bind {:?} is not an address:port such as 127.0.0.1:8080",
                self.server.bind
            ));
        }
        let w = &self.webauthn;
        if w.rp_id.is_empty() || w.rp_id.contains(['/', ':']) {
            return invalid(format!(
                "webauthn.rp_id {:?} must be a bare domain such as example.com",
                w.rp_id
            ));
        }
        if w.origins.is_empty() {
            return invalid("webauthn.origins must list at least one origin".into());
        }
        for origin in self.primary_origins()? {
            let host = origin.host_str().unwrap_or_default();
            if !(host == w.rp_id || host.ends_with(&format!(".{}", w.rp_id))) {
                return invalid(format!(
                    "webauthn.rp_id {:?} is not the host, or a suffix of the host, of origin {:?}",
                    w.rp_id,
                    origin.as_str().trim_end_matches('/')
                ));
            }
        }
        // Related origins need not be under the rp id; they only have to be origins.
        self.origins()?;
        if w.ceremony_timeout_secs == 0 {
            return invalid("webauthn.ceremony_timeout_secs must be at least 1".into());
        }
        if self.tokens.lifetime_secs == 0 || self.tokens.idle_timeout_secs == 0 {
            return invalid("tokens.lifetime_secs and tokens.idle_timeout_secs must be > 0".into());
        }
        if self.tokens.expiry_warning_secs >= self.tokens.lifetime_secs {
            return invalid(
                "tokens.expiry_warning_secs must be smaller than tokens.lifetime_secs".into(),
            );
        }
        let ws = &self.websocket;
        if ws.max_frame_bytes < 1024 {
            return invalid("websocket.max_frame_bytes must be at least 1024".into());
        }
        if ws.heartbeat_interval_ms == 0 || ws.heartbeat_timeout_ms <= ws.heartbeat_interval_ms {
            return invalid(
                "websocket.heartbeat_timeout_ms must be greater than heartbeat_interval_ms (> 0)"
                    .into(),
            );
        }
        if ws.auth_deadline_ms == 0 {
            return invalid("websocket.auth_deadline_ms must be at least 1".into());
        }
        if ws.messages_per_second == 0 || ws.message_burst == 0 {
            return invalid(
                "websocket.messages_per_second and message_burst must be at least 1".into(),
            );
        }
        if self.server.max_connections_per_worker == 0 {
            return invalid("server.max_connections_per_worker must be at least 1".into());
        }
        if self.limits.unauthenticated_sockets_per_address == 0 {
            return invalid("limits.unauthenticated_sockets_per_address must be at least 1".into());
        }
        let l = &self.limits;
        if l.max_pending_ceremonies == 0
            || l.ceremonies_per_minute == 0
            || l.max_username_chars == 0
            || l.max_passkeys_per_user == 0
        {
            return invalid("limits.* must all be at least 1".into());
        }
        self.admin.api_key.check().map_err(ConfigError::Invalid)?;
        for path in self.endpoints.paths.keys() {
            if !path.starts_with('/') {
                return invalid(format!("endpoints.paths key {path:?} must start with '/'"));
            }
            if path.contains('*') && !path.ends_with("/*") {
                return invalid(format!(
                    "endpoints.paths key {path:?}: '*' may only end a prefix, as in \"/api/*\""
                ));
            }
        }
        Ok(())
    }

    /// Every origin that may run ceremonies and open sockets: `webauthn.origins`, then
    /// `webauthn.related_origins`, parsed.
    pub fn origins(&self) -> Result<Vec<Url>, ConfigError> {
        let related = self
            .webauthn
            .related_origins
            .iter()
            .map(|o| parse_origin("webauthn.related_origins", o));
        self.primary_origins()?
            .into_iter()
            .map(Ok)
            .chain(related)
            .collect()
    }

    /// `webauthn.origins` alone, parsed: the ones the rp id must be a suffix of.
    pub fn primary_origins(&self) -> Result<Vec<Url>, ConfigError> {
        self.webauthn
            .origins
            .iter()
            .map(|o| parse_origin("webauthn.origins", o))
            .collect()
    }

    pub fn bind_addr(&self) -> SocketAddr {
        // validate() has checked it parses; 127.0.0.1:8080 is the documented default otherwise.
        self.server
            .bind
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    pub fn ceremony_timeout(&self) -> Duration {
        Duration::from_secs(self.webauthn.ceremony_timeout_secs)
    }
}

fn parse_origin(key: &str, s: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(s)
        .map_err(|e| ConfigError::Invalid(format!("{key}: {s:?} is not a URL ({e})")))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
        return Err(ConfigError::Invalid(format!(
            "{key}: {s:?} must be an origin such as https://example.com or http://localhost:8080"
        )));
    }
    Ok(url)
}

fn parse_toml(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

/// Overlays `top` on `base`, table by table; any other value replaces the base value.
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Applies `WSAUTHN__SECTION__KEY=value`. The value is read as TOML when it parses as one (so
/// numbers, booleans and arrays keep their type), else as a string.
fn apply_env(
    table: &mut toml::Table,
    var: &str,
    rest: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
    let env_err = |message: &str| ConfigError::Env {
        var: var.to_owned(),
        message: message.to_owned(),
    };
    if path.len() < 2 || path.iter().any(String::is_empty) {
        return Err(env_err("expected WSAUTHN__SECTION__KEY"));
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, parents) = path.split_last().ok_or_else(|| env_err("empty key"))?;
    let mut cursor = table;
    for part in parents {
        let next = cursor
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cursor = match next {
            toml::Value::Table(t) => t,
            _ => return Err(env_err("names a key inside a value that is not a table")),
        };
    }
    cursor.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn embedded_defaults_are_valid_and_match_the_protocol_defaults() {
        let c = Config::embedded().unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.webauthn.rp_id, "localhost");
        assert_eq!(c.webauthn.origins, vec!["http://localhost:8080"]);
        assert_eq!(c.tokens.lifetime_secs, 86_400);
        assert_eq!(c.tokens.idle_timeout_secs, 3_600);
        assert_eq!(c.websocket.max_frame_bytes, 65_536);
        assert_eq!(c.websocket.auth_deadline_ms, 10_000);
        assert_eq!(c.endpoints.paths["/api/me"], AuthPolicy::Required);
        assert_eq!(c.endpoints.paths["/ws"], AuthPolicy::None);
    }

    #[test]
    fn a_file_overrides_only_the_keys_it_names() {
        let file = "[server]\nbind = \"0.0.0.0:9000\"\n".to_string();
        let c = Config::from_layers(Some(("f.toml".into(), file)), std::iter::empty()).unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:9000");
        assert_eq!(c.server.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn environment_overrides_keep_their_types() {
        let c = Config::from_layers(
            None,
            env(&[
                ("WSAUTHN__TOKENS__LIFETIME_SECS", "600"),
                ("WSAUTHN__SERVER__DATA_DIR", "/tmp/x"),
                ("WSAUTHN__WEBSOCKET__ALLOW_MISSING_ORIGIN", "false"),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.tokens.lifetime_secs, 600);
        assert_eq!(c.server.data_dir, PathBuf::from("/tmp/x"));
        assert!(!c.websocket.allow_missing_origin);
    }

    #[test]
    fn rp_id_that_is_not_a_suffix_of_an_origin_host_is_refused() {
        let err = Config::from_layers(None, env(&[("WSAUTHN__WEBAUTHN__RP_ID", "example.com")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("webauthn.rp_id \"example.com\""), "{err}");
        assert!(err.contains("http://localhost:8080"), "{err}");
    }

    #[test]
    fn related_origins_need_not_be_under_the_rp_id_but_must_be_origins() {
        let file = "[webauthn]\nrp_id = \"example.com\"\norigins = [\"https://example.com\"]\n\
                    related_origins = [\"https://example.co.uk\"]\n";
        let c = Config::from_layers(Some(("f".into(), file.into())), std::iter::empty()).unwrap();
        let all: Vec<String> = c.origins().unwrap().iter().map(|u| u.to_string()).collect();
        assert_eq!(all, ["https://example.com/", "https://example.co.uk/"]);
        let bad = "[webauthn]\nrelated_origins = [\"https://example.co.uk/path\"]\n";
        let err = Config::from_layers(Some(("f".into(), bad.into())), std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(err.contains("webauthn.related_origins"), "{err}");
    }

    #[test]
    fn lookalike_domain_is_not_a_suffix() {
        let file = "[webauthn]\nrp_id = \"example.com\"\norigins = [\"https://badexample.com\"]\n";
        let err = Config::from_layers(Some(("f".into(), file.into())), std::iter::empty());
        assert!(err.is_err());
        let file =
            "[webauthn]\nrp_id = \"example.com\"\norigins = [\"https://chat.example.com\"]\n";
        assert!(Config::from_layers(Some(("f".into(), file.into())), std::iter::empty()).is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named_in_the_error() {
        let err = Config::from_layers(Some(("f".into(), "[server]\nbnid = 1\n".into())), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnid"), "{err}");
        let err = Config::from_layers(None, env(&[("WSAUTHN__SERVER__BIND", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.bind"), "{err}");
        let err = Config::from_layers(
            None,
            env(&[("WSAUTHN__WEBAUTHN__ORIGINS", "[\"ftp://x\"]")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("webauthn.origins"), "{err}");
        let err = Config::from_layers(Some(("f.toml".into(), "[server".into())), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("f.toml"), "{err}");
    }
}
