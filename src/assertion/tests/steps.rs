//! One negative test per WebAuthn L3 §7.2 step the verifier runs (and the §6.1 layout rules),
//! each against the same assertion unaltered, which must pass.

use serde_json::json;

use super::*;
use crate::assertion::authdata::{AT, BE, BS, ED, UP, UV};
use crate::assertion::Rejection;
use crate::softkey::Algorithm as Alg;

/// The verdict on a fresh ES256 assertion after `alter`, signed again when `resign`; the
/// unaltered assertion is checked to verify first.
fn altered(
    flow: Flow,
    resign: bool,
    alter: impl FnOnce(&mut Parts, &Enrolled),
) -> Result<crate::assertion::Verified, Rejection> {
    altered_with(flow, Alg::Es256, Stored::FRESH, resign, alter)
}

fn altered_with(
    flow: Flow,
    alg: Alg,
    stored: Stored,
    resign: bool,
    alter: impl FnOnce(&mut Parts, &Enrolled),
) -> Result<crate::assertion::Verified, Rejection> {
    let wa = webauthn();
    let verifier = verifier();
    let mut enrolled = enroll(&wa, alg);
    let ceremony = Ceremony::begin(&wa, &enrolled, flow, stored);
    let mut parts = Parts::sign(&mut enrolled, &ceremony);
    let mut control = parts.clone();
    control.auth_data[32] = UP
        | UV
        | if stored.backup_eligible { BE } else { 0 }
        | if stored.backup_state { BS } else { 0 };
    control.auth_data[33..37].copy_from_slice(&(stored.counter + 1).to_be_bytes());
    control.resign(&enrolled);
    assert!(
        ceremony.ours(&verifier, &enrolled, &control).is_ok(),
        "the unaltered assertion must verify"
    );
    alter(&mut parts, &enrolled);
    if resign {
        parts.resign(&enrolled);
    }
    ceremony.ours(&verifier, &enrolled, &parts)
}

fn set_flags(parts: &mut Parts, flags: u8) {
    parts.auth_data[32] = flags;
}

#[test]
fn valid_assertions_verify_for_every_algorithm_and_both_kinds_of_sign_in() {
    for alg in Alg::ALL {
        for flow in [Flow::Username, Flow::Discoverable] {
            let (verifier, enrolled, ceremony, parts) = signed(flow, alg);
            let verified = ceremony.ours(&verifier, &enrolled, &parts).unwrap();
            assert_eq!(verified.cred_id, enrolled.cred_id);
            assert_eq!(verified.counter, 1);
            assert!(verified.user_verified);
            assert!(!verified.backup_eligible && !verified.backup_state);
        }
    }
}

#[test]
fn step_5_a_credential_not_in_allow_credentials_is_refused() {
    let result = altered(Flow::Username, false, |p, _| p.raw_id = vec![9; 16]);
    assert_eq!(result, Err(Rejection::NotAllowed));
}

#[test]
fn step_6_an_assertion_for_another_credential_than_the_stored_one_is_refused() {
    // Usernameless: the caller found the stored credential by rawId; a mismatch is refused.
    let result = altered(Flow::Discoverable, false, |p, _| p.raw_id = vec![9; 16]);
    assert_eq!(result, Err(Rejection::NotAllowed));
}

#[test]
fn steps_7_to_9_client_data_that_is_not_json_of_the_right_shape_is_refused() {
    for bad in [
        &b"not json"[..],
        b"{\"type\":\"webauthn.get\"",
        b"[]",
        b"{\"type\":\"webauthn.get\",\"challenge\":7,\"origin\":\"http://localhost:8080\"}",
        b"{\"type\":\"webauthn.g\xffet\"}",
    ] {
        let result = altered(Flow::Username, true, |p, _| p.client_data = bad.to_vec());
        assert_eq!(result, Err(Rejection::ClientDataMalformed));
    }
}

#[test]
fn step_10_client_data_of_another_ceremony_type_is_refused() {
    for kind in [
        "webauthn.create",
        "webauthn.get ",
        "WEBAUTHN.GET",
        "payment.get",
    ] {
        let result = altered(Flow::Username, true, |p, _| {
            p.set_member("type", Some(json!(kind)))
        });
        assert_eq!(result, Err(Rejection::WrongType), "{kind}");
    }
}

#[test]
fn step_11_a_challenge_other_than_this_ceremonys_exactly_is_refused() {
    let other = crate::b64url(&[1u8; 32]);
    let result = altered(Flow::Username, true, |p, _| {
        p.set_member("challenge", Some(json!(other)))
    });
    assert_eq!(result, Err(Rejection::ChallengeMismatch));
    // The same bytes, padded: not the base64url encoding the spec compares with.
    let result = altered(Flow::Username, true, |p, _| {
        let challenge = p.client_json()["challenge"].as_str().unwrap().to_owned();
        p.set_member("challenge", Some(json!(format!("{challenge}="))));
    });
    assert_eq!(result, Err(Rejection::ChallengeMismatch));
}

#[test]
fn step_12_an_origin_that_is_not_configured_exactly_is_refused() {
    for origin in [
        "http://localhost:8081",
        "https://localhost:8080",
        "http://evil.example:8080",
        "http://localhost:8080/",
        "http://LOCALHOST:8080",
        "null",
    ] {
        let result = altered(Flow::Username, true, |p, _| {
            p.set_member("origin", Some(json!(origin)))
        });
        assert_eq!(result, Err(Rejection::OriginNotAllowed), "{origin}");
    }
}

#[test]
fn step_13_client_data_from_a_cross_origin_frame_is_refused() {
    for (name, value) in [
        ("crossOrigin", json!(true)),
        ("topOrigin", json!("https://framer.example")),
    ] {
        let result = altered(Flow::Discoverable, true, |p, _| {
            p.set_member(name, Some(value))
        });
        assert_eq!(result, Err(Rejection::CrossOrigin), "{name}");
    }
    let result = altered(Flow::Discoverable, true, |p, _| {
        p.set_member("topOrigin", Some(json!(null)))
    });
    assert!(result.is_ok(), "a null topOrigin is no topOrigin");
}

#[test]
fn step_14_an_rp_id_hash_for_another_relying_party_is_refused() {
    let result = altered(Flow::Username, true, |p, _| {
        p.auth_data[..32].copy_from_slice(&openssl::sha::sha256(b"example.com"))
    });
    assert_eq!(result, Err(Rejection::RpIdHashMismatch));
}

#[test]
fn step_15_an_assertion_without_user_presence_is_refused() {
    let result = altered(Flow::Username, true, |p, _| set_flags(p, UV));
    assert_eq!(result, Err(Rejection::UserNotPresent));
}

#[test]
fn step_16_an_assertion_without_user_verification_is_refused() {
    for flow in [Flow::Username, Flow::Discoverable] {
        let result = altered(flow, true, |p, _| set_flags(p, UP));
        assert_eq!(result, Err(Rejection::UserNotVerified));
    }
}

#[test]
fn step_17_backed_up_without_backup_eligibility_is_refused() {
    let eligible = Stored {
        backup_eligible: true,
        ..Stored::FRESH
    };
    for stored in [Stored::FRESH, eligible] {
        let result = altered_with(Flow::Username, Alg::Es256, stored, true, |p, _| {
            set_flags(p, UP | UV | BS)
        });
        assert_eq!(result, Err(Rejection::BackupStateWithoutEligibility));
    }
}

#[test]
fn step_18_backup_eligibility_may_not_go_away_nor_appear_unless_the_policy_allows_it() {
    let eligible = Stored {
        backup_eligible: true,
        backup_state: true,
        ..Stored::FRESH
    };
    let gone = altered_with(Flow::Username, Alg::Es256, eligible, true, |p, _| {
        set_flags(p, UP | UV)
    });
    assert_eq!(gone, Err(Rejection::BackupEligibilityChanged));
    // Appearing: allowed with a username (webauthn-rs's policy), not without.
    let appears = |flow| {
        altered_with(flow, Alg::Es256, Stored::FRESH, true, |p, _| {
            set_flags(p, UP | UV | BE)
        })
    };
    assert!(appears(Flow::Username).unwrap().backup_eligible);
    assert_eq!(
        appears(Flow::Discoverable),
        Err(Rejection::BackupEligibilityChanged)
    );
    // But not already backed up on that first eligible sign-in (webauthn-rs's rule).
    let backed_up = altered_with(Flow::Username, Alg::Es256, Stored::FRESH, true, |p, _| {
        set_flags(p, UP | UV | BE | BS)
    });
    assert_eq!(backed_up, Err(Rejection::BackupStateWithoutEligibility));
}

#[test]
fn step_19_malformed_extensions_are_refused_and_well_formed_ones_ignored() {
    let with_extensions = |ext: &'static [u8]| {
        altered(Flow::Discoverable, true, move |p, _| {
            set_flags(p, UP | UV | ED);
            p.auth_data.extend_from_slice(ext);
        })
    };
    // {"uvm": [[2, 2, 2]]}
    assert!(with_extensions(&[0xa1, 0x63, b'u', b'v', b'm', 0x81, 0x83, 2, 2, 2]).is_ok());
    assert_eq!(with_extensions(&[]), Err(Rejection::ExtensionsMalformed));
    assert_eq!(
        with_extensions(&[0xa1, 0x01, 0x02]),
        Err(Rejection::ExtensionsMalformed)
    );
}

#[test]
fn steps_20_21_a_signature_that_does_not_verify_is_refused() {
    for alg in Alg::ALL {
        let flipped = altered_with(Flow::Username, alg, Stored::FRESH, false, |p, _| {
            let last = p.signature.len() - 1;
            p.signature[last] ^= 1;
        });
        assert_eq!(flipped, Err(Rejection::SignatureInvalid), "{alg:?}");
        let unsigned_change = altered_with(Flow::Username, alg, Stored::FRESH, false, |p, _| {
            p.auth_data[36] ^= 0x10
        });
        assert_eq!(unsigned_change, Err(Rejection::SignatureInvalid), "{alg:?}");
        let wrong_key = altered_with(Flow::Username, alg, Stored::FRESH, false, |p, e| {
            let mut other = SoftAuthenticator::with_algorithm(alg);
            other.register(&register_options(alg), ORIGIN).unwrap();
            let id = other.credentials()[0].id.clone();
            p.signature = other.sign_raw(&id, &p.auth_data, &p.client_data).unwrap();
            assert_ne!(id, e.cred_id);
        });
        assert_eq!(wrong_key, Err(Rejection::SignatureInvalid), "{alg:?}");
        let empty = altered_with(Flow::Username, alg, Stored::FRESH, false, |p, _| {
            p.signature.clear()
        });
        assert_eq!(empty, Err(Rejection::SignatureInvalid), "{alg:?}");
    }
    // ECDSA: the raw r ‖ s form, and DER with a byte after it, are not signatures.
    let raw = altered(Flow::Username, false, |p, _| {
        let sig = openssl::ecdsa::EcdsaSig::from_der(&p.signature).unwrap();
        p.signature = [
            sig.r().to_vec_padded(32).unwrap(),
            sig.s().to_vec_padded(32).unwrap(),
        ]
        .concat();
    });
    assert_eq!(raw, Err(Rejection::SignatureInvalid));
    let trailing = altered(Flow::Username, false, |p, _| p.signature.push(0));
    assert_eq!(trailing, Err(Rejection::SignatureInvalid));
}

fn register_options(alg: Alg) -> Value {
    json!({
        "rp": {"id": RP_ID, "name": "test"},
        "user": {"id": crate::b64url(b"someone"), "name": "s", "displayName": "S"},
        "challenge": crate::b64url(&[0; 32]),
        "pubKeyCredParams": [{"type": "public-key", "alg": alg.cose_id()}],
    })
}

#[test]
fn step_22_a_counter_that_does_not_increase_is_refused() {
    let at = |stored_counter: u32, counter: u32| {
        let stored = Stored {
            counter: stored_counter,
            ..Stored::FRESH
        };
        altered_with(Flow::Username, Alg::Es256, stored, true, move |p, _| {
            p.auth_data[33..37].copy_from_slice(&counter.to_be_bytes())
        })
    };
    assert_eq!(at(5, 5), Err(Rejection::CounterNotIncreased));
    assert_eq!(at(5, 4), Err(Rejection::CounterNotIncreased));
    assert_eq!(at(5, 0), Err(Rejection::CounterNotIncreased));
    assert_eq!(at(5, 6).unwrap().counter, 6);
    assert_eq!(at(0, 0).unwrap().counter, 0, "no counter at all is allowed");
}

#[test]
fn authenticator_data_with_trailing_bytes_is_refused() {
    let result = altered(Flow::Username, true, |p, _| p.auth_data.push(0));
    assert_eq!(result, Err(Rejection::TrailingAuthData));
    let result = altered(Flow::Username, true, |p, _| {
        set_flags(p, UP | UV | ED);
        p.auth_data.extend_from_slice(&[0xa0, 0x00]);
    });
    assert_eq!(result, Err(Rejection::TrailingAuthData));
}

#[test]
fn attested_credential_data_in_an_assertion_is_refused() {
    let result = altered(Flow::Username, true, |p, _| {
        set_flags(p, UP | UV | AT);
        p.auth_data.extend_from_slice(&[0; 18]);
    });
    assert_eq!(result, Err(Rejection::AttestedDataInAssertion));
}

#[test]
fn authenticator_data_shorter_than_37_bytes_is_refused() {
    let result = altered(Flow::Username, true, |p, _| p.auth_data.truncate(36));
    assert_eq!(result, Err(Rejection::AuthDataMalformed));
}
