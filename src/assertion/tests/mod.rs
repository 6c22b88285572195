//! Tests of sign-in verification: fixtures shared by the per-step tests (`steps.rs`), the
//! request options (`options.rs`) and the comparison with webauthn-rs (`differential.rs`, its
//! alterations in `mutations/`, the named differences in `differences.rs`).
//!
//! A fixture registers a passkey of each algorithm through webauthn-rs with the software
//! authenticator, so both verifiers see the same stored credential; an assertion is taken apart
//! into [`Parts`] that tests alter and, where they want the signature to still cover the change,
//! sign again.

mod differences;
mod differential;
mod mutations;
mod options;
mod steps;

use serde_json::Value;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::{AuthenticatorAssertionResponseRaw, RequestChallengeResponse};

use super::{Algorithm, AssertionState, Challenge, KnownCredential, Policy, PublicKey, Verifier};
use crate::softkey::{self, decode_b64url, SoftAuthenticator};

pub const RP_ID: &str = "localhost";
pub const ORIGIN: &str = "http://localhost:8080";

pub fn webauthn() -> Webauthn {
    let origin = Url::parse(ORIGIN).unwrap();
    WebauthnBuilder::new(RP_ID, &origin)
        .unwrap()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .unwrap()
}

pub fn verifier() -> Verifier {
    let origin = Url::parse(ORIGIN).unwrap();
    Verifier::new(RP_ID, &[origin], std::time::Duration::from_secs(300)).unwrap()
}

/// A software authenticator holding one registered credential.
pub struct Enrolled {
    pub key: SoftAuthenticator,
    pub cred_id: Vec<u8>,
    /// As webauthn-rs registered it; `None` for EdDSA, which it cannot register.
    pub passkey: Option<Passkey>,
    pub public_key: PublicKey,
}

/// Registers a credential of `alg`: through webauthn-rs where it can, else (EdDSA) directly.
pub fn enroll(wa: &Webauthn, alg: softkey::Algorithm) -> Enrolled {
    let mut key = SoftAuthenticator::with_algorithm(alg);
    let (ccr, state) = wa
        .start_passkey_registration(Uuid::new_v4(), "alice", "Alice", None)
        .unwrap();
    let mut options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    if alg == softkey::Algorithm::EdDsa {
        // webauthn-rs never offers EdDSA; the authenticator needs it offered to make the key.
        options["pubKeyCredParams"] = serde_json::json!([{"type": "public-key", "alg": -8}]);
    }
    let response = key.register(&options, ORIGIN).unwrap();
    let cred_id = key.credentials()[0].id.clone();
    if alg == softkey::Algorithm::EdDsa {
        let cose = key.credentials()[0].cose_public_key().unwrap();
        let public_key = PublicKey {
            alg: Algorithm::EdDsa,
            key: cose[cose.len() - 32..].to_vec(),
        };
        return Enrolled {
            key,
            cred_id,
            passkey: None,
            public_key,
        };
    }
    let reg: RegisterPublicKeyCredential = serde_json::from_value(response).unwrap();
    let passkey = wa.finish_passkey_registration(&reg, &state).unwrap();
    let public_key = PublicKey::from_passkey(&passkey).unwrap();
    Enrolled {
        key,
        cred_id,
        passkey: Some(passkey),
        public_key,
    }
}

/// What the server has stored about the credential before the assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

impl Stored {
    pub const FRESH: Stored = Stored {
        counter: 0,
        backup_eligible: false,
        backup_state: false,
    };
}

impl Enrolled {
    pub fn known(&self, stored: Stored) -> KnownCredential {
        KnownCredential {
            cred_id: self.cred_id.clone(),
            key: self.public_key.clone(),
            counter: stored.counter,
            backup_eligible: stored.backup_eligible,
            backup_state: stored.backup_state,
        }
    }

    /// The webauthn-rs passkey with `stored` applied.
    pub fn passkey(&self, stored: Stored) -> Option<Passkey> {
        let mut credential = Credential::from(self.passkey.clone()?);
        credential.counter = stored.counter;
        credential.backup_eligible = stored.backup_eligible;
        credential.backup_state = stored.backup_state;
        Some(Passkey::from(credential))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `login.begin` with a username: `allowCredentials` lists the passkey.
    Username,
    /// Usernameless.
    Discoverable,
}

/// The reference's state for one ceremony.
pub enum Reference {
    Username(PasskeyAuthentication),
    Discoverable(DiscoverableAuthentication),
    /// No webauthn-rs passkey exists (EdDSA).
    None,
}

/// One ceremony begun on both sides with the same challenge (webauthn-rs's).
pub struct Ceremony {
    pub flow: Flow,
    pub stored: Stored,
    pub reference: Reference,
    pub ours: AssertionState,
    /// The `publicKey` request options the authenticator answers.
    pub options: Value,
}

impl Ceremony {
    pub fn begin(wa: &Webauthn, enrolled: &Enrolled, flow: Flow, stored: Stored) -> Ceremony {
        let passkey = enrolled.passkey(stored);
        let (rcr, reference): (RequestChallengeResponse, Reference) = match (flow, &passkey) {
            (Flow::Username, Some(p)) => {
                let (rcr, st) = wa
                    .start_passkey_authentication(std::slice::from_ref(p))
                    .unwrap();
                (rcr, Reference::Username(st))
            }
            (Flow::Discoverable, Some(_)) => {
                let (rcr, st) = wa.start_discoverable_authentication().unwrap();
                (rcr, Reference::Discoverable(st))
            }
            // Without a webauthn-rs passkey, borrow its options machinery for the challenge.
            (_, None) => (
                wa.start_discoverable_authentication().unwrap().0,
                Reference::None,
            ),
        };
        let challenge = Challenge::from_bytes(rcr.public_key.challenge.as_ref()).unwrap();
        let (policy, allowed) = match flow {
            Flow::Username => (Policy::USERNAME, vec![enrolled.known(stored)]),
            Flow::Discoverable => (Policy::DISCOVERABLE, Vec::new()),
        };
        let mut options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
        if flow == Flow::Username && passkey.is_none() {
            options["allowCredentials"] =
                serde_json::json!([{"type": "public-key", "id": crate::b64url(&enrolled.cred_id)}]);
        }
        Ceremony {
            flow,
            stored,
            reference,
            ours: AssertionState {
                challenge,
                policy,
                allowed,
            },
            options,
        }
    }

    /// Our decision on `parts`.
    pub fn ours(
        &self,
        verifier: &Verifier,
        enrolled: &Enrolled,
        parts: &Parts,
    ) -> Result<super::Verified, super::Rejection> {
        let credential = parts.credential();
        match self.flow {
            Flow::Username => verifier.finish_login(&credential, &self.ours),
            Flow::Discoverable => verifier.verify(
                &credential,
                &self.ours.challenge,
                self.ours.policy,
                &enrolled.known(self.stored),
            ),
        }
    }

    /// webauthn-rs's decision on `parts`, or `None` when it has no passkey to decide with.
    pub fn reference(
        &self,
        wa: &Webauthn,
        enrolled: &Enrolled,
        parts: &Parts,
    ) -> Option<
        Result<webauthn_rs::prelude::AuthenticationResult, webauthn_rs::prelude::WebauthnError>,
    > {
        let credential = parts.credential();
        let passkey = enrolled.passkey(self.stored)?;
        Some(match &self.reference {
            Reference::Username(st) => wa.finish_passkey_authentication(&credential, st),
            Reference::Discoverable(st) => {
                wa.finish_discoverable_authentication_v2(&credential, st.clone(), &passkey)
            }
            Reference::None => return None,
        })
    }
}

/// An assertion taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub raw_id: Vec<u8>,
    pub auth_data: Vec<u8>,
    pub client_data: Vec<u8>,
    pub signature: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
}

impl Parts {
    /// What the authenticator answers to the ceremony's options.
    pub fn sign(enrolled: &mut Enrolled, ceremony: &Ceremony) -> Parts {
        let json = enrolled.key.login(&ceremony.options, ORIGIN).unwrap();
        let field = |name: &str| decode_b64url(json["response"][name].as_str().unwrap()).unwrap();
        Parts {
            raw_id: decode_b64url(json["rawId"].as_str().unwrap()).unwrap(),
            auth_data: field("authenticatorData"),
            client_data: field("clientDataJSON"),
            signature: field("signature"),
            user_handle: Some(field("userHandle")),
        }
    }

    /// Signs the (altered) authenticator data and client data again with the enrolled key.
    pub fn resign(&mut self, enrolled: &Enrolled) {
        self.signature = enrolled
            .key
            .sign_raw(&enrolled.cred_id, &self.auth_data, &self.client_data)
            .unwrap();
    }

    pub fn credential(&self) -> PublicKeyCredential {
        PublicKeyCredential {
            id: crate::b64url(&self.raw_id),
            raw_id: self.raw_id.clone(),
            response: AuthenticatorAssertionResponseRaw {
                authenticator_data: self.auth_data.clone(),
                client_data_json: self.client_data.clone(),
                signature: self.signature.clone(),
                user_handle: self.user_handle.clone(),
            },
            extensions: Default::default(),
            type_: "public-key".to_owned(),
        }
    }

    /// The client data as a JSON object (panics if it is not one).
    pub fn client_json(&self) -> serde_json::Map<String, Value> {
        match serde_json::from_slice(&self.client_data).unwrap() {
            Value::Object(map) => map,
            other => panic!("client data is not an object: {other}"),
        }
    }

    pub fn set_client_json(&mut self, map: serde_json::Map<String, Value>) {
        self.client_data = serde_json::to_vec(&Value::Object(map)).unwrap();
    }

    /// Sets (or with `None` removes) one client data member.
    pub fn set_member(&mut self, name: &str, value: Option<Value>) {
        let mut map = self.client_json();
        match value {
            Some(v) => map.insert(name.to_owned(), v),
            None => map.remove(name),
        };
        self.set_client_json(map);
    }
}

/// A registered ES256 passkey, a fresh ceremony for it and its untouched assertion.
pub fn signed(flow: Flow, alg: softkey::Algorithm) -> (Verifier, Enrolled, Ceremony, Parts) {
    let wa = webauthn();
    let mut enrolled = enroll(&wa, alg);
    let ceremony = Ceremony::begin(&wa, &enrolled, flow, Stored::FRESH);
    let parts = Parts::sign(&mut enrolled, &ceremony);
    (verifier(), enrolled, ceremony, parts)
}
