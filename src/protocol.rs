//! The wire protocol, version 1: every frame a client may send and every frame the server sends.
//!
//! Frames are JSON objects tagged by `"type"`; a client frame may carry an `"id"` (string or
//! number) that the reply echoes. WebAuthn structures are webauthn-rs's own JSON types, unchanged,
//! so they are exactly what a browser's `toJSON()` writes. `docs/protocol.md` is the prose
//! version of this file; the golden tests below pin both together.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use crate::error::{Error, ErrorCode};
use crate::tokens::IssuedToken;

/// The `id` a client put on a frame; echoed verbatim on the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MsgId {
    Number(serde_json::Number),
    String(String),
}

/// A decoded client frame.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub id: Option<MsgId>,
    #[serde(flatten)]
    pub msg: ClientMsg,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMsg {
    #[serde(rename = "register.begin", rename_all = "camelCase")]
    RegisterBegin {
        username: String,
        #[serde(default)]
        display_name: Option<String>,
        #[serde(default)]
        token: bool,
    },
    #[serde(rename = "register.finish", rename_all = "camelCase")]
    RegisterFinish {
        #[serde(default)]
        ceremony_id: Option<Uuid>,
        credential: Box<RegisterPublicKeyCredential>,
        #[serde(default)]
        token: bool,
    },
    #[serde(rename = "login.begin", rename_all = "camelCase")]
    LoginBegin {
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        token: bool,
    },
    #[serde(rename = "login.finish", rename_all = "camelCase")]
    LoginFinish {
        #[serde(default)]
        ceremony_id: Option<Uuid>,
        credential: Box<PublicKeyCredential>,
        #[serde(default)]
        token: bool,
    },
    #[serde(rename = "auth")]
    Auth { token: String },
    #[serde(rename = "logout")]
    Logout {},
    #[serde(rename = "ping")]
    Ping {},
    /// A chat message (only on `/chat`).
    #[serde(rename = "message")]
    Message { text: String },
}

impl ClientMsg {
    /// Every `type` a client may send, for error messages.
    pub const TYPES: &'static [&'static str] = &[
        "register.begin",
        "register.finish",
        "login.begin",
        "login.finish",
        "auth",
        "logout",
        "ping",
        "message",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::RegisterBegin { .. } => "register.begin",
            ClientMsg::RegisterFinish { .. } => "register.finish",
            ClientMsg::LoginBegin { .. } => "login.begin",
            ClientMsg::LoginFinish { .. } => "login.finish",
            ClientMsg::Auth { .. } => "auth",
            ClientMsg::Logout {} => "logout",
            ClientMsg::Ping {} => "ping",
            ClientMsg::Message { .. } => "message",
        }
    }
}

/// A client frame that could not be decoded: the `id` if one could be read, and why.
#[derive(Debug)]
pub struct DecodeError {
    pub id: Option<MsgId>,
    pub error: Error,
}

/// Decodes one text frame. Errors say what is wrong in words and keep the frame's `id`.
pub fn decode(text: &str) -> Result<Envelope, DecodeError> {
    match serde_json::from_str::<Envelope>(text) {
        Ok(envelope) => Ok(envelope),
        Err(serde_err) => Err(explain_decode_error(text, serde_err)),
    }
}

fn explain_decode_error(text: &str, serde_err: serde_json::Error) -> DecodeError {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            return DecodeError {
                id: None,
                error: Error::bad_request("The frame is not valid JSON."),
            }
        }
    };
    let Some(obj) = value.as_object() else {
        return DecodeError {
            id: None,
            error: Error::bad_request("The frame must be a JSON object."),
        };
    };
    let id = obj
        .get("id")
        .and_then(|v| serde_json::from_value::<MsgId>(v.clone()).ok());
    let message = match obj.get("type") {
        None => "The frame has no \"type\".".to_owned(),
        Some(serde_json::Value::String(t)) if !ClientMsg::TYPES.contains(&t.as_str()) => {
            format!("Unknown message type {t:?}.")
        }
        Some(serde_json::Value::String(t)) => format!("Invalid {t:?} message: {serde_err}."),
        Some(_) => "\"type\" must be a string.".to_owned(),
    };
    let message = if obj.get("id").is_some() && id.is_none() {
        "\"id\" must be a string or a number.".to_owned()
    } else {
        message
    };
    DecodeError {
        id,
        error: Error::BadRequest(message),
    }
}

/// The public view of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
}

/// `"authentication"` on a result: the bearer token, shown to the client this once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    pub token: IssuedToken,
    pub expires_at: u64,
}

/// Constant `"ok"` of `"verified"` on results.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum Verified {
    #[serde(rename = "ok")]
    Ok,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum ServerMsg {
    #[serde(rename = "register.options", rename_all = "camelCase")]
    RegisterOptions {
        ceremony_id: Uuid,
        #[serde(flatten)]
        options: Box<CreationChallengeResponse>,
    },
    #[serde(rename = "register.result", rename_all = "camelCase")]
    RegisterResult {
        verified: Verified,
        user: UserView,
        credential_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        authentication: Option<Authentication>,
    },
    #[serde(rename = "login.options", rename_all = "camelCase")]
    LoginOptions {
        ceremony_id: Uuid,
        #[serde(flatten)]
        options: Box<RequestChallengeResponse>,
    },
    #[serde(rename = "login.result", rename_all = "camelCase")]
    LoginResult {
        verified: Verified,
        user: UserView,
        #[serde(skip_serializing_if = "Option::is_none")]
        authentication: Option<Authentication>,
    },
    #[serde(rename = "auth.result", rename_all = "camelCase")]
    AuthResult { user: UserView, expires_at: u64 },
    #[serde(rename = "logout.result")]
    LogoutResult {},
    #[serde(rename = "pong")]
    Pong {},
    #[serde(rename = "message")]
    Message { from: String, text: String, at: u64 },
    #[serde(rename = "error")]
    Error { code: ErrorCode, message: String },
}

impl ServerMsg {
    pub fn error(err: &Error) -> ServerMsg {
        ServerMsg::Error {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a MsgId>,
    #[serde(flatten)]
    msg: &'a ServerMsg,
}

/// Encodes a server frame, echoing `id` when the client sent one.
pub fn encode(id: Option<&MsgId>, msg: &ServerMsg) -> String {
    // Serializing these types cannot fail: no maps with non-string keys, no fallible impls.
    serde_json::to_string(&Outgoing { id, msg }).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode server frame");
        r#"{"type":"error","code":"internal","message":"Internal error."}"#.to_owned()
    })
}

#[cfg(test)]
mod tests {
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
            ClientMsg::RegisterBegin {
                username,
                display_name,
                token,
            } => {
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
            ClientMsg::RegisterBegin {
                token: false,
                display_name: None,
                ..
            }
        ));
    }

    #[test]
    fn login_begin_without_username_is_discoverable() {
        let e = decode(r#"{"type":"login.begin","id":"a"}"#).unwrap();
        assert_eq!(e.id, Some(MsgId::String("a".into())));
        assert!(matches!(
            e.msg,
            ClientMsg::LoginBegin {
                username: None,
                token: false
            }
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
            ServerMsg::LoginResult {
                verified: Verified::Ok,
                user: user.clone(),
                authentication: Some(Authentication {
                    token: IssuedToken::from_hex_for_tests("C760"),
                    expires_at: 1_700_000_000,
                }),
            },
            json!({"type":"login.result","id":4,"verified":"ok",
                   "user":{"id":"00000000-0000-0000-0000-000000000000","name":"alice@example.com","displayName":"Alice"},
                   "authentication":{"token":"C760","expiresAt":1_700_000_000u64}}),
        );
        golden(
            Some(MsgId::String("r".into())),
            ServerMsg::RegisterResult {
                verified: Verified::Ok,
                user: user.clone(),
                credential_id: "AQID".into(),
                authentication: None,
            },
            json!({"type":"register.result","id":"r","verified":"ok","credentialId":"AQID",
                   "user":{"id":"00000000-0000-0000-0000-000000000000","name":"alice@example.com","displayName":"Alice"}}),
        );
        golden(
            Some(MsgId::Number(5.into())),
            ServerMsg::AuthResult {
                user,
                expires_at: 7,
            },
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
                text: "hi".into(),
                at: 12,
            },
            json!({"type":"message","from":"bob","text":"hi","at":12}),
        );
        golden(
            Some(MsgId::Number(1.into())),
            ServerMsg::error(&Error::UsernameTaken),
            json!({"type":"error","id":1,"code":"username_taken","message":"This username is already registered."}),
        );
    }
}
