//! The store's contract, one suite run against every backend (sled in a temporary directory, and
//! PostgreSQL, a database of its own on the test server): what the domain operations promise,
//! races included. A backend that breaks one fails here under its own name.

use std::sync::Arc;

use uuid::Uuid;
use wsauthn::assertion::{PublicKey, Verified};
use wsauthn::store::{CredentialRecord, RecoverySet, SessionRecord, Store, StoredCode, UserRecord};

/// Every backend this machine has, each empty: (name, store, what keeps it alive).
async fn backends() -> Vec<(&'static str, Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = Store::open(dir.path()).expect("sled opens");
    let mut out = vec![("sled", sled, dir)];
    if let Some(url) = crate::pg_server::database_or_skip("the store suite on PostgreSQL").await {
        let store = wsauthn::store::PgStore::connect(&url)
            .await
            .expect("PostgreSQL store opens");
        let dir = tempfile::tempdir().expect("tempdir");
        out.push(("postgres", Store::from_postgres(store), dir));
    }
    out
}

struct Keys {
    wa: webauthn_rs::prelude::Webauthn,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = wsauthn::Config::for_tests(dir.path()).expect("config");
        Keys {
            wa: wsauthn::ceremony::build_webauthn(&config).expect("webauthn"),
        }
    }

    /// A passkey of `owner`, registered through webauthn-rs with the software authenticator.
    fn record(&self, owner: &UserRecord) -> CredentialRecord {
        let mut key = wsauthn::softkey::SoftAuthenticator::new();
        let (ccr, state) = self
            .wa
            .start_passkey_registration(owner.id, &owner.name, &owner.name, None)
            .expect("begin");
        let options = serde_json::to_value(&ccr).expect("json")["publicKey"].clone();
        let response = key
            .register(&options, "http://localhost:8080")
            .expect("register");
        let reg = serde_json::from_value(response).expect("response");
        let passkey = self
            .wa
            .finish_passkey_registration(&reg, &state)
            .expect("finish");
        CredentialRecord {
            user_id: owner.id,
            public_key: Some(PublicKey::from_passkey(&passkey).expect("key")),
            passkey,
            created_at: 1,
            last_used_at: None,
            label: None,
            aaguid: None,
        }
    }
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        id: Uuid::new_v4(),
        name: name.into(),
        display_name: name.into(),
        created_at: 1,
        passkeys: 1,
    }
}

fn code_of(e: wsauthn::error::Error) -> &'static str {
    e.code().as_str()
}

#[actix_rt::test]
async fn a_user_comes_with_their_first_passkey_and_names_and_ids_are_unique() {
    let keys = Keys::new();
    for (backend, store, _dir) in backends().await {
        let alice = user("alice");
        let alices = keys.record(&alice);
        store.create_user(&alice, &alices).await.unwrap();
        store.flush().await.unwrap();
        let found = store.user_by_name("  ALICE ").await.unwrap().unwrap();
        assert_eq!(found, alice, "{backend}");
        let other = user("Alice");
        let err = store.create_user(&other, &keys.record(&other)).await;
        assert_eq!(code_of(err.unwrap_err()), "username_taken", "{backend}");
        let bob = user("bob");
        let stolen = CredentialRecord {
            user_id: bob.id,
            ..alices.clone()
        };
        let err = store.create_user(&bob, &stolen).await.unwrap_err();
        assert_eq!(code_of(err), "credential_in_use", "{backend}");
        assert!(
            store.user(&bob.id).await.unwrap().is_none(),
            "{backend}: no half account"
        );
        assert!(
            store.user_by_name("bob").await.unwrap().is_none(),
            "{backend}"
        );
        assert_eq!(store.user_count().await.unwrap(), 1, "{backend}");
        let cred = store.credential(alices.passkey.cred_id()).await.unwrap();
        assert_eq!(cred.unwrap().user_id, alice.id, "{backend}");
    }
}

#[actix_rt::test]
async fn racing_registrations_of_one_credential_id_or_one_username_have_one_winner() {
    let keys = Arc::new(Keys::new());
    for (backend, store, _dir) in backends().await {
        let first = user("first");
        let shared = keys.record(&first);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (store, shared) = (store.clone(), shared.clone());
            tasks.push(actix_rt::spawn(async move {
                let u = user(&format!("racer{i}"));
                let cred = CredentialRecord {
                    user_id: u.id,
                    ..shared
                };
                store.create_user(&u, &cred).await
            }));
        }
        let mut same_name = Vec::new();
        for _ in 0..8 {
            let (store, u) = (store.clone(), user("samename"));
            let cred = keys.record(&u);
            same_name.push(actix_rt::spawn(async move {
                store.create_user(&u, &cred).await
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap().map_err(code_of));
        }
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "{backend}: {outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|o| *o == Ok(()) || *o == Err("credential_in_use")));
        let mut named = Vec::new();
        for t in same_name {
            named.push(t.await.unwrap().map_err(code_of));
        }
        assert_eq!(
            named.iter().filter(|o| o.is_ok()).count(),
            1,
            "{backend}: {named:?}"
        );
        assert!(named
            .iter()
            .all(|o| *o == Ok(()) || *o == Err("username_taken")));
        assert_eq!(store.user_count().await.unwrap(), 2, "{backend}");
    }
}

#[actix_rt::test]
async fn passkeys_are_added_under_the_cap_renamed_used_and_deleted_but_not_the_last() {
    let keys = Keys::new();
    for (backend, store, _dir) in backends().await {
        let alice = user("alice");
        let (first, second) = (keys.record(&alice), keys.record(&alice));
        store.create_user(&alice, &first).await.unwrap();
        store.add_credential(&second, 2).await.unwrap();
        let err = store
            .add_credential(&keys.record(&alice), 2)
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "passkey_limit", "{backend}");
        let stranger = CredentialRecord {
            user_id: Uuid::new_v4(),
            ..keys.record(&alice)
        };
        let err = store.add_credential(&stranger, 9).await.unwrap_err();
        assert_eq!(code_of(err), "unknown_user", "{backend}");
        assert_eq!(store.user(&alice.id).await.unwrap().unwrap().passkeys, 2);
        assert_eq!(store.credentials_of(&alice.id).await.unwrap().len(), 2);
        let lean = store.sign_in_passkeys(&alice.id).await.unwrap();
        assert_eq!(lean.len(), 2, "{backend}");
        let (found, with) = store
            .user_with_sign_in_passkeys("ALICE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.id, with),
            (alice.id, lean),
            "{backend}: one read, the same answer"
        );
        assert!(store
            .user_with_sign_in_passkeys("nobody")
            .await
            .unwrap()
            .is_none());

        let id = first.passkey.cred_id().as_slice();
        let renamed = store
            .rename_credential(&alice.id, id, "laptop")
            .await
            .unwrap();
        assert_eq!(renamed.label.as_deref(), Some("laptop"), "{backend}");
        let err = store
            .rename_credential(&Uuid::new_v4(), id, "x")
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "not_found", "{backend}");

        let used = |counter| Verified {
            cred_id: first.passkey.cred_id().clone(),
            counter,
            user_verified: true,
            backup_eligible: true,
            backup_state: true,
        };
        // A sign-in's session is written with its counter update, and only when that passes.
        let session = |hash: u8| {
            let record = SessionRecord {
                id: Uuid::new_v4(),
                user_id: alice.id,
                created_ms: 1,
                expires_ms: u64::MAX / 4,
                last_used_ms: 1,
                user_agent: None,
                address: None,
                credential_id: None,
            };
            ([hash; 32], record)
        };
        let (opened, refused, stranger) = (session(1), session(2), session(3));
        store
            .record_sign_in(&used(5), &alice.id, 100, Some(opened.clone()))
            .await
            .unwrap();
        let err = store
            .record_sign_in(&used(5), &alice.id, 101, Some(refused))
            .await
            .unwrap_err();
        assert_eq!(
            code_of(err),
            "verification_failed",
            "{backend}: counter must rise"
        );
        let err = store
            .record_sign_in(&used(6), &Uuid::new_v4(), 101, Some(stranger))
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "verification_failed", "{backend}: not theirs");
        store.flush().await.unwrap();
        let hashes: Vec<[u8; 32]> = store
            .sessions()
            .await
            .unwrap()
            .into_iter()
            .map(|(hash, _)| hash)
            .collect();
        assert_eq!(
            hashes,
            vec![opened.0],
            "{backend}: only the sign-in that counted"
        );
        store.remove_session(&opened.0).unwrap();
        store.flush().await.unwrap();
        let after = store.credential(id).await.unwrap().unwrap();
        assert_eq!(after.last_used_at, Some(100), "{backend}");
        assert_eq!(after.label.as_deref(), Some("laptop"), "{backend}");
        let signin = store.sign_in_passkeys(&alice.id).await.unwrap();
        let known = signin.iter().find(|p| p.known.cred_id == id).unwrap();
        assert_eq!(known.known.counter, 5, "{backend}");
        assert!(known.known.backup_eligible && known.known.backup_state);
        // Without a session (a socket-only sign-in): the counter update alone.
        store
            .record_sign_in(&used(7), &alice.id, 102, None)
            .await
            .unwrap();
        let after = store.credential(id).await.unwrap().unwrap();
        assert_eq!(after.last_used_at, Some(102), "{backend}");

        store.delete_credential(&alice.id, id, false).await.unwrap();
        let last = second.passkey.cred_id().as_slice();
        let err = store
            .delete_credential(&alice.id, last, false)
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "last_passkey", "{backend}");
        let err = store
            .delete_credential(&alice.id, id, false)
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "not_found", "{backend}: already gone");
        store
            .delete_credential(&alice.id, last, true)
            .await
            .unwrap();
        assert_eq!(store.user(&alice.id).await.unwrap().unwrap().passkeys, 0);
        assert!(store.credential(last).await.unwrap().is_none(), "{backend}");
    }
}

#[actix_rt::test]
async fn sessions_written_through_are_listed_touched_replaced_and_removed_once_flushed() {
    for (backend, store, _dir) in backends().await {
        let owner = Uuid::new_v4();
        let record = |id, expires_ms| SessionRecord {
            id,
            user_id: owner,
            created_ms: 1,
            expires_ms,
            last_used_ms: 1,
            user_agent: Some("agent".into()),
            address: Some("127.0.0.1".parse().unwrap()),
            credential_id: None,
        };
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        store.put_session(&[1; 32], &record(a, 10)).unwrap();
        store.put_session(&[2; 32], &record(b, 10)).unwrap();
        store.put_session(&[1; 32], &record(a, 20)).unwrap();
        store.remove_session(&[2; 32]).unwrap();
        // A last use rewrites a stored session, and never brings back one removed before it.
        store.touch_session(&[1; 32], &record(a, 30)).unwrap();
        store.touch_session(&[2; 32], &record(b, 30)).unwrap();
        store.flush().await.unwrap();
        assert_eq!(
            store.sessions().await.unwrap(),
            vec![([1; 32], record(a, 30))],
            "{backend}"
        );
        store.put_session(&[3; 32], &record(b, 10)).unwrap();
        assert_eq!(
            store.remove_sessions_of(&owner).await.unwrap(),
            2,
            "{backend}"
        );
        store.flush().await.unwrap();
        assert!(store.sessions().await.unwrap().is_empty(), "{backend}");
    }
}

#[actix_rt::test]
async fn a_recovery_code_is_spent_once_and_a_user_deleted_frees_their_name_and_passkeys() {
    let keys = Keys::new();
    for (backend, store, _dir) in backends().await {
        let alice = user("alice");
        let cred = keys.record(&alice);
        store.create_user(&alice, &cred).await.unwrap();
        let set = RecoverySet {
            created_at: 1,
            codes: ["A", "B"]
                .iter()
                .map(|id| StoredCode {
                    id: (*id).into(),
                    hash: format!("h-{id}"),
                })
                .collect(),
        };
        store.put_recovery_set(&alice.id, &set).await.unwrap();
        assert_eq!(
            store
                .spend_recovery_code(&alice.id, "A", "h-A")
                .await
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            store
                .spend_recovery_code(&alice.id, "A", "h-A")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .spend_recovery_code(&alice.id, "B", "old")
                .await
                .unwrap(),
            None
        );
        let renamed = store
            .set_display_name(&alice.id, "Al")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(renamed.display_name, "Al", "{backend}");
        store.remove_recovery_set(&alice.id).await.unwrap();
        assert!(
            store.recovery_set(&alice.id).await.unwrap().is_none(),
            "{backend}"
        );

        let deleted = store.delete_user(&alice.id).await.unwrap().unwrap();
        assert_eq!(
            deleted.credential_ids,
            vec![cred.passkey.cred_id().to_vec()],
            "{backend}"
        );
        assert!(
            store.delete_user(&alice.id).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(
            store.user_by_name("alice").await.unwrap().is_none(),
            "{backend}"
        );
        let again = user("alice");
        let reused = CredentialRecord {
            user_id: again.id,
            ..cred
        };
        store.create_user(&again, &reused).await.unwrap();
        assert_eq!(store.user_count().await.unwrap(), 1, "{backend}");
    }
}
