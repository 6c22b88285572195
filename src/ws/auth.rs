//! Who a socket is, without the socket: the first `auth` frame of a protected socket opened
//! without a token, binding a socket to a session, and the unauthorized hook's verdicts.
//!
//! Invariants: one socket, one identity, one session ([`bind`]); a socket bound to a session
//! watches its revocation from the moment it is bound. A protected socket's first frame is
//! either a valid `auth` or goes to the unauthorized hook, whatever the handler.

use crate::api;
use crate::endpoints::{Reason, Transport, Unauthorized, Verdict};
use crate::error::Error;
use crate::protocol::{self, ClientMsg, MsgId, ServerMsg};
use crate::state::AppState;
use crate::tokens::{Revocation, TokenInfo};

use super::dispatch::{Close, SocketCtx, CLOSE_UNAUTHORIZED};

/// Maps the hook's verdict for a socket to a close (or `None` to let the socket go on).
pub fn verdict_close(verdict: Verdict) -> Option<Close> {
    match verdict {
        Verdict::Disconnect => Some(Close::unauthorized()),
        Verdict::Allow => None,
        Verdict::Close { code, reason } => Some(Close {
            code: if (1000..=4999).contains(&code) {
                code
            } else {
                CLOSE_UNAUTHORIZED
            },
            reason,
        }),
    }
}

/// Runs the unauthorized hook for this socket.
pub fn unauthorized(state: &AppState, ctx: &SocketCtx, reason: Reason) -> Verdict {
    state.hook.on_unauthorized(&Unauthorized {
        transport: Transport::WebSocket,
        path: &ctx.path,
        reason,
        peer: ctx.caller.meta.address,
    })
}

/// Binds the socket to a session: one socket, one identity, one session. The session it was
/// bound to before is left, and ended if it was this socket's own (socket-only).
pub fn bind(ctx: &mut SocketCtx, state: &AppState, info: &TokenInfo) -> Option<Revocation> {
    let watch = state.tokens.watch(&info.session)?;
    ctx.anonymous = None;
    if let Some(old) = ctx.caller.session.replace(info.session) {
        if old != info.session {
            state.tokens.end_socket_session(&old);
        }
    }
    ctx.caller.user = Some(info.user.clone());
    Some(watch)
}

/// `auth`: binds the socket to a valid token's session; returns the `auth.result` frame and the
/// session's revocation signal.
pub async fn auth(
    ctx: &mut SocketCtx,
    state: &AppState,
    id: Option<&MsgId>,
    token: &str,
) -> Result<(String, Revocation), Error> {
    state.tokens.prefetch(token).await;
    let info = state
        .tokens
        .lookup(token)
        .map_err(|_| Error::InvalidToken)?;
    let same_user = ctx
        .caller
        .user
        .as_ref()
        .is_some_and(|u| u.id == info.user.id);
    let slot = match same_user {
        true => ctx.user_slot.take(),
        false => Some(
            state
                .per_user
                .admit_key(info.user.id)
                .ok_or(Error::RateLimited(
                    "This account has as many sockets open as it may; close one first.",
                ))?,
        ),
    };
    let watch = bind(ctx, state, &info).ok_or(Error::InvalidToken)?;
    ctx.user_slot = slot;
    let reply = protocol::encode(id, &ServerMsg::AuthResult(api::whoami(state, &info).await));
    Ok((reply, watch))
}

/// What the first frame of a protected socket opened without a token comes to.
#[derive(Debug)]
pub enum FirstFrame {
    /// A valid `auth`: the socket is bound; send `reply` (`auth.result`), then open it.
    SignedIn { reply: String, watch: Revocation },
    /// Anything else, and the hook refuses it.
    Refused(Close),
    /// Anything else, and the hook lets the socket in without a user: the frame is the
    /// handler's, as any later one.
    LetIn,
}

/// Reads a protected socket's first text frame.
pub async fn first_frame(ctx: &mut SocketCtx, state: &AppState, text: &str) -> FirstFrame {
    let reason = match protocol::decode(text) {
        Ok(envelope) => match &envelope.msg {
            ClientMsg::Auth { token } => {
                match auth(ctx, state, envelope.id.as_ref(), token).await {
                    Ok((reply, watch)) => return FirstFrame::SignedIn { reply, watch },
                    Err(_) => Reason::InvalidToken,
                }
            }
            _ => Reason::NotAuthenticated,
        },
        Err(_) => Reason::NotAuthenticated,
    };
    refused_or_let_in(state, ctx, reason)
}

/// The hook's verdict on a protected socket that did not authenticate in time, or sent a
/// binary frame first.
pub fn refused_or_let_in(state: &AppState, ctx: &SocketCtx, reason: Reason) -> FirstFrame {
    match verdict_close(unauthorized(state, ctx, reason)) {
        Some(close) => FirstFrame::Refused(close),
        None => FirstFrame::LetIn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_verdicts_map_to_closes() {
        assert_eq!(
            verdict_close(Verdict::Disconnect),
            Some(Close::unauthorized())
        );
        assert_eq!(verdict_close(Verdict::Allow), None);
        let close = verdict_close(Verdict::Close {
            code: 4403,
            reason: "forbidden".into(),
        });
        assert_eq!(close.map(|c| c.code), Some(4403));
        let bogus = verdict_close(Verdict::Close {
            code: 99,
            reason: String::new(),
        });
        assert_eq!(bogus.map(|c| c.code), Some(CLOSE_UNAUTHORIZED));
    }
}
