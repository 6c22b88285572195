//! Fuzz harnesses over everything that parses what a client or an operator sends: the frame
//! decoder, the attestation object walk, the sign-in check's parsers, the config loader and the
//! `Authorization` parser.
//!
//! Under `cargo test` each runs as a property test on generated inputs (bolero's default
//! engine); for a long coverage-guided campaign run one under libFuzzer, for example
//! `cargo bolero test --test fuzz frame_decoder_never_panics -T 10min` (docs/fuzzing.md). A
//! crash a campaign finds becomes a plain test beside these.

use bolero::check;

#[test]
fn frame_decoder_never_panics_and_explains_every_refusal() {
    check!().with_type::<String>().for_each(|text| {
        if let Err(e) = wsauthn::protocol::decode(text) {
            assert!(!e.error.to_string().is_empty());
        }
    });
}

/// JSON-shaped frames reach deeper than random text: a known type with arbitrary members.
#[test]
fn frame_decoder_never_panics_on_typed_frames() {
    check!()
        .with_type::<(u8, Vec<(String, i64)>, String)>()
        .for_each(|(kind, members, text)| {
            let types = wsauthn::protocol::ClientMsg::TYPES;
            let mut frame = serde_json::json!({"type": types[*kind as usize % types.len()]});
            for (key, value) in members {
                frame[key] = serde_json::json!(value);
            }
            frame["text"] = serde_json::json!(text);
            let _ = wsauthn::protocol::decode(&frame.to_string());
        });
}

#[test]
fn attestation_object_walk_never_panics() {
    check!().with_type::<Vec<u8>>().for_each(|bytes| {
        let _ = wsauthn::aaguid::from_attestation_object(bytes);
    });
}

/// Sign-in's own parsers (client data, authenticator data and its CBOR extensions, the
/// signature) on bytes a client controls: a refusal, never a panic. The authenticator data keeps
/// a valid prefix and the client data is valid once in two, so the walk reaches the extensions.
#[test]
fn assertion_check_never_panics() {
    use wsauthn::assertion::{Algorithm, Challenge, KnownCredential, Policy, PublicKey, Verifier};
    let origin = url::Url::parse("http://localhost:8080").unwrap();
    let verifier =
        Verifier::new("localhost", &[origin], std::time::Duration::from_secs(300)).unwrap();
    let challenge = Challenge::from_bytes(&[7; 32]).unwrap();
    let known = KnownCredential {
        cred_id: vec![1; 16],
        key: PublicKey {
            alg: Algorithm::Es256,
            key: vec![4; 65],
        },
        counter: 0,
        backup_eligible: true,
        backup_state: false,
    };
    let valid_client_data = format!(
        r#"{{"type":"webauthn.get","challenge":"{}","origin":"http://localhost:8080"}}"#,
        wsauthn::b64url(&[7; 32])
    );
    let rp_id_hash = openssl::sha::sha256(b"localhost");
    check!()
        .with_type::<(u8, Vec<u8>, Vec<u8>, Vec<u8>)>()
        .for_each(|(flags, tail, client_data, signature)| {
            let auth_data = [&rp_id_hash[..], &[*flags | 0x05], &[0, 0, 0, 1], tail].concat();
            for client_data in [valid_client_data.as_bytes(), client_data] {
                let credential = webauthn_rs::prelude::PublicKeyCredential {
                    id: "AQEBAQEBAQEBAQEBAQEBAQ".into(),
                    raw_id: vec![1; 16],
                    response: webauthn_rs_proto::AuthenticatorAssertionResponseRaw {
                        authenticator_data: auth_data.clone(),
                        client_data_json: client_data.to_vec(),
                        signature: signature.clone(),
                        user_handle: None,
                    },
                    extensions: Default::default(),
                    type_: "public-key".into(),
                };
                let outcome = verifier.verify(&credential, &challenge, Policy::USERNAME, &known);
                assert!(outcome.is_err(), "no key signed this");
            }
        });
}

#[test]
fn config_loader_never_panics_and_names_what_is_wrong() {
    check!()
        .with_type::<(String, Vec<(String, String)>)>()
        .for_each(|(text, env)| {
            let env = env
                .iter()
                .map(|(k, v)| (format!("WSAUTHN__{k}"), v.clone()));
            let file = Some((std::path::PathBuf::from("fuzz.toml"), text.clone()));
            if let Err(e) = wsauthn::Config::from_layers(file, env) {
                assert!(!e.to_string().is_empty());
            }
        });
}

#[test]
fn authorization_parser_never_panics_and_trims_what_it_returns() {
    check!().with_type::<String>().for_each(|value| {
        if let Some(token) = wsauthn::http::parse_bearer(value) {
            assert_eq!(token, token.trim());
            assert!(value
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer")));
        }
    });
}
