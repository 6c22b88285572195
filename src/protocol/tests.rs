//! Golden JSON tests: they pin the wire format that docs/protocol.md describes.
use super::*;
use serde_json::json;

fn golden(id: Option<MsgId>, msg: ServerMsg, expected: serde_json::Value) {
    let text = encode(id.as_ref(), &msg);
    let got: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got, expected, "{text}");
}

#[test]
fn register_begin_decodes_with_optional_fields() {
    let e = decode(r#"{"type":"register.begin","id":1,"username":"alice@example.com","displayName":"Alice","token":true}"#).unwrap();
    assert_eq!(e.id, Some(MsgId::Number(1.into())));
    match e.msg {
        ClientMsg::RegisterBegin(RegisterBegin {
            username,
            display_name,
            token,
        }) => {
            assert_eq!(username, "alice@example.com");
            assert_eq!(display_name.as_deref(), Some("Alice"));
            assert!(token);
        }
        other => panic!("{other:?}"),
    }
    let e = decode(r#"{"type":"register.begin","username":"bob"}"#).unwrap();
    assert!(e.id.is_none());
    assert!(matches!(
        e.msg,
        ClientMsg::RegisterBegin(RegisterBegin {
            token: false,
            display_name: None,
            ..
        })
    ));
}

#[test]
fn login_begin_without_username_is_discoverable() {
    let e = decode(r#"{"type":"login.begin","id":"a"}"#).unwrap();
    assert_eq!(e.id, Some(MsgId::String("a".into())));
    assert!(matches!(
        e.msg,
        ClientMsg::LoginBegin(LoginBegin {
            username: None,
            token: false
        })
    ));
}

#[test]
fn small_messages_decode() {
    assert!(matches!(
        decode(r#"{"type":"ping","id":7}"#).unwrap().msg,
        ClientMsg::Ping {}
    ));
    assert!(matches!(
        decode(r#"{"type":"logout"}"#).unwrap().msg,
        ClientMsg::Logout {}
    ));
    assert!(matches!(
        decode(r#"{"type":"auth","token":"AB"}"#).unwrap().msg,
        ClientMsg::Auth { token } if token == "AB"
    ));
    assert!(matches!(
        decode(r#"{"type":"message","text":"hi"}"#).unwrap().msg,
        ClientMsg::Message { text } if text == "hi"
    ));
}

#[test]
fn bad_frames_explain_themselves_and_keep_the_id() {
    let err = |s: &str| {
        let e = decode(s).unwrap_err();
        assert_eq!(e.error.code(), ErrorCode::BadRequest);
        (e.id, e.error.to_string())
    };
    assert_eq!(err("not json").1, "The frame is not valid JSON.");
    assert_eq!(err("[1]").1, "The frame must be a JSON object.");
    assert_eq!(
        err(r#"{"id":3}"#),
        (
            Some(MsgId::Number(3.into())),
            "The frame has no \"type\".".into()
        )
    );
    let (id, msg) = err(r#"{"type":"dance","id":"x"}"#);
    assert_eq!(id, Some(MsgId::String("x".into())));
    assert_eq!(msg, "Unknown message type \"dance\".");
    let (id, msg) = err(r#"{"type":"register.begin","id":9}"#);
    assert_eq!(id, Some(MsgId::Number(9.into())));
    assert!(msg.contains("username"), "{msg}");
    let (_, msg) = err(r#"{"type":"register.begin","username":5}"#);
    assert!(msg.contains("invalid type"), "{msg}");
    let (_, msg) = err(r#"{"type":"ping","id":{"a":1}}"#);
    assert_eq!(msg, "\"id\" must be a string or a number.");
    let (_, msg) = err(r#"{"type":"login.finish","credential":{"id":"x"}}"#);
    assert!(msg.starts_with("Invalid \"login.finish\" message"), "{msg}");
}

#[test]
fn golden_server_frames() {
    let user = UserView {
        id: Uuid::nil(),
        name: "alice@example.com".into(),
        display_name: "Alice".into(),
    };
    golden(
        Some(MsgId::Number(4.into())),
        ServerMsg::LoginResult(LoginResult {
            verified: Verified::Ok,
            user: user.clone(),
            authentication: Some(Authentication {
                token: IssuedToken::from_hex_for_tests("C760"),
                expires_at: 1_700_000_000,
            }),
        }),
        json!({"type":"login.result","id":4,"verified":"ok",
               "user":{"id":"00000000-0000-0000-0000-000000000000","name":"alice@example.com","displayName":"Alice"},
               "authentication":{"token":"C760","expiresAt":1_700_000_000u64}}),
    );
    golden(
        Some(MsgId::String("r".into())),
        ServerMsg::RegisterResult(RegisterResult {
            verified: Verified::Ok,
            user: user.clone(),
            credential_id: "AQID".into(),
            authentication: None,
        }),
        json!({"type":"register.result","id":"r","verified":"ok","credentialId":"AQID",
               "user":{"id":"00000000-0000-0000-0000-000000000000","name":"alice@example.com","displayName":"Alice"}}),
    );
    golden(
        Some(MsgId::Number(5.into())),
        ServerMsg::AuthResult(Whoami {
            user,
            expires_at: 7,
        }),
        json!({"type":"auth.result","id":5,"expiresAt":7,
               "user":{"id":"00000000-0000-0000-0000-000000000000","name":"alice@example.com","displayName":"Alice"}}),
    );
    golden(
        Some(MsgId::Number(6.into())),
        ServerMsg::LogoutResult {},
        json!({"type":"logout.result","id":6}),
    );
    golden(
        Some(MsgId::Number(7.into())),
        ServerMsg::Pong {},
        json!({"type":"pong","id":7}),
    );
    golden(None, ServerMsg::Pong {}, json!({"type":"pong"}));
    golden(
        None,
        ServerMsg::Message {
            from: "bob".into(),
            name: "Bob 🎈".into(),
            text: "hi".into(),
            at: 12,
        },
        json!({"type":"message","from":"bob","name":"Bob 🎈","text":"hi","at":12}),
    );
    golden(
        Some(MsgId::Number(1.into())),
        ServerMsg::error(&Error::UsernameTaken),
        json!({"type":"error","id":1,"code":"username_taken","message":"This username is already registered."}),
    );
}

#[test]
fn account_and_session_messages_decode() {
    let msg = |s: &str| decode(s).unwrap().msg;
    assert!(matches!(
        msg(r#"{"type":"refresh"}"#),
        ClientMsg::Refresh {}
    ));
    assert!(matches!(
        msg(r#"{"type":"passkeys.list"}"#),
        ClientMsg::PasskeysList {}
    ));
    assert!(matches!(
        msg(r#"{"type":"passkeys.rename","credentialId":"AQ","label":"Phone"}"#),
        ClientMsg::PasskeysRename(PasskeyRename { credential_id, label }) if credential_id == "AQ" && label == "Phone"
    ));
    assert!(matches!(
        msg(r#"{"type":"passkeys.delete","credentialId":"AQ"}"#),
        ClientMsg::PasskeysDelete(PasskeyDelete {
            allow_last: false,
            ..
        })
    ));
    assert!(matches!(
        msg(r#"{"type":"passkeys.delete","credentialId":"AQ","allowLast":true}"#),
        ClientMsg::PasskeysDelete(PasskeyDelete {
            allow_last: true,
            ..
        })
    ));
    assert!(matches!(
        msg(r#"{"type":"sessions.list"}"#),
        ClientMsg::SessionsList {}
    ));
    assert!(matches!(
        msg(r#"{"type":"sessions.revoke","sessionId":"00000000-0000-0000-0000-000000000000"}"#),
        ClientMsg::SessionsRevoke(SessionRevoke { session_id }) if session_id.is_nil()
    ));
    assert!(matches!(
        msg(r#"{"type":"sessions.revokeOthers"}"#),
        ClientMsg::SessionsRevokeOthers {}
    ));
    let e = decode(r#"{"type":"sessions.revoke","sessionId":"nope"}"#).unwrap_err();
    assert_eq!(e.error.code(), ErrorCode::BadRequest);
}

#[test]
fn golden_account_and_session_frames() {
    let passkey = PasskeyView {
        id: "AQID".into(),
        label: "iCloud Keychain".into(),
        created_at: 1,
        last_used_at: None,
        backup_eligible: true,
        backed_up: true,
        aaguid: Some(Uuid::nil()),
        authenticator: Some("iCloud Keychain"),
    };
    golden(
        Some(MsgId::Number(1.into())),
        ServerMsg::PasskeysListResult(PasskeyList {
            passkeys: vec![passkey.clone()],
            rp_id: "localhost".into(),
            user_handle: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        }),
        json!({"type":"passkeys.list.result","id":1,"passkeys":[{"id":"AQID","label":"iCloud Keychain",
               "createdAt":1,"lastUsedAt":null,"backupEligible":true,"backedUp":true,
               "aaguid":"00000000-0000-0000-0000-000000000000","authenticator":"iCloud Keychain"}],
               "rpId":"localhost","userHandle":"AAAAAAAAAAAAAAAAAAAAAA"}),
    );
    let alice = UserView {
        id: Uuid::nil(),
        name: "alice@example.com".into(),
        display_name: "Alice".into(),
    };
    golden(
        None,
        ServerMsg::AccountUpdateResult(AccountUpdated {
            user: alice.clone(),
            rp_id: "localhost".into(),
            user_handle: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        }),
        json!({"type":"account.update.result","user":{"id":"00000000-0000-0000-0000-000000000000",
               "name":"alice@example.com","displayName":"Alice"},"rpId":"localhost",
               "userHandle":"AAAAAAAAAAAAAAAAAAAAAA"}),
    );
    golden(
        None,
        ServerMsg::AccountDeleteResult(AccountDeleted {
            user_id: Uuid::nil(),
            username: "alice@example.com".into(),
        }),
        json!({"type":"account.delete.result","userId":"00000000-0000-0000-0000-000000000000",
               "username":"alice@example.com"}),
    );
    golden(
        None,
        ServerMsg::RecoveryStatusResult(RecoveryStatus {
            remaining: 9,
            created_at: Some(4),
        }),
        json!({"type":"recovery.status.result","remaining":9,"createdAt":4}),
    );
    golden(
        None,
        ServerMsg::RecoveryCreateResult(RecoveryCodes {
            codes: vec!["ABCD-EFGH-JKMN-PQRS".into()],
            created_at: 4,
        }),
        json!({"type":"recovery.create.result","codes":["ABCD-EFGH-JKMN-PQRS"],"createdAt":4}),
    );
    golden(
        None,
        ServerMsg::RecoveryResult(RecoveryGranted {
            user: alice,
            until: 600,
            remaining: 8,
        }),
        json!({"type":"recovery.result","user":{"id":"00000000-0000-0000-0000-000000000000",
               "name":"alice@example.com","displayName":"Alice"},"until":600,"remaining":8}),
    );
    golden(
        None,
        ServerMsg::PasskeysDeleteResult(PasskeyDeleted {
            credential_id: "AQID".into(),
            sessions_ended: 2,
        }),
        json!({"type":"passkeys.delete.result","credentialId":"AQID","sessionsEnded":2}),
    );
    golden(
        None,
        ServerMsg::SessionsListResult(SessionList {
            sessions: vec![SessionView {
                id: Uuid::nil(),
                created_at: 1,
                last_used_at: 2,
                expires_at: 3,
                user_agent: Some("UA".into()),
                address: Some("127.0.0.1".parse().unwrap()),
                credential_id: Some("AQID".into()),
                socket_only: false,
                current: true,
            }],
        }),
        json!({"type":"sessions.list.result","sessions":[{"id":"00000000-0000-0000-0000-000000000000",
               "createdAt":1,"lastUsedAt":2,"expiresAt":3,"userAgent":"UA","address":"127.0.0.1",
               "credentialId":"AQID","socketOnly":false,"current":true}]}),
    );
    golden(
        Some(MsgId::String("r".into())),
        ServerMsg::RefreshResult(Refreshed {
            authentication: Authentication {
                token: IssuedToken::from_hex_for_tests("AB"),
                expires_at: 5,
            },
        }),
        json!({"type":"refresh.result","id":"r","authentication":{"token":"AB","expiresAt":5}}),
    );
}

#[test]
fn every_listed_type_is_decoded_and_names_itself() {
    for &kind in ClientMsg::TYPES {
        let frame = format!(r#"{{"type":"{kind}"}}"#);
        match decode(&frame) {
            Ok(e) => assert_eq!(e.msg.type_name(), kind),
            // Types with required fields say what is missing, not that the type is unknown.
            Err(e) => assert!(
                e.error
                    .to_string()
                    .starts_with(&format!("Invalid {kind:?} message")),
                "{kind}: {}",
                e.error
            ),
        }
    }
}
