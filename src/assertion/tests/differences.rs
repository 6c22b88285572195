//! The named differences from webauthn-rs, one test each: where we refuse what it accepts (the
//! cross-origin policy, trailing authenticator data, attested data in an assertion, the origin
//! compared as a string, a padded challenge), and EdDSA, which it cannot hold.

use serde_json::json;

use super::mutations::{attested_data, flags_and_tail, member};
use super::*;
use crate::assertion::authdata::{AT, ED, UP, UV};
use crate::assertion::Rejection;
use crate::softkey::Algorithm as Alg;

/// The decisions on `alter`ed ES256 assertions: (ours, webauthn-rs's).
fn both(
    flow: Flow,
    alter: impl Fn(&mut Parts, &Enrolled),
) -> (Result<crate::assertion::Verified, Rejection>, bool) {
    let wa = webauthn();
    let mut enrolled = enroll(&wa, Alg::Es256);
    let ceremony = Ceremony::begin(&wa, &enrolled, flow, Stored::FRESH);
    let mut parts = Parts::sign(&mut enrolled, &ceremony);
    alter(&mut parts, &enrolled);
    parts.resign(&enrolled);
    let theirs = ceremony.reference(&wa, &enrolled, &parts).unwrap().is_ok();
    (ceremony.ours(&verifier(), &enrolled, &parts), theirs)
}

#[test]
fn difference_cross_origin_client_data_is_refused_here_and_accepted_by_webauthn_rs() {
    for (name, value) in [
        ("crossOrigin", json!(true)),
        ("topOrigin", json!("https://framer.example")),
    ] {
        let (ours, theirs) = both(Flow::Username, member(name, Some(value)));
        assert_eq!(
            (ours, theirs),
            (Err(Rejection::CrossOrigin), true),
            "{name}"
        );
    }
}

#[test]
fn difference_trailing_authenticator_data_is_refused_here_and_accepted_by_webauthn_rs() {
    let (ours, theirs) = both(Flow::Username, |p, _| {
        p.auth_data
            .extend_from_slice(b"unsigned? no, signed, but not data")
    });
    assert_eq!((ours, theirs), (Err(Rejection::TrailingAuthData), true));
    let (ours, theirs) = both(
        Flow::Discoverable,
        flags_and_tail(UP | UV | ED, vec![0xa0, 0x00]),
    );
    assert_eq!((ours, theirs), (Err(Rejection::TrailingAuthData), true));
}

#[test]
fn difference_attested_credential_data_in_an_assertion_is_refused_here_and_accepted_by_webauthn_rs()
{
    let (ours, theirs) = both(Flow::Username, |p, e| {
        let cose = e.key.credentials()[0].cose_public_key().unwrap();
        flags_and_tail(UP | UV | AT, attested_data(&cose, &e.cred_id))(p, e);
    });
    assert_eq!(
        (ours, theirs),
        (Err(Rejection::AttestedDataInAssertion), true)
    );
}

#[test]
fn difference_origin_is_compared_as_a_string_here_and_as_a_url_by_webauthn_rs() {
    for origin in [
        "http://localhost:8080/",
        "HTTP://LOCALHOST:8080",
        "http://localhost:8080/path",
    ] {
        let (ours, theirs) = both(Flow::Username, member("origin", Some(json!(origin))));
        assert_eq!(
            (ours, theirs),
            (Err(Rejection::OriginNotAllowed), true),
            "{origin}"
        );
    }
}

#[test]
fn difference_a_padded_challenge_is_refused_here_and_accepted_by_webauthn_rs() {
    let (ours, theirs) = both(Flow::Username, |p, _| {
        let c = p.client_json()["challenge"].as_str().unwrap().to_owned();
        p.set_member("challenge", Some(json!(format!("{c}="))));
    });
    assert_eq!((ours, theirs), (Err(Rejection::ChallengeMismatch), true));
}

#[test]
fn difference_eddsa_assertions_verify_here_and_webauthn_rs_cannot_hold_the_key() {
    let wa = webauthn();
    let mut enrolled = enroll(&wa, Alg::EdDsa);
    assert!(
        enrolled.passkey.is_none(),
        "see options.rs: webauthn-rs refuses to register it"
    );
    for flow in [Flow::Username, Flow::Discoverable] {
        let ceremony = Ceremony::begin(&wa, &enrolled, flow, Stored::FRESH);
        let parts = Parts::sign(&mut enrolled, &ceremony);
        assert!(ceremony.ours(&verifier(), &enrolled, &parts).is_ok());
        let mut forged = parts.clone();
        forged.signature[10] ^= 1;
        assert_eq!(
            ceremony.ours(&verifier(), &enrolled, &forged),
            Err(Rejection::SignatureInvalid)
        );
        // Ed25519 signs the message itself: an alteration without a new signature fails.
        forged = parts.clone();
        forged.auth_data[36] ^= 1;
        assert_eq!(
            ceremony.ours(&verifier(), &enrolled, &forged),
            Err(Rejection::SignatureInvalid)
        );
    }
}
