//! `wsauthn migrate --from sled --to postgres`: a node's accounts, passkeys, recovery codes and
//! live sessions move into PostgreSQL, the counts are printed, and afterwards a node on
//! PostgreSQL signs the users in and still takes their tokens.

use std::process::Command;

use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;

#[actix_rt::test]
async fn a_sled_node_migrated_to_postgresql_signs_its_users_in_with_their_tokens_and_codes() {
    let Some(url) = crate::pg_server::database_or_skip("the migration test").await else {
        return;
    };
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_in(
        dir.clone(),
        |_| {},
        None::<wsauthn::endpoints::DisconnectHook>,
    )
    .await;
    let (mut ka, mut kb) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let (token, _, mut ws) = signed_up(&app, &mut ka, "uma").await;
    signed_up(&app, &mut kb, "vic").await;
    let codes = ws.request(json!({"type":"recovery.create","id":3})).await;
    assert_eq!(codes["type"], "recovery.create.result", "{codes}");
    drop(ws);
    let dir = app.stop().await;

    let out = Command::new(env!("CARGO_BIN_EXE_wsauthn"))
        .args(["migrate", "--from", "sled", "--to", "postgres"])
        .env("WSAUTHN__SERVER__DATA_DIR", dir.path())
        .env("WSAUTHN__STORE__POSTGRES_URL", &url)
        .output()
        .expect("run wsauthn migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("users 2, passkeys 2, recovery code sets 1, live sessions 2"),
        "{stdout}"
    );
    let again = Command::new(env!("CARGO_BIN_EXE_wsauthn"))
        .args(["migrate", "--from", "sled", "--to", "postgres"])
        .env("WSAUTHN__SERVER__DATA_DIR", dir.path())
        .env("WSAUTHN__STORE__POSTGRES_URL", &url)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "a second run refuses a database that has users"
    );

    let on_pg = spawn_with(move |c| {
        c.store.backend = wsauthn::store::BackendKind::Postgres;
        c.store.postgres_url = url;
    })
    .await;
    assert_eq!(
        on_pg.get("/api/me", Some(&token)).await.0,
        200,
        "the session came along"
    );
    let mut ws = on_pg.ws("/ws").await;
    assert_eq!(
        login(&mut ws, &mut ka, Some("uma"), false).await["verified"],
        "ok"
    );
    let mut ws = on_pg.ws("/ws").await;
    assert_eq!(
        login(&mut ws, &mut kb, None, false).await["verified"],
        "ok",
        "discoverable"
    );
}
