//! What a client may send: each frame's fields, and [`ClientMsg`], the frame by its `"type"`.

use serde::Deserialize;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

/// `register.begin` (also the body of `POST /api/register/begin`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBegin {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub token: bool,
}

/// `register.finish` (also the body of `POST /api/register/finish`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterFinish {
    #[serde(default)]
    pub ceremony_id: Option<Uuid>,
    pub credential: Box<RegisterPublicKeyCredential>,
    #[serde(default)]
    pub token: bool,
}

/// `login.begin` (also the body of `POST /api/login/begin`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginBegin {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub token: bool,
}

/// `login.finish` (also the body of `POST /api/login/finish`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginFinish {
    #[serde(default)]
    pub ceremony_id: Option<Uuid>,
    pub credential: Box<PublicKeyCredential>,
    #[serde(default)]
    pub token: bool,
}

/// `passkeys.rename` (also the body of `PATCH /api/passkeys/{credentialId}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyRename {
    pub credential_id: String,
    pub label: String,
}

/// `passkeys.delete`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyDelete {
    pub credential_id: String,
    #[serde(default)]
    pub allow_last: bool,
    /// Keep the sessions this passkey opened (by default they end with it).
    #[serde(default)]
    pub keep_sessions: bool,
}

/// `sessions.revoke`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRevoke {
    pub session_id: Uuid,
}

/// `account.update` (also the body of `PATCH /api/account`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdate {
    pub display_name: String,
}

/// `account.delete` (also the body of `DELETE /api/account`): `confirm` must be the account's
/// username, as its owner typed it, so a stray click or a script's typo deletes nothing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDelete {
    pub confirm: String,
}

/// `recovery.login`: a username and one of its recovery codes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryLogin {
    pub username: String,
    pub code: String,
}

/// A client message, by its `"type"` (see [`ClientMsg::TYPES`] and [`decode`]).
#[derive(Debug)]
pub enum ClientMsg {
    RegisterBegin(RegisterBegin),
    RegisterFinish(RegisterFinish),
    LoginBegin(LoginBegin),
    LoginFinish(LoginFinish),
    Auth {
        token: String,
    },
    Logout {},
    Refresh {},
    Ping {},
    PasskeysList {},
    PasskeysRename(PasskeyRename),
    PasskeysDelete(PasskeyDelete),
    SessionsList {},
    SessionsRevoke(SessionRevoke),
    SessionsRevokeOthers {},
    AccountUpdate(AccountUpdate),
    AccountDelete(AccountDelete),
    RecoveryStatus {},
    RecoveryCreate {},
    RecoveryLogin(RecoveryLogin),
    /// A chat message (only on `/chat`).
    Message {
        text: String,
    },
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
        "refresh",
        "ping",
        "passkeys.list",
        "passkeys.rename",
        "passkeys.delete",
        "sessions.list",
        "sessions.revoke",
        "sessions.revokeOthers",
        "account.update",
        "account.delete",
        "recovery.status",
        "recovery.create",
        "recovery.login",
        "message",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::RegisterBegin(_) => "register.begin",
            ClientMsg::RegisterFinish(_) => "register.finish",
            ClientMsg::LoginBegin(_) => "login.begin",
            ClientMsg::LoginFinish(_) => "login.finish",
            ClientMsg::Auth { .. } => "auth",
            ClientMsg::Logout {} => "logout",
            ClientMsg::Refresh {} => "refresh",
            ClientMsg::Ping {} => "ping",
            ClientMsg::PasskeysList {} => "passkeys.list",
            ClientMsg::PasskeysRename(_) => "passkeys.rename",
            ClientMsg::PasskeysDelete(_) => "passkeys.delete",
            ClientMsg::SessionsList {} => "sessions.list",
            ClientMsg::SessionsRevoke(_) => "sessions.revoke",
            ClientMsg::SessionsRevokeOthers {} => "sessions.revokeOthers",
            ClientMsg::AccountUpdate(_) => "account.update",
            ClientMsg::AccountDelete(_) => "account.delete",
            ClientMsg::RecoveryStatus {} => "recovery.status",
            ClientMsg::RecoveryCreate {} => "recovery.create",
            ClientMsg::RecoveryLogin(_) => "recovery.login",
            ClientMsg::Message { .. } => "message",
        }
    }
}
