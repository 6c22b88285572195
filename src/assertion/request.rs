//! The two ends of a sign-in around [`Verifier::verify`]: `start_*` makes the challenge, the
//! request options for the browser (the JSON webauthn-rs would send, field for field) and the
//! [`AssertionState`] the server keeps; `finish_*` finds the credential the assertion names
//! (§7.2 step 5) and verifies it against that state.
//!
//! The state holds, per allowed credential, only what verification reads (id, decoded public
//! key, counter, backup flags), read from the store at `login.begin` without decoding the rest
//! of each passkey ([`SignInPasskey`], `Store::sign_in_passkeys`).

use std::fmt;

use webauthn_rs::prelude::{Credential, PublicKeyCredential};
use webauthn_rs_proto::{
    AllowCredentials, AuthenticatorTransport, Mediation, PublicKeyCredentialRequestOptions,
    RequestAuthenticationExtensions, RequestChallengeResponse, UserVerificationPolicy,
};

use super::{KnownCredential, Policy, PublicKey, Rejection, Verified, Verifier};
use crate::error::Error;
use crate::store::CredentialRecord;

/// Bytes in a challenge (webauthn-rs's `CHALLENGE_SIZE_BYTES`).
const CHALLENGE_LEN: usize = 32;

/// A ceremony's random challenge.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Challenge([u8; CHALLENGE_LEN]);

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Challenge(…)")
    }
}

impl Challenge {
    /// 32 bytes from the kernel's CSPRNG (one `getrandom` call, 0.22 µs here; OpenSSL 3.0's
    /// `RAND_bytes` takes 0.50).
    pub fn random() -> Result<Challenge, Error> {
        let mut bytes = [0; CHALLENGE_LEN];
        getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("challenge: {e}")))?;
        Ok(Challenge(bytes))
    }

    /// The challenge of options made elsewhere (tests hand webauthn-rs's to both verifiers).
    pub fn from_bytes(bytes: &[u8]) -> Option<Challenge> {
        bytes.try_into().ok().map(Challenge)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What the server keeps between `login.begin` and `login.finish` (serialized only into a
/// shared store's parked ceremonies, never to a client).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AssertionState {
    pub challenge: Challenge,
    pub policy: Policy,
    /// Sign-in with a username: the account's passkeys as of begin. Usernameless: empty.
    pub allowed: Vec<KnownCredential>,
}

/// A stored passkey as `login.begin` reads it (`Store::sign_in_passkeys`): what verification
/// needs, and the transports `allowCredentials` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInPasskey {
    pub known: KnownCredential,
    pub transports: Option<Vec<AuthenticatorTransport>>,
}

impl SignInPasskey {
    /// From a whole record. Records from before `public_key` was stored get it from their COSE
    /// key.
    pub fn from_record(record: CredentialRecord) -> Result<SignInPasskey, Rejection> {
        let key = match record.public_key {
            Some(key) => key,
            None => PublicKey::from_passkey(&record.passkey).map_err(|_| Rejection::UnusableKey)?,
        };
        let credential = Credential::from(record.passkey);
        let known = KnownCredential {
            cred_id: credential.cred_id,
            key,
            counter: credential.counter,
            backup_eligible: credential.backup_eligible,
            backup_state: credential.backup_state,
        };
        Ok(SignInPasskey {
            known,
            transports: credential.transports,
        })
    }
}

impl Verifier {
    /// `login.begin` with a username: a challenge for `passkeys`, the account's.
    pub fn start_login(
        &self,
        passkeys: Vec<SignInPasskey>,
    ) -> Result<(RequestChallengeResponse, AssertionState), Error> {
        if passkeys.is_empty() {
            return Err(Rejection::UnusableKey.into());
        }
        let mut allowed = Vec::with_capacity(passkeys.len());
        let mut descriptors = Vec::with_capacity(passkeys.len());
        for SignInPasskey { known, transports } in passkeys {
            descriptors.push(AllowCredentials {
                type_: "public-key".to_owned(),
                id: known.cred_id.clone(),
                transports,
            });
            allowed.push(known);
        }
        let state = AssertionState {
            challenge: Challenge::random()?,
            policy: Policy::USERNAME,
            allowed,
        };
        Ok((self.options(&state, descriptors), state))
    }

    /// `login.begin` without a username: a challenge for whichever passkey the browser offers.
    pub fn start_discoverable(&self) -> Result<(RequestChallengeResponse, AssertionState), Error> {
        let state = AssertionState {
            challenge: Challenge::random()?,
            policy: Policy::DISCOVERABLE,
            allowed: Vec::new(),
        };
        Ok((self.options(&state, Vec::new()), state))
    }

    /// The options webauthn-rs's `start_passkey_authentication` (with `allow`) or
    /// `start_discoverable_authentication` (without) would send.
    fn options(
        &self,
        state: &AssertionState,
        allow: Vec<AllowCredentials>,
    ) -> RequestChallengeResponse {
        let discoverable = state.policy == Policy::DISCOVERABLE;
        RequestChallengeResponse {
            public_key: PublicKeyCredentialRequestOptions {
                challenge: state.challenge.as_bytes().to_vec(),
                timeout: Some(self.timeout_ms),
                rp_id: self.rp_id.clone(),
                allow_credentials: allow,
                user_verification: UserVerificationPolicy::Required,
                hints: None,
                extensions: discoverable.then_some(RequestAuthenticationExtensions {
                    appid: None,
                    uvm: Some(true),
                    hmac_get_secret: None,
                }),
            },
            mediation: discoverable.then_some(Mediation::Conditional),
        }
    }

    /// `login.finish` with a username: step 5, then the rest against the begin-time copy.
    pub fn finish_login(
        &self,
        response: &PublicKeyCredential,
        state: &AssertionState,
    ) -> Result<Verified, Rejection> {
        let known = state
            .allowed
            .iter()
            .find(|c| c.cred_id == response.raw_id)
            .ok_or(Rejection::NotAllowed)?;
        self.verify(response, &state.challenge, state.policy, known)
    }

    /// `login.finish` without a username, against `record`, the stored passkey the response's
    /// credential id names (the caller has checked its user handle).
    pub fn finish_discoverable(
        &self,
        response: &PublicKeyCredential,
        state: &AssertionState,
        record: CredentialRecord,
    ) -> Result<Verified, Rejection> {
        let passkey = SignInPasskey::from_record(record)?;
        self.verify(response, &state.challenge, state.policy, &passkey.known)
    }
}
