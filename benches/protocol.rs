//! The wire protocol: decoding client frames and encoding server frames, with real WebAuthn
//! payloads (a signed assertion, the options webauthn-rs produces).

mod common;

use std::hint::black_box;

use common::{SignInFixture, USERNAME};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use uuid::Uuid;
use wsauthn::protocol::{
    self, Authentication, LoginOptions, LoginResult, MsgId, ServerMsg, UserView, Verified,
};
use wsauthn::tokens::IssuedToken;
use wsauthn::Error;

fn protocol(c: &mut Criterion) {
    let mut f = SignInFixture::new();
    let (ceremony_id, options) = f
        .runtime
        .block_on(f.ceremonies.login_begin(
            Some(USERNAME),
            true,
            None,
            wsauthn::Transport::WebSocket,
        ))
        .expect("login.begin");
    let login_finish = json!({
        "type": "login.finish",
        "id": 4,
        "ceremonyId": ceremony_id,
        "credential": f.assertion_json(&options),
    })
    .to_string();
    let auth = json!({"type": "auth", "id": 5, "token": "AB".repeat(32)}).to_string();
    let ping = r#"{"type":"ping","id":7}"#;
    let id = MsgId::Number(4.into());
    let user = UserView {
        id: Uuid::new_v4(),
        name: USERNAME.into(),
        display_name: "Bench".into(),
    };
    let login_options = ServerMsg::LoginOptions(LoginOptions {
        ceremony_id,
        options: Box::new(options),
    });
    let login_result = ServerMsg::LoginResult(LoginResult {
        verified: Verified::Ok,
        user,
        authentication: Some(Authentication {
            token: IssuedToken::from_hex_for_tests(&"AB".repeat(32)),
            expires_at: 1_767_225_600,
        }),
    });
    let error = ServerMsg::error(&Error::CeremonyNotFound);

    let mut group = c.benchmark_group("protocol");
    group.bench_function("decode_ping", |b| {
        b.iter(|| protocol::decode(black_box(ping)).expect("decodes"))
    });
    group.bench_function("decode_auth", |b| {
        b.iter(|| protocol::decode(black_box(&auth)).expect("decodes"))
    });
    group.bench_function("decode_login_finish_with_es256_assertion", |b| {
        b.iter(|| protocol::decode(black_box(&login_finish)).expect("decodes"))
    });
    group.bench_function("decode_unknown_type_error", |b| {
        b.iter(|| protocol::decode(black_box(r#"{"type":"nope","id":1}"#)).is_err())
    });
    group.bench_function("encode_login_options", |b| {
        b.iter(|| protocol::encode(Some(&id), black_box(&login_options)))
    });
    group.bench_function("encode_login_result_with_token", |b| {
        b.iter(|| protocol::encode(Some(&id), black_box(&login_result)))
    });
    group.bench_function("encode_error", |b| {
        b.iter(|| protocol::encode(Some(&id), black_box(&error)))
    });
    group.finish();
}

criterion_group!(benches, protocol);
criterion_main!(benches);
