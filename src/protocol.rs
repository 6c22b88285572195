//! The wire protocol, version 1: every frame a client may send and every frame the server sends.
//!
//! Frames are JSON objects tagged by `"type"`; a client frame may carry an `"id"` (string or
//! number) that the reply echoes. WebAuthn structures are webauthn-rs's own JSON types, unchanged,
//! so they are exactly what a browser's `toJSON()` writes. `docs/protocol.md` is the prose
//! version of this file; the golden tests below pin both together.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::error::{Error, ErrorCode};
use crate::tokens::{IssuedToken, SessionView};

mod client;
mod decode;

pub use client::{
    AccountDelete, AccountUpdate, ClientMsg, LoginBegin, LoginFinish, PasskeyDelete, PasskeyRename,
    RecoveryLogin, RegisterBegin, RegisterFinish, SessionRevoke,
};
pub use decode::{decode, DecodeError};

/// The `id` a client put on a frame; echoed verbatim on the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MsgId {
    Number(serde_json::Number),
    String(String),
}

/// A decoded client frame.
#[derive(Debug)]
pub struct Envelope {
    pub id: Option<MsgId>,
    pub msg: ClientMsg,
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

/// `register.options`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterOptions {
    pub ceremony_id: Uuid,
    #[serde(flatten)]
    pub options: Box<CreationChallengeResponse>,
}

/// `register.result`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResult {
    pub verified: Verified,
    pub user: UserView,
    pub credential_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// `login.options`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginOptions {
    pub ceremony_id: Uuid,
    #[serde(flatten)]
    pub options: Box<RequestChallengeResponse>,
}

/// `login.result`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResult {
    pub verified: Verified,
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// `auth.result`, and the body of `GET /api/me`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Whoami {
    pub user: UserView,
    pub expires_at: u64,
}

/// `refresh.result`.
#[derive(Debug, Serialize)]
pub struct Refreshed {
    pub authentication: Authentication,
}

/// One passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyView {
    /// The credential id, base64url.
    pub id: String,
    pub label: String,
    pub created_at: u64,
    pub last_used_at: Option<u64>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub aaguid: Option<Uuid>,
    /// The authenticator model, when its AAGUID is a known one.
    pub authenticator: Option<&'static str>,
}

/// `passkeys.list.result`: the passkeys, and what the browser's WebAuthn Signal API needs to be
/// told which of them the server still accepts (`signalAllAcceptedCredentials`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
    pub rp_id: String,
    /// The account's WebAuthn user handle (its id's 16 bytes), base64url.
    pub user_handle: String,
}

/// `passkeys.rename.result`.
#[derive(Debug, Serialize)]
pub struct PasskeyRenamed {
    pub passkey: PasskeyView,
}

/// `passkeys.delete.result`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyDeleted {
    pub credential_id: String,
    /// How many sessions the passkey had opened and ended with it.
    pub sessions_ended: usize,
}

/// `sessions.list.result`.
#[derive(Debug, Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `sessions.revoke.result` and `sessions.revokeOthers.result`.
#[derive(Debug, Serialize)]
pub struct Revoked {
    pub revoked: usize,
}

/// `account.update.result`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdated {
    pub user: UserView,
    pub rp_id: String,
    pub user_handle: String,
}

/// `account.delete.result`. (`userId`, not `id`: a frame's `id` is the request's.)
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDeleted {
    pub user_id: Uuid,
    pub username: String,
}

/// `recovery.status.result`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStatus {
    /// Unused codes left (0 when none were ever made).
    pub remaining: usize,
    /// When the current set was made, Unix seconds.
    pub created_at: Option<u64>,
}

/// `recovery.create.result`: the new codes, shown this once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
    pub created_at: u64,
}

/// `recovery.result`: the socket is signed in to `user` until `until` (Unix seconds), and may
/// only add a passkey.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryGranted {
    pub user: UserView,
    pub until: u64,
    /// Codes left after this one.
    pub remaining: usize,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum ServerMsg {
    #[serde(rename = "register.options")]
    RegisterOptions(RegisterOptions),
    #[serde(rename = "register.result")]
    RegisterResult(RegisterResult),
    #[serde(rename = "login.options")]
    LoginOptions(LoginOptions),
    #[serde(rename = "login.result")]
    LoginResult(LoginResult),
    #[serde(rename = "auth.result")]
    AuthResult(Whoami),
    #[serde(rename = "logout.result")]
    LogoutResult {},
    #[serde(rename = "refresh.result")]
    RefreshResult(Refreshed),
    /// Pushed before the socket's token reaches its absolute expiry.
    #[serde(rename = "expiring", rename_all = "camelCase")]
    Expiring { expires_at: u64 },
    #[serde(rename = "pong")]
    Pong {},
    #[serde(rename = "passkeys.list.result")]
    PasskeysListResult(PasskeyList),
    #[serde(rename = "passkeys.rename.result")]
    PasskeysRenameResult(PasskeyRenamed),
    #[serde(rename = "passkeys.delete.result")]
    PasskeysDeleteResult(PasskeyDeleted),
    #[serde(rename = "sessions.list.result")]
    SessionsListResult(SessionList),
    #[serde(rename = "sessions.revoke.result")]
    SessionsRevokeResult(Revoked),
    #[serde(rename = "sessions.revokeOthers.result")]
    SessionsRevokeOthersResult(Revoked),
    #[serde(rename = "account.update.result")]
    AccountUpdateResult(AccountUpdated),
    #[serde(rename = "account.delete.result")]
    AccountDeleteResult(AccountDeleted),
    #[serde(rename = "recovery.status.result")]
    RecoveryStatusResult(RecoveryStatus),
    #[serde(rename = "recovery.create.result")]
    RecoveryCreateResult(RecoveryCodes),
    #[serde(rename = "recovery.result")]
    RecoveryResult(RecoveryGranted),
    /// A chat message: `from` is the sender's username, `name` their display name.
    #[serde(rename = "message")]
    Message {
        from: String,
        name: String,
        text: String,
        at: u64,
    },
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
mod tests;
