//! `wsauthn --check-config`: the effective configuration as TOML that can be pasted into a
//! config file. Secrets ([`super::explain::SECRETS`]) print as [`crate::admin::REDACTED`],
//! which the loader refuses, so a pasted copy cannot silently run with a placeholder.

use super::Config;

impl Config {
    /// Every key with the value in force, as TOML.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let body = toml::to_string(self)?;
        Ok(format!(
            "# wsauthn: the effective configuration (defaults, file and environment merged).\n\
             # Secrets are shown as {:?}: set them again where you paste this.\n\n{body}",
            crate::admin::REDACTED
        ))
    }
}
