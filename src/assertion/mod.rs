//! Sign-in verification done here, WebAuthn L3 §7.2 step by step, with ring for signatures;
//! webauthn-rs keeps registration (attestation, COSE parsing) and is the reference the tests
//! hold this module to (`tests/differential.rs`).
//!
//! Why: webauthn-rs 0.6 checks ES256 with the pure-Rust `p256`, several times slower than
//! OpenSSL's P-256, and it was most of a sign-in's cost (docs/benchmarks.md); it cannot take
//! another backend, and it refuses EdDSA keys.
//!
//! Where each §7.2 step (numbered as in the L3 Candidate Recommendation) is done:
//!
//! | step | check | where |
//! |---|---|---|
//! | 5 | the credential is one of `allowCredentials` (username sign-in) | [`Verifier::finish_login`] |
//! | 6 | the user owns the credential; a usernameless user handle names its owner | `ceremony/login.rs`, `Store::record_sign_in` |
//! | 7–9 | client data is UTF-8 JSON of the right shape | `client_data.rs` |
//! | 10 | `type` is `webauthn.get` | [`Verifier::verify`] |
//! | 11 | `challenge` is the base64url of this ceremony's challenge, exactly | [`Verifier::verify`] |
//! | 12 | `origin` is one of `webauthn.origins`, exactly | [`Verifier::verify`] |
//! | 13 | no `topOrigin` and no `crossOrigin: true` (we never expect to be framed) | [`Verifier::verify`] |
//! | §6.1 | authenticator data is well formed, ends where its flags say, has no AT | `authdata.rs` |
//! | 14 | `rpIdHash` is SHA-256 of the RP id | [`Verifier::verify`] |
//! | 15 | UP is set | [`Verifier::verify`] |
//! | 16 | UV is set (passkey sign-in always requires it) | [`Verifier::verify`] |
//! | 17 | BS is not set without BE | [`Verifier::verify`] |
//! | 18 | BE as registered (a policy may allow it to become set) | [`Verifier::verify`] |
//! | 19 | extensions, if any, are a well-formed CBOR map (none is acted on) | `authdata.rs` |
//! | 20–21 | the signature over `authData ‖ SHA-256(clientDataJSON)` verifies (ring) | `key.rs` |
//! | 22 | a non-zero counter increases | [`Verifier::verify`], again atomically in `Store::record_sign_in` |
//!
//! Invariants: nothing here reads the clock, the store or the network; a [`Verified`] is only
//! made after every check above passed. Domain code: no HTTP, no sockets.

mod authdata;
mod client_data;
mod key;
mod request;
#[cfg(test)]
mod tests;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use openssl::sha::Sha256;
use webauthn_rs::prelude::{PublicKeyCredential, Url};

use crate::config::Config;
use crate::error::Error;
use authdata::{BE, BS, UP, UV};
use client_data::ClientData;

pub use key::{Algorithm, KeyError, PublicKey};
pub use request::{AssertionState, Challenge, SignInPasskey};

/// Verifies assertions for one relying party. Built once from the config; cheap to share.
pub struct Verifier {
    rp_id: String,
    rp_id_hash: [u8; 32],
    /// The accepted `origin` strings: each configured origin's serialization
    /// (`scheme://host[:port]`, the form browsers write into client data).
    origins: Vec<String>,
    timeout_ms: u32,
}

/// What a ceremony allows beyond the fixed checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// Step 16. Passkey sign-in (both kinds) requires user verification.
    pub user_verification_required: bool,
    /// Step 18: whether a passkey registered without BE may now report it (webauthn-rs allows
    /// this for sign-in with a username and not for usernameless sign-in; we keep both).
    pub allow_backup_eligible_upgrade: bool,
}

impl Policy {
    /// Sign-in with a username (webauthn-rs's `start_passkey_authentication`).
    pub const USERNAME: Policy = Policy {
        user_verification_required: true,
        allow_backup_eligible_upgrade: true,
    };
    /// Usernameless sign-in (webauthn-rs's `start_discoverable_authentication`).
    pub const DISCOVERABLE: Policy = Policy {
        user_verification_required: true,
        allow_backup_eligible_upgrade: false,
    };
}

/// What the server knew of a credential before this assertion.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KnownCredential {
    pub cred_id: Vec<u8>,
    pub key: PublicKey,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

/// A verified assertion: what `Store::record_sign_in` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub cred_id: Vec<u8>,
    pub counter: u32,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

/// Why an assertion was refused: one variant per check, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Step 5 (or 6): the credential is not the one this ceremony may use.
    NotAllowed,
    /// Steps 7–9.
    ClientDataMalformed,
    /// Step 10.
    WrongType,
    /// Step 11.
    ChallengeMismatch,
    /// Step 12.
    OriginNotAllowed,
    /// Step 13.
    CrossOrigin,
    /// §6.1: shorter than 37 bytes.
    AuthDataMalformed,
    /// §6.1: AT set in an assertion.
    AttestedDataInAssertion,
    /// §6.1 / step 19: ED set but no well-formed extensions map.
    ExtensionsMalformed,
    /// §6.1: bytes after the counter (ED clear) or after the extensions (ED set).
    TrailingAuthData,
    /// Step 14.
    RpIdHashMismatch,
    /// Step 15.
    UserNotPresent,
    /// Step 16.
    UserNotVerified,
    /// Step 17, and (webauthn-rs's rule) BS before the stored credential is known eligible.
    BackupStateWithoutEligibility,
    /// Step 18.
    BackupEligibilityChanged,
    /// The stored passkey has no key sign-in can use (never stored by registration).
    UnusableKey,
    /// Step 21.
    SignatureInvalid,
    /// Step 22.
    CounterNotIncreased,
}

impl Rejection {
    /// The reason clients see (`verification_failed`), worded as before this module existed.
    pub fn reason(self) -> &'static str {
        use Rejection as R;
        match self {
            R::NotAllowed => "this passkey is not allowed for this sign-in",
            R::ClientDataMalformed => "the client data is not valid JSON of the expected shape",
            R::WrongType => "the client data is for another kind of ceremony",
            R::ChallengeMismatch => "the challenge does not match this ceremony",
            R::OriginNotAllowed => "the origin is not one this server accepts",
            R::CrossOrigin => "the ceremony ran in a cross-origin frame, which is not allowed",
            R::AuthDataMalformed => "the authenticator data is too short",
            R::AttestedDataInAssertion => {
                "the authenticator data carries attested credential data, which a sign-in never has"
            }
            R::ExtensionsMalformed => "the authenticator data's extensions are malformed",
            R::TrailingAuthData => "the authenticator data has bytes after its end",
            R::RpIdHashMismatch => "the relying party id does not match",
            R::UserNotPresent => "the authenticator did not report user presence",
            R::UserNotVerified => "user verification is required",
            R::BackupStateWithoutEligibility => {
                "the passkey reports being backed up without being backup eligible"
            }
            R::BackupEligibilityChanged => "the passkey's backup eligibility changed",
            R::UnusableKey => "the passkey uses an algorithm this server does not accept",
            R::SignatureInvalid => "the signature is invalid",
            R::CounterNotIncreased => {
                "the signature counter did not increase; the passkey may be cloned"
            }
        }
    }
}

/// SHA-256 through an incremental context: OpenSSL 3's one-shot `SHA256()` looks the digest
/// up on every call and costs four times as much for short inputs (see `tokens::secret`).
fn sha256(data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(data);
    hasher.finish()
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Error {
        Error::VerificationFailed(r.reason())
    }
}

impl Verifier {
    pub fn from_config(config: &Config) -> Result<Verifier, Error> {
        let origins = config
            .origins()
            .map_err(|e| Error::internal(format!("{e}")))?;
        Verifier::new(&config.webauthn.rp_id, &origins, config.ceremony_timeout())
    }

    pub fn new(
        rp_id: &str,
        origins: &[Url],
        timeout: std::time::Duration,
    ) -> Result<Verifier, Error> {
        Ok(Verifier {
            rp_id: rp_id.to_owned(),
            rp_id_hash: sha256(rp_id.as_bytes()),
            origins: origins
                .iter()
                .map(|o| o.origin().ascii_serialization())
                .collect(),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        })
    }

    /// §7.2 steps 7–22 for `response`, answering `challenge`, from the credential `known`
    /// (whose id the caller matched to `response.rawId`, steps 5–6).
    pub fn verify(
        &self,
        response: &PublicKeyCredential,
        challenge: &Challenge,
        policy: Policy,
        known: &KnownCredential,
    ) -> Result<Verified, Rejection> {
        if response.raw_id != known.cred_id {
            return Err(Rejection::NotAllowed);
        }
        let raw = &response.response;
        // Steps 7–9.
        let client = ClientData::parse(&raw.client_data_json)?;
        // Step 10.
        if client.type_ != "webauthn.get" {
            return Err(Rejection::WrongType);
        }
        // Step 11: the string itself, so only the canonical unpadded base64url matches.
        let mut expected = [0u8; 43];
        let written = URL_SAFE_NO_PAD
            .encode_slice(challenge.as_bytes(), &mut expected)
            .map_err(|_| Rejection::ChallengeMismatch)?;
        if client.challenge.as_bytes() != &expected[..written] {
            return Err(Rejection::ChallengeMismatch);
        }
        // Step 12.
        if !self.origins.iter().any(|o| *o == client.origin) {
            return Err(Rejection::OriginNotAllowed);
        }
        // Step 13: we never expect to run in a cross-origin iframe.
        if client.cross_origin == Some(true) || client.top_origin.is_some() {
            return Err(Rejection::CrossOrigin);
        }
        let auth = authdata::parse(&raw.authenticator_data)?;
        // Step 14.
        if *auth.rp_id_hash != self.rp_id_hash {
            return Err(Rejection::RpIdHashMismatch);
        }
        // Step 15.
        if !auth.has(UP) {
            return Err(Rejection::UserNotPresent);
        }
        // Step 16.
        if policy.user_verification_required && !auth.has(UV) {
            return Err(Rejection::UserNotVerified);
        }
        // Step 17.
        let (be, bs) = (auth.has(BE), auth.has(BS));
        if bs && !be {
            return Err(Rejection::BackupStateWithoutEligibility);
        }
        // Step 18: eligibility may not go away, and may only appear where the policy allows;
        // webauthn-rs also refuses BS until the stored credential is known eligible.
        if be != known.backup_eligible && !(policy.allow_backup_eligible_upgrade && be) {
            return Err(Rejection::BackupEligibilityChanged);
        }
        if bs && !known.backup_eligible {
            return Err(Rejection::BackupStateWithoutEligibility);
        }
        // Step 19: extensions were checked for shape in authdata::parse; none is acted on.
        // Steps 20–21.
        let client_data_hash = sha256(&raw.client_data_json);
        if !known
            .key
            .verify(&raw.authenticator_data, &client_data_hash, &raw.signature)
        {
            return Err(Rejection::SignatureInvalid);
        }
        // Step 22.
        if (auth.counter > 0 || known.counter > 0) && auth.counter <= known.counter {
            return Err(Rejection::CounterNotIncreased);
        }
        Ok(Verified {
            cred_id: known.cred_id.clone(),
            counter: auth.counter,
            user_verified: auth.has(UV),
            backup_eligible: be,
            backup_state: bs,
        })
    }
}
