//! Passkey ceremonies over `/ws`: every row of the protocol table and every way they can fail.

use serde_json::json;
use wsauthn::softkey::{decode_b64url, encode_b64url, SoftAuthenticator};

use crate::helpers::*;

fn is_token(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|t| t.len() == 64 && t.bytes().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)))
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
    assert_eq!(result["credentialId"], encode_b64url(&key.credentials()[0].id));
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
    assert_ne!(signed_in["authentication"]["token"], result["authentication"]["token"]);
}
