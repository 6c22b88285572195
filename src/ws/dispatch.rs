//! What a frame of the built-in protocol means on `/ws` and `/chat`, without the socket:
//! unit-testable.
//!
//! [`dispatch`] decodes the frame, applies it to the socket's [`SocketCtx`] and returns the reply
//! and anything the socket loop must do next (watch a token, close). Bad frames get an `error`
//! reply and leave the socket open. The first frame of a protected socket never gets here
//! (`auth.rs` reads it, whatever the socket's handler).

use std::time::Instant;

use uuid::Uuid;

use std::borrow::Cow;

use crate::api::{self, Caller};
use crate::ceremony::SignedIn;
use crate::chat::MAX_MESSAGE_CHARS;
use crate::endpoints::Transport;
use crate::error::Error;
use crate::protocol::{self, ClientMsg, MsgId, ServerMsg};
use crate::ratelimit::TokenBucket;
use crate::state::AppState;
use crate::tokens::{Revocation, SessionMeta};

use super::auth::{auth, bind};
pub use super::recovery::RecoveryGrant;

/// Which built-in protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `/ws`: ceremonies, auth, logout, ping, passkeys and sessions.
    Ceremony,
    /// `/chat`: the same but ceremonies, and the broadcast room.
    Chat,
}

/// WebSocket close code for "unauthorized".
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// A close the socket loop must perform: the code (1000–4999) and the reason sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    pub fn unauthorized() -> Self {
        Close {
            code: CLOSE_UNAUTHORIZED,
            reason: "unauthorized".into(),
        }
    }
}

/// The per-socket state that frames act on.
pub struct SocketCtx {
    pub id: u64,
    /// The path the socket was opened on (the unauthorized hook is told it).
    pub path: Cow<'static, str>,
    /// Who the socket is signed in as, with which session (when it used or got a token), and
    /// where it connected from.
    pub caller: Caller,
    /// A protected socket opened without a token: the next frame must be a valid `auth`.
    pub awaiting_auth: bool,
    /// Counts the socket against its address's cap on sockets not signed in, until it signs in.
    pub anonymous: Option<crate::admission::AnonymousSlot>,
    /// Counts the socket against its user's cap on open sockets.
    pub user_slot: Option<crate::admission::UserSlot>,
    /// Only on sockets that run ceremonies (`/ws`): others carry none of this.
    ceremonies: Option<Box<CeremonySlots>>,
    /// Signed in by a recovery code: such a socket may only add a passkey to its account (see
    /// `crate::recovery`).
    pub recovery: Option<RecoveryGrant>,
}

/// A ceremony socket's latest pending ceremony of each kind, and its per-minute allowance.
struct CeremonySlots {
    register: Option<Uuid>,
    login: Option<Uuid>,
    allowance: TokenBucket,
}

impl SocketCtx {
    pub fn new(
        state: &AppState,
        path: Cow<'static, str>,
        meta: SessionMeta,
        ceremonies: bool,
        now: Instant,
    ) -> Self {
        let per_minute = state.config.limits.ceremonies_per_minute;
        SocketCtx {
            id: state.next_socket_id(),
            path,
            caller: Caller {
                meta,
                ..Caller::default()
            },
            awaiting_auth: false,
            anonymous: None,
            user_slot: None,
            ceremonies: ceremonies.then(|| {
                Box::new(CeremonySlots {
                    register: None,
                    login: None,
                    allowance: TokenBucket::new(f64::from(per_minute) / 60.0, per_minute, now),
                })
            }),
            recovery: None,
        }
    }

    /// Whether the socket has a ceremony pending.
    pub fn has_pending_ceremony(&self) -> bool {
        self.pending_ceremonies().next().is_some()
    }

    /// Ceremonies this socket still has pending, to cancel when it closes.
    pub fn pending_ceremonies(&self) -> impl Iterator<Item = Uuid> {
        let (register, login) = self
            .ceremonies
            .as_deref()
            .map_or((None, None), |c| (c.register, c.login));
        register.into_iter().chain(login)
    }
}

/// The result of one frame.
#[derive(Default)]
pub struct Outcome {
    /// The frame to send back, if any.
    pub reply: Option<String>,
    /// Start watching this token's revocation (replacing any earlier one).
    pub watch: Option<Revocation>,
    /// Close the socket after sending the reply.
    pub close: Option<Close>,
}

impl Outcome {
    pub(super) fn reply(id: Option<&MsgId>, msg: ServerMsg) -> Self {
        Outcome {
            reply: Some(protocol::encode(id, &msg)),
            ..Outcome::default()
        }
    }

    fn error(id: Option<&MsgId>, err: &Error) -> Self {
        err.log("websocket frame");
        Outcome::reply(id, ServerMsg::error(err))
    }
}

/// Handles one text frame of a signed-in socket, or of one its path or the hook let in.
pub async fn dispatch(
    ctx: &mut SocketCtx,
    state: &AppState,
    kind: SocketKind,
    text: &str,
    now: Instant,
) -> Outcome {
    let envelope = match protocol::decode(text) {
        Ok(envelope) => envelope,
        Err(e) => return Outcome::error(e.id.as_ref(), &e.error),
    };
    let id = envelope.id.as_ref();
    match handle(ctx, state, kind, envelope.msg, id, now).await {
        Ok(outcome) => outcome,
        Err(err) => {
            if err.code() == crate::error::ErrorCode::RateLimited {
                state.metrics.rate_limited();
            }
            Outcome::error(id, &err)
        }
    }
}

async fn handle(
    ctx: &mut SocketCtx,
    state: &AppState,
    kind: SocketKind,
    msg: ClientMsg,
    id: Option<&MsgId>,
    now: Instant,
) -> Result<Outcome, Error> {
    let ceremonial = matches!(
        msg,
        ClientMsg::RegisterBegin(_)
            | ClientMsg::RegisterFinish(_)
            | ClientMsg::LoginBegin(_)
            | ClientMsg::LoginFinish(_)
    );
    if ceremonial && kind != SocketKind::Ceremony {
        return Err(Error::bad_request(format!(
            "{:?} is accepted only on /ws.",
            msg.type_name()
        )));
    }
    if ctx.recovery.is_some() {
        super::recovery::allows(ctx, state, &msg)?;
    }
    let reply = |msg| Ok(Outcome::reply(id, msg));
    match msg {
        ClientMsg::RegisterBegin(req) => {
            take_ceremony_slot(ctx, now)?;
            if let Some(grant) = ctx.recovery.as_mut() {
                grant.token = req.token;
            }
            let options =
                api::register_begin(state, &ctx.caller, Transport::WebSocket, &req).await?;
            if let Some(old) = slots(ctx)?.register.replace(options.ceremony_id) {
                state.ceremonies.pending().cancel(&old);
            }
            reply(ServerMsg::RegisterOptions(options))
        }
        ClientMsg::RegisterFinish(req) => {
            let ceremony = resolve(&mut slots(ctx)?.register, req.ceremony_id)?;
            let (mut result, signed_in) =
                api::register_finish(state, &ctx.caller, Transport::WebSocket, &ceremony, &req)
                    .await?;
            let watch = match ctx.recovery.take() {
                Some(grant) => {
                    let token = grant.token || req.token;
                    super::recovery::recovered(ctx, state, &mut result, &signed_in, token).await?
                }
                None => sign_in(ctx, state, signed_in),
            };
            Ok(Outcome {
                watch,
                ..Outcome::reply(id, ServerMsg::RegisterResult(result))
            })
        }
        ClientMsg::LoginBegin(req) => {
            take_ceremony_slot(ctx, now)?;
            let options = api::login_begin(state, &ctx.caller, Transport::WebSocket, &req).await?;
            if let Some(old) = slots(ctx)?.login.replace(options.ceremony_id) {
                state.ceremonies.pending().cancel(&old);
            }
            reply(ServerMsg::LoginOptions(options))
        }
        ClientMsg::LoginFinish(req) => {
            let ceremony = resolve(&mut slots(ctx)?.login, req.ceremony_id)?;
            let (result, signed_in) =
                api::login_finish(state, &ctx.caller, Transport::WebSocket, &ceremony, &req)
                    .await?;
            let watch = sign_in(ctx, state, signed_in);
            Ok(Outcome {
                watch,
                ..Outcome::reply(id, ServerMsg::LoginResult(result))
            })
        }
        ClientMsg::Auth { token } => {
            let (reply, watch) = auth(ctx, state, id, &token).await?;
            Ok(Outcome {
                reply: Some(reply),
                watch: Some(watch),
                close: None,
            })
        }
        ClientMsg::Logout {} => {
            api::logout(state, &ctx.caller).await?;
            // Its session's end closes this socket (4401) right after the reply.
            ctx.caller.user = None;
            ctx.caller.session = None;
            reply(ServerMsg::LogoutResult {})
        }
        ClientMsg::Refresh {} => {
            let (refreshed, _) = api::refresh(state, &ctx.caller).await?;
            reply(ServerMsg::RefreshResult(refreshed))
        }
        ClientMsg::Ping {} => reply(ServerMsg::Pong {}),
        ClientMsg::PasskeysList {} => reply(ServerMsg::PasskeysListResult(
            api::passkeys_list(state, &ctx.caller).await?,
        )),
        ClientMsg::PasskeysRename(req) => reply(ServerMsg::PasskeysRenameResult(
            api::passkey_rename(state, &ctx.caller, &req).await?,
        )),
        ClientMsg::PasskeysDelete(req) => reply(ServerMsg::PasskeysDeleteResult(
            api::passkey_delete(state, &ctx.caller, &req).await?,
        )),
        ClientMsg::SessionsList {} => reply(ServerMsg::SessionsListResult(
            api::sessions_list(state, &ctx.caller).await?,
        )),
        ClientMsg::SessionsRevoke(req) => reply(ServerMsg::SessionsRevokeResult(
            api::session_revoke(state, &ctx.caller, &req.session_id).await?,
        )),
        ClientMsg::SessionsRevokeOthers {} => reply(ServerMsg::SessionsRevokeOthersResult(
            api::sessions_revoke_others(state, &ctx.caller).await?,
        )),
        ClientMsg::AccountUpdate(req) => reply(ServerMsg::AccountUpdateResult(
            crate::account::update(state, &ctx.caller, &req.display_name).await?,
        )),
        ClientMsg::AccountDelete(req) => {
            let deleted = crate::account::delete(state, &ctx.caller, &req.confirm).await?;
            // Its sessions' end closes this socket (4401) right after the reply.
            ctx.caller.user = None;
            ctx.caller.session = None;
            reply(ServerMsg::AccountDeleteResult(deleted))
        }
        ClientMsg::RecoveryStatus {} => reply(ServerMsg::RecoveryStatusResult(
            crate::recovery::status(state, &ctx.caller).await?,
        )),
        ClientMsg::RecoveryCreate {} => reply(ServerMsg::RecoveryCreateResult(
            crate::recovery::create(state, &ctx.caller).await?,
        )),
        ClientMsg::RecoveryLogin(req) => {
            super::recovery::login(ctx, state, kind, &req, id, now).await
        }
        ClientMsg::Message { text } => {
            if kind != SocketKind::Chat {
                return Err(Error::bad_request("\"message\" is accepted only on /chat."));
            }
            if text.trim().is_empty() {
                return Err(Error::bad_request("\"text\" must not be empty."));
            }
            if text.chars().count() > MAX_MESSAGE_CHARS {
                return Err(Error::bad_request(format!(
                    "\"text\" is longer than {MAX_MESSAGE_CHARS} characters."
                )));
            }
            let (from, name) = match &ctx.caller.user {
                // The display name as it is now: it may have changed since the sign-in.
                Some(u) => {
                    let name = match state.store.user(&u.id).await {
                        Ok(Some(record)) => record.display_name,
                        _ => u.display_name.clone(),
                    };
                    (u.name.as_str(), name)
                }
                None => ("anonymous", "anonymous".to_owned()),
            };
            state.chat.publish(from, &name, text, state.clock.now_ms());
            Ok(Outcome::default())
        }
    }
}

/// The ceremony state of a `/ws` socket (`handle` refuses ceremonies on the others first).
fn slots(ctx: &mut SocketCtx) -> Result<&mut CeremonySlots, Error> {
    ctx.ceremonies
        .as_deref_mut()
        .ok_or_else(|| Error::bad_request("Ceremonies run only on /ws."))
}

/// Counts a ceremony against the socket's per-minute allowance.
fn take_ceremony_slot(ctx: &mut SocketCtx, now: Instant) -> Result<(), Error> {
    if slots(ctx)?.allowance.try_take(now) {
        Ok(())
    } else {
        Err(Error::RateLimited(
            "Too many ceremonies on this connection; wait a minute and try again.",
        ))
    }
}

/// The ceremony a `finish` refers to: the given id, or this socket's latest of that kind.
fn resolve(latest: &mut Option<Uuid>, given: Option<Uuid>) -> Result<Uuid, Error> {
    let id = given.or(*latest).ok_or(Error::CeremonyNotFound)?;
    if *latest == Some(id) {
        *latest = None;
    }
    Ok(id)
}

/// Applies a successful ceremony to the socket: it is now signed in as the ceremony's user and
/// bound to the session it opened (socket-only when no token was asked for). A ceremony that
/// opened none (a passkey added to the socket's own account) leaves the binding as it was.
fn sign_in(ctx: &mut SocketCtx, state: &AppState, signed_in: SignedIn) -> Option<Revocation> {
    let (_, info) = signed_in.session?;
    // A ceremony's sign-in is counted but not refused: the ceremony limits bound those.
    let slot = state.per_user.admit_key(info.user.id);
    let watch = bind(ctx, state, &info)?;
    ctx.user_slot = slot.or(ctx.user_slot.take());
    Some(watch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_without_ceremony_id_uses_the_latest_once() {
        let a = Uuid::new_v4();
        let mut latest = Some(a);
        assert_eq!(resolve(&mut latest, None).unwrap(), a);
        assert!(latest.is_none());
        assert!(matches!(
            resolve(&mut latest, None),
            Err(Error::CeremonyNotFound)
        ));
        let b = Uuid::new_v4();
        assert_eq!(resolve(&mut latest, Some(b)).unwrap(), b);
    }
}
