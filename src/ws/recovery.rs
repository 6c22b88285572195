//! What a `/ws` socket signed in by a recovery code may do (see [`crate::recovery`]): sign in
//! with the code, add a passkey to its own account and nothing else, for a short while; adding
//! one turns the socket's session into an ordinary one opened by the new passkey.

use std::sync::Arc;
use std::time::Instant;

use super::auth::bind;
use super::dispatch::{Outcome, SocketCtx, SocketKind};
use crate::ceremony::SignedIn;
use crate::error::Error;
use crate::protocol::{self, ClientMsg, MsgId, RecoveryLogin, ServerMsg};
use crate::state::AppState;
use crate::tokens::{Revocation, SessionMeta};

/// What a recovery code granted a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryGrant {
    /// Clock milliseconds at which the grant ends.
    pub until_ms: u64,
    /// Whether the passkey's `register.begin` asked for a token.
    pub token: bool,
}

/// `recovery.login`: spends the code and signs the socket in to a socket-only recovery session.
pub(super) async fn login(
    ctx: &mut SocketCtx,
    state: &AppState,
    kind: SocketKind,
    req: &RecoveryLogin,
    id: Option<&MsgId>,
    now: Instant,
) -> Result<Outcome, Error> {
    if kind != SocketKind::Ceremony {
        return Err(Error::bad_request(
            "\"recovery.login\" is accepted only on /ws.",
        ));
    }
    let address = ctx.caller.meta.address;
    let (user, remaining) =
        crate::recovery::redeem(state, &req.username, &req.code, address, now).await?;
    let meta = SessionMeta {
        credential_id: None,
        ..ctx.caller.meta.clone()
    };
    // The session itself ends with the grant, so the socket closes (4401) on time, not at its
    // next frame.
    let grant_ms = crate::recovery::SESSION_SECS * 1000;
    let until_ms = state.clock.now_ms() + grant_ms;
    let info = state
        .tokens
        .issue_for_socket_until(Arc::new(user.view()), meta, grant_ms)?;
    let watch = bind(ctx, state, &info).ok_or(Error::RecoveryFailed)?;
    ctx.recovery = Some(RecoveryGrant {
        until_ms,
        token: false,
    });
    Ok(Outcome {
        watch: Some(watch),
        ..Outcome::reply(
            id,
            ServerMsg::RecoveryResult(protocol::RecoveryGranted {
                user: user.view(),
                until: until_ms / 1000,
                remaining,
            }),
        )
    })
}

/// What a socket signed in by a recovery code may do: add a passkey to its own account (and
/// ping, or sign out), until its time is up, when its session ends.
pub(super) fn allows(ctx: &mut SocketCtx, state: &AppState, msg: &ClientMsg) -> Result<(), Error> {
    let expired = ctx
        .recovery
        .is_some_and(|grant| state.clock.now_ms() >= grant.until_ms);
    if expired {
        ctx.recovery = None;
        if let Some(session) = ctx.caller.session.take() {
            state.tokens.end_socket_session(&session);
        }
        ctx.caller.user = None;
        return Err(Error::Unauthorized(
            "The recovery session has ended; use another recovery code.",
        ));
    }
    match msg {
        ClientMsg::RegisterBegin(req) => {
            let own = ctx.caller.user.as_ref().is_some_and(|u| {
                crate::names::username_key(&req.username) == crate::names::username_key(&u.name)
            });
            if own {
                Ok(())
            } else {
                Err(Error::Unauthorized(
                    "A recovery session may only add a passkey to its own account.",
                ))
            }
        }
        ClientMsg::RegisterFinish(_) | ClientMsg::Ping {} | ClientMsg::Logout {} => Ok(()),
        _ => Err(Error::Unauthorized(
            "A recovery session may only add a passkey; add one, then sign in with it.",
        )),
    }
}

/// A recovery session added a passkey: the socket leaves it for an ordinary session opened by
/// the new passkey, with a token when one was asked for.
pub(super) async fn recovered(
    ctx: &mut SocketCtx,
    state: &AppState,
    result: &mut protocol::RegisterResult,
    signed_in: &SignedIn,
    want_token: bool,
) -> Result<Option<Revocation>, Error> {
    let meta = SessionMeta {
        credential_id: Some(result.credential_id.clone()),
        ..ctx.caller.meta.clone()
    };
    let user = Arc::new(signed_in.user.view());
    let info = if want_token {
        let (token, info) = state.tokens.issue(user, meta)?;
        if state.store.is_shared() {
            state.store.flush().await?;
        }
        result.authentication = Some(protocol::Authentication {
            token,
            expires_at: info.expires_at,
        });
        info
    } else {
        state.tokens.issue_for_socket(user, meta)?
    };
    state.events.emit(crate::events::Event::RecoveryCompleted {
        user: signed_in.user.id,
        credential_id: result.credential_id.clone(),
    });
    Ok(bind(ctx, state, &info))
}
