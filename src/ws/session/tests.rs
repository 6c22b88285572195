//! The socket loop's size: what an idle socket costs is mostly its task.

use actix_web::FromRequest;

use super::*;

/// An idle socket's memory is mostly its task (docs/benchmarks.md); this holds the task of an
/// `/echo` socket to its size when the loop became generic (1,240 bytes, rustc 1.95), with a
/// little room, so a future awaited inline in the loop that doubles it shows here first.
#[actix_web::test]
async fn an_idle_sockets_task_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::Config::for_tests(dir.path()).unwrap();
    let store = crate::store::Store::open(dir.path()).unwrap();
    let state = AppState::new(
        config,
        store,
        std::sync::Arc::new(crate::clock::SystemClock),
        std::sync::Arc::new(crate::endpoints::DisconnectHook),
        crate::events::Events::new(None),
    )
    .unwrap();
    let req = actix_web::test::TestRequest::default()
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .to_http_request();
    let mut none = actix_web::dev::Payload::None;
    let payload = actix_web::web::Payload::from_request(&req, &mut none)
        .into_inner()
        .unwrap();
    let (response, session, stream) = actix_ws::handle(&req, payload).unwrap();
    let ctx = SocketCtx::new(
        &state,
        "/echo".into(),
        Default::default(),
        false,
        Instant::now(),
    );
    let echo = super::super::builtin::Echo;
    let socket = Socket::new(state.clone(), ctx, session, stream, None, echo);
    let (_, release) = closing::hold_open(response);
    let task = socket.run(release);
    let size = std::mem::size_of_val(&task);
    assert!(size <= 1_400, "an /echo socket's task is {size} bytes");
}
