//! Origins in Chromium: a page on an origin the server refuses says so and where to go instead,
//! and a related origin (`webauthn.related_origins`) signs in with a passkey made on the main one.

use std::net::TcpListener;

use serde_json::json;

use actix_web::{web, HttpResponse};

use super::cors::start_page_server;
use super::{error_shown, sign_up, Demo};

#[actix_web::test]
async fn a_page_on_an_origin_the_server_refuses_says_which_to_open() {
    let Some(demo) = Demo::start().await else {
        return;
    };
    // The same server, reached as 127.0.0.1 rather than localhost: another origin.
    let port = demo.url.rsplit(':').next().unwrap().to_owned();
    let page = demo.browser.new_page().await;
    page.open(&format!("http://127.0.0.1:{port}/")).await;
    let error = error_shown(&page).await;
    assert_eq!(
        error,
        format!(
            "This page's origin http://127.0.0.1:{port} is not allowed by the server at \
             http://127.0.0.1:{port}; open http://localhost:{port} instead."
        )
    );
    assert!(!error.contains("Lost the connection"));
    // The button says the same.
    page.fill("#username", "rex@example.com").await;
    page.click("#submit").await;
    page.wait_for(
        "the button's attempt is explained",
        "document.body.dataset.state === 'signed-out' && document.getElementById('error').innerText.includes('is not allowed')",
    )
    .await;
    demo.stop().await;
}

#[actix_web::test]
async fn a_related_origin_signs_in_with_a_passkey_made_on_the_main_one() {
    let related = TcpListener::bind("127.0.0.1:0").expect("bind the related origin");
    let related_origin = format!("http://localhost:{}", related.local_addr().unwrap().port());
    let unrelated = TcpListener::bind("127.0.0.1:0").expect("bind another origin");
    let unrelated_origin = format!(
        "http://localhost:{}",
        unrelated.local_addr().unwrap().port()
    );
    let configured = related_origin.clone();
    let Some(demo) = Demo::start_with(move |c| c.webauthn.related_origins = vec![configured]).await
    else {
        return;
    };
    start_page_server(related, &demo.url);
    start_vendoring_page_server(unrelated, &demo.url);

    // The well-known document lists both origins, as browsers fetch it from the rp id.
    let mut res = awc::Client::new()
        .get(format!("{}/.well-known/webauthn", demo.url))
        .send()
        .await
        .expect("GET /.well-known/webauthn");
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"origins": [demo.url.clone(), related_origin.clone()]})
    );

    // The passkey is made on the main origin; the same (synced) passkey then signs in on the
    // related origin's page, in another browser.
    let main = demo.visitor().await;
    sign_up(&main, "sam@example.com", "Sam").await;
    let page = demo.browser.new_page().await;
    for passkey in main.credentials().await {
        page.add_credential(passkey).await;
    }
    page.open(&format!("{related_origin}/")).await;
    let seen = page
        .eval(
            r#"(async () => {
                const session = await client.login();
                const me = await client.me();
                return { via: session.via, name: me.user.name };
            })()"#,
        )
        .await;
    assert_eq!(seen, json!({"via": "login", "name": "sam@example.com"}));

    // An origin in neither list (whose page carries its own copy of the module: it may not load
    // the server's) is told it is not allowed, and where to go.
    page.open(&format!("{unrelated_origin}/")).await;
    let refused = page
        .eval("client.login().then(() => 'signed in', (e) => e.code + ': ' + e.message)")
        .await;
    let refused = refused.as_str().unwrap();
    assert!(
        refused.starts_with(&format!(
            "origin_not_allowed: This page's origin {unrelated_origin} is not allowed"
        )),
        "{refused}"
    );
    assert!(refused.contains(&related_origin), "{refused}");
    demo.stop().await;
}

/// Serves a page that imports its own copy of `wsauthn.js` (as an application that bundles it
/// does) and points it at `server`.
fn start_vendoring_page_server(listener: TcpListener, server: &str) {
    let page = format!(
        r#"<!doctype html><html><head><title>vendored</title></head><body><script type="module">
import {{ WsauthnClient }} from "/wsauthn.js";
window.client = new WsauthnClient({{ baseUrl: "{server}" }});
document.body.dataset.ready = "true";
</script></body></html>"#
    );
    let module = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/web/wsauthn.js"))
        .expect("web/wsauthn.js");
    let pages = actix_web::HttpServer::new(move || {
        let (page, module) = (page.clone(), module.clone());
        actix_web::App::new()
            .route(
                "/",
                web::get().to(move || {
                    let page = page.clone();
                    async move { HttpResponse::Ok().content_type("text/html").body(page) }
                }),
            )
            .route(
                "/wsauthn.js",
                web::get().to(move || {
                    let module = module.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("text/javascript")
                            .body(module)
                    }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("the page server listens")
    .run();
    actix_web::rt::spawn(pages);
}
