//! Round trips of the software authenticator against the real webauthn-rs.
use super::*;
use webauthn_rs::prelude::{
    DiscoverableKey, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

const ORIGIN: &str = "http://localhost:8080";

fn webauthn() -> Webauthn {
    let origin = Url::parse(ORIGIN).unwrap();
    WebauthnBuilder::new("localhost", &origin)
        .unwrap()
        .build()
        .unwrap()
}

/// Runs a full passkey registration for a new user; returns the user id and the passkey.
fn register_user(wa: &Webauthn, key: &mut SoftAuthenticator, name: &str) -> (Uuid, Passkey) {
    let user = Uuid::new_v4();
    let (ccr, state) = wa
        .start_passkey_registration(user, name, name, None)
        .unwrap();
    let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    let response = key.register(&options, ORIGIN).unwrap();
    let reg: RegisterPublicKeyCredential = serde_json::from_value(response).unwrap();
    (user, wa.finish_passkey_registration(&reg, &state).unwrap())
}

/// Starts an authentication for `passkey`, lets `sign` answer it and returns the result.
fn authenticate(
    wa: &Webauthn,
    passkey: &Passkey,
    sign: impl FnOnce(&Value) -> Value,
) -> Result<u32, WebauthnError> {
    let (rcr, state) = wa
        .start_passkey_authentication(std::slice::from_ref(passkey))
        .unwrap();
    let options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
    let cred: PublicKeyCredential = serde_json::from_value(sign(&options)).unwrap();
    wa.finish_passkey_authentication(&cred, &state)
        .map(|r| r.counter())
}

fn response_field(response: &Value, name: &str) -> Vec<u8> {
    decode_b64url(response["response"][name].as_str().unwrap()).unwrap()
}

#[test]
fn registration_is_accepted_by_webauthn_rs() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, passkey) = register_user(&wa, &mut key, "alice");
    assert_eq!(key.credentials().len(), 1);
    assert_eq!(passkey.cred_id(), &key.credentials()[0].id);
    assert_eq!(key.credentials()[0].rp_id, "localhost");
    assert_eq!(key.credentials()[0].counter, 0);
}

#[test]
fn attestation_object_has_the_documented_layout() {
    let mut key = SoftAuthenticator::new();
    let options = json!({
        "rp": {"id": "example.com", "name": "Example"},
        "user": {"id": encode_b64url(b"user-1"), "name": "u", "displayName": "U"},
        "challenge": "Y2hhbGxlbmdl",
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    });
    let response = key.register(&options, "https://example.com").unwrap();
    assert_eq!(response["id"], response["rawId"]);
    assert_eq!(response["authenticatorAttachment"], "platform");
    let att = response_field(&response, "attestationObject");
    let head = b"\xa3\x63fmt\x64none\x67attStmt\xa0\x68authData\x58";
    assert_eq!(&att[..head.len()], head);
    let auth_data = &att[head.len() + 1..];
    assert_eq!(usize::from(att[head.len()]), auth_data.len());
    assert_eq!(auth_data[..32], sha256(b"example.com"));
    assert_eq!(auth_data[32], FLAG_UP | FLAG_UV | FLAG_AT);
    assert_eq!(auth_data[33..37], [0, 0, 0, 0]);
    assert_eq!(auth_data[37..53], [0; 16]);
    assert_eq!(auth_data[53..55], [0, CRED_ID_LEN as u8]);
    assert_eq!(auth_data[55..55 + CRED_ID_LEN], key.credentials()[0].id[..]);
    let cose = &auth_data[55 + CRED_ID_LEN..];
    assert_eq!(cose.len(), 77);
    assert_eq!(cose[..7], [0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01]);
    let client_data = response_field(&response, "clientDataJSON");
    assert_eq!(
        std::str::from_utf8(&client_data).unwrap(),
        r#"{"type":"webauthn.create","challenge":"Y2hhbGxlbmdl","origin":"https://example.com","crossOrigin":false}"#
    );
    assert_eq!(key.credentials()[0].user_handle, b"user-1");
}

#[test]
fn login_is_accepted_and_the_counter_rises() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, passkey) = register_user(&wa, &mut key, "alice");
    let first = authenticate(&wa, &passkey, |o| key.login(o, ORIGIN).unwrap()).unwrap();
    let second = authenticate(&wa, &passkey, |o| key.login(o, ORIGIN).unwrap()).unwrap();
    assert_eq!((first, second), (1, 2));
    assert_eq!(key.credentials()[0].counter, 2);
}

#[test]
fn counter_going_backwards_is_rejected() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, mut passkey) = register_user(&wa, &mut key, "alice");
    let (rcr, state) = wa
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
    key.counter_step = 5;
    let cred: PublicKeyCredential =
        serde_json::from_value(key.login(&options, ORIGIN).unwrap()).unwrap();
    let result = wa.finish_passkey_authentication(&cred, &state).unwrap();
    assert_eq!(passkey.update_credential(&result), Some(true));

    key.counter_step = 1;
    let id = key.credentials()[0].id.clone();
    assert!(key.set_counter(&id, 1));
    assert!(!key.set_counter(b"unknown", 1));
    let replayed = authenticate(&wa, &passkey, |o| key.login(o, ORIGIN).unwrap());
    assert!(
        matches!(replayed, Err(WebauthnError::CredentialPossibleCompromise)),
        "counter 2 after 5 must be refused: {replayed:?}"
    );
}

#[test]
fn discoverable_login_identifies_the_user() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, bob_key) = register_user(&wa, &mut key, "bob");
    let (alice, passkey) = register_user(&wa, &mut key, "alice");
    let (rcr, state) = wa.start_discoverable_authentication().unwrap();
    let options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
    let response = key.login(&options, ORIGIN).unwrap();
    let cred: PublicKeyCredential = serde_json::from_value(response).unwrap();

    let (user, cred_id) = wa.identify_discoverable_authentication(&cred).unwrap();
    assert_eq!(user, alice, "the most recent credential answers");
    assert_eq!(cred_id, passkey.cred_id().as_slice());
    assert_ne!(cred_id, bob_key.cred_id().as_slice());
    let result = wa
        .finish_discoverable_authentication_v2(&cred, state, DiscoverableKey::from(&passkey))
        .unwrap();
    assert!(result.user_verified());
}

#[test]
fn login_with_picks_the_named_credential() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, first) = register_user(&wa, &mut key, "alice");
    let (_, _second) = register_user(&wa, &mut key, "alice");
    let id = first.cred_id().clone();
    assert!(authenticate(&wa, &first, |o| key.login_with(&id, o, ORIGIN).unwrap()).is_ok());
    assert_eq!(key.credentials()[0].counter, 1);
    assert_eq!(key.credentials()[1].counter, 0);
}

#[test]
fn tampered_signature_is_rejected() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, passkey) = register_user(&wa, &mut key, "alice");
    let result = authenticate(&wa, &passkey, |o| {
        let mut response = key.login(o, ORIGIN).unwrap();
        let mut signature = response_field(&response, "signature");
        let last = signature.len() - 1;
        signature[last] ^= 0x01;
        response["response"]["signature"] = encode_b64url(&signature).into();
        response
    });
    assert!(matches!(result, Err(WebauthnError::AuthenticationFailure)));
}

#[test]
fn wrong_origin_is_rejected() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, passkey) = register_user(&wa, &mut key, "alice");
    let result = authenticate(&wa, &passkey, |o| {
        key.login(o, "http://evil.example:8080").unwrap()
    });
    assert!(matches!(result, Err(WebauthnError::InvalidRPOrigin)));
}

#[test]
fn missing_user_verification_is_rejected() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (_, passkey) = register_user(&wa, &mut key, "alice");
    key.user_verification = false;
    let result = authenticate(&wa, &passkey, |o| key.login(o, ORIGIN).unwrap());
    assert!(matches!(result, Err(WebauthnError::UserNotVerified)));

    // Registration demands UV for passkeys too.
    let (ccr, state) = wa
        .start_passkey_registration(Uuid::new_v4(), "bob", "Bob", None)
        .unwrap();
    let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    let reg: RegisterPublicKeyCredential =
        serde_json::from_value(key.register(&options, ORIGIN).unwrap()).unwrap();
    assert!(matches!(
        wa.finish_passkey_registration(&reg, &state),
        Err(WebauthnError::UserNotVerified)
    ));
}

#[test]
fn synced_passkey_without_counter_is_accepted() {
    let wa = webauthn();
    let mut key = SoftAuthenticator {
        counter_step: 0,
        backup_eligible: true,
        backup_state: true,
        ..SoftAuthenticator::new()
    };
    let (_, passkey) = register_user(&wa, &mut key, "alice");
    for _ in 0..2 {
        let counter = authenticate(&wa, &passkey, |o| key.login(o, ORIGIN).unwrap());
        assert_eq!(counter.unwrap(), 0);
    }
}

#[test]
fn excluded_credential_is_refused() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (user, passkey) = register_user(&wa, &mut key, "alice");
    let (ccr, _) = wa
        .start_passkey_registration(
            user,
            "alice",
            "Alice",
            Some(vec![passkey.cred_id().clone()]),
        )
        .unwrap();
    let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    assert!(matches!(
        key.register(&options, ORIGIN),
        Err(SoftKeyError::Excluded)
    ));
    assert_eq!(key.credentials().len(), 1);
}

#[test]
fn register_existing_reuses_the_credential_for_another_user() {
    let wa = webauthn();
    let mut key = SoftAuthenticator::new();
    let (alice, passkey) = register_user(&wa, &mut key, "alice");
    let bob = Uuid::new_v4();
    let (ccr, state) = wa
        .start_passkey_registration(bob, "bob", "Bob", None)
        .unwrap();
    let bob_options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    let response = key
        .register_existing(passkey.cred_id(), &bob_options, ORIGIN)
        .unwrap();
    let reg: RegisterPublicKeyCredential = serde_json::from_value(response).unwrap();
    // webauthn-rs only refuses ids in this ceremony's own exclude list (bob has none); that
    // one id may not serve two accounts is for the server's credential-id index to enforce.
    let copy = wa.finish_passkey_registration(&reg, &state).unwrap();
    assert_eq!(copy.cred_id(), passkey.cred_id());
    assert_eq!(copy.get_public_key(), passkey.get_public_key());

    // The authenticator still answers as alice.
    assert_eq!(key.credentials().len(), 1);
    let (rcr, _) = wa.start_discoverable_authentication().unwrap();
    let options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
    let cred: PublicKeyCredential =
        serde_json::from_value(key.login(&options, ORIGIN).unwrap()).unwrap();
    assert_eq!(
        wa.identify_discoverable_authentication(&cred).unwrap().0,
        alice
    );
    assert!(matches!(
        key.register_existing(b"unknown", &bob_options, ORIGIN),
        Err(SoftKeyError::NoCredential)
    ));
}

#[test]
fn unusable_options_are_reported() {
    let mut key = SoftAuthenticator::new();
    let mut options = json!({
        "rp": {"id": "localhost"},
        "user": {"id": "AAAA"},
        "challenge": "AAAA",
        "pubKeyCredParams": [{"type": "public-key", "alg": -257}],
    });
    assert!(matches!(
        key.register(&options, ORIGIN),
        Err(SoftKeyError::BadOptions(_))
    ));
    options["pubKeyCredParams"][0]["alg"] = json!(-7);
    options["user"]["id"] = json!("not base64!");
    assert!(matches!(
        key.register(&options, ORIGIN),
        Err(SoftKeyError::BadOptions(_))
    ));
    let request = json!({"challenge": "AAAA", "rpId": "localhost", "allowCredentials": []});
    assert!(matches!(
        key.login(&request, ORIGIN),
        Err(SoftKeyError::NoCredential)
    ));
    assert!(matches!(
        key.login_with(b"unknown", &request, ORIGIN),
        Err(SoftKeyError::NoCredential)
    ));
}

#[test]
fn debug_output_hides_the_private_key() {
    let mut key = SoftAuthenticator::new();
    let options = json!({
        "rp": {"id": "localhost"},
        "user": {"id": "AAAA"},
        "challenge": "AAAA",
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    });
    key.register(&options, ORIGIN).unwrap();
    let debug = format!("{key:?}");
    assert!(debug.contains("EcKey(…)"), "{debug}");
}

#[test]
fn every_algorithm_webauthn_rs_offers_registers_and_signs_in() {
    let wa = webauthn();
    for alg in [Algorithm::Es384, Algorithm::Rs256] {
        let mut key = SoftAuthenticator::with_algorithm(alg);
        let (_, passkey) = register_user(&wa, &mut key, "alice");
        assert_eq!(i64::from(*passkey.cred_algorithm() as i32), alg.cose_id());
        assert_eq!(key.credentials()[0].algorithm(), alg);
        let counter = authenticate(&wa, &passkey, |o| key.login(o, ORIGIN).unwrap());
        assert_eq!(counter.unwrap(), 1, "{alg:?}");
        // What sign_raw signs is what an assertion carries.
        let (rcr, _) = wa
            .start_passkey_authentication(std::slice::from_ref(&passkey))
            .unwrap();
        let options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
        let response = key.login(&options, ORIGIN).unwrap();
        let (auth_data, client_data) = (
            response_field(&response, "authenticatorData"),
            response_field(&response, "clientDataJSON"),
        );
        let id = key.credentials()[0].id.clone();
        let resigned = key.sign_raw(&id, &auth_data, &client_data).unwrap();
        if alg == Algorithm::Rs256 {
            // PKCS #1 v1.5 is deterministic; ECDSA is not.
            assert_eq!(resigned, response_field(&response, "signature"));
        }
    }
    let debug = format!("{:?}", SoftAuthenticator::with_algorithm(Algorithm::EdDsa));
    assert!(debug.contains("EdDsa"), "{debug}");
}
