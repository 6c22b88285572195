//! Decoding client frames: `type` and `id` first, then the message's own struct, and errors
//! that say in words what is wrong with a frame.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ClientMsg, Envelope, MsgId};
use crate::error::Error;

/// A client frame that could not be decoded: the `id` if one could be read, and why.
#[derive(Debug)]
pub struct DecodeError {
    pub id: Option<MsgId>,
    pub error: Error,
}

/// A frame's `type` and `id`, read first (every other field is skipped unparsed).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(default)]
    id: Option<MsgId>,
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AuthBody {
    token: String,
}

#[derive(Deserialize)]
struct MessageBody {
    text: String,
}

/// Decodes one text frame. Errors say what is wrong in words and keep the frame's `id`.
///
/// Two passes over the text, `type` and `id` first and then the message's own struct, rather
/// than one through `#[serde(flatten)]` and an internally tagged enum: those buffer the whole
/// frame (a `login.finish` is ~1 KiB of base64) into serde's intermediate `Content` twice before
/// decoding it (docs/benchmarks.md). Fields a message does not know are ignored, as before.
pub fn decode(text: &str) -> Result<Envelope, DecodeError> {
    let decoded = serde_json::from_str::<Head>(text).and_then(|head| {
        let kind = head
            .kind
            .ok_or_else(|| serde::de::Error::missing_field("type"))?;
        Ok(Envelope {
            id: head.id,
            msg: ClientMsg::decode(&kind, text)?,
        })
    });
    decoded.map_err(|serde_err| explain_decode_error(text, serde_err))
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

impl ClientMsg {
    /// The message of type `kind` from the whole frame's text.
    fn decode(kind: &str, text: &str) -> serde_json::Result<ClientMsg> {
        use serde_json::from_str as body;
        Ok(match kind {
            "register.begin" => ClientMsg::RegisterBegin(body(text)?),
            "register.finish" => ClientMsg::RegisterFinish(body(text)?),
            "login.begin" => ClientMsg::LoginBegin(body(text)?),
            "login.finish" => ClientMsg::LoginFinish(body(text)?),
            "auth" => ClientMsg::Auth {
                token: body::<AuthBody>(text)?.token,
            },
            "logout" => ClientMsg::Logout {},
            "refresh" => ClientMsg::Refresh {},
            "ping" => ClientMsg::Ping {},
            "passkeys.list" => ClientMsg::PasskeysList {},
            "passkeys.rename" => ClientMsg::PasskeysRename(body(text)?),
            "passkeys.delete" => ClientMsg::PasskeysDelete(body(text)?),
            "sessions.list" => ClientMsg::SessionsList {},
            "sessions.revoke" => ClientMsg::SessionsRevoke(body(text)?),
            "sessions.revokeOthers" => ClientMsg::SessionsRevokeOthers {},
            "account.update" => ClientMsg::AccountUpdate(body(text)?),
            "account.delete" => ClientMsg::AccountDelete(body(text)?),
            "recovery.status" => ClientMsg::RecoveryStatus {},
            "recovery.create" => ClientMsg::RecoveryCreate {},
            "recovery.login" => ClientMsg::RecoveryLogin(body(text)?),
            "message" => ClientMsg::Message {
                text: body::<MessageBody>(text)?.text,
            },
            other => return Err(serde::de::Error::unknown_variant(other, Self::TYPES)),
        })
    }
}
