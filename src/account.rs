//! A signed-in user's own account: changing its display name and deleting it.
//!
//! Invariants: only the caller's own account is touched. Deleting it is durable when it answers
//! (through [`crate::admin::delete_user`], the backend API's deletion: account, username,
//! passkeys and the credential-id index in one transaction, then every session, whose sockets
//! close with 4401), and takes the recovery codes with it. It needs the username typed again
//! as `confirm`, so nothing is deleted by a stray click.

use crate::api::Caller;
use crate::error::Error;
use crate::events::Event;
use crate::names::username_key;
use crate::protocol::{AccountDeleted, AccountUpdated};
use crate::state::AppState;

/// Longest display name, in characters (as at registration).
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;

/// The account's WebAuthn user handle (its id's bytes), base64url, as the Signal API wants it.
pub fn user_handle(id: &uuid::Uuid) -> String {
    crate::b64url(id.as_bytes())
}

/// Sets the caller's display name (RFC 8266 `Nickname`, as at registration).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    display_name: &str,
) -> Result<AccountUpdated, Error> {
    let user = caller
        .user
        .as_ref()
        .ok_or(Error::Unauthorized("Sign in first."))?;
    let name = crate::names::nickname("displayName", display_name, MAX_DISPLAY_NAME_CHARS)?;
    let record = state
        .store
        .set_display_name(&user.id, &name)
        .await?
        .ok_or(Error::Unauthorized("This account no longer exists."))?;
    state.store.flush().await?;
    state
        .events
        .emit(Event::DisplayNameChanged { user: user.id });
    Ok(AccountUpdated {
        user: record.view(),
        rp_id: state.config.webauthn.rp_id.clone(),
        user_handle: user_handle(&user.id),
    })
}

/// Deletes the caller's account; `confirm` must be its username.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    confirm: &str,
) -> Result<AccountDeleted, Error> {
    let user = caller
        .user
        .as_ref()
        .ok_or(Error::Unauthorized("Sign in first."))?;
    if username_key(confirm) != username_key(&user.name) {
        return Err(Error::bad_request(
            "To delete the account, \"confirm\" must be its username.",
        ));
    }
    // Codes first: an account half deleted must not be recoverable.
    state.store.remove_recovery_set(&user.id).await?;
    let deleted = crate::admin::delete_user(state, &user.id).await?;
    state.events.emit(Event::AccountDeleted { user: user.id });
    Ok(AccountDeleted {
        user_id: deleted.id,
        username: deleted.username,
    })
}
