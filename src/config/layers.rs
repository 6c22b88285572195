//! The three layers of a configuration (embedded defaults, a file, the environment) merged key
//! by key, remembering where each value came from, and the checks that need only names and
//! types: unknown keys, variables that look like ours but name no key, a value of the wrong
//! type.
//!
//! Invariant: every key of a merged table that the defaults do not have is refused here, before
//! serde sees it, so the error can say where it was written and what was meant.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::explain::{self, ConfigError, KeyPath, Source};
use super::spans::Node;
use super::validate::Problem;
use super::{Config, DEFAULT_TOML, ENV_PREFIX};

/// Tables whose keys are the operator's (paths), not ours.
const OPEN_TABLES: &[&[&str]] = &[&["endpoints", "paths"]];

/// The merged table and the source of every value in it.
pub(super) struct Layers {
    merged: toml::Table,
    defaults: toml::Table,
    sources: BTreeMap<KeyPath, Source>,
}

impl Layers {
    pub(super) fn build(
        file: Option<(PathBuf, String)>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Layers, ConfigError> {
        let defaults = DEFAULT_TOML
            .parse::<toml::Table>()
            .map_err(|e| parse_error(Path::new("<embedded default>"), DEFAULT_TOML, &e))?;
        let mut layers = Layers {
            merged: defaults.clone(),
            defaults,
            sources: BTreeMap::new(),
        };
        if let Some((path, text)) = file {
            layers.add_file(&path, &text)?;
        }
        let mut env: Vec<(String, String)> = env.collect();
        // Deterministic: the same environment gives the same first error.
        env.sort();
        for (var, value) in env {
            layers.add_env(&var, &value)?;
        }
        Ok(layers)
    }

    fn add_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let root: Node = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        let line = |span: &Option<Range<usize>>| span.as_ref().map(|s| line_of(text, s.start));
        let mut leaves = Vec::new();
        root.leaves(&mut Vec::new(), &mut leaves);
        for (key, value, span) in leaves {
            let source = Source::File {
                path: path.to_owned(),
                line: line(&span),
            };
            self.check_and_set(key, value, source)?;
        }
        Ok(())
    }

    fn add_env(&mut self, var: &str, value: &str) -> Result<(), ConfigError> {
        let Some(key) = env_key(var, &self.defaults)? else {
            return Ok(());
        };
        let expected = self.default_at(&key);
        let value = env_value(value, expected.as_ref());
        let source = Source::Env {
            var: var.to_owned(),
        };
        self.check_and_set(key, value, source)
    }

    /// Refuses a key the defaults do not know and a value of another type than the default's,
    /// then sets it.
    fn check_and_set(
        &mut self,
        key: KeyPath,
        value: toml::Value,
        source: Source,
    ) -> Result<(), ConfigError> {
        let Some(default) = self.default_at(&key) else {
            return Err(explain::unknown_key(&key, &self.defaults, &source));
        };
        if !same_kind(&default, &value) {
            return Err(explain::wrong_type(&key, &value, &default, &source));
        }
        // A table replaces the merged one only key by key (a file's [endpoints.paths] adds
        // paths); any other value replaces what was there.
        let Some((last, parents)) = key.split_last() else {
            return Err(explain::unknown_key(&key, &self.defaults, &source));
        };
        let mut cursor = &mut self.merged;
        for part in parents {
            let next = cursor
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = match next {
                toml::Value::Table(t) => t,
                _ => return Err(explain::wrong_type(&key, &value, &default, &source)),
            };
        }
        match (cursor.get_mut(last), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(new)) => {
                for (k, v) in new {
                    let mut child = key.clone();
                    child.push(k.clone());
                    self.sources.insert(child, source.clone());
                    existing.insert(k, v);
                }
            }
            (_, value) => {
                self.sources.retain(|k, _| !k.starts_with(&key));
                self.sources.insert(key.clone(), source);
                cursor.insert(last.clone(), value);
            }
        }
        Ok(())
    }

    /// The default value at `key`, or for a key of an open table a value of the kind it takes.
    fn default_at(&self, key: &[String]) -> Option<toml::Value> {
        let mut value = toml::Value::Table(self.defaults.clone());
        for (depth, part) in key.iter().enumerate() {
            let table = match value {
                toml::Value::Table(t) => t,
                _ => return None,
            };
            let open = OPEN_TABLES.iter().any(|t| key[..depth] == **t);
            value = match table.get(part) {
                Some(v) => v.clone(),
                // Any string key; the value's kind is that of the default entries.
                None if open => table.values().next()?.clone(),
                None => return None,
            };
        }
        Some(value)
    }

    /// Deserializes the merged table; a failure names the key that failed.
    pub(super) fn deserialize(&self) -> Result<Config, ConfigError> {
        let value = toml::Value::Table(self.merged.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let key: KeyPath = e.path().iter().map(|segment| segment.to_string()).collect();
            let default = self.default_at(&key);
            explain::bad_value(&key, e.into_inner().message(), default, self.source(&key))
        })
    }

    /// A validation problem with the source of its key.
    pub(super) fn explain(&self, problem: Problem) -> ConfigError {
        let source = self.source(&problem.key);
        explain::invalid(problem, Some(source))
    }

    /// Where the value at `key` came from: the key itself, else the nearest enclosing table
    /// that was set whole, else the defaults.
    pub(super) fn source(&self, key: &[String]) -> Source {
        (0..=key.len())
            .rev()
            .find_map(|n| self.sources.get(&key[..n]))
            .cloned()
            .unwrap_or(Source::Default)
    }
}

fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    ConfigError::Parse {
        path: path.to_owned(),
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().to_owned(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Integers are integers and floats floats; otherwise the TOML types must agree.
fn same_kind(a: &toml::Value, b: &toml::Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// The key a `WSAUTHN…` variable sets: `None` for variables that are not config overrides,
/// an error for one that looks like an override but names no key.
fn env_key(var: &str, defaults: &toml::Table) -> Result<Option<KeyPath>, ConfigError> {
    let known = explain::known_keys(defaults);
    let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
        // `WSAUTHN_SERVER_BIND`: one underscore where two belong. Other WSAUTHN_ variables
        // (a shell's WSAUTHN_ADMIN_KEY, the tests' own) are left alone.
        if let Some(rest) = var.strip_prefix("WSAUTHN_") {
            let flat = rest.to_lowercase().replace("__", "_");
            if let Some(key) = known
                .iter()
                .filter(|k| !is_open(k))
                .find(|k| explain::distance(&k.join("_"), &flat) <= 2)
            {
                return Err(ConfigError::Env {
                    var: var.to_owned(),
                    message: format!(
                        "looks like a config override but separates its words with single \
                         underscores; overrides are {ENV_PREFIX}SECTION__KEY, for example {}",
                        explain::env_name(key)
                    ),
                });
            }
        }
        return Ok(None);
    };
    let key: KeyPath = rest.split("__").map(str::to_lowercase).collect();
    let open = OPEN_TABLES
        .iter()
        .any(|t| key.len() == t.len() + 1 && key.starts_with(&to_path(t)));
    if key.iter().any(String::is_empty) || !(known.contains(&key) || open) {
        let wanted = key.join("__");
        let closest = known
            .iter()
            .min_by_key(|k| explain::distance(&k.join("__"), &wanted))
            .map(|k| format!("; did you mean {}?", explain::env_name(k)))
            .unwrap_or_default();
        return Err(ConfigError::Env {
            var: var.to_owned(),
            message: format!(
                "names no config key (overrides are {ENV_PREFIX}SECTION__KEY, with the names of \
                 config/default.toml){closest}"
            ),
        });
    }
    Ok(Some(key))
}

/// Whether `key` is one of [`OPEN_TABLES`].
pub(super) fn is_open(key: &[String]) -> bool {
    OPEN_TABLES
        .iter()
        .any(|t| t.len() == key.len() && t.iter().zip(key).all(|(a, b)| a == b))
}

fn to_path(t: &[&str]) -> KeyPath {
    t.iter().map(|s| s.to_string()).collect()
}

/// An environment value: a string where the default is one (so `WSAUTHN__SERVER__BIND` and
/// an `api_key` of digits stay strings), else read as TOML (numbers, booleans, arrays) and as
/// a string when it is not TOML.
fn env_value(value: &str, expected: Option<&toml::Value>) -> toml::Value {
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match (expected, parsed) {
        (Some(toml::Value::String(_)), Some(toml::Value::String(s))) => toml::Value::String(s),
        (Some(toml::Value::String(_)), _) => toml::Value::String(value.to_owned()),
        (_, Some(parsed)) => parsed,
        (_, None) => toml::Value::String(value.to_owned()),
    }
}
