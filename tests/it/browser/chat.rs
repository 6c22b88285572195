//! The chat room of the demo: two people in two browsers, and signing out closing the socket.

use serde_json::json;

use super::page::Page;
use super::{sign_out_and_stay_out, sign_up, Demo};

/// Where the README's screenshot lives, relative to the repository.
const SCREENSHOT: &str = "docs/demo-signed-in.png";

/// Types `text` into the chat box and sends it.
async fn say(page: &Page, text: &str) {
    page.type_into("#chat-input", text).await;
    page.click("#chat-send").await;
}

/// Waits until the chat log shows `text` from `from` (the sender's own messages show no name).
async fn wait_for_message(page: &Page, from: Option<&str>, text: &str) {
    let (from, text) = (json!(from), json!(text));
    page.wait_for(
        &format!("the chat shows {text} from {from}"),
        &format!(
            r#"[...document.querySelectorAll('#chat-log .msg')].some((li) =>
                li.querySelector('.bubble').textContent === {text} &&
                ({from} === null ? li.classList.contains('mine')
                                 : !li.classList.contains('mine') && li.querySelector('.meta').textContent.startsWith({from} + ' ')))"#
        ),
    )
    .await;
}

#[actix_web::test]
async fn two_people_in_two_browsers_see_each_others_messages() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let alice = demo.visitor().await;
    let bob = demo.visitor().await;
    alice.set_viewport(1000, 540, false).await;
    sign_up(&alice, "alice@example.com", "Alice").await;
    sign_up(&bob, "bob@example.com", "Bob").await;

    say(&bob, "Hi Alice! Signed in with a passkey, no password.").await;
    wait_for_message(
        &alice,
        Some("bob@example.com"),
        "Hi Alice! Signed in with a passkey, no password.",
    )
    .await;
    say(
        &alice,
        "Hi Bob! Same here, and this chat socket was opened with my token.",
    )
    .await;
    wait_for_message(
        &bob,
        Some("alice@example.com"),
        "Hi Bob! Same here, and this chat socket was opened with my token.",
    )
    .await;
    wait_for_message(
        &alice,
        None,
        "Hi Bob! Same here, and this chat socket was opened with my token.",
    )
    .await;
    wait_for_message(
        &bob,
        None,
        "Hi Alice! Signed in with a passkey, no password.",
    )
    .await;

    // Each sees exactly the two messages, in order.
    for page in [&alice, &bob] {
        let texts = page
            .eval("[...document.querySelectorAll('#chat-log .bubble')].map((b) => b.textContent)")
            .await;
        assert_eq!(
            texts,
            json!([
                "Hi Alice! Signed in with a passkey, no password.",
                "Hi Bob! Same here, and this chat socket was opened with my token."
            ])
        );
    }

    // Alice's view after sign-in is the README's picture: settled, with no hover or focus.
    alice
        .wait_for(
            "Alice's page has settled",
            "document.getElementById('me-check').dataset.state === 'ok'",
        )
        .await;
    alice.eval("document.activeElement.blur()").await;
    alice.move_mouse_away().await;
    let png = alice.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    if std::env::var("WSAUTHN_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCREENSHOT);
        std::fs::write(&path, &png).expect("write the screenshot");
        eprintln!("wrote {}", path.display());
    }
    demo.stop().await;
}

#[actix_web::test]
async fn signing_out_closes_the_chat_socket() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "ivy@example.com", "Ivy").await;
    demo.wait_for_chat_members(1).await;

    sign_out_and_stay_out(&page).await;

    // The server closed the socket with 4401 (the token was revoked), and the page says so.
    let code = page
        .wait_for(
            "the chat socket is closed",
            "document.getElementById('chat-status').dataset.state === 'closed' && document.getElementById('chat-status').dataset.code",
        )
        .await;
    assert_eq!(code, "4401");
    page.wait_for(
        "the page explains the closed chat",
        "document.getElementById('notice').innerText.includes('closed your chat connection')",
    )
    .await;
    demo.wait_for_chat_members(0).await;
    demo.stop().await;
}

#[actix_web::test]
async fn the_client_renews_a_short_lived_token_and_the_chat_outlives_it() {
    let Some(demo) = Demo::start_with(|config| {
        config.tokens.lifetime_secs = 3;
        config.tokens.expiry_warning_secs = 2;
    })
    .await
    else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "jo@example.com", "Jo").await;
    let first = page
        .eval(
            "window.refreshes = 0; \
             wsauthnDemo.client.addEventListener('refresh', () => { window.refreshes += 1; }); \
             wsauthnDemo.client.session",
        )
        .await;

    // The server warns a second after each token is issued; the client trades it for a new one.
    // Wait until the first token's lifetime is well over (each renewal re-renders the page).
    let deadline = first["expiresAt"].as_u64().expect("expiresAt") + 1;
    page.wait_for(
        "the first token has expired and the session lives on",
        &format!(
            "window.refreshes >= 2 && Date.now() / 1000 > {deadline} \
             && document.getElementById('me-check').dataset.state === 'ok'"
        ),
    )
    .await;

    assert_eq!(
        page.attribute("body", "data-state").await,
        json!("signed-in")
    );
    assert_eq!(
        page.attribute("#chat-status", "data-state").await,
        json!("open"),
        "the chat socket is bound to the session, not to one token"
    );
    let token = page.eval("wsauthnDemo.client.token").await;
    assert_ne!(token, first["token"]);
    let old_token = format!("Bearer {}", first["token"].as_str().expect("token"));
    let status = awc::Client::new()
        .get(format!("{}/api/me", demo.url))
        .insert_header(("Authorization", old_token))
        .send()
        .await
        .expect("GET /api/me")
        .status();
    assert_eq!(status.as_u16(), 401, "the old token is dead");
    say(&page, "still here").await;
    wait_for_message(&page, None, "still here").await;
    demo.stop().await;
}
