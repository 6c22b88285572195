//! The request options we send are webauthn-rs's, field for field; and what registration
//! (still webauthn-rs) accepts.

use serde_json::json;

use super::*;
use crate::softkey::Algorithm as Alg;
use crate::store::CredentialRecord;

fn record(enrolled: &Enrolled, with_key: bool) -> CredentialRecord {
    CredentialRecord {
        user_id: Uuid::nil(),
        passkey: enrolled.passkey.clone().unwrap(),
        created_at: 0,
        last_used_at: None,
        label: None,
        aaguid: None,
        public_key: with_key.then(|| enrolled.public_key.clone()),
    }
}

/// The options as JSON with the challenge blanked (the one field that must differ).
fn comparable(options: &RequestChallengeResponse) -> Value {
    let mut json = serde_json::to_value(options).unwrap();
    assert_eq!(
        decode_b64url(json["publicKey"]["challenge"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    json["publicKey"]["challenge"] = json!("…");
    json
}

#[test]
fn login_options_are_the_ones_webauthn_rs_sends() {
    let wa = webauthn();
    let verifier = verifier();
    let passkeys = [enroll(&wa, Alg::Es256), enroll(&wa, Alg::Rs256)];
    let (theirs, _) = wa
        .start_passkey_authentication(
            &passkeys
                .iter()
                .map(|e| e.passkey.clone().unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    // A record without the stored key (from before it existed) gives the same options.
    let records = [record(&passkeys[0], true), record(&passkeys[1], false)];
    let stored = records
        .into_iter()
        .map(|r| crate::assertion::SignInPasskey::from_record(r).unwrap())
        .collect();
    let (ours, state) = verifier.start_login(stored).unwrap();
    assert_eq!(comparable(&ours), comparable(&theirs));
    assert_eq!(state.policy, Policy::USERNAME);
    assert_eq!(state.allowed.len(), 2);
    assert_eq!(state.allowed[1].key, passkeys[1].public_key);

    let (theirs, _) = wa.start_discoverable_authentication().unwrap();
    let (ours, state) = verifier.start_discoverable().unwrap();
    assert_eq!(comparable(&ours), comparable(&theirs));
    assert!(state.allowed.is_empty());
    assert_eq!(state.policy, Policy::DISCOVERABLE);
    assert_ne!(
        verifier.start_discoverable().unwrap().1.challenge,
        state.challenge
    );
}

#[test]
fn stored_keys_are_the_ones_derived_from_the_cose_key() {
    let wa = webauthn();
    for alg in [Alg::Es256, Alg::Es384, Alg::Rs256] {
        let enrolled = enroll(&wa, alg);
        let key = PublicKey::from_passkey(enrolled.passkey.as_ref().unwrap()).unwrap();
        assert!(key.check().is_ok());
        let expected_len = match alg {
            Alg::Es256 => 65,
            Alg::Es384 => 97,
            _ => 270, // a 2048-bit modulus and e = 65537 as PKCS #1 DER
        };
        assert_eq!(key.key.len(), expected_len, "{alg:?}");
    }
    let off_curve = PublicKey {
        alg: Algorithm::Es256,
        key: [&[4u8][..], &[1; 64]].concat(),
    };
    assert!(off_curve.check().is_err());
}

#[test]
fn webauthn_rs_registers_es256_es384_and_rs256_passkeys_but_not_ed25519_ones() {
    let wa = webauthn();
    let (ccr, state) = wa
        .start_passkey_registration(Uuid::new_v4(), "ed", "Ed", None)
        .unwrap();
    let mut options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    let offered: Vec<i64> = options["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    assert_eq!(
        offered,
        [-7, -35, -257],
        "ES256, ES384, RS256; no EdDSA (-8)"
    );
    // Even offered, an Ed25519 key is refused.
    options["pubKeyCredParams"] = json!([{"type": "public-key", "alg": -8}]);
    let mut key = SoftAuthenticator::with_algorithm(Alg::EdDsa);
    let reg: RegisterPublicKeyCredential =
        serde_json::from_value(key.register(&options, ORIGIN).unwrap()).unwrap();
    assert!(wa.finish_passkey_registration(&reg, &state).is_err());
}
