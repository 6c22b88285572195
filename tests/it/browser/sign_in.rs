//! Signing up and in on the demo page: the form, the button, autofill, the busy state, and
//! authenticators that fail.

use serde_json::json;

use super::{error_shown, sign_out_and_stay_out, sign_up, wait_until_settled, Demo};

#[actix_web::test]
async fn signing_up_with_a_passkey_shows_who_the_server_says_you_are() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    assert!(page.credentials().await.is_empty());

    // Settled means: signed in, GET /api/me with the page's bearer token named the account,
    // and the chat socket accepted the token.
    sign_up(&page, "alice@example.com", "Alice").await;

    assert_eq!(page.text("#me-name").await, "Alice");
    assert_eq!(page.text("#me-username").await, "alice@example.com");
    assert!(page
        .text("#me-check")
        .await
        .contains("The server knows you as alice@example.com"));
    assert_eq!(page.attribute("body", "data-via").await, json!("register"));
    // The passkey is a discoverable credential on the authenticator, for this site.
    let credentials = page.credentials().await;
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0]["isResidentCredential"], true);
    assert_eq!(credentials[0]["rpId"], "localhost");
    assert_eq!(demo.state.tokens.len(), 1, "one session: this page's");
    demo.stop().await;
}

#[actix_web::test]
async fn signing_out_and_in_again_with_the_button_uses_the_same_passkey() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "bea@example.com", "Bea").await;
    sign_out_and_stay_out(&page).await;
    assert_eq!(
        page.text("#me-name").await,
        "",
        "the account is out of view"
    );
    assert!(page.text("#notice").await.contains("signed out"));

    page.fill("#username", "bea@example.com").await;
    page.click("#submit").await;
    wait_until_settled(&page, "bea@example.com").await;

    assert_eq!(page.attribute("body", "data-via").await, json!("login"));
    assert_eq!(page.text("#me-name").await, "Bea");
    assert_eq!(page.credentials().await.len(), 1, "no second passkey");
    demo.stop().await;
}

#[actix_web::test]
async fn touching_the_username_field_offers_the_passkey_through_autofill() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "cleo@example.com", "Cleo").await;

    // Sign out while the authenticator holds no passkey: the page's autofill request finds
    // nothing and ends. Then the passkey comes back, and touching the field must start a new
    // request that the authenticator answers, as a person picking it from the autofill list.
    let passkeys = page.credentials().await;
    page.clear_credentials().await;
    page.click("#signout").await;
    page.wait_for(
        "the autofill request has ended",
        "document.body.dataset.state === 'signed-out' && document.body.dataset.autofill === 'idle'",
    )
    .await;
    page.add_credential(passkeys[0].clone()).await;
    assert_eq!(
        page.attribute("#username", "autocomplete").await,
        json!("username webauthn")
    );

    page.click("#username").await;
    wait_until_settled(&page, "cleo@example.com").await;

    assert_eq!(page.attribute("body", "data-via").await, json!("autofill"));
    assert_eq!(page.text("#me-name").await, "Cleo");
    assert!(page.text("#me-via").await.contains("autofill"));
    demo.stop().await;
}

#[actix_web::test]
async fn a_reload_stays_signed_in_without_a_prompt_or_a_new_session() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "dan@example.com", "Dan").await;
    let before = page.eval("wsauthnDemo.client.session").await;
    assert_eq!(demo.state.tokens.len(), 1);

    // The authenticator holds no passkey during the reloads, so a signed-in page cannot come from
    // a passkey prompt (autofill would find nothing).
    let passkeys = page.credentials().await;
    page.clear_credentials().await;
    for _ in 0..3 {
        page.reload().await;
        wait_until_settled(&page, "dan@example.com").await;
        assert_eq!(page.attribute("body", "data-via").await, json!("restored"));
    }
    assert_eq!(page.text("#me-name").await, "Dan");
    assert_eq!(
        demo.state.tokens.len(),
        1,
        "three reloads, still one session: no stale ones left behind"
    );
    // The stored token was replaced at each restore: the first one is dead.
    let now = page.eval("wsauthnDemo.client.session").await;
    assert_ne!(now["token"], before["token"]);
    let old = format!("Bearer {}", before["token"].as_str().unwrap());
    let status = awc::Client::new()
        .get(format!("{}/api/me", demo.url))
        .insert_header(("Authorization", old))
        .send()
        .await
        .expect("GET /api/me")
        .status();
    assert_eq!(
        status.as_u16(),
        401,
        "the token from before the reloads is dead"
    );
    assert_eq!(
        page.eval("JSON.parse(sessionStorage.getItem(Object.keys(sessionStorage)[0])).token")
            .await,
        now["token"],
        "the tab keeps the current token"
    );

    // A new tab has nothing stored: it starts signed out and offers the passkey as it loads.
    for passkey in passkeys {
        page.add_credential(passkey).await;
    }
    page.eval("sessionStorage.clear()").await;
    page.reload().await;
    wait_until_settled(&page, "dan@example.com").await;
    assert_eq!(page.attribute("body", "data-via").await, json!("autofill"));

    // Signing out forgets it: a reload then starts signed out.
    sign_out_and_stay_out(&page).await;
    assert_eq!(page.eval("sessionStorage.length").await, 0);
    page.clear_credentials().await;
    page.reload().await;
    page.wait_for(
        "the page starts signed out",
        "document.body.dataset.state === 'signed-out' && document.body.dataset.autofill === 'idle'",
    )
    .await;
    demo.stop().await;
}

#[actix_web::test]
async fn the_page_is_busy_while_the_passkey_prompt_is_open_and_cancel_ends_it() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "erin@example.com", "Erin").await;
    // Presence off: the authenticator waits for a touch, like a prompt nobody has answered yet.
    // Signed out, the page's autofill request now stays pending, as it does for a person who has
    // not opened the autofill list; the button must take over from it (browsers refuse a second
    // WebAuthn request while one is pending).
    page.set_presence(false).await;
    page.click("#signout").await;
    page.wait_for(
        "the page is signed out with its autofill request pending",
        "document.body.dataset.state === 'signed-out' && document.body.dataset.autofill === 'armed'",
    )
    .await;
    page.fill("#username", "erin@example.com").await;
    page.click("#submit").await;

    page.wait_for("the page is busy", "document.body.dataset.state === 'busy'")
        .await;
    assert!(page
        .text("#busy")
        .await
        .contains("follow your browser's prompt"));
    for control in ["#submit", "#username", "#tab-signup"] {
        assert_eq!(
            page.eval(&format!("document.querySelector('{control}').disabled"))
                .await,
            true,
            "{control} is disabled while busy"
        );
    }
    assert_eq!(
        page.text("#error").await,
        "",
        "no 'request already pending'"
    );

    page.click("#cancel").await;
    page.wait_for(
        "the page is idle again",
        "document.body.dataset.state === 'signed-out' \
         && document.getElementById('notice').innerText === 'Cancelled. Nothing was changed.'",
    )
    .await;
    assert_eq!(page.text("#error").await, "", "cancelling is not an error");
    assert_eq!(page.eval("wsauthnDemo.client.session").await, json!(null));

    // The form works again: with the authenticator answering, the same button signs in.
    page.set_presence(true).await;
    page.click("#submit").await;
    wait_until_settled(&page, "erin@example.com").await;
    assert_eq!(page.attribute("body", "data-via").await, json!("login"));
    demo.stop().await;
}

#[actix_web::test]
async fn an_authenticator_that_fails_user_verification_shows_why_and_signs_no_one_in() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "fay@example.com", "Fay").await;
    sign_out_and_stay_out(&page).await;
    let sessions = demo.state.tokens.len();

    // The authenticator refuses to verify the person: the browser returns no credential.
    page.set_user_verified(false).await;
    page.click("#submit").await;
    let error = error_shown(&page).await;
    assert!(
        error.contains("No passkey was used"),
        "the words say what happened: {error}"
    );

    // It claims verification in its response without having done it: the server refuses.
    page.set_user_verified(true).await;
    page.override_response_bits(json!({"isBadUV": true})).await;
    page.click("#submit").await;
    page.wait_for(
        "the server's refusal is shown",
        "document.getElementById('error').innerText.includes('did not confirm it was you')",
    )
    .await;

    assert_eq!(
        page.attribute("body", "data-state").await,
        json!("signed-out")
    );
    assert_eq!(page.text("#me-name").await, "");
    assert_eq!(demo.state.tokens.len(), sessions, "no session was issued");
    demo.stop().await;
}

#[actix_web::test]
async fn an_authenticator_returning_a_bogus_signature_shows_why_and_signs_no_one_in() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "gus@example.com", "Gus").await;
    sign_out_and_stay_out(&page).await;
    let sessions = demo.state.tokens.len();

    page.override_response_bits(json!({"isBogusSignature": true}))
        .await;
    page.fill("#username", "gus@example.com").await;
    page.click("#submit").await;
    let error = error_shown(&page).await;
    assert!(
        error.contains("signature did not check out"),
        "the words say what happened: {error}"
    );
    assert_eq!(page.text("#me-name").await, "");
    assert_eq!(demo.state.tokens.len(), sessions, "no session was issued");
    demo.stop().await;
}

#[actix_web::test]
async fn the_client_converts_webauthn_json_itself_where_the_browser_cannot() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    // Browsers before 2024 lack these; wsauthn.js must then do the base64url work itself.
    page.eval(
        "delete PublicKeyCredential.parseCreationOptionsFromJSON; \
         delete PublicKeyCredential.parseRequestOptionsFromJSON; \
         delete PublicKeyCredential.prototype.toJSON; \
         typeof PublicKeyCredential.parseCreationOptionsFromJSON",
    )
    .await;
    assert_eq!(
        page.eval("typeof PublicKeyCredential.prototype.toJSON")
            .await,
        "undefined"
    );

    sign_up(&page, "hal@example.com", "Hal").await;
    sign_out_and_stay_out(&page).await;
    page.fill("#username", "hal@example.com").await;
    page.click("#submit").await;
    wait_until_settled(&page, "hal@example.com").await;
    assert_eq!(page.attribute("body", "data-via").await, json!("login"));
    demo.stop().await;
}

#[actix_web::test]
async fn every_error_code_has_words_of_its_own() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    let generic = page
        .eval(
            r#"(async () => {
                const m = await import("/wsauthn.js");
                const { describe } = wsauthnDemo;
                const fallback = describe(new m.WsauthnError("no_such_code", "x"), "signin");
                const out = [];
                for (const code of [...m.SERVER_CODES, ...m.CLIENT_CODES]) {
                    for (const during of ["signin", "signup", "autofill", "recover", "account"]) {
                        const words = describe(new m.WsauthnError(code, "The server's sentence."), during);
                        if (!words || words === fallback || words.startsWith("Something went wrong")) out.push(`${code} (${during}): ${words}`);
                    }
                }
                return out;
            })()"#,
        )
        .await;
    assert_eq!(generic, json!([]), "codes without words of their own");
    // The server's codes are the ones the client knows.
    let codes = page
        .eval("import('/wsauthn.js').then((m) => m.SERVER_CODES)")
        .await;
    for code in [
        "bad_request",
        "username_taken",
        "unknown_user",
        "ceremony_not_found",
        "verification_failed",
        "credential_in_use",
        "unauthorized",
        "rate_limited",
        "not_found",
        "last_passkey",
        "passkey_limit",
        "no_passkey",
        "unknown_credential",
        "recovery_failed",
        "internal",
    ] {
        assert!(
            codes.as_array().unwrap().contains(&json!(code)),
            "{code} is missing from SERVER_CODES"
        );
    }
    demo.stop().await;
}
