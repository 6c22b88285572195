//! Passkey ceremonies over `/ws`: every row of the protocol table and every way they can fail.

use serde_json::json;
use wsauthn::softkey::{decode_b64url, encode_b64url, SoftAuthenticator};

use crate::helpers::*;

fn is_token(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|t| {
        t.len() == 64
            && t.bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
    })
}

#[actix_web::test]
async fn register_then_sign_in_with_username_yields_tokens() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;

    let opts = register_begin(&mut ws, "alice@example.com", true).await;
    assert_eq!(opts["id"], 1);
    let pk = &opts["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["user"]["name"], "alice@example.com");
    assert_eq!(pk["user"]["displayName"], "alice@example.com");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert!(pk["challenge"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(uuid::Uuid::parse_str(opts["ceremonyId"].as_str().unwrap()).is_ok());

    let credential = key.register(pk, ORIGIN).unwrap();
    let result = ws
        .request(json!({"type":"register.finish","id":2,"ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(result["type"], "register.result", "{result}");
    assert_eq!(result["id"], 2);
    assert_eq!(result["verified"], "ok");
    assert_eq!(result["user"]["name"], "alice@example.com");
    assert_eq!(result["user"]["displayName"], "alice@example.com");
    assert_eq!(
        result["credentialId"],
        encode_b64url(&key.credentials()[0].id)
    );
    assert!(is_token(&result["authentication"]["token"]), "{result}");
    let expires = result["authentication"]["expiresAt"].as_u64().unwrap();
    let now = app.clock_secs();
    assert!((now + 86_400 - 5..=now + 86_400 + 5).contains(&expires));

    let mut other = app.ws("/ws").await;
    let opts = login_begin(&mut other, Some("alice@example.com"), true).await;
    let allowed = opts["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["id"], result["credentialId"]);
    assert_eq!(opts["publicKey"]["userVerification"], "required");
    assert!(opts.get("mediation").is_none());
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let signed_in = other
        .request(json!({"type":"login.finish","id":"four","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(signed_in["type"], "login.result", "{signed_in}");
    assert_eq!(signed_in["id"], "four");
    assert_eq!(signed_in["verified"], "ok");
    assert_eq!(signed_in["user"], result["user"]);
    assert!(is_token(&signed_in["authentication"]["token"]));
    assert_ne!(
        signed_in["authentication"]["token"],
        result["authentication"]["token"]
    );
}

#[actix_web::test]
async fn token_is_issued_only_when_asked_on_begin_or_finish() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    let result = register(&mut ws, &mut key, "bob", false).await;
    assert_eq!(result["verified"], "ok", "{result}");
    assert!(result.get("authentication").is_none(), "{result}");

    let mut ws = app.ws("/ws").await;
    let opts = login_begin(&mut ws, Some("bob"), false).await;
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let result = ws
        .request(json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential,"token":true}))
        .await;
    assert!(is_token(&result["authentication"]["token"]), "{result}");
    assert!(
        result.get("id").is_none(),
        "no id sent, none echoed: {result}"
    );

    let result = login(&mut ws, &mut key, Some("bob"), false).await;
    assert_eq!(result["verified"], "ok");
    assert!(result.get("authentication").is_none());
}

#[actix_web::test]
async fn usernameless_sign_in_finds_the_account_from_the_user_handle() {
    let app = spawn_app().await;
    let mut alice_key = SoftAuthenticator::new();
    let mut bob_key = SoftAuthenticator::new();
    let (_, alice_id, _) = signed_up(&app, &mut alice_key, "alice").await;
    let (_, bob_id, _) = signed_up(&app, &mut bob_key, "bob").await;

    let mut ws = app.ws("/ws").await;
    let opts = login_begin(&mut ws, None, true).await;
    assert_eq!(opts["mediation"], "conditional", "{opts}");
    let allowed = opts["publicKey"].get("allowCredentials");
    assert!(allowed.is_none() || allowed.unwrap().as_array().unwrap().is_empty());
    let credential = bob_key.login(&opts["publicKey"], ORIGIN).unwrap();
    let result = ws
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    assert_eq!(result["verified"], "ok", "{result}");
    assert_eq!(result["user"]["id"], bob_id);
    assert!(is_token(&result["authentication"]["token"]));

    let result = login(&mut ws, &mut alice_key, None, false).await;
    assert_eq!(result["user"]["id"], alice_id);
}

#[actix_web::test]
async fn usernameless_sign_in_with_another_accounts_user_handle_fails() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _alice, _) = signed_up(&app, &mut key, "alice").await;
    let (_, bob_id, _) = signed_up(&app, &mut key, "bob").await;
    let alice_cred = key.credentials()[0].id.clone();

    let mut ws = app.ws("/ws").await;
    let opts = login_begin(&mut ws, None, true).await;
    let mut credential = key
        .login_with(&alice_cred, &opts["publicKey"], ORIGIN)
        .unwrap();
    let bob_handle = uuid::Uuid::parse_str(&bob_id).unwrap();
    credential["response"]["userHandle"] = json!(encode_b64url(bob_handle.as_bytes()));
    let result = ws
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    let message = assert_error(&result, "verification_failed");
    assert!(message.contains("another account"), "{message}");
}

#[actix_web::test]
async fn finish_without_ceremony_id_uses_the_sockets_latest_ceremony() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    let opts = register_begin(&mut ws, "carol", false).await;
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let result = ws
        .request(json!({"type":"register.finish","credential":credential}))
        .await;
    assert_eq!(result["verified"], "ok", "{result}");

    let opts = login_begin(&mut ws, Some("carol"), false).await;
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let result = ws
        .request(json!({"type":"login.finish","credential":credential}))
        .await;
    assert_eq!(result["verified"], "ok", "{result}");

    // A finish without a ceremonyId on a socket that began nothing has nothing to finish.
    let mut other = app.ws("/ws").await;
    let result = other
        .request(json!({"type":"login.finish","credential":credential}))
        .await;
    assert_error(&result, "ceremony_not_found");
}

#[actix_web::test]
async fn replayed_finish_is_rejected() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "dave").await;
    let opts = login_begin(&mut ws, Some("dave"), false).await;
    let credential = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let finish =
        json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential});
    assert_eq!(ws.request(finish.clone()).await["verified"], "ok");
    assert_error(&ws.request(finish).await, "ceremony_not_found");

    // The same assertion presented to a new ceremony fails its challenge.
    let opts = login_begin(&mut ws, Some("dave"), false).await;
    let replay =
        json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential});
    let message = assert_error(&ws.request(replay).await, "verification_failed");
    assert!(message.contains("challenge"), "{message}");
}

#[actix_web::test]
async fn a_failed_finish_consumes_the_ceremony() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "erin").await;
    let opts = login_begin(&mut ws, Some("erin"), false).await;
    let good = key.login(&opts["publicKey"], ORIGIN).unwrap();
    let bad = key
        .login(&opts["publicKey"], "http://evil.example")
        .unwrap();
    let id = &opts["ceremonyId"];
    let result = ws
        .request(json!({"type":"login.finish","ceremonyId":id,"credential":bad}))
        .await;
    let message = assert_error(&result, "verification_failed");
    assert!(message.contains("origin"), "{message}");
    let result = ws
        .request(json!({"type":"login.finish","ceremonyId":id,"credential":good}))
        .await;
    assert_error(&result, "ceremony_not_found");
}

#[actix_web::test]
async fn an_expired_ceremony_is_rejected() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    let opts = register_begin(&mut ws, "frank", false).await;
    assert_eq!(opts["publicKey"]["timeout"], 300_000);
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    app.clock.advance(std::time::Duration::from_secs(301));
    let result = ws
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_error(&result, "ceremony_not_found");
    assert_eq!(app.state.ceremonies.pending().len(), 0, "taken, so gone");

    let opts = register_begin(&mut ws, "frank", false).await;
    app.clock.advance(std::time::Duration::from_secs(301));
    assert_eq!(
        app.state.ceremonies.pending().sweep(),
        1,
        "the sweep removes expired ceremonies"
    );
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let result = ws
        .request(json!({"type":"register.finish","credential":credential}))
        .await;
    assert_error(&result, "ceremony_not_found");
}

/// Signs in as `user` with `tamper` applied to the options (before signing) or the credential
/// (after); returns the verification_failed message.
async fn sign_in_tampered(
    tamper_options: impl FnOnce(&mut serde_json::Value),
    tamper_credential: impl FnOnce(&mut serde_json::Value),
    configure_key: impl FnOnce(&mut SoftAuthenticator),
) -> String {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "gina").await;
    configure_key(&mut key);
    let opts = login_begin(&mut ws, Some("gina"), true).await;
    let mut public_key = opts["publicKey"].clone();
    tamper_options(&mut public_key);
    let cred_id = key.credentials()[0].id.clone();
    let mut credential = key.login_with(&cred_id, &public_key, ORIGIN).unwrap();
    tamper_credential(&mut credential);
    let result = ws
        .request(
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential}),
        )
        .await;
    assert!(
        result.get("authentication").is_none(),
        "no token on failure: {result}"
    );
    assert_error(&result, "verification_failed")
}

fn edit_b64(credential: &mut serde_json::Value, field: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = decode_b64url(credential["response"][field].as_str().unwrap()).unwrap();
    edit(&mut bytes);
    credential["response"][field] = json!(encode_b64url(&bytes));
}

#[actix_web::test]
async fn a_tampered_challenge_is_rejected() {
    let message = sign_in_tampered(
        |o| o["challenge"] = json!(encode_b64url(&[7u8; 32])),
        |_| {},
        |_| {},
    )
    .await;
    assert!(message.contains("challenge"), "{message}");
}

#[actix_web::test]
async fn a_tampered_signature_is_rejected() {
    let message = sign_in_tampered(
        |_| {},
        |c| {
            edit_b64(c, "signature", |sig| {
                let last = sig.len() - 1;
                sig[last] ^= 0x01;
            })
        },
        |_| {},
    )
    .await;
    assert!(message.contains("signature"), "{message}");
}

#[actix_web::test]
async fn a_tampered_rp_id_hash_is_rejected() {
    let message = sign_in_tampered(
        |_| {},
        |c| {
            let other = openssl::sha::sha256(b"example.com");
            edit_b64(c, "authenticatorData", |data| {
                data[..32].copy_from_slice(&other)
            });
        },
        |_| {},
    )
    .await;
    assert!(message.contains("relying party id"), "{message}");
}

#[actix_web::test]
async fn tampered_client_data_origin_is_rejected() {
    let message = sign_in_tampered(
        |_| {},
        |c| {
            edit_b64(c, "clientDataJSON", |data| {
                let mut cd: serde_json::Value = serde_json::from_slice(data).unwrap();
                cd["origin"] = json!("http://evil.example");
                *data = serde_json::to_vec(&cd).unwrap();
            })
        },
        |_| {},
    )
    .await;
    assert!(message.contains("origin"), "{message}");
}

#[actix_web::test]
async fn cross_origin_client_data_is_rejected() {
    let message = sign_in_tampered(
        |_| {},
        |c| {
            edit_b64(c, "clientDataJSON", |data| {
                let mut cd: serde_json::Value = serde_json::from_slice(data).unwrap();
                cd["topOrigin"] = json!("https://embedder.example");
                *data = serde_json::to_vec(&cd).unwrap();
            })
        },
        |_| {},
    )
    .await;
    assert!(message.contains("cross-origin"), "{message}");
}

#[actix_web::test]
async fn an_assertion_without_user_verification_is_rejected() {
    let message = sign_in_tampered(|_| {}, |_| {}, |k| k.user_verification = false).await;
    assert!(message.contains("user verification"), "{message}");
}

#[actix_web::test]
async fn an_assertion_without_user_presence_is_rejected() {
    let message = sign_in_tampered(|_| {}, |_| {}, |k| k.user_presence = false).await;
    assert!(message.contains("presence"), "{message}");
}

#[actix_web::test]
async fn a_counter_that_goes_backwards_fails_the_sign_in_and_is_not_stored() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, _, mut ws) = signed_up(&app, &mut key, "hank").await;
    for _ in 0..3 {
        assert_eq!(
            login(&mut ws, &mut key, Some("hank"), false).await["verified"],
            "ok"
        );
    }
    let cred_id = key.credentials()[0].id.clone();
    let stored = |app: &TestApp| {
        let (store, cred_id) = (app.state.store.clone(), cred_id.clone());
        async move {
            let record = store.credential(&cred_id).await.unwrap().unwrap();
            (
                wsauthn_counter(&record.passkey),
                record.last_used_at.is_some(),
            )
        }
    };
    assert_eq!(
        stored(&app).await,
        (3, true),
        "each sign-in stored its counter"
    );
    key.set_counter(&cred_id, 1);
    let result = login(&mut ws, &mut key, Some("hank"), true).await;
    let message = assert_error(&result, "verification_failed");
    assert!(message.contains("counter"), "{message}");
    assert_eq!(stored(&app).await.0, 3);

    // Equal is not greater either.
    key.set_counter(&cred_id, 2);
    assert_error(
        &login(&mut ws, &mut key, Some("hank"), false).await,
        "verification_failed",
    );
    // Moving on from the stored value works again.
    key.set_counter(&cred_id, 10);
    assert_eq!(
        login(&mut ws, &mut key, Some("hank"), false).await["verified"],
        "ok"
    );
    assert_eq!(stored(&app).await.0, 11);
}

fn wsauthn_counter(passkey: &webauthn_rs::prelude::Passkey) -> u32 {
    webauthn_rs::prelude::Credential::from(passkey.clone()).counter
}

#[actix_web::test]
async fn a_credential_id_cannot_be_registered_to_a_second_account() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    signed_up(&app, &mut key, "ivy").await;
    let cred_id = key.credentials()[0].id.clone();
    let mut ws = app.ws("/ws").await;
    let opts = register_begin(&mut ws, "mallory", true).await;
    let credential = key
        .register_existing(&cred_id, &opts["publicKey"], ORIGIN)
        .unwrap();
    let result = ws
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_error(&result, "credential_in_use");
    assert!(
        app.state
            .store
            .user_by_name("mallory")
            .await
            .unwrap()
            .is_none(),
        "no half-made account"
    );
}

#[actix_web::test]
async fn racing_registrations_of_one_credential_id_let_exactly_one_win() {
    let app = spawn_app().await;
    for round in 0..5 {
        let mut key = SoftAuthenticator::new();
        let mut a = app.ws("/ws").await;
        let mut b = app.ws("/ws").await;
        let opts_a = register_begin(&mut a, &format!("racer-a{round}"), false).await;
        let opts_b = register_begin(&mut b, &format!("racer-b{round}"), false).await;
        let cred_a = key.register(&opts_a["publicKey"], ORIGIN).unwrap();
        let id = key.credentials()[0].id.clone();
        let cred_b = key
            .register_existing(&id, &opts_b["publicKey"], ORIGIN)
            .unwrap();
        let finish = |opts: &serde_json::Value, cred| json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":cred});
        let (fa, fb) = (finish(&opts_a, cred_a), finish(&opts_b, cred_b));
        let (ra, rb) = futures_util::join!(a.request(fa), b.request(fb));
        let wins = [&ra, &rb].iter().filter(|r| r["verified"] == "ok").count();
        assert_eq!(wins, 1, "{ra} / {rb}");
        let loser = if ra["verified"] == "ok" { &rb } else { &ra };
        assert_error(loser, "credential_in_use");
    }
}

#[actix_web::test]
async fn the_store_lets_one_of_many_concurrent_writers_of_a_credential_id_win() {
    // Below register.finish: the store's compare-and-swap of the credential id decides.
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    signed_up(&app, &mut key, "template").await;
    let record = app
        .state
        .store
        .credential(&key.credentials()[0].id)
        .await
        .unwrap()
        .unwrap();
    let mut cred = webauthn_rs::prelude::Credential::from(record.passkey.clone());
    cred.cred_id = vec![42u8; 16];
    let fresh = wsauthn::store::CredentialRecord {
        passkey: webauthn_rs::prelude::Passkey::from(cred),
        ..record
    };
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = app.state.store.clone();
            let mut record = fresh.clone();
            actix_web::rt::spawn(async move {
                let user = wsauthn::store::UserRecord {
                    id: uuid::Uuid::new_v4(),
                    name: format!("writer{i}"),
                    display_name: format!("writer{i}"),
                    created_at: 0,
                    passkeys: 1,
                };
                record.user_id = user.id;
                store.create_user(&user, &record).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.code() == wsauthn::ErrorCode::CredentialInUse));
}

#[actix_web::test]
async fn racing_sign_ups_for_one_username_let_exactly_one_win() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut a = app.ws("/ws").await;
    let mut b = app.ws("/ws").await;
    let opts_a = register_begin(&mut a, "Jess", false).await;
    let opts_b = register_begin(&mut b, "jess", false).await;
    let cred_a = key.register(&opts_a["publicKey"], ORIGIN).unwrap();
    let cred_b = key.register(&opts_b["publicKey"], ORIGIN).unwrap();
    let fa =
        json!({"type":"register.finish","ceremonyId":opts_a["ceremonyId"],"credential":cred_a});
    let fb =
        json!({"type":"register.finish","ceremonyId":opts_b["ceremonyId"],"credential":cred_b});
    let (ra, rb) = futures_util::join!(a.request(fa), b.request(fb));
    assert_eq!(
        [&ra, &rb].iter().filter(|r| r["verified"] == "ok").count(),
        1,
        "{ra} / {rb}"
    );
    let loser = if ra["verified"] == "ok" { &rb } else { &ra };
    assert_error(loser, "username_taken");
}

#[actix_web::test]
async fn an_existing_username_is_taken_unless_the_socket_is_signed_in_as_it() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let (_, user_id, mut alice_ws) = signed_up(&app, &mut key, "Kim@Example.com").await;
    let mut stranger = app.ws("/ws").await;
    let reply = stranger
        .request(json!({"type":"register.begin","id":1,"username":"kim@example.com"}))
        .await;
    assert_error(&reply, "username_taken");
    assert_eq!(reply["id"], 1);

    // The signed-in socket adds a second passkey; the first is excluded.
    let opts = register_begin(&mut alice_ws, "kim@example.com", false).await;
    let excluded = opts["publicKey"]["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0]["id"], encode_b64url(&key.credentials()[0].id));
    let mut phone = SoftAuthenticator::new();
    let credential = phone.register(&opts["publicKey"], ORIGIN).unwrap();
    let result = alice_ws
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(result["verified"], "ok", "{result}");
    assert_eq!(result["user"]["id"], user_id);
    assert_eq!(result["user"]["name"], "Kim@Example.com");

    let mut ws = app.ws("/ws").await;
    let opts = login_begin(&mut ws, Some("KIM@example.com"), false).await;
    assert_eq!(
        opts["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        login(&mut ws, &mut phone, Some("kim@example.com"), false).await["user"]["id"],
        user_id
    );
    assert_eq!(
        login(&mut ws, &mut key, Some("kim@example.com"), false).await["user"]["id"],
        user_id
    );
}

#[actix_web::test]
async fn sign_in_for_an_unknown_username_is_refused() {
    let app = spawn_app().await;
    let mut ws = app.ws("/ws").await;
    let reply = ws
        .request(json!({"type":"login.begin","id":9,"username":"nobody"}))
        .await;
    assert_error(&reply, "unknown_user");
    assert_eq!(reply["id"], 9);
}

#[actix_web::test]
async fn bad_usernames_are_refused_with_bad_request() {
    let app = spawn_app().await;
    let mut ws = app.ws("/ws").await;
    for username in ["", "   ", "a\u{7}b", &"x".repeat(257)] {
        let reply = ws
            .request(json!({"type":"register.begin","username":username}))
            .await;
        assert_error(&reply, "bad_request");
    }
    let reply = ws
        .request(json!({"type":"register.begin","username":"ok","displayName":"\u{0}"}))
        .await;
    assert_error(&reply, "bad_request");
}

#[actix_web::test]
async fn a_new_begin_replaces_the_sockets_pending_ceremony_of_that_kind() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    let first = register_begin(&mut ws, "lena", false).await;
    let second = register_begin(&mut ws, "lena", false).await;
    assert_eq!(
        app.state.ceremonies.pending().len(),
        1,
        "one pending register per socket"
    );
    let credential = key.register(&first["publicKey"], ORIGIN).unwrap();
    let reply = ws
        .request(json!({"type":"register.finish","ceremonyId":first["ceremonyId"],"credential":credential}))
        .await;
    assert_error(&reply, "ceremony_not_found");
    let credential = key.register(&second["publicKey"], ORIGIN).unwrap();
    let reply = ws
        .request(json!({"type":"register.finish","ceremonyId":second["ceremonyId"],"credential":credential}))
        .await;
    assert_eq!(reply["verified"], "ok", "{reply}");
}

#[actix_web::test]
async fn closing_a_socket_cancels_its_pending_ceremonies() {
    let app = spawn_app().await;
    let mut key = SoftAuthenticator::new();
    let mut ws = app.ws("/ws").await;
    let opts = register_begin(&mut ws, "mona", false).await;
    ws.close().await;
    let deadline = std::time::Instant::now() + PATIENCE;
    while !app.state.ceremonies.pending().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "ceremony outlived its socket"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut other = app.ws("/ws").await;
    let credential = key.register(&opts["publicKey"], ORIGIN).unwrap();
    let reply = other
        .request(json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential}))
        .await;
    assert_error(&reply, "ceremony_not_found");
}

#[actix_web::test]
async fn too_many_ceremonies_on_one_connection_are_rate_limited() {
    let app = spawn_with(|c| c.limits.ceremonies_per_minute = 3).await;
    let mut ws = app.ws("/ws").await;
    for i in 0..3 {
        register_begin(&mut ws, &format!("n{i}"), false).await;
    }
    let reply = ws.request(json!({"type":"login.begin","id":4})).await;
    assert_error(&reply, "rate_limited");
    assert_eq!(
        ws.request(json!({"type":"ping","id":5})).await["type"],
        "pong",
        "socket stays open"
    );
    let mut fresh = app.ws("/ws").await;
    login_begin(&mut fresh, None, false).await;
}

#[actix_web::test]
async fn the_global_cap_on_pending_ceremonies_holds_under_a_flood_of_begins() {
    let app = spawn_with(|c| c.limits.max_pending_ceremonies = 4).await;
    let mut sockets = Vec::new();
    for _ in 0..4 {
        let mut ws = app.ws("/ws").await;
        login_begin(&mut ws, None, false).await;
        sockets.push(ws);
    }
    let mut ws = app.ws("/ws").await;
    assert_error(
        &ws.request(json!({"type":"login.begin"})).await,
        "rate_limited",
    );
    assert_eq!(app.state.ceremonies.pending().len(), 4);
    // Once they expire, room is made again.
    app.clock.advance(std::time::Duration::from_secs(301));
    login_begin(&mut ws, None, false).await;
    assert_eq!(app.state.ceremonies.pending().len(), 1);
}
