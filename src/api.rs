//! Every operation a client can ask for, once, whatever carries it: the socket dispatcher
//! (`ws/dispatch.rs`) and the HTTP handlers (`http/handlers.rs`) both call these functions, so a
//! rule lives in one place and the two transports cannot drift apart.
//!
//! Each function takes the shared state, who is asking ([`Caller`]) and a typed request from
//! `protocol`, and returns the typed result the transports serialize.

use std::sync::Arc;

use uuid::Uuid;

use crate::aaguid::authenticator_name;
use crate::ceremony::SignedIn;
use crate::endpoints::Transport;
use crate::error::Error;
use crate::events::{EndReason, Event};
use crate::protocol::{
    Authentication, LoginBegin, LoginFinish, LoginOptions, LoginResult, PasskeyDelete,
    PasskeyDeleted, PasskeyList, PasskeyRename, PasskeyRenamed, PasskeyView, Refreshed,
    RegisterBegin, RegisterFinish, RegisterOptions, RegisterResult, Revoked, SessionList, UserView,
    Verified, Whoami,
};
use crate::state::AppState;
use crate::store::CredentialRecord;
use crate::tokens::{SessionMeta, TokenInfo};

/// Longest passkey label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// Who is asking: the signed-in user and session, if any, and where the request came from.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub user: Option<Arc<UserView>>,
    pub session: Option<Uuid>,
    pub meta: SessionMeta,
}

impl Caller {
    pub fn from_token(info: &TokenInfo, meta: SessionMeta) -> Self {
        Caller {
            user: Some(info.user.clone()),
            session: Some(info.session),
            meta,
        }
    }

    fn user(&self) -> Result<&Arc<UserView>, Error> {
        self.user
            .as_ref()
            .ok_or(Error::Unauthorized("Sign in first."))
    }
}

fn authentication(signed_in: &SignedIn) -> Option<Authentication> {
    signed_in.token().map(|(token, info)| Authentication {
        token: token.clone(),
        expires_at: info.expires_at,
    })
}

pub async fn register_begin(
    state: &AppState,
    caller: &Caller,
    via: Transport,
    req: &RegisterBegin,
) -> Result<RegisterOptions, Error> {
    let signed_in_as = caller.user.as_ref().map(|u| u.id).zip(caller.session);
    let (ceremony_id, options) = state
        .ceremonies
        .register_begin(
            &req.username,
            req.display_name.as_deref(),
            req.token,
            signed_in_as,
            caller.meta.address,
            via,
        )
        .await?;
    Ok(RegisterOptions {
        ceremony_id,
        options: Box::new(options),
    })
}

/// `register.finish`; also returns the session it opened, if any (see
/// [`crate::ceremony::SignedIn`]: on a socket there is always one unless the socket added a
/// passkey to its own account).
pub async fn register_finish(
    state: &AppState,
    caller: &Caller,
    via: Transport,
    ceremony_id: &Uuid,
    req: &RegisterFinish,
) -> Result<(RegisterResult, SignedIn), Error> {
    let registered = state
        .ceremonies
        .register_finish(ceremony_id, &req.credential, req.token, via, &caller.meta)
        .await?;
    let result = RegisterResult {
        verified: Verified::Ok,
        user: registered.signed_in.user.view(),
        credential_id: registered.credential_id,
        authentication: authentication(&registered.signed_in),
    };
    Ok((result, registered.signed_in))
}

pub async fn login_begin(
    state: &AppState,
    caller: &Caller,
    via: Transport,
    req: &LoginBegin,
) -> Result<LoginOptions, Error> {
    let (ceremony_id, options) = state
        .ceremonies
        .login_begin(req.username.as_deref(), req.token, caller.meta.address, via)
        .await?;
    Ok(LoginOptions {
        ceremony_id,
        options: Box::new(options),
    })
}

pub async fn login_finish(
    state: &AppState,
    caller: &Caller,
    via: Transport,
    ceremony_id: &Uuid,
    req: &LoginFinish,
) -> Result<(LoginResult, SignedIn), Error> {
    let signed_in = match state
        .ceremonies
        .login_finish(ceremony_id, &req.credential, req.token, via, &caller.meta)
        .await
    {
        Ok(signed_in) => signed_in,
        Err(e) => return Err(unknown_credential_or(state, &req.credential, e).await),
    };
    let result = LoginResult {
        verified: Verified::Ok,
        user: signed_in.user.view(),
        authentication: authentication(&signed_in),
    };
    Ok((result, signed_in))
}

/// A failed sign-in whose passkey the server does not hold (deleted, or never registered here)
/// says so (`unknown_credential`), so the browser can be told to forget it (WebAuthn
/// `signalUnknownCredential`). The spec lets anyone be told: the credential id came from them.
async fn unknown_credential_or(
    state: &AppState,
    credential: &webauthn_rs::prelude::PublicKeyCredential,
    error: Error,
) -> Error {
    if error.code() != crate::error::ErrorCode::VerificationFailed {
        return error;
    }
    match state.store.credential(credential.get_credential_id()).await {
        Ok(None) => Error::UnknownCredential,
        Ok(Some(_)) => error,
        Err(e) => e,
    }
}

/// Who a session belongs to, with the display name as the store has it now (it may have changed
/// since the session opened).
pub async fn whoami(state: &AppState, info: &TokenInfo) -> Whoami {
    let mut user = (*info.user).clone();
    if let Ok(Some(record)) = state.store.user(&user.id).await {
        user.display_name = record.display_name;
    }
    Whoami {
        user,
        expires_at: info.expires_at,
    }
}

/// Replaces the caller's token with a new one; the session and its sockets carry on. Answers
/// once the old token's removal is on disk, so a crash cannot bring it back.
pub async fn refresh(state: &AppState, caller: &Caller) -> Result<(Refreshed, TokenInfo), Error> {
    let session = caller
        .session
        .ok_or(Error::Unauthorized("Sign in first."))?;
    let (token, info) = state.tokens.refresh(&session)?;
    state.store.flush().await?;
    let expires_at = info.expires_at;
    Ok((
        Refreshed {
            authentication: Authentication { token, expires_at },
        },
        info,
    ))
}

/// Ends the caller's own session (`logout`), durably: it answers once the removal is on disk.
pub async fn logout(state: &AppState, caller: &Caller) -> Result<(), Error> {
    caller.user()?;
    if let Some(session) = caller.session {
        state.tokens.revoke(&session, EndReason::Logout)?;
        state.store.flush().await?;
    }
    Ok(())
}

pub(crate) fn passkey_view(record: &CredentialRecord) -> PasskeyView {
    let cred = webauthn_rs::prelude::Credential::from(record.passkey.clone());
    let authenticator = record.aaguid.as_ref().and_then(authenticator_name);
    PasskeyView {
        id: crate::b64url(&cred.cred_id),
        label: record
            .label
            .clone()
            .unwrap_or_else(|| authenticator.unwrap_or("Passkey").to_owned()),
        created_at: record.created_at,
        last_used_at: record.last_used_at,
        backup_eligible: cred.backup_eligible,
        backed_up: cred.backup_state,
        aaguid: record.aaguid,
        authenticator,
    }
}

fn credential_id(id: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id.trim_end_matches('='))
        .map_err(|_| Error::bad_request("\"credentialId\" must be base64url."))
}

pub async fn passkeys_list(state: &AppState, caller: &Caller) -> Result<PasskeyList, Error> {
    let user = caller.user()?;
    let mut passkeys: Vec<PasskeyView> = state
        .store
        .credentials_of(&user.id)
        .await?
        .iter()
        .map(passkey_view)
        .collect();
    passkeys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(PasskeyList {
        passkeys,
        rp_id: state.config.webauthn.rp_id.clone(),
        user_handle: crate::account::user_handle(&user.id),
    })
}

pub async fn passkey_rename(
    state: &AppState,
    caller: &Caller,
    req: &PasskeyRename,
) -> Result<PasskeyRenamed, Error> {
    let user = caller.user()?;
    let label = crate::names::nickname("label", &req.label, MAX_LABEL_CHARS)?;
    let id = credential_id(&req.credential_id)?;
    let record = state.store.rename_credential(&user.id, &id, &label).await?;
    state.events.emit(Event::PasskeyRenamed {
        user: user.id,
        credential_id: req.credential_id.clone(),
    });
    Ok(PasskeyRenamed {
        passkey: passkey_view(&record),
    })
}

pub async fn passkey_delete(
    state: &AppState,
    caller: &Caller,
    req: &PasskeyDelete,
) -> Result<PasskeyDeleted, Error> {
    let user = caller.user()?;
    let id = credential_id(&req.credential_id)?;
    state
        .store
        .delete_credential(&user.id, &id, req.allow_last)
        .await?;
    state.events.emit(Event::PasskeyRemoved {
        user: user.id,
        credential_id: req.credential_id.clone(),
    });
    // Whoever signed in with the passkey is signed out with it, unless its owner says otherwise
    // (for example when retiring a device they still hold).
    let credential_id = crate::b64url(&id);
    let sessions_ended = match req.keep_sessions {
        true => 0,
        false => {
            // On a shared store, the sessions it opened on other nodes too.
            state.tokens.prefetch_user(user).await;
            state.tokens.revoke_opened_by(&user.id, &credential_id)?
        }
    };
    state.store.flush().await?;
    Ok(PasskeyDeleted {
        credential_id: req.credential_id.clone(),
        sessions_ended,
    })
}

pub async fn sessions_list(state: &AppState, caller: &Caller) -> Result<SessionList, Error> {
    let user = caller.user()?;
    state.tokens.prefetch_user(user).await;
    Ok(SessionList {
        sessions: state.tokens.sessions_of(&user.id, caller.session.as_ref()),
    })
}

/// Ends one of the caller's sessions (their own current one included), durably.
pub async fn session_revoke(
    state: &AppState,
    caller: &Caller,
    session: &Uuid,
) -> Result<Revoked, Error> {
    let user = caller.user()?;
    state.tokens.prefetch_user(user).await;
    let theirs = state
        .tokens
        .sessions_of(&user.id, None)
        .iter()
        .any(|s| s.id == *session);
    if !theirs {
        return Err(Error::NotFound("No session of yours has this id."));
    }
    let reason = if caller.session.as_ref() == Some(session) {
        EndReason::Logout
    } else {
        EndReason::Revoked
    };
    let revoked = usize::from(state.tokens.revoke(session, reason)?);
    state.store.flush().await?;
    Ok(Revoked { revoked })
}

/// Ends every session of the caller's but the current one, durably.
pub async fn sessions_revoke_others(state: &AppState, caller: &Caller) -> Result<Revoked, Error> {
    let user = caller.user()?;
    let keep = caller.session.unwrap_or_else(Uuid::nil);
    state.tokens.prefetch_user(user).await;
    let revoked = state.tokens.revoke_others(&user.id, &keep)?;
    state.store.flush().await?;
    Ok(Revoked { revoked })
}
