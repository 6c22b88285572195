//! The chat room of the demo: two people in two browsers (display names, emoji), signing out
//! closing the socket, and the chat coming back by itself after a sign-in or a server restart.

use serde_json::json;

use super::page::Page;
use super::{sign_out_and_stay_out, sign_up, wait_until_settled, Demo};

/// Types `text` into the chat box and sends it.
pub async fn say(page: &Page, text: &str) {
    page.type_into("#chat-input", text).await;
    page.click("#chat-send").await;
}

/// Waits until the chat log shows `text` from `from` (the sender's own messages show no name).
pub async fn wait_for_message(page: &Page, from: Option<&str>, text: &str) {
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
    sign_up(&alice, "alice@example.com", "Alice").await;
    sign_up(&bob, "bob@example.com", "Bob 🎈").await;

    // Names are display names, not usernames; emoji come through and are drawn as emoji.
    say(&bob, "Hi Alice! 👋 Signed in with a passkey, no password.").await;
    wait_for_message(
        &alice,
        Some("Bob 🎈"),
        "Hi Alice! 👋 Signed in with a passkey, no password.",
    )
    .await;
    say(&alice, "Hi Bob! Same here 🔑").await;
    wait_for_message(&bob, Some("Alice"), "Hi Bob! Same here 🔑").await;
    wait_for_message(&alice, None, "Hi Bob! Same here 🔑").await;
    wait_for_message(
        &bob,
        None,
        "Hi Alice! 👋 Signed in with a passkey, no password.",
    )
    .await;
    assert_eq!(
        alice
            .attribute("#chat-log .msg:not(.mine) .meta", "title")
            .await,
        json!("bob@example.com"),
        "the username is a hover away"
    );

    // Each sees exactly the two messages, in order.
    for page in [&alice, &bob] {
        let texts = page
            .eval("[...document.querySelectorAll('#chat-log .bubble')].map((b) => b.textContent)")
            .await;
        assert_eq!(
            texts,
            json!([
                "Hi Alice! 👋 Signed in with a passkey, no password.",
                "Hi Bob! Same here 🔑"
            ])
        );
    }
    // A colour emoji font draws them (without one the page shows boxes, in the text colour):
    // drawn in black with the page's own font stack, the wave has colour in it.
    let coloured = alice
        .eval(
            r#"(() => {
                const canvas = document.createElement("canvas");
                canvas.width = canvas.height = 40;
                const ctx = canvas.getContext("2d");
                ctx.font = "32px " + getComputedStyle(document.querySelector(".bubble")).fontFamily;
                ctx.fillStyle = "black";
                ctx.fillText("👋", 2, 34);
                const px = ctx.getImageData(0, 0, 40, 40).data;
                let colour = 0;
                for (let i = 0; i < px.length; i += 4) {
                    const hi = Math.max(px[i], px[i + 1], px[i + 2]), lo = Math.min(px[i], px[i + 1], px[i + 2]);
                    if (px[i + 3] > 0 && hi - lo > 60) colour++;
                }
                return colour;
            })()"#,
        )
        .await;
    assert!(
        coloured.as_u64().unwrap_or(0) > 50,
        "the emoji is drawn in colour ({coloured} coloured pixels): install fonts-noto-color-emoji"
    );
    demo.stop().await;
}

#[actix_web::test]
async fn signing_out_and_straight_back_in_rejoins_the_chat_by_itself() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "kim@example.com", "Kim").await;
    // The passkey stays in the authenticator: as the page signs out, its autofill request is
    // answered at once, as when a person picks their passkey straight away.
    page.click("#signout").await;
    page.wait_for(
        "the page is signed in again through autofill",
        "document.body.dataset.via === 'autofill' && document.body.dataset.state === 'signed-in'",
    )
    .await;
    wait_until_settled(&page, "kim@example.com").await;
    // And it stays live: the old socket's close (4401) does not take the new one's place.
    say(&page, "back again").await;
    wait_for_message(&page, None, "back again").await;
    assert_eq!(
        page.attribute("#chat-status", "data-state").await,
        json!("open")
    );
    assert!(
        page.text("#chat-reconnect").await.is_empty(),
        "no Reconnect needed"
    );
    demo.wait_for_chat_members(1).await;
    demo.stop().await;
}

#[actix_web::test]
async fn the_chat_reconnects_by_itself_after_a_server_restart() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    let page = demo.visitor().await;
    sign_up(&page, "lou@example.com", "Lou").await;
    // Every state the chat's status goes through from here on.
    page.eval(
        "window.chatStates = []; new MutationObserver(() => window.chatStates.push(document.getElementById('chat-status').dataset.state))\
           .observe(document.getElementById('chat-status'), { attributes: true }); true",
    )
    .await;
    let demo = demo.restart().await;
    page.wait_for(
        "the page noticed the restart",
        "window.chatStates.some((s) => ['closed', 'reconnecting'].includes(s))",
    )
    .await;
    // The session survived the restart (sessions are on disk), so the page rejoins with it.
    page.wait_for(
        "the chat is live again",
        "document.getElementById('chat-status').dataset.state === 'open'",
    )
    .await;
    demo.wait_for_chat_members(1).await;
    say(&page, "still here after the restart").await;
    wait_for_message(&page, None, "still here after the restart").await;
    assert_eq!(
        page.attribute("body", "data-state").await,
        json!("signed-in")
    );
    assert_eq!(
        demo.state.tokens.len(),
        1,
        "the same session, loaded from disk"
    );
    // The account page works on the new server too (the ceremony socket reconnects).
    page.click("#view-account").await;
    page.wait_for(
        "the account page has loaded",
        "document.getElementById('account').dataset.loaded",
    )
    .await;
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
