//! The backend API's key (`admin.api_key`): compared in constant time, never printed.
//!
//! Invariants: an empty key turns the backend API off and matches nothing; a set key is at least
//! [`MIN_KEY_CHARS`] printable ASCII characters without spaces (so it travels in an
//! `Authorization` header unchanged); `Debug` writes `ApiKey(…)`, so `--check-config` and logs
//! never show it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Shortest key accepted: 32 characters, such as `openssl rand -hex 16` gives; 64 hex digits
/// (`openssl rand -hex 32`) are better.
pub const MIN_KEY_CHARS: usize = 32;

/// What a set key serializes as (`--check-config`); refused as a key.
pub const REDACTED: &str = "<redacted>";

#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// Whether the backend API is on.
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is the key, in time that depends on neither value: both sides are
    /// hashed (hiding the lengths) and the hashes compared with OpenSSL's `CRYPTO_memcmp`.
    pub fn matches(&self, presented: &str) -> bool {
        if !self.is_set() {
            return false;
        }
        let expected = openssl::sha::sha256(self.0.as_bytes());
        let presented = openssl::sha::sha256(presented.as_bytes());
        openssl::memcmp::eq(&expected, &presented)
    }

    /// Why the key cannot be used, as a predicate of the config key (the key itself is never
    /// shown).
    pub fn check(&self) -> Result<(), String> {
        if self.0 == REDACTED {
            return Err(format!(
                "is {REDACTED:?}, the placeholder --check-config prints: set the real key, \
                 preferably from the environment (WSAUTHN__ADMIN__API_KEY)"
            ));
        }
        let printable = self.0.bytes().all(|b| b.is_ascii_graphic());
        if self.is_set() && (self.0.len() < MIN_KEY_CHARS || !printable) {
            return Err(format!(
                "must be empty (no backend API) or at least {MIN_KEY_CHARS} printable ASCII \
                 characters without spaces, such as `openssl rand -hex 32` prints"
            ));
        }
        Ok(())
    }
}

/// A set key serializes as [`REDACTED`], an unset one as `""`.
impl Serialize for ApiKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.is_set() { REDACTED } else { "" })
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "ApiKey(…)"
        } else {
            "ApiKey(unset)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn only_the_key_itself_matches_and_an_empty_key_matches_nothing() {
        let key = ApiKey::new(KEY);
        assert!(key.matches(KEY));
        assert!(!key.matches(&KEY[..31]));
        assert!(!key.matches(&format!("{KEY}0")));
        assert!(!key.matches(&KEY.to_uppercase()));
        assert!(!key.matches(""));
        assert!(!ApiKey::default().matches(""));
    }

    #[test]
    fn the_key_never_prints() {
        assert_eq!(format!("{:?}", ApiKey::new(KEY)), "ApiKey(…)");
        assert_eq!(format!("{:?}", ApiKey::default()), "ApiKey(unset)");
    }

    #[test]
    fn short_or_unprintable_keys_are_refused_with_the_config_key_named() {
        assert!(ApiKey::default().check().is_ok());
        assert!(ApiKey::new(KEY).check().is_ok());
        let short = crate::Config::from_layers(
            None,
            [("WSAUTHN__ADMIN__API_KEY".to_owned(), "hunter2".to_owned())].into_iter(),
        )
        .unwrap_err()
        .to_string();
        assert!(short.contains("admin.api_key"), "{short}");
        assert!(short.contains("WSAUTHN__ADMIN__API_KEY"), "{short}");
        assert!(!short.contains("hunter2"), "the key is not shown: {short}");
        assert!(ApiKey::new(REDACTED).check().is_err(), "the placeholder");
        assert!(ApiKey::new(format!("{KEY} x")).check().is_err(), "a space");
        assert!(
            ApiKey::new(format!("{KEY}\u{e9}")).check().is_err(),
            "non-ASCII"
        );
    }
}
