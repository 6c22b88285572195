//! Software passkey authenticator for tests and load generation. Never for real users: keys live in memory.
//!
//! [`SoftAuthenticator`] behaves like a platform passkey authenticator (P-256 keys by default,
//! or ES384, RS256 and Ed25519 ones, see [`alg`]; discoverable credentials, user verification,
//! `"none"` attestation). It takes the `publicKey` member of the options JSON that webauthn-rs
//! sends to a browser and returns the JSON a browser's `PublicKeyCredential.toJSON()` produces,
//! so tests exercise the real wire format end to end.
//!
//! Invariants: credential ids are unique within one authenticator (random 16 bytes), and every
//! credential is resident. Lookups by id return the single credential with that id.

pub mod alg;
mod wire;

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use openssl::error::ErrorStack;
use openssl::sha::sha256;
use serde_json::{json, Value};

pub use alg::Algorithm;
use alg::KeyPair;
pub(crate) use wire::cbor_bytes;
use wire::{
    cbor_text, challenge_field, client_data_json, descriptor_id, str_field, CreationRequest,
};

/// Authenticator data flag bits (WebAuthn §6.1).
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;

/// Length of the credential ids we mint: enough entropy that ids never collide.
const CRED_ID_LEN: usize = 16;

/// Why the authenticator refused, as a browser would report it (or the options were unusable).
#[derive(Debug, thiserror::Error)]
pub enum SoftKeyError {
    /// The options JSON lacks a field or has one of the wrong shape.
    #[error("bad options: {0}")]
    BadOptions(String),
    /// No credential held by this authenticator fits the request.
    #[error("no matching credential")]
    NoCredential,
    /// `excludeCredentials` names a credential this authenticator already holds for the RP.
    #[error("authenticator already holds an excluded credential")]
    Excluded,
    /// OpenSSL failed (key generation, signing, randomness).
    #[error("crypto error: {0}")]
    Crypto(String),
}

impl From<ErrorStack> for SoftKeyError {
    fn from(e: ErrorStack) -> Self {
        SoftKeyError::Crypto(e.to_string())
    }
}

/// Decodes unpadded base64url, the encoding of every binary value in WebAuthn JSON.
pub fn decode_b64url(s: &str) -> Result<Vec<u8>, SoftKeyError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| SoftKeyError::BadOptions(format!("invalid base64url: {e}")))
}

/// Encodes as unpadded base64url.
pub fn encode_b64url(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// One resident credential. The fields are for inspection; the private key never leaves.
#[derive(Clone)]
pub struct SoftCredential {
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    pub counter: u32,
    /// Cached so an assertion is one hash and one signature, nothing more.
    key: KeyPair,
    rp_id_hash: [u8; 32],
}

impl SoftCredential {
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The public key as the COSE_Key registration sends.
    pub fn cose_public_key(&self) -> Result<Vec<u8>, SoftKeyError> {
        self.key.cose_key()
    }
}

// Hand-written so the private key can never end up in a log.
impl fmt::Debug for SoftCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftCredential")
            .field("id", &encode_b64url(&self.id))
            .field("rp_id", &self.rp_id)
            .field("user_handle", &encode_b64url(&self.user_handle))
            .field("counter", &self.counter)
            .field("key", &self.key.redacted())
            .finish()
    }
}

/// An in-memory passkey authenticator. The public fields set the flags it reports, so tests can
/// simulate an authenticator without user verification, a synced passkey (`counter_step` 0,
/// backup flags set) and so on.
#[derive(Debug)]
pub struct SoftAuthenticator {
    pub user_verification: bool,
    pub user_presence: bool,
    /// Added to a credential's counter per assertion; 0 = no counter (like synced passkeys).
    pub counter_step: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// The key type of credentials registered from now on (the options must offer it).
    pub algorithm: Algorithm,
    credentials: Vec<SoftCredential>,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftAuthenticator {
    /// A verifying, present, device-bound authenticator with a counter that steps by 1.
    pub fn new() -> Self {
        SoftAuthenticator {
            user_verification: true,
            user_presence: true,
            counter_step: 1,
            backup_eligible: false,
            backup_state: false,
            algorithm: Algorithm::Es256,
            credentials: Vec::new(),
        }
    }

    /// As [`new`](Self::new), registering keys of `alg`.
    pub fn with_algorithm(alg: Algorithm) -> Self {
        SoftAuthenticator {
            algorithm: alg,
            ..Self::new()
        }
    }

    /// Registration (`navigator.credentials.create`). `options` is the `publicKey` object of the
    /// creation options; `origin` is the page origin, e.g. `"http://localhost:8080"`.
    ///
    /// Creates a key of [`algorithm`](Self::algorithm) under a random credential id, stores it
    /// as a resident credential and returns the registration response JSON with a `"none"`
    /// attestation.
    pub fn register(&mut self, options: &Value, origin: &str) -> Result<Value, SoftKeyError> {
        let req = CreationRequest::parse(options, self.algorithm)?;
        // A browser refuses to create a second credential for an account the RP already knows.
        let excluded = options
            .get("excludeCredentials")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(descriptor_id)
            .any(|id| {
                self.credentials
                    .iter()
                    .any(|c| c.id == id && c.rp_id == req.rp_id)
            });
        if excluded {
            return Err(SoftKeyError::Excluded);
        }

        let key = KeyPair::generate(self.algorithm)?;
        let mut id = vec![0u8; CRED_ID_LEN];
        openssl::rand::rand_bytes(&mut id)?;
        let cred = SoftCredential {
            id,
            rp_id: req.rp_id.to_owned(),
            user_handle: req.user_handle,
            counter: 0,
            key,
            rp_id_hash: sha256(req.rp_id.as_bytes()),
        };
        let response = self.attestation_response(&cred, req.challenge, origin)?;
        self.credentials.push(cred);
        Ok(response)
    }

    /// Registration response for `options` that reuses the key and id of the held credential
    /// `cred_id` (exclusion is deliberately not checked). Used to test that a server refuses
    /// one credential id for two accounts. The authenticator's own state is left unchanged, so
    /// later logins still present the original credential and its user handle.
    pub fn register_existing(
        &mut self,
        cred_id: &[u8],
        options: &Value,
        origin: &str,
    ) -> Result<Value, SoftKeyError> {
        let original = &self.credentials[self.index_of(cred_id)?];
        let req = CreationRequest::parse(options, original.algorithm())?;
        let copy = SoftCredential {
            rp_id: req.rp_id.to_owned(),
            user_handle: req.user_handle,
            rp_id_hash: sha256(req.rp_id.as_bytes()),
            ..original.clone() // key clone is a reference count, not a key copy
        };
        self.attestation_response(&copy, req.challenge, origin)
    }

    /// Assertion (`navigator.credentials.get`). `options` is the `publicKey` object of the request
    /// options. Uses the first `allowCredentials` entry held for `rpId`, or, when the list is
    /// empty or missing (discoverable login), the most recently created credential for `rpId`.
    pub fn login(&mut self, options: &Value, origin: &str) -> Result<Value, SoftKeyError> {
        let rp_id = str_field(options, "rpId")?;
        let allowed = options
            .get("allowCredentials")
            .and_then(Value::as_array)
            .filter(|list| !list.is_empty());
        let index = match allowed {
            Some(list) => list.iter().filter_map(descriptor_id).find_map(|id| {
                self.credentials
                    .iter()
                    .position(|c| c.id == id && c.rp_id == rp_id)
            }),
            None => self.credentials.iter().rposition(|c| c.rp_id == rp_id),
        };
        let index = index.ok_or(SoftKeyError::NoCredential)?;
        self.assert(index, options, origin)
    }

    /// As [`login`](Self::login) but with the credential `cred_id`, whatever `allowCredentials`
    /// says. The credential's own RP id is hashed into the response, so using it against another
    /// RP yields the rpIdHash mismatch a server must reject.
    pub fn login_with(
        &mut self,
        cred_id: &[u8],
        options: &Value,
        origin: &str,
    ) -> Result<Value, SoftKeyError> {
        let index = self.index_of(cred_id)?;
        self.assert(index, options, origin)
    }

    /// Every credential held, oldest first.
    pub fn credentials(&self) -> &[SoftCredential] {
        &self.credentials
    }

    /// Sets a credential's counter, e.g. backwards to simulate a cloned authenticator.
    /// Returns false when no credential has this id.
    pub fn set_counter(&mut self, cred_id: &[u8], counter: u32) -> bool {
        let cred = self.credentials.iter_mut().find(|c| c.id == cred_id);
        cred.map(|c| c.counter = counter).is_some()
    }

    /// Signs `auth_data ‖ SHA-256(client_data_json)` with credential `cred_id`'s key, whatever
    /// the bytes say: for tests that build or alter an assertion and still want it signed.
    pub fn sign_raw(
        &self,
        cred_id: &[u8],
        auth_data: &[u8],
        client_data_json: &[u8],
    ) -> Result<Vec<u8>, SoftKeyError> {
        let cred = &self.credentials[self.index_of(cred_id)?];
        cred.key.sign(auth_data, &sha256(client_data_json))
    }

    fn index_of(&self, cred_id: &[u8]) -> Result<usize, SoftKeyError> {
        let index = self.credentials.iter().position(|c| c.id == cred_id);
        index.ok_or(SoftKeyError::NoCredential)
    }

    /// UP/UV/BE/BS as configured; AT is added only by registration.
    fn flags(&self) -> u8 {
        let bit = |on: bool, flag: u8| if on { flag } else { 0 };
        bit(self.user_presence, FLAG_UP)
            | bit(self.user_verification, FLAG_UV)
            | bit(self.backup_eligible, FLAG_BE)
            | bit(self.backup_state, FLAG_BS)
    }

    fn attestation_response(
        &self,
        cred: &SoftCredential,
        challenge: &Value,
        origin: &str,
    ) -> Result<Value, SoftKeyError> {
        let cose_key = cred.key.cose_key()?;
        let extra = 18 + cred.id.len() + cose_key.len();
        let mut auth_data = auth_data_prefix(cred, self.flags() | FLAG_AT, extra);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: all zero, as with "none" attestation
                                                 // Our ids are CRED_ID_LEN bytes, so the u16 length cannot truncate.
        auth_data.extend_from_slice(&(cred.id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&cred.id);
        auth_data.extend_from_slice(&cose_key);

        // {"fmt":"none","attStmt":{},"authData":bytes}, keys in CTAP2 canonical order.
        let mut att_obj = Vec::with_capacity(auth_data.len() + 32);
        att_obj.push(0xa3);
        cbor_text(&mut att_obj, "fmt");
        cbor_text(&mut att_obj, "none");
        cbor_text(&mut att_obj, "attStmt");
        att_obj.push(0xa0);
        cbor_text(&mut att_obj, "authData");
        cbor_bytes(&mut att_obj, &auth_data);

        let client_data = client_data_json("webauthn.create", challenge, origin);
        let id = encode_b64url(&cred.id);
        Ok(json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": encode_b64url(&att_obj),
                "clientDataJSON": encode_b64url(client_data.as_bytes()),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }))
    }

    /// Bumps the counter of credential `index`, then signs an assertion with it.
    fn assert(
        &mut self,
        index: usize,
        options: &Value,
        origin: &str,
    ) -> Result<Value, SoftKeyError> {
        let challenge = challenge_field(options)?;
        let (flags, step) = (self.flags(), self.counter_step);
        let cred = self
            .credentials
            .get_mut(index)
            .ok_or(SoftKeyError::NoCredential)?;
        // Wrapping, like a 32-bit hardware counter; a wrapped counter looks cloned to the RP.
        cred.counter = cred.counter.wrapping_add(step);

        let auth_data = auth_data_prefix(cred, flags, 0);
        let client_data = client_data_json("webauthn.get", challenge, origin);
        let signature = cred.key.sign(&auth_data, &sha256(client_data.as_bytes()))?;

        let id = encode_b64url(&cred.id);
        Ok(json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": encode_b64url(&auth_data),
                "clientDataJSON": encode_b64url(client_data.as_bytes()),
                "signature": encode_b64url(&signature),
                "userHandle": encode_b64url(&cred.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }))
    }
}

/// Authenticator data up to the signCount: rpIdHash | flags | signCount, with room for `extra` more bytes.
fn auth_data_prefix(cred: &SoftCredential, flags: u8, extra: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(37 + extra);
    data.extend_from_slice(&cred.rp_id_hash);
    data.push(flags);
    data.extend_from_slice(&cred.counter.to_be_bytes());
    data
}

#[cfg(test)]
mod tests;
