//! What the backend API tests share: the admin key, an HTTP client that sends it (or a user's
//! token, or nothing), and a few sign-in and socket steps.

use serde_json::{json, Value};
use wsauthn::admin::ApiKey;
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

pub const ADMIN_KEY: &str = "wsauthn-tests-admin-key-0123456789abcdef";

pub(super) fn with_admin_key(config: &mut wsauthn::Config) {
    config.admin.api_key = ApiKey::new(ADMIN_KEY);
}

/// One HTTP request: an optional `Authorization: Bearer`, an optional form body. Returns the
/// status, the `WWW-Authenticate` header and the JSON body (`null` when it is not JSON).
pub async fn request(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> (u16, Option<String>, Value) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = awc::Client::new().request(method, url);
    if let Some(token) = bearer {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut res = match form {
        Some(form) => req.send_form(&form).await,
        None => req.send().await,
    }
    .expect("http request");
    let www = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii header").to_owned());
    let body = res.body().await.expect("body");
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (res.status().as_u16(), www, json)
}

/// `POST /introspect` for `token` with the admin key.
pub(super) async fn introspect(base: &str, token: &str) -> Value {
    let (status, _, body) = request(
        "POST",
        &format!("{base}/introspect"),
        Some(ADMIN_KEY),
        Some(&[("token", token)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A backend API call with the admin key; asserts the status.
pub(super) async fn admin(app: &TestApp, method: &str, path: &str, status: u16) -> Value {
    let (got, _, body) = request(method, &app.url(path), Some(ADMIN_KEY), None).await;
    assert_eq!(got, status, "{method} {path}: {body}");
    body
}

/// One request to a backend API path.
#[derive(Debug)]
pub(super) struct BackendCall {
    pub method: &'static str,
    pub path: String,
    /// The form body, if any.
    pub form: Option<(&'static str, String)>,
}

/// A call to every backend API path, about `user` (and `token` for introspection).
pub(super) fn every_backend_path(user: &str, token: &str) -> Vec<BackendCall> {
    let call = |method, path: String, form| BackendCall { method, path, form };
    vec![
        call(
            "POST",
            "/introspect".into(),
            Some(("token", token.to_owned())),
        ),
        call(
            "GET",
            "/admin/users?username=alice@example.com".into(),
            None,
        ),
        call("GET", format!("/admin/users/{user}"), None),
        call("POST", format!("/admin/users/{user}/revoke"), None),
        call("DELETE", format!("/admin/users/{user}"), None),
    ]
}

pub(super) async fn call_path(
    app: &TestApp,
    call: &BackendCall,
    bearer: Option<&str>,
) -> (u16, Option<String>, Value) {
    let form = call.form.as_ref().map(|(k, v)| [(*k, v.as_str())]);
    request(
        call.method,
        &app.url(&call.path),
        bearer,
        form.as_ref().map(|f| &f[..]),
    )
    .await
}

/// The caller's current session id, from `GET /api/sessions` with their token.
pub(super) async fn current_session(app: &TestApp, token: &str) -> String {
    let (status, _, body) = app.get("/api/sessions", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    let current = body["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == true)
        .expect("a current session");
    current["id"].as_str().expect("id").to_owned()
}

/// Signs `username` in again on a fresh socket with a token; returns (token, socket).
pub(super) async fn signed_in(
    app: &TestApp,
    key: &mut SoftAuthenticator,
    username: &str,
) -> (String, Ws) {
    let mut ws = app.ws("/ws").await;
    let result = login(&mut ws, key, Some(username), true).await;
    assert_eq!(result["verified"], "ok", "{result}");
    let token = result["authentication"]["token"].as_str().expect("token");
    (token.to_owned(), ws)
}

/// A socket that is still open and served.
pub(super) async fn assert_alive(ws: &mut Ws) {
    let pong = ws.request(json!({"type":"ping","id":"alive"})).await;
    assert_eq!(pong["type"], "pong", "{pong}");
}

/// Signs in over the HTTP ceremony (no socket) with a token; returns it.
pub(super) async fn http_sign_in(
    app: &TestApp,
    key: &mut SoftAuthenticator,
    username: &str,
) -> String {
    let begin = json!({"username": username});
    let (status, _, opts) = app
        .call("POST", "/api/login/begin", None, Some(begin))
        .await;
    assert_eq!(status, 200, "{opts}");
    let credential = key
        .login(&opts["publicKey"], ORIGIN)
        .expect("authenticator signs");
    let finish = json!({"ceremonyId": opts["ceremonyId"], "credential": credential, "token": true});
    let (status, _, result) = app
        .call("POST", "/api/login/finish", None, Some(finish))
        .await;
    assert_eq!(status, 200, "{result}");
    result["authentication"]["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// `login.begin` for `username`, expecting an error frame.
pub(super) async fn login_begin_error(ws: &mut Ws, username: &str) -> Value {
    let reply = ws
        .request(json!({"type":"login.begin","id":3,"username":username}))
        .await;
    assert_eq!(reply["type"], "error", "{reply}");
    reply
}
