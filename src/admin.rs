//! The backend API's operations, for servers (never browsers) holding `admin.api_key`: token
//! introspection (RFC 7662), finding a user and seeing their passkeys and sessions, ending every
//! session of a user, and deleting a user. `http/admin.rs` carries them; nothing here knows HTTP.
//!
//! Invariants: revoking or deleting answers only after the change is flushed to disk, so a crash
//! cannot bring a revoked session or a deleted account back; every session a user had ends with
//! its sockets closed (4401) before the answer. Introspection is a use of the token, as
//! `/auth/verify` is: it slides the idle timer.

pub mod cli;
mod key;

use serde::Serialize;
use uuid::Uuid;

use crate::api::passkey_view;
use crate::error::Error;
use crate::events::Event;
use crate::protocol::{PasskeyView, Revoked};
use crate::state::AppState;
use crate::store::UserRecord;
use crate::tokens::SessionView;

pub use key::{ApiKey, MIN_KEY_CHARS, REDACTED};

const NO_SUCH_USER: Error = Error::NotFound("No user has this id.");

/// An RFC 7662 introspection response: `{"active":false}`, or the token's owner, session and
/// expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// A user as an operator sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    /// Unix seconds.
    pub created_at: u64,
}

impl From<&UserRecord> for AccountView {
    fn from(user: &UserRecord) -> Self {
        AccountView {
            id: user.id,
            name: user.name.clone(),
            display_name: user.display_name.clone(),
            created_at: user.created_at,
        }
    }
}

/// A user with their passkeys (oldest first) and live sessions (newest first).
#[derive(Debug, Clone, Serialize)]
pub struct UserDetail {
    pub user: AccountView,
    pub passkeys: Vec<PasskeyView>,
    pub sessions: Vec<SessionView>,
}

/// What deleting a user removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub id: Uuid,
    pub username: String,
    pub passkeys_removed: usize,
    pub sessions_ended: usize,
}

/// Whether `token` is live, and whose. A malformed, unknown, expired or revoked token is
/// inactive, which is an answer, not an error.
pub fn introspect(state: &AppState, token: &str) -> Introspection {
    match state.tokens.lookup(token) {
        Ok(info) => Introspection {
            active: true,
            sub: Some(info.user.id),
            username: Some(info.user.name.clone()),
            sid: Some(info.session),
            exp: Some(info.expires_at),
            token_type: Some("Bearer"),
        },
        Err(_) => Introspection {
            active: false,
            sub: None,
            username: None,
            sid: None,
            exp: None,
            token_type: None,
        },
    }
}

async fn detail(state: &AppState, user: &UserRecord) -> Result<UserDetail, Error> {
    let mut passkeys: Vec<PasskeyView> = state
        .store
        .credentials_of(&user.id)
        .await?
        .iter()
        .map(passkey_view)
        .collect();
    passkeys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(UserDetail {
        user: AccountView::from(user),
        passkeys,
        sessions: state.tokens.sessions_of(&user.id, None),
    })
}

/// The user `id`, with passkeys and sessions.
pub async fn user(state: &AppState, id: &Uuid) -> Result<UserDetail, Error> {
    let user = state.store.user(id).await?.ok_or(NO_SUCH_USER)?;
    detail(state, &user).await
}

/// The user whose username is `name` (case-insensitive, as at sign-up), with passkeys and
/// sessions.
pub async fn user_by_name(state: &AppState, name: &str) -> Result<UserDetail, Error> {
    let user = state
        .store
        .user_by_name(name)
        .await?
        .ok_or(Error::UnknownUser)?;
    detail(state, &user).await
}

/// Ends every session of the user `id`, closing all their sockets with 4401; durable when it
/// returns.
pub async fn revoke_user(state: &AppState, id: &Uuid) -> Result<Revoked, Error> {
    let user = state.store.user(id).await?.ok_or(NO_SUCH_USER)?;
    state.tokens.prefetch_user(&user.view()).await;
    let revoked = state.tokens.revoke_user(id)?;
    state.store.flush().await?;
    tracing::info!(target: "audit", event = "admin.user_revoked", user = %id, sessions = revoked);
    Ok(Revoked { revoked })
}

/// Deletes the user `id`: their account, passkeys and sessions go (the username and credential
/// ids are free again) and their sockets close with 4401; durable when it returns.
pub async fn delete_user(state: &AppState, id: &Uuid) -> Result<Deleted, Error> {
    let deleted = state.store.delete_user(id).await?.ok_or(NO_SUCH_USER)?;
    for credential_id in &deleted.credential_ids {
        state.events.emit(Event::PasskeyRemoved {
            user: *id,
            credential_id: crate::b64url(credential_id),
        });
    }
    let sessions_ended = state.tokens.forget_user(id)?;
    state.store.remove_sessions_of(id).await?;
    state.store.flush().await?;
    tracing::info!(
        target: "audit",
        event = "admin.user_deleted",
        user = %id,
        passkeys = deleted.credential_ids.len(),
        sessions = sessions_ended
    );
    Ok(Deleted {
        id: *id,
        username: deleted.user.name,
        passkeys_removed: deleted.credential_ids.len(),
        sessions_ended,
    })
}
