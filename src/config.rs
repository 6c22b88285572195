//! Typed configuration: embedded defaults, an optional TOML file, `WSAUTHN__SECTION__KEY`
//! environment overrides, and validation before anything starts.
//!
//! Invariant: a `Config` that exists has been validated. The defaults are `config/default.toml`
//! itself, compiled in, so the documented defaults and the real ones cannot drift apart. Every
//! error names the key, where its value came from (file and line, or environment variable),
//! what was expected and an example ([`ConfigError`]).

mod explain;
mod layers;
mod print;
mod spans;
mod validate;

pub use explain::{ConfigError, Source};
pub use validate::Problem;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::endpoints::AuthPolicy;

/// The documented default configuration, compiled into the binary.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "WSAUTHN__";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub webauthn: WebauthnConfig,
    pub tokens: TokenConfig,
    pub websocket: WebSocketConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub endpoints: EndpointsConfig,
    pub metrics: MetricsConfig,
    /// `[[proxy]]` tables (docs/proxy.md); none by default.
    #[serde(default)]
    pub proxy: Vec<crate::proxy::ProxyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// PEM certificate chain; empty: plain HTTP.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert`.
    pub tls_key: PathBuf,
}

/// `[store]`: which backend keeps the durable state (docs/cluster.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub backend: crate::store::BackendKind,
    /// With `backend = "postgres"`: where the database is.
    pub postgres_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResidentKey {
    Required,
    Preferred,
    Discouraged,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub lifetime_secs: u64,
    pub idle_timeout_secs: u64,
    pub expiry_warning_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// How log lines are written (`[log]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// One line per HTTP request and per socket close (target `access`).
    pub access: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: `tracing`'s default format.
    Text,
    /// One JSON object a line, for Loki, ELK and the like.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointsConfig {
    pub default: AuthPolicy,
    pub paths: BTreeMap<String, AuthPolicy>,
}

/// The backend API (`docs/backend-api.md`); an empty key turns it off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub api_key: crate::admin::ApiKey,
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
        let layers = layers::Layers::build(file, env)?;
        let config: Config = layers.deserialize()?;
        config.problems().map_err(|p| layers.explain(p))?;
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

    /// Checks everything that can be checked before the server starts. A config built in code
    /// has no file or variable to point at; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.problems().map_err(|p| explain::invalid(p, None))
    }

    /// Every origin that may run ceremonies and open sockets: `webauthn.origins`, then
    /// `webauthn.related_origins`, parsed.
    pub fn origins(&self) -> Result<Vec<Url>, ConfigError> {
        let related = self
            .webauthn
            .related_origins
            .iter()
            .map(|o| validate::parse_origin(validate::RELATED_ORIGINS, o));
        self.primary_origins()?
            .into_iter()
            .map(Ok)
            .chain(related)
            .collect::<Result<_, _>>()
            .map_err(|p| explain::invalid(p, None))
    }

    /// `webauthn.origins` alone, parsed: the ones the rp id must be a suffix of.
    pub fn primary_origins(&self) -> Result<Vec<Url>, ConfigError> {
        self.webauthn
            .origins
            .iter()
            .map(|o| validate::parse_origin(validate::ORIGINS, o))
            .collect::<Result<_, _>>()
            .map_err(|p| explain::invalid(p, None))
    }

    pub fn bind_addr(&self) -> SocketAddr {
        // validate() has checked it parses; 127.0.0.1:8080 is the documented default otherwise.
        self.server
            .bind
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// Whether the server speaks TLS (`server.tls_cert` and `server.tls_key` are set).
    pub fn tls(&self) -> bool {
        !self.server.tls_cert.as_os_str().is_empty()
    }

    pub fn ceremony_timeout(&self) -> Duration {
        Duration::from_secs(self.webauthn.ceremony_timeout_secs)
    }
}

#[cfg(test)]
mod tests;
