//! Every screen of the demo, at desktop and phone width: nothing sticks out of its card or off
//! the screen (a long username included), axe-core finds no serious or critical accessibility
//! violation, and the README's pictures are taken (`WSAUTHN_UPDATE_SCREENSHOT=1` writes them to
//! `docs/screens/`).

use super::account::open_account;
use super::chat::{say, wait_for_message};
use super::page::Page;
use super::{sign_up, Demo};

const LONG_NAME: &str = "maximilian.alexander.von-langenberg-schwarzenfeld@research.example.com";

struct Width {
    name: &'static str,
    width: u32,
    height: u32,
    mobile: bool,
}

const WIDTHS: [Width; 2] = [
    Width {
        name: "desktop",
        width: 1100,
        height: 720,
        mobile: false,
    },
    Width {
        name: "phone",
        width: 390,
        height: 844,
        mobile: true,
    },
];

/// Fails when anything is wider than the screen or sticks out of its card.
async fn nothing_overflows(page: &Page, screen: &str) {
    let overflow = page
        .eval(
            r#"(() => {
                const out = [];
                const width = document.documentElement.clientWidth;
                if (document.documentElement.scrollWidth > width) out.push(`the page is ${document.documentElement.scrollWidth}px wide on a ${width}px screen`);
                for (const el of document.querySelectorAll(".card, .card *, dialog[open] *")) {
                    if (el.closest("[hidden]") || !el.getClientRects().length) continue;
                    const card = el.closest(".card, dialog") ?? el;
                    const r = el.getBoundingClientRect(), c = card.getBoundingClientRect();
                    if (r.right > c.right + 1 || r.left < c.left - 1) out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} sticks out of its card`);
                    if (r.right > width + 1) out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} is off the screen`);
                    // Text wider than its box (a long word that does not wrap) spills over it.
                    const style = getComputedStyle(el);
                    const scrolls = ["auto", "scroll", "hidden", "clip"].includes(style.overflowX);
                    if (!scrolls && !["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName) && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0)
                        out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className}'s text spills out of it`);
                }
                return [...new Set(out)].slice(0, 10);
            })()"#,
        )
        .await;
    assert_eq!(overflow, serde_json::json!([]), "{screen}");
}

/// Settles the page (no focus ring, no hover), checks it, and takes its picture.
async fn check(page: &Page, width: &Width, screen: &str, full: bool) {
    page.eval("document.activeElement?.blur?.(); document.getAnimations().forEach((a) => a.finish?.()); scrollTo(0, 0); true")
        .await;
    page.move_mouse_away().await;
    nothing_overflows(page, &format!("{screen} at {}", width.name)).await;
    if let Some(violations) = page.accessibility_violations().await {
        assert!(
            violations.is_empty(),
            "axe-core on {screen} at {}:\n  {}",
            width.name,
            violations.join("\n  ")
        );
    }
    let png = if full {
        page.screenshot_full().await
    } else {
        page.screenshot().await
    };
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    if std::env::var("WSAUTHN_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screens");
        std::fs::create_dir_all(&dir).expect("docs/screens");
        let path = dir.join(format!("{}-{screen}.png", width.name));
        std::fs::write(&path, &png).expect("write the screenshot");
        eprintln!("wrote {}", path.display());
    }
}

#[actix_web::test]
async fn every_screen_fits_at_desktop_and_phone_width_and_passes_axe() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    for width in &WIDTHS {
        let page = demo.browser.new_page().await;
        page.set_viewport(width.width, width.height, width.mobile)
            .await;
        page.open(&format!("{}/", demo.url)).await;
        // The virtual authenticator answers the page's autofill request at once; hold it off.
        page.wait_for(
            "the form is there",
            "document.body.dataset.state === 'signed-out'",
        )
        .await;
        if width.mobile {
            // The check itself works: a button without a name, planted for a moment, is found.
            page.eval("document.body.append(Object.assign(document.createElement('button'), { id: 'planted' })); true")
                .await;
            if let Some(found) = page.accessibility_violations().await {
                assert!(
                    found
                        .iter()
                        .any(|v| v.contains("button-name") && v.contains("#planted")),
                    "axe-core did not find the planted violation: {found:?}"
                );
            }
            page.eval("document.getElementById('planted').remove(); true")
                .await;
        }
        check(&page, width, "sign-in", false).await;
        page.click("#tab-signup").await;
        page.fill("#username", LONG_NAME).await;
        page.fill("#display-name", "Maximilian").await;
        check(&page, width, "sign-up", false).await;
        page.click("#tab-signin").await;
        page.click("#to-recover").await;
        check(&page, width, "recover", false).await;
        page.click("#from-recover").await;

        // Signed in with a long username, chatting with someone whose name has an emoji.
        let username = format!("{}{LONG_NAME}", width.name);
        page.click("#tab-signup").await;
        sign_up(&page, &username, "Maximilian").await;
        let friend = demo.visitor().await;
        sign_up(
            &friend,
            &format!("{}-ada@example.com", width.name),
            "Ada 🌻",
        )
        .await;
        say(&friend, "Welcome! 👋 The passkey prompt took one touch.").await;
        wait_for_message(
            &page,
            Some("Ada 🌻"),
            "Welcome! 👋 The passkey prompt took one touch.",
        )
        .await;
        say(&page, "It did 🎉 and this chat socket came with my token.").await;
        wait_for_message(
            &page,
            None,
            "It did 🎉 and this chat socket came with my token.",
        )
        .await;
        check(&page, width, "chat", width.mobile).await;

        // The account page: two passkeys, two sessions (the friend's tab is another account),
        // and freshly made recovery codes.
        open_account(&page).await;
        // One session: the autofill request the page had begun (on the way back from the
        // recovery form) did not also sign in once the passkey existed.
        assert_eq!(
            page.eval("document.querySelectorAll('#session-list .row').length")
                .await,
            1,
            "{}",
            page.text("#session-list").await
        );
        assert_eq!(
            page.attribute("body", "data-via").await,
            serde_json::json!("register")
        );
        page.click("#recovery-create").await;
        page.wait_for(
            "the codes are shown",
            "document.querySelectorAll('#recovery-code-list li').length === 10",
        )
        .await;
        check(&page, width, "account", true).await;
        page.click("#account-delete").await;
        page.wait_for(
            "the dialog is open",
            "document.getElementById('confirm-dialog').open",
        )
        .await;
        check(&page, width, "delete-dialog", false).await;
        page.click("#confirm-cancel").await;
    }
    demo.stop().await;
}
