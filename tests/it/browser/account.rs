//! The demo's account page, through `wsauthn.js`: passkeys (add, rename, delete, the last-passkey
//! guard), sessions across two browsers, recovery codes, the display name, deleting the account,
//! and the WebAuthn Signal API calls each makes (recorded by the page's `signal` events and by a
//! spy on `PublicKeyCredential`).

use serde_json::{json, Value};

use super::page::Page;
use super::{error_shown, sign_up, wait_until_settled, Demo};

/// Opens the account page and waits until its lists have loaded (again).
pub async fn open_account(page: &Page) {
    page.eval("delete document.getElementById('account').dataset.loaded")
        .await;
    page.click("#view-account").await;
    account_loaded(page).await;
}

/// Waits until the account page has (re)loaded its lists.
async fn account_loaded(page: &Page) {
    page.wait_for(
        "the account page has loaded",
        "document.getElementById('account').dataset.loaded && !document.getElementById('account').hasAttribute('aria-busy')",
    )
    .await;
}

/// Runs `action` and waits for the account page to load again after it.
async fn then_reloaded(page: &Page, action: impl std::future::Future<Output = ()>) {
    page.eval("delete document.getElementById('account').dataset.loaded")
        .await;
    action.await;
    account_loaded(page).await;
}

/// Records every call the page makes to the Signal API, whether or not the browser has it.
async fn spy_on_signals(page: &Page) {
    page.eval(
        r#"window.signalCalls = [];
           for (const m of ["signalUnknownCredential", "signalAllAcceptedCredentials", "signalCurrentUserDetails"]) {
             const real = PublicKeyCredential[m];
             PublicKeyCredential[m] = async (options) => {
               window.signalCalls.push({ method: m, options });
               return real ? real.call(PublicKeyCredential, options) : undefined;
             };
           }
           true"#,
    )
    .await;
}

async fn signal_calls(page: &Page, method: &str) -> Vec<Value> {
    let calls = page
        .eval(&format!(
            "window.signalCalls.filter((c) => c.method === {}).map((c) => c.options)",
            json!(method)
        ))
        .await;
    calls.as_array().cloned().unwrap_or_default()
}

fn row_texts(rows: &Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn passkey_rows(page: &Page) -> Vec<String> {
    row_texts(
        &page
            .eval("[...document.querySelectorAll('#passkey-list .row')].map((r) => r.innerText)")
            .await,
    )
}

#[actix_web::test]
async fn passkeys_are_added_renamed_and_deleted_on_the_account_page_and_the_browser_is_told() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    spy_on_signals(&page).await;
    sign_up(&page, "mia@example.com", "Mia").await;
    let user_handle = {
        let id = page.eval("wsauthnDemo.client.user.id").await;
        let id = uuid::Uuid::parse_str(id.as_str().unwrap()).unwrap();
        wsauthn::b64url(id.as_bytes())
    };
    // After the sign-up the browser was told which passkeys the server accepts, and who the user is.
    page.wait_for(
        "the sign-in signals were sent",
        "window.signalCalls.some((c) => c.method === 'signalCurrentUserDetails')",
    )
    .await;
    let first = page.credentials().await[0]["credentialId"].clone();
    let first_id = wsauthn::b64url(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            first.as_str().unwrap(),
        )
        .unwrap(),
    );
    let accepted = signal_calls(&page, "signalAllAcceptedCredentials").await;
    assert_eq!(
        accepted[0],
        json!({"rpId": "localhost", "userId": user_handle, "allAcceptedCredentialIds": [first_id]})
    );

    open_account(&page).await;
    let rows = passkey_rows(&page).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("Passkey"), "{rows:?}");
    assert!(
        rows[0].contains("This device only"),
        "not backup eligible: {rows:?}"
    );
    assert!(rows[0].contains("Used now"), "{rows:?}");
    // The only passkey cannot be deleted, and the page says why.
    assert_eq!(
        page.eval("document.querySelector('#passkey-list .danger-link').disabled")
            .await,
        true
    );
    assert!(page.text("#last-passkey").await.contains("only passkey"));

    // Add a second passkey. (An authenticator holds one passkey per account and refuses a second,
    // as excludeCredentials asks; so the first leaves it, as if the new one were made on another
    // device or in a passkey manager.)
    page.clear_credentials().await;
    then_reloaded(&page, page.click("#passkey-add")).await;
    assert!(
        page.text("#account-notice").await.starts_with("Added"),
        "{}",
        page.text("#account-error").await
    );
    assert_eq!(page.credentials().await.len(), 1, "the new passkey");
    let rows = passkey_rows(&page).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        page.text("#last-passkey").await.is_empty(),
        "the guard is gone"
    );

    // Rename the new one.
    page.click("#passkey-list .row:last-child button[aria-label^='Rename']")
        .await;
    page.eval(
        "(() => { const i = document.querySelector('#passkey-list form input'); i.value = 'Work phone 📱'; })()",
    )
    .await;
    then_reloaded(
        &page,
        page.click("#passkey-list form button[type='submit']"),
    )
    .await;
    let rows = passkey_rows(&page).await;
    assert!(rows[1].contains("Work phone 📱"), "{rows:?}");
    assert_eq!(
        page.text("#account-notice").await,
        "Renamed to “Work phone 📱”."
    );

    // Delete it, keeping this session (opened by the first passkey, so not touched anyway).
    let new_id = page
        .eval("document.querySelector('#passkey-list .row:last-child').dataset.id")
        .await;
    page.click("#passkey-list .row:last-child .danger-link")
        .await;
    page.wait_for(
        "the dialog asks",
        "document.getElementById('confirm-dialog').open",
    )
    .await;
    assert!(page.text("#confirm-title").await.contains("Work phone"));
    then_reloaded(&page, page.click("#confirm-ok")).await;
    assert_eq!(passkey_rows(&page).await.len(), 1);
    assert!(page.text("#account-notice").await.starts_with("Deleted"));
    // The browser was told the deleted one is no longer accepted.
    let accepted = signal_calls(&page, "signalAllAcceptedCredentials").await;
    assert!(accepted
        .iter()
        .any(|c| c["allAcceptedCredentialIds"] == json!([first_id])
            && c["userId"] == json!(user_handle)));
    assert!(!accepted.last().unwrap()["allAcceptedCredentialIds"]
        .as_array()
        .unwrap()
        .contains(&new_id));
    assert_eq!(
        page.attribute("body", "data-state").await,
        json!("signed-in"),
        "still signed in"
    );
    demo.stop().await;
}

#[actix_web::test]
async fn sessions_in_two_browsers_are_listed_and_ending_them_closes_the_others_sockets() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let laptop = demo.visitor().await;
    sign_up(&laptop, "noa@example.com", "Noa").await;
    // The same synced passkey on a second device: another browser context.
    // It holds the passkey only while signing in, so its autofill cannot sign it back in by itself
    // once it is signed out.
    let phone = demo.visitor().await;
    phone.set_viewport(390, 844, true).await;
    phone
        .wait_for(
            "the phone's first autofill request has found nothing",
            "document.body.dataset.autofill === 'idle'",
        )
        .await;
    for passkey in laptop.credentials().await {
        phone.add_credential(passkey).await;
    }
    phone.fill("#username", "noa@example.com").await;
    phone.click("#submit").await;
    wait_until_settled(&phone, "noa@example.com").await;
    // Kept as the phone holds it now (its signature counter moved on).
    let passkeys = phone.credentials().await;
    phone.clear_credentials().await;
    demo.wait_for_chat_members(2).await;

    open_account(&laptop).await;
    let sessions = row_texts(
        &laptop
            .eval("[...document.querySelectorAll('#session-list .row')].map((r) => r.innerText)")
            .await,
    );
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(
        sessions
            .iter()
            .all(|s| s.contains("Headless Chrome on Linux")),
        "{sessions:?}"
    );
    assert!(
        sessions.iter().all(|s| s.contains("127.0.0.1")),
        "{sessions:?}"
    );
    let current: Vec<&String> = sessions
        .iter()
        .filter(|s| s.contains("This device"))
        .collect();
    assert_eq!(current.len(), 1, "exactly one is this one: {sessions:?}");

    // End the phone's session from the laptop: the phone's sockets close at once.
    then_reloaded(
        &laptop,
        laptop.click("#session-list .row:not([data-current]) .danger-link"),
    )
    .await;
    phone
        .wait_for(
            "the phone is signed out",
            "document.body.dataset.state === 'signed-out' \
             && document.getElementById('notice').innerText.includes('closed your chat connection')",
        )
        .await;
    demo.wait_for_chat_members(1).await;
    assert_eq!(
        laptop
            .eval("document.querySelectorAll('#session-list .row').length")
            .await,
        1
    );

    // The phone signs in again; "Sign out all others" ends it again, and the laptop stays.
    phone
        .wait_for(
            "the phone's autofill is idle",
            "document.body.dataset.autofill === 'idle'",
        )
        .await;
    for passkey in &passkeys {
        phone.add_credential(passkey.clone()).await;
    }
    phone.fill("#username", "noa@example.com").await;
    phone.click("#submit").await;
    wait_until_settled(&phone, "noa@example.com").await;
    phone.clear_credentials().await;
    open_account(&laptop).await;
    then_reloaded(&laptop, laptop.click("#sessions-end-others")).await;
    assert_eq!(
        laptop.text("#account-notice").await,
        "Signed out 1 other session."
    );
    phone
        .wait_for(
            "the phone is signed out again",
            "document.body.dataset.state === 'signed-out'",
        )
        .await;
    assert_eq!(
        laptop.attribute("body", "data-state").await,
        json!("signed-in")
    );
    assert_eq!(demo.state.tokens.len(), 1);
    demo.stop().await;
}

#[actix_web::test]
async fn recovery_codes_bring_back_an_account_whose_passkey_is_lost() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "oli@example.com", "Oli").await;
    open_account(&page).await;
    assert!(page
        .text("#recovery-status")
        .await
        .contains("No recovery codes yet"));
    page.click("#recovery-create").await;
    page.wait_for(
        "the codes are shown",
        "document.querySelectorAll('#recovery-code-list li').length === 10",
    )
    .await;
    let codes = page
        .eval(
            "[...document.querySelectorAll('#recovery-code-list li')].map((li) => li.textContent)",
        )
        .await;
    let code = codes[0].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 19, "{code}");
    then_reloaded(&page, page.click("#recovery-done")).await;
    assert_eq!(page.text("#recovery-code-list").await, "", "shown once");
    assert!(page
        .text("#recovery-status")
        .await
        .starts_with("10 unused recovery codes left"));

    // The device is lost: no passkey, no session.
    page.clear_credentials().await;
    page.click("#view-chat").await;
    page.click("#signout").await;
    page.wait_for(
        "signed out",
        "document.body.dataset.state === 'signed-out' && document.body.dataset.autofill === 'idle'",
    )
    .await;
    page.click("#to-recover").await;
    page.fill("#username", "oli@example.com").await;
    // A wrong code first: the words say so.
    page.fill("#recovery-code", "0000-0000-0000-0000").await;
    page.click("#submit").await;
    let error = error_shown(&page).await;
    assert!(error.contains("do not match"), "{error}");
    page.fill("#recovery-code", &code.to_lowercase()).await;
    page.click("#submit").await;
    wait_until_settled(&page, "oli@example.com").await;
    assert_eq!(page.attribute("body", "data-via").await, json!("recovery"));
    assert_eq!(page.credentials().await.len(), 1, "a new passkey was made");

    open_account(&page).await;
    assert!(page
        .text("#recovery-status")
        .await
        .starts_with("9 unused recovery codes left"));
    assert_eq!(
        passkey_rows(&page).await.len(),
        2,
        "the lost one and the new one"
    );
    // The code is spent: using it again fails.
    let again = page
        .eval(&format!(
            "(async () => {{
                const c = new (await import('/wsauthn.js')).WsauthnClient({{ persist: false }});
                try {{ await c.recover('oli@example.com', {}); return 'recovered'; }}
                catch (e) {{ return e.code; }} finally {{ c.close(); }}
             }})()",
            json!(code)
        ))
        .await;
    assert_eq!(again, "recovery_failed");
    demo.stop().await;
}

#[actix_web::test]
async fn the_display_name_changes_and_the_account_deletes_itself() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    spy_on_signals(&page).await;
    sign_up(&page, "pia@example.com", "Pia").await;
    open_account(&page).await;
    page.eval("document.getElementById('profile-name').value = 'Pia Müller 🌻'")
        .await;
    then_reloaded(&page, page.click("#profile-save")).await;
    assert_eq!(page.text("#me-name").await, "", "the chat view is hidden");
    assert_eq!(
        page.eval("document.getElementById('me-name').textContent")
            .await,
        "Pia Müller 🌻"
    );
    let details = signal_calls(&page, "signalCurrentUserDetails").await;
    assert_eq!(details.last().unwrap()["displayName"], "Pia Müller 🌻");
    assert_eq!(details.last().unwrap()["name"], "pia@example.com");
    assert_eq!(details.last().unwrap()["rpId"], "localhost");
    // The server says so too, for this session and the chat.
    let me = page.eval("wsauthnDemo.client.me()").await;
    assert_eq!(me["user"]["displayName"], "Pia Müller 🌻");

    // The authenticator holds off answering from here, so the page's autofill request after the
    // deletion does not pick the deleted passkey at once (as a person would not).
    page.set_presence(false).await;
    page.click("#account-delete").await;
    page.wait_for(
        "the dialog asks",
        "document.getElementById('confirm-dialog').open",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('confirm-ok').disabled")
            .await,
        true,
        "not before the username is typed"
    );
    page.type_into("#confirm-type", "pia@example.com").await;
    page.click("#confirm-ok").await;
    page.wait_for(
        "the account is gone and the page signed out",
        "document.body.dataset.state === 'signed-out' \
         && document.getElementById('notice').innerText === 'Your account is deleted.'",
    )
    .await;
    assert!(demo
        .state
        .store
        .user_by_name("pia@example.com")
        .await
        .unwrap()
        .is_none());
    assert_eq!(demo.state.tokens.len(), 0);
    let accepted = signal_calls(&page, "signalAllAcceptedCredentials").await;
    assert_eq!(
        accepted.last().unwrap()["allAcceptedCredentialIds"],
        json!([])
    );
    // Chromium acts on it: the account's passkey is gone from the authenticator.
    page.wait_for_credentials(0).await;
    demo.stop().await;
}

#[actix_web::test]
async fn a_passkey_the_server_forgot_is_signalled_unknown_when_it_signs_in() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    spy_on_signals(&page).await;
    sign_up(&page, "quinn@example.com", "Quinn").await;
    let user = page.eval("wsauthnDemo.client.user.id").await;
    let held = page.credentials().await;
    let id = wsauthn::b64url(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            held[0]["credentialId"].as_str().unwrap(),
        )
        .unwrap(),
    );
    super::sign_out_and_stay_out(&page).await;
    // An operator deletes the account; the passkey stays on the device.
    wsauthn::admin::delete_user(&demo.state, &user.as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    page.click("#submit").await;
    let error = error_shown(&page).await;
    assert!(error.contains("no longer registered here"), "{error}");
    let unknown = signal_calls(&page, "signalUnknownCredential").await;
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(unknown[0]["rpId"], "localhost");
    assert_eq!(unknown[0]["credentialId"], json!(id));
    // Chromium acts on the signal: its authenticator forgets the passkey, which is no longer
    // offered.
    page.wait_for_credentials(0).await;
    // The page's own record of it, as the client reported it (supported: Chromium has the API).
    let reported = page
        .eval("wsauthnDemo.signals.filter((s) => s.method === 'signalUnknownCredential').map((s) => s.supported)")
        .await;
    assert_eq!(reported, json!([true]));
    demo.stop().await;
}
