//! The read `login.begin` makes: a user's passkeys as sign-in needs them
//! ([`SignInPasskey`]: id, transports, stored public key, counter, backup flags), taken from
//! their JSON records without building the rest of each passkey (its COSE key, attestation,
//! extensions), which serde then only scans past.
//!
//! Invariant: the result equals what [`SledStore::credentials_of`] gives, converted with
//! `SignInPasskey::from_record` (tested below). Records without a stored public key (from
//! before it existed) take that longer way.

use serde::Deserialize;
use uuid::Uuid;
use webauthn_rs_proto::AuthenticatorTransport;

use super::usage::Usage;
use super::SledStore;
use crate::assertion::{KnownCredential, PublicKey, SignInPasskey};
use crate::error::Error;

/// The members of a `CredentialRecord` sign-in reads; serde skips the others.
#[derive(Deserialize)]
struct Lean {
    passkey: LeanPasskey,
    #[serde(default)]
    public_key: Option<PublicKey>,
}

/// webauthn-rs serialises a `Passkey` as `{"cred": Credential}`.
#[derive(Deserialize)]
struct LeanPasskey {
    cred: LeanCredential,
}

#[derive(Deserialize)]
struct LeanCredential {
    counter: u32,
    transports: Option<Vec<AuthenticatorTransport>>,
    backup_eligible: bool,
    backup_state: bool,
}

impl SledStore {
    /// `user_id`'s passkeys as `login.begin` needs them, as of their latest sign-in, in
    /// credential-id order. A passkey with no key sign-in can use is left out (registration
    /// never stores one).
    pub fn sign_in_passkeys(&self, user_id: &Uuid) -> Result<Vec<SignInPasskey>, Error> {
        let mut out = Vec::new();
        for entry in self.user_credentials.scan_prefix(user_id.as_bytes()) {
            let (key, _) = entry?;
            let cred_id = &key[16..];
            let Some(json) = self.credentials.get(cred_id)? else {
                continue;
            };
            let mut passkey = match serde_json::from_slice::<Lean>(&json) {
                Ok(Lean {
                    passkey: LeanPasskey { cred },
                    public_key: Some(key),
                }) => SignInPasskey {
                    known: KnownCredential {
                        cred_id: cred_id.to_vec(),
                        key,
                        counter: cred.counter,
                        backup_eligible: cred.backup_eligible,
                        backup_state: cred.backup_state,
                    },
                    transports: cred.transports,
                },
                _ => match SignInPasskey::from_record(super::from_json(&json)?) {
                    Ok(passkey) => passkey,
                    Err(_) => {
                        tracing::warn!("a stored passkey has a key sign-in cannot use");
                        continue;
                    }
                },
            };
            if let Some(bytes) = self.credential_use.get(cred_id)? {
                Usage::decode(&bytes)?.apply_to_known(&mut passkey.known);
            }
            out.push(passkey);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::Verified;
    use crate::store::{CredentialRecord, UserRecord};

    /// A passkey registered through webauthn-rs with the software authenticator.
    fn passkey(wa: &webauthn_rs::prelude::Webauthn, user: Uuid) -> webauthn_rs::prelude::Passkey {
        let mut key = crate::softkey::SoftAuthenticator::new();
        let (ccr, state) = wa
            .start_passkey_registration(user, "alice", "Alice", None)
            .unwrap();
        let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
        let response = key.register(&options, "http://localhost:8080").unwrap();
        let reg = serde_json::from_value(response).unwrap();
        wa.finish_passkey_registration(&reg, &state).unwrap()
    }

    #[test]
    fn record_use_refuses_another_accounts_or_a_deleted_passkey() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let config = crate::Config::for_tests(dir.path()).unwrap();
        let wa = crate::ceremony::build_webauthn(&config).unwrap();
        let user = |name: &str| UserRecord {
            id: Uuid::new_v4(),
            name: name.into(),
            display_name: name.into(),
            created_at: 0,
            passkeys: 1,
        };
        let (alice, bob) = (user("alice"), user("bob"));
        let record = |owner: &UserRecord| {
            let passkey = passkey(&wa, owner.id);
            CredentialRecord {
                user_id: owner.id,
                public_key: Some(PublicKey::from_passkey(&passkey).unwrap()),
                passkey,
                created_at: 0,
                last_used_at: None,
                label: None,
                aaguid: None,
            }
        };
        let (alices, bobs) = (record(&alice), record(&bob));
        store.create_user(&alice, &alices).unwrap();
        store.create_user(&bob, &bobs).unwrap();
        let used = |r: &CredentialRecord| Verified {
            cred_id: r.passkey.cred_id().clone(),
            counter: 1,
            user_verified: true,
            backup_eligible: false,
            backup_state: false,
        };
        let err = store.record_use(&used(&bobs), &alice.id, 1).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        store.record_use(&used(&alices), &alice.id, 1).unwrap();
        store
            .delete_credential(&alice.id, alices.passkey.cred_id(), true)
            .unwrap();
        let err = store.record_use(&used(&alices), &alice.id, 2).unwrap_err();
        assert!(err.to_string().contains("no longer registered"), "{err}");
    }

    #[test]
    fn the_lean_read_gives_what_the_whole_records_give() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let config = crate::Config::for_tests(dir.path()).unwrap();
        let wa = crate::ceremony::build_webauthn(&config).unwrap();
        let user = UserRecord {
            id: Uuid::new_v4(),
            name: "alice".into(),
            display_name: "Alice".into(),
            created_at: 0,
            passkeys: 1,
        };
        let record = |with_key: bool| {
            let passkey = passkey(&wa, user.id);
            CredentialRecord {
                user_id: user.id,
                public_key: with_key.then(|| PublicKey::from_passkey(&passkey).unwrap()),
                passkey,
                created_at: 0,
                last_used_at: None,
                label: None,
                aaguid: None,
            }
        };
        let (current, legacy) = (record(true), record(false));
        store.create_user(&user, &current).unwrap();
        store.add_credential(&legacy, 10).unwrap();
        // One of them has signed in since: its counter and flags come from the usage entry.
        let used = Verified {
            cred_id: current.passkey.cred_id().clone(),
            counter: 9,
            user_verified: true,
            backup_eligible: true,
            backup_state: true,
        };
        store.record_use(&used, &user.id, 100).unwrap();

        let lean = store.sign_in_passkeys(&user.id).unwrap();
        let whole: Vec<_> = store
            .credentials_of(&user.id)
            .unwrap()
            .into_iter()
            .map(|r| SignInPasskey::from_record(r).unwrap())
            .collect();
        assert_eq!(lean, whole);
        assert_eq!(lean.len(), 2);
        let signed_in = lean
            .iter()
            .find(|p| p.known.cred_id == used.cred_id)
            .unwrap();
        assert_eq!(signed_in.known.counter, 9);
        assert!(signed_in.known.backup_eligible && signed_in.known.backup_state);
        assert!(store.sign_in_passkeys(&Uuid::new_v4()).unwrap().is_empty());
    }
}
