//! Passkey ceremonies: registration, sign-in with a username, and usernameless sign-in.
//!
//! webauthn-rs verifies registrations and `crate::assertion` verifies sign-ins (signatures,
//! challenges, origins, flags); this module owns what neither does: single-use, expiring,
//! bounded ceremony state ([`pending`]), one account per credential id (the store's
//! transactions), the user-handle check of usernameless sign-in, counter persistence, the
//! `topOrigin` check of registration, and issuing tokens.
//! It knows nothing of sockets or HTTP: `ws/` and `http/` call it.

mod login;
pub mod pending;
mod register;

use std::sync::Arc;

use serde::Deserialize;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder, WebauthnError};

use crate::assertion::Verifier;
use crate::clock::SharedClock;
use crate::config::{Config, ResidentKey};
use crate::error::Error;
use crate::events::Events;
use crate::store::{Store, UserRecord};
use crate::tokens::{IssuedToken, SessionMeta, TokenInfo, TokenTable};

pub use pending::{CeremonyKind, PendingTable};

/// A finished ceremony: who signed in, and the token if one was asked for.
#[derive(Debug)]
pub struct SignedIn {
    pub user: UserRecord,
    pub token: Option<(IssuedToken, TokenInfo)>,
}

/// The ceremony service. Cheap to clone.
#[derive(Clone)]
pub struct Ceremonies {
    inner: Arc<Inner>,
}

struct Inner {
    webauthn: Webauthn,
    /// Verifies sign-ins (webauthn-rs only registers).
    assertions: Verifier,
    store: Store,
    tokens: TokenTable,
    pending: PendingTable,
    clock: SharedClock,
    events: Events,
    resident_key: ResidentKey,
    max_username_chars: usize,
    max_passkeys: u32,
}

impl Ceremonies {
    pub fn new(
        config: &Config,
        store: Store,
        tokens: TokenTable,
        clock: SharedClock,
        events: Events,
    ) -> Result<Self, Error> {
        let webauthn = build_webauthn(config)?;
        let assertions = Verifier::from_config(config)?;
        Ok(Ceremonies {
            inner: Arc::new(Inner {
                webauthn,
                assertions,
                store,
                tokens,
                pending: PendingTable::new(
                    config.limits.max_pending_ceremonies,
                    config.webauthn.ceremony_timeout_secs,
                    clock.clone(),
                ),
                clock,
                events,
                resident_key: config.webauthn.resident_key,
                max_username_chars: config.limits.max_username_chars,
                max_passkeys: config.limits.max_passkeys_per_user,
            }),
        })
    }

    pub fn pending(&self) -> &PendingTable {
        &self.inner.pending
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now_secs(&self) -> u64 {
        self.inner.clock.now_ms() / 1000
    }

    /// Issues a token when asked, and wraps up a successful ceremony.
    fn signed_in(
        &self,
        user: UserRecord,
        want_token: bool,
        meta: &SessionMeta,
    ) -> Result<SignedIn, Error> {
        let token = if want_token {
            Some(
                self.inner
                    .tokens
                    .issue(Arc::new(user.view()), meta.clone())?,
            )
        } else {
            None
        };
        Ok(SignedIn { user, token })
    }
}

/// Builds the webauthn-rs instance from the config (origins, rp id and name, timeout).
pub fn build_webauthn(config: &Config) -> Result<Webauthn, Error> {
    let origins = config
        .origins()
        .map_err(|e| Error::internal(format!("{e}")))?;
    let (first, rest) = origins
        .split_first()
        .ok_or_else(|| Error::internal("no origin configured"))?;
    let mut builder = WebauthnBuilder::new(&config.webauthn.rp_id, first)
        .map_err(|e| Error::internal(format!("webauthn config: {e}")))?
        .rp_name(&config.webauthn.rp_name)
        .timeout(config.ceremony_timeout());
    for origin in rest {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("webauthn config: {e}")))
}

/// Checks a username or display name: non-empty after trimming, not too long, no control
/// characters. Returns it trimmed.
fn clean_name(field: &str, value: &str, max_chars: usize) -> Result<String, Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::bad_request(format!(
            "\"{field}\" must not be empty."
        )));
    }
    if trimmed.chars().count() > max_chars {
        return Err(Error::bad_request(format!(
            "\"{field}\" is longer than {max_chars} characters."
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::bad_request(format!(
            "\"{field}\" must not contain control characters."
        )));
    }
    Ok(trimmed.to_owned())
}

/// The members of client data that webauthn-rs does not check.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientDataExtra {
    #[serde(default)]
    cross_origin: Option<bool>,
    #[serde(default)]
    top_origin: Option<Url>,
}

/// Refuses client data from a cross-origin iframe: `crossOrigin: true` or any `topOrigin`.
/// (webauthn-rs refuses `crossOrigin: true` itself but ignores `topOrigin`.)
fn check_same_origin(client_data_json: &[u8]) -> Result<(), Error> {
    let extra: ClientDataExtra = serde_json::from_slice(client_data_json)
        .map_err(|_| Error::VerificationFailed("the client data is not valid JSON"))?;
    if extra.cross_origin == Some(true) || extra.top_origin.is_some() {
        return Err(Error::VerificationFailed(
            "the ceremony ran in a cross-origin frame, which is not allowed",
        ));
    }
    Ok(())
}

/// Turns a webauthn-rs verification error into our error, with a reason a developer can act on.
fn verification_error(e: WebauthnError) -> Error {
    use WebauthnError as W;
    let reason = match e {
        W::MismatchedChallenge => "the challenge does not match this ceremony",
        W::InvalidRPOrigin => "the origin is not one this server accepts",
        W::InvalidRPIDHash => "the relying party id does not match",
        W::UserNotPresent => "the authenticator did not report user presence",
        W::UserNotVerified => "user verification is required",
        W::InvalidClientDataType => "the client data is for another kind of ceremony",
        W::CredentialPossibleCompromise => {
            "the signature counter did not increase; the passkey may be cloned"
        }
        W::CredentialCrossOrigin => {
            "the ceremony ran in a cross-origin frame, which is not allowed"
        }
        W::AuthenticationFailure | W::SignatureInvalid => "the signature is invalid",
        W::CredentialNotFound => "this passkey is not allowed for this sign-in",
        W::CredentialInsecureCryptography | W::COSEKeyInvalidAlgorithm => {
            "the passkey uses an algorithm this server does not accept"
        }
        other => {
            tracing::debug!(error = %other, "credential rejected by webauthn-rs");
            "the credential is malformed or does not verify"
        }
    };
    Error::VerificationFailed(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(clean_name("username", "  bob ", 10).unwrap(), "bob");
        assert!(clean_name("username", "   ", 10).is_err());
        assert!(clean_name("username", "a\u{0}b", 10).is_err());
        assert!(clean_name("username", &"é".repeat(11), 10).is_err());
        assert!(clean_name("username", &"é".repeat(10), 10).is_ok());
    }

    #[test]
    fn cross_origin_client_data_is_refused() {
        let ok = br#"{"type":"webauthn.get","challenge":"x","origin":"http://localhost:8080","crossOrigin":false}"#;
        assert!(check_same_origin(ok).is_ok());
        let cross = br#"{"type":"webauthn.get","challenge":"x","origin":"http://localhost:8080","crossOrigin":true}"#;
        assert!(check_same_origin(cross).is_err());
        let top = br#"{"type":"webauthn.get","challenge":"x","origin":"http://localhost:8080","topOrigin":"https://evil.example"}"#;
        assert!(check_same_origin(top).is_err());
        assert!(check_same_origin(b"not json").is_err());
    }
}
