//! The price of a bearer token on HTTP: one handler served through our token-policy middleware
//! on a path that needs no token and on one that requires it (with a valid token in a table of
//! 100,000). Target: the protected request at least 0.9 times the throughput of the open one.
//! In process, without sockets, so the middleware's share is as large as it can get.

use std::sync::Arc;

use actix_web::{test, web, App, HttpResponse};
use uuid::Uuid;
use wsauthn::endpoints::AuthPolicy;
use wsauthn::protocol::UserView;
use wsauthn::Config;
use wsauthn::TokenPolicy;

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

const LIVE_TOKENS: usize = 100_000;

/// The same small JSON answer on both paths.
async fn handler() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"ok": true}))
}

fn http_auth(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = Config::for_tests(dir.path()).expect("embedded config");
    let paths = &mut config.endpoints.paths;
    paths.insert("/open".into(), AuthPolicy::None);
    paths.insert("/protected".into(), AuthPolicy::Required);
    let state = common::server_state(dir.path(), config);
    let user = Arc::new(UserView {
        id: Uuid::new_v4(),
        name: "bench@example.com".into(),
        display_name: "Bench".into(),
    });
    let mut token = None;
    for _ in 0..LIVE_TOKENS {
        let meta = wsauthn::tokens::SessionMeta::default();
        token = Some(state.tokens.issue(user.clone(), meta).expect("issued").0);
    }
    let bearer = format!("Bearer {}", token.expect("issued").as_str());

    let runner = actix_web::rt::System::new();
    let app = runner.block_on(test::init_service(
        App::new()
            .app_data(web::Data::new(state))
            .wrap(TokenPolicy)
            .route("/open", web::get().to(handler))
            .route("/protected", web::get().to(handler)),
    ));

    let mut group = c.benchmark_group("http_auth");
    group.bench_function("get_without_auth", |b| {
        b.iter(|| {
            runner.block_on(async {
                let req = test::TestRequest::get().uri("/open").to_request();
                let res = test::call_service(&app, req).await;
                assert!(res.status().is_success());
            })
        })
    });
    group.bench_function("get_with_bearer_token", |b| {
        b.iter(|| {
            runner.block_on(async {
                let req = test::TestRequest::get()
                    .uri("/protected")
                    .insert_header(("Authorization", bearer.as_str()))
                    .to_request();
                let res = test::call_service(&app, req).await;
                assert!(res.status().is_success());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, http_auth);
criterion_main!(benches);
