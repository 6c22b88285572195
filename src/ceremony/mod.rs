//! Passkey ceremonies: registration, sign-in with a username, and usernameless sign-in.
//!
//! webauthn-rs verifies registrations and `crate::assertion` verifies sign-ins (signatures,
//! challenges, origins, flags); this module owns what neither does: single-use, expiring,
//! bounded ceremony state ([`pending`]), one account per credential id (the store's
//! transactions), the user-handle check of usernameless sign-in, counter persistence, the
//! `topOrigin` check of registration, and issuing tokens.
//! It knows nothing of sockets or HTTP: `ws/` and `http/` call it.

mod attempts;
mod login;
mod parked;
pub mod pending;
mod register;

use std::sync::Arc;

use serde::Deserialize;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder, WebauthnError};

use crate::assertion::Verifier;
use crate::clock::SharedClock;
use crate::config::{Config, ResidentKey};
use crate::endpoints::Transport;
use crate::error::Error;
use crate::events::Events;
use crate::store::{SessionRecord, Store, UserRecord};
use crate::tokens::{IssuedToken, PendingSession, SessionMeta, TokenInfo, TokenTable};

pub use pending::{CeremonyKind, PendingTable};

/// A finished ceremony: who signed in, and the session it opened.
#[derive(Debug)]
pub struct SignedIn {
    pub user: UserRecord,
    /// The new session, with its token when one was asked for. `None` when the ceremony opened
    /// none: over HTTP without a token, or a passkey added from a socket that keeps its session.
    pub session: Option<(Option<IssuedToken>, TokenInfo)>,
}

impl SignedIn {
    /// The token handed out, if any.
    pub fn token(&self) -> Option<(&IssuedToken, &TokenInfo)> {
        match &self.session {
            Some((Some(token), info)) => Some((token, info)),
            _ => None,
        }
    }
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
    /// Ceremonies begun per client address, over every connection.
    begins: crate::ratelimit::PerAddress,
    /// Failed sign-ins per account (backoff).
    attempts: attempts::SignInAttempts,
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
                    pending::PendingLimits {
                        cap: config.limits.max_pending_ceremonies,
                        per_address: config.limits.pending_ceremonies_per_address,
                        timeout_secs: config.webauthn.ceremony_timeout_secs,
                        pressure_timeout_secs: config.limits.ceremony_timeout_under_pressure_secs,
                    },
                    clock.clone(),
                ),
                attempts: attempts::SignInAttempts::new(
                    config.limits.failed_sign_ins_before_backoff,
                    config.limits.sign_in_backoff_max_secs,
                ),
                begins: crate::ratelimit::PerAddress::new(
                    config.limits.ceremonies_per_minute_per_address,
                    60,
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

    /// Counts a begin against its address's per-minute allowance.
    fn allow_begin(&self, from: Option<std::net::IpAddr>) -> Result<(), Error> {
        match from {
            Some(ip) if !self.inner.begins.try_take(ip, std::time::Instant::now()) => {
                Err(Error::RateLimited(
                    "Too many sign-ins from your address; wait a minute and try again.",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Forgets idle per-address allowances and ended backoffs (called by the periodic sweep).
    pub fn sweep_allowances(&self) -> usize {
        self.inner.begins.sweep(std::time::Instant::now())
            + self.inner.attempts.sweep(self.inner.clock.now_ms())
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now_secs(&self) -> u64 {
        self.inner.clock.now_ms() / 1000
    }

    /// Opens the session a successful ceremony grants (see [`Ceremonies::opening`]), its
    /// record written by the token table.
    async fn signed_in(
        &self,
        user: UserRecord,
        credential_id: &str,
        want_token: bool,
        via: Transport,
        keeps_session: bool,
        meta: &SessionMeta,
    ) -> Result<SignedIn, Error> {
        let opening = self.opening(&user, credential_id, want_token, via, keeps_session, meta)?;
        self.opened(user, opening, false).await
    }

    /// The session a successful ceremony grants: with a token when one was asked for;
    /// socket-only on a socket that asked for none (every signed-in socket has a session that
    /// is listed, expires and can be revoked); none over HTTP without a token, or when a socket
    /// added a passkey to the account it is signed in as (it keeps its session). Made before
    /// the ceremony's last write, so that write can carry a token's record
    /// ([`Opening::record`]).
    fn opening(
        &self,
        user: &UserRecord,
        credential_id: &str,
        want_token: bool,
        via: Transport,
        keeps_session: bool,
        meta: &SessionMeta,
    ) -> Result<Opening, Error> {
        let meta = SessionMeta {
            credential_id: Some(credential_id.to_owned()),
            ..meta.clone()
        };
        Ok(if want_token {
            Opening::Token(self.inner.tokens.prepare(Arc::new(user.view()), meta)?)
        } else if via == Transport::WebSocket && !keeps_session {
            Opening::Socket(meta)
        } else {
            Opening::None
        })
    }

    /// Opens what [`Ceremonies::opening`] made; `written` when the token's record is in the
    /// store already. On a store several nodes share, a token is handed out only once its
    /// session has committed, so it works on every node at once.
    async fn opened(
        &self,
        user: UserRecord,
        opening: Opening,
        written: bool,
    ) -> Result<SignedIn, Error> {
        let tokens = &self.inner.tokens;
        let session = match opening {
            Opening::Token(pending) => {
                let opened = match written {
                    true => tokens.admit(pending),
                    false => tokens.open_prepared(pending),
                };
                let opened = match opened {
                    Ok(opened) => opened,
                    Err(e) => {
                        // Refused after its record was written: the record's removal commits
                        // before the refusal is answered.
                        if written && self.store().is_shared() {
                            if let Err(flush) = self.store().flush().await {
                                flush.log("remove a refused session's record");
                            }
                        }
                        return Err(e);
                    }
                };
                if self.store().is_shared() && opened.queued_writes {
                    self.store().flush().await?;
                }
                Some((Some(opened.token), opened.info))
            }
            Opening::Socket(meta) => {
                Some((None, tokens.issue_for_socket(Arc::new(user.view()), meta)?))
            }
            Opening::None => None,
        };
        Ok(SignedIn { user, session })
    }
}

/// What session a successful ceremony opens (see [`Ceremonies::opening`]).
enum Opening {
    Token(PendingSession),
    Socket(SessionMeta),
    None,
}

impl Opening {
    /// The record a token's session is stored as, for the ceremony's last write to carry.
    fn record(&self) -> Option<([u8; 32], SessionRecord)> {
        match self {
            Opening::Token(pending) => Some((*pending.hash(), pending.record())),
            _ => None,
        }
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
