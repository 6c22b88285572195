//! A page on one origin using the server on another through `wsauthn.js`'s `baseUrl`, with CORS
//! as Chromium enforces it: the page's own server is a second port (`http://localhost:PAGE`, a
//! configured origin), and the same server reached as `http://127.0.0.1:PAGE` is an origin that
//! is not configured.

use std::net::TcpListener;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::Demo;

/// The page of the configured origin: imports the client module from the server and points it
/// there with `baseUrl`.
fn client_page(server: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>elsewhere</title></head><body><script type="module">
import {{ WsauthnClient }} from "{server}/wsauthn.js";
window.client = new WsauthnClient({{ baseUrl: "{server}" }});
document.body.dataset.ready = "true";
</script></body></html>"#
    )
}

/// A page that only knows the server's address (an origin not configured may not even load the
/// module from it).
const PLAIN_PAGE: &str = r#"<!doctype html><html><body><script>
document.body.dataset.ready = "true";
</script></body></html>"#;

/// Serves the two pages on `listener` from the test's runtime.
pub(super) fn start_page_server(listener: TcpListener, server: &str) {
    let page = client_page(server);
    let pages = actix_web::HttpServer::new(move || {
        let page = page.clone();
        actix_web::App::new()
            .route(
                "/",
                web::get().to(move || {
                    let page = page.clone();
                    async move { HttpResponse::Ok().content_type("text/html").body(page) }
                }),
            )
            .route(
                "/plain",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html")
                        .body(PLAIN_PAGE)
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("the page server listens")
    .run();
    actix_web::rt::spawn(pages);
}

#[actix_web::test]
async fn a_page_on_another_origin_signs_up_and_calls_the_api_through_base_url() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
    let port = listener.local_addr().expect("address").port();
    let page_origin = format!("http://localhost:{port}");
    let configured = page_origin.clone();
    let Some(demo) = Demo::start_with(move |c| c.webauthn.origins.push(configured)).await else {
        return;
    };
    start_page_server(listener, &demo.url);

    let page = demo.browser.new_page().await;
    page.open(&format!("{page_origin}/")).await;
    // Every call below crosses origins: the ceremony socket, GET with a bearer token
    // (preflighted), PATCH with a JSON body (preflighted), DELETE, and a 401 the page can read.
    let seen = page
        .eval(
            r#"(async () => {
                const session = await client.register("carol@example.com", { displayName: "Carol" });
                const me = await client.me();
                const list = await (await client.fetch("/api/passkeys")).json();
                const id = list.passkeys[0].id;
                const renamed = await client.fetch(`/api/passkeys/${id}`, {
                    method: "PATCH",
                    headers: { "Content-Type": "application/json" },
                    body: JSON.stringify({ label: "Work laptop" }),
                });
                const label = (await renamed.json()).passkey.label;
                const others = await client.fetch("/api/sessions/revoke-others", { method: "POST" });
                const anonymous = await fetch(new URL("/api/me", client.baseUrl));
                const bogus = await client.fetch(`/api/sessions/${crypto.randomUUID()}`, { method: "DELETE" });
                return {
                    registered: session.user.name,
                    me: me.user.name,
                    passkeys: list.passkeys.length,
                    renamed: renamed.status,
                    label,
                    revokeOthers: others.status,
                    anonymous: anonymous.status,
                    challenge: anonymous.headers.get("WWW-Authenticate"),
                    deleteUnknownSession: bogus.status,
                };
            })()"#,
        )
        .await;
    assert_eq!(
        seen,
        json!({
            "registered": "carol@example.com",
            "me": "carol@example.com",
            "passkeys": 1,
            "renamed": 200,
            "label": "Work laptop",
            "revokeOthers": 200,
            "anonymous": 401,
            "challenge": "Bearer realm=\"wsauthn\"",
            "deleteUnknownSession": 404,
        })
    );

    // The same page server as http://127.0.0.1:PORT is an origin the server does not list: the
    // server answers, but the browser keeps every answer from the page.
    let foreign = demo.browser.new_page().await;
    foreign
        .open(&format!("http://127.0.0.1:{port}/plain"))
        .await;
    let server = json!(demo.url);
    let blocked = foreign
        .eval(&format!(
            r#"(async () => {{
                const attempt = (path, init) => fetch(new URL(path, {server}), init)
                    .then((r) => "read " + r.status, (e) => "blocked: " + e.name);
                return [
                    await attempt("/healthz"),
                    await attempt("/api/me", {{ headers: {{ Authorization: "Bearer " + "0".repeat(64) }} }}),
                    await attempt("/api/login/begin", {{ method: "POST", headers: {{ "Content-Type": "application/json" }}, body: "{{}}" }}),
                ];
            }})()"#
        ))
        .await;
    assert_eq!(
        blocked,
        json!([
            "blocked: TypeError",
            "blocked: TypeError",
            "blocked: TypeError"
        ])
    );
    demo.stop().await;
}
