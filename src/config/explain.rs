//! Config errors that explain themselves: each names the key, where its value came from (a
//! file and line, an environment variable, or the defaults), what was expected, and an example
//! written the way that source is written (`lifetime_secs = 86400 in [tokens]`, or
//! `WSAUTHN__TOKENS__LIFETIME_SECS=86400`).

use std::fmt;
use std::path::PathBuf;

use super::validate::Problem;
use super::{DEFAULT_TOML, ENV_PREFIX};

/// A key as its table names: `["endpoints", "paths", "/api/me"]`.
pub type KeyPath = Vec<String>;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `config/default.toml`, compiled in.
    Default,
    File {
        path: PathBuf,
        line: Option<usize>,
    },
    Env {
        var: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File {
                path,
                line: Some(line),
            } => write!(f, "set in {} line {line}", path.display()),
            Source::File { path, line: None } => write!(f, "set in {}", path.display()),
            Source::Env { var } => write!(f, "set by environment variable {var}"),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Parse {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A `WSAUTHN…` variable that looks like an override but names no key.
    Env { var: String, message: String },
    /// A value that cannot be used, with the key, where it came from (`None` for a config built
    /// in code), what is wrong and an example.
    Invalid {
        key: String,
        origin: Option<Source>,
        problem: String,
        example: Option<String>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::Parse {
                path,
                line,
                message,
            } => {
                let at = line.map(|l| format!(" line {l}")).unwrap_or_default();
                let message = message.trim_end();
                write!(
                    f,
                    "config file {}{at} is not valid TOML: {message}",
                    path.display()
                )
            }
            ConfigError::Env { var, message } => write!(f, "environment variable {var} {message}"),
            ConfigError::Invalid {
                key,
                origin,
                problem,
                example,
            } => {
                write!(f, "config key {key}")?;
                if let Some(origin) = origin {
                    write!(f, " ({origin})")?;
                }
                write!(f, " {problem}")?;
                if let Some(example) = example {
                    write!(f, "; for example: {example}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Keys whose values are never repeated in an error or printed.
pub const SECRETS: &[&str] = &["admin.api_key"];

/// Examples for keys whose default does not make a good one.
const EXAMPLES: &[(&str, &str)] = &[
    ("server.bind", "\"0.0.0.0:8080\""),
    ("server.tls_cert", "\"/etc/wsauthn/fullchain.pem\""),
    ("server.tls_key", "\"/etc/wsauthn/privkey.pem\""),
    ("webauthn.rp_id", "\"example.com\""),
    ("webauthn.origins", "[\"https://chat.example.com\"]"),
    (
        "admin.api_key",
        "\"<the 64 hex digits of openssl rand -hex 32>\"",
    ),
    ("endpoints.paths.*", "\"required\""),
];

/// `tokens.lifetime_secs`, with segments that are not bare keys quoted, and the index of a
/// table in an array of tables in brackets (`proxy[0].path`).
pub fn display_key(key: &[String]) -> String {
    let mut out = String::new();
    for part in key {
        // serde_path_to_error writes an index as `[0]`, a validation problem as `0`.
        let part = part
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .unwrap_or(part);
        let index = !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
        let bare = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match (index && !out.is_empty(), bare) {
            (true, _) => out.push_str(&format!("[{part}]")),
            (false, true) if out.is_empty() => out.push_str(part),
            (false, true) => out.push_str(&format!(".{part}")),
            (false, false) if out.is_empty() => out.push_str(&format!("{part:?}")),
            (false, false) => out.push_str(&format!(".{part:?}")),
        }
    }
    out
}

/// `WSAUTHN__SERVER__BIND` for `server.bind`.
pub fn env_name(key: &[String]) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.iter()
            .map(|k| k.to_uppercase())
            .collect::<Vec<_>>()
            .join("__")
    )
}

/// Every key a file or variable may set: values that are not tables, and the open tables.
pub fn known_keys(defaults: &toml::Table) -> Vec<KeyPath> {
    fn walk(table: &toml::Table, prefix: &mut KeyPath, out: &mut Vec<KeyPath>) {
        for (key, value) in table {
            prefix.push(key.clone());
            match value {
                toml::Value::Table(t) if !super::layers::is_open(prefix) => walk(t, prefix, out),
                _ => out.push(prefix.clone()),
            }
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(defaults, &mut Vec::new(), &mut out);
    out
}

/// Levenshtein distance, for "did you mean".
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The example value for `key`: from [`EXAMPLES`], else its default.
fn example_value(key: &[String]) -> Option<String> {
    let dotted = key.join(".");
    let open = key.len() == 3 && super::layers::is_open(&key[..2]);
    let lookup = if open {
        format!("{}.*", key[..2].join("."))
    } else {
        dotted
    };
    if let Some((_, example)) = EXAMPLES.iter().find(|(k, _)| *k == lookup) {
        return Some((*example).to_owned());
    }
    let mut value = toml::Value::Table(DEFAULT_TOML.parse::<toml::Table>().ok()?);
    for part in key {
        value = match value {
            toml::Value::Table(mut t) => t.remove(part)?,
            _ => return None,
        };
    }
    match value {
        toml::Value::Table(_) => None,
        value => Some(value.to_string()),
    }
}

/// The usual example for `key`, written as `origin` writes it.
fn example(key: &[String], origin: Option<&Source>) -> Option<String> {
    render(key, example_value(key)?, origin)
}

/// `key = value in [table]`, or `WSAUTHN__TABLE__KEY=value` for a variable.
fn render(key: &[String], value: String, origin: Option<&Source>) -> Option<String> {
    let (last, table) = key.split_last()?;
    Some(match origin {
        Some(Source::Env { .. }) => {
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map_or(value.clone(), str::to_owned);
            // Quoted for a shell when it would need it.
            let plain = value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:/@".contains(c));
            match plain {
                true => format!("{}={value}", env_name(key)),
                false => format!("{}='{value}'", env_name(key)),
            }
        }
        _ if table.is_empty() => format!("{} = {value}", display_key(std::slice::from_ref(last))),
        _ => format!(
            "{} = {value} in [{}]",
            display_key(std::slice::from_ref(last)),
            display_key(table)
        ),
    })
}

/// What a value of `default`'s kind at `key` must be, in words.
fn expected(key: &[String], default: &toml::Value) -> String {
    let name = key.last().map(String::as_str).unwrap_or_default();
    let unit = [
        ("_secs", " of seconds, without a unit"),
        ("_ms", " of milliseconds, without a unit"),
        ("_bytes", " of bytes, without a unit"),
    ]
    .iter()
    .find(|(suffix, _)| name.ends_with(suffix))
    .map_or("", |(_, unit)| unit);
    match default {
        toml::Value::Integer(_) => format!("a whole number{unit}"),
        toml::Value::Float(_) => "a number".into(),
        toml::Value::String(_) => "a string in quotes".into(),
        toml::Value::Boolean(_) => "true or false".into(),
        toml::Value::Array(_) => "a list in brackets".into(),
        toml::Value::Table(_) => "a table".into(),
        toml::Value::Datetime(_) => "a date".into(),
    }
}

/// A value in words: `the string "1d"`.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the number {i}"),
        toml::Value::Float(x) => format!("the number {x}"),
        toml::Value::Boolean(b) => format!("{b}"),
        toml::Value::Array(_) => "a list".into(),
        toml::Value::Table(_) => "a table".into(),
        toml::Value::Datetime(d) => format!("the date {d}"),
    }
}

pub(super) fn unknown_key(key: &[String], defaults: &toml::Table, origin: &Source) -> ConfigError {
    let known = known_keys(defaults);
    let wanted = key.join(".");
    // A near spelling of the whole key, else the same name in another table (`bind` written
    // outside [server]).
    let closest = known
        .iter()
        .map(|k| (distance(&k.join("."), &wanted), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
        .or_else(|| {
            known
                .iter()
                .find(|k| k.last() == key.last() && k.len() > 1)
                .cloned()
        });
    let problem = match &closest {
        Some(k) => format!("is not a config key; did you mean {}?", display_key(k)),
        None => "is not a config key (config/default.toml lists every key)".into(),
    };
    ConfigError::Invalid {
        key: display_key(key),
        origin: Some(origin.clone()),
        problem,
        example: closest.and_then(|k| example(&k, Some(origin))),
    }
}

pub(super) fn wrong_type(
    key: &[String],
    value: &toml::Value,
    default: &toml::Value,
    origin: &Source,
) -> ConfigError {
    // A secret's value is not repeated, even a mistyped one.
    let described = match SECRETS.contains(&key.join(".").as_str()) {
        true => "not a string".to_owned(),
        false => describe(value),
    };
    ConfigError::Invalid {
        key: display_key(key),
        origin: Some(origin.clone()),
        problem: format!("is {described}, but it must be {}", expected(key, default)),
        example: example(key, Some(origin)),
    }
}

/// A value serde refused (an unknown variant, a number out of range).
pub(super) fn bad_value(
    key: &[String],
    message: &str,
    default: Option<toml::Value>,
    origin: Source,
) -> ConfigError {
    // serde names the choices of an enum itself; a number out of range gets the kind.
    let must = match default {
        Some(d @ toml::Value::Integer(_)) => format!(" (it must be {})", expected(key, &d)),
        _ => String::new(),
    };
    ConfigError::Invalid {
        key: display_key(key),
        problem: format!("is not accepted: {message}{must}"),
        example: example(key, Some(&origin)),
        origin: Some(origin),
    }
}

/// A validation problem, with where the key's value came from when that is known.
pub(super) fn invalid(problem: Problem, origin: Option<Source>) -> ConfigError {
    let example = match problem.example {
        Some(value) => render(&problem.key, value, origin.as_ref()),
        None => example(&problem.key, origin.as_ref()),
    };
    ConfigError::Invalid {
        key: display_key(&problem.key),
        origin,
        problem: problem.message,
        example,
    }
}
