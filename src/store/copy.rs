//! `wsauthn migrate --from sled --to postgres`: a single node's users, passkeys (with their
//! counters, labels and last use), recovery codes and live sessions, copied into an empty
//! PostgreSQL database, then counted there.
//!
//! Invariants: the target must hold no user (a second run cannot duplicate or overwrite
//! anything); the source is only read; the copy is verified by counting what the target holds
//! afterwards, and a difference is an error.

use super::{PgStore, SledStore};
use crate::error::Error;

/// What was copied (and found in the target afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copied {
    pub users: usize,
    pub passkeys: usize,
    pub recovery_sets: usize,
    pub sessions: usize,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "users {}, passkeys {}, recovery code sets {}, live sessions {}",
            self.users, self.passkeys, self.recovery_sets, self.sessions
        )
    }
}

/// Copies everything from `from` into `to` (empty); sessions that expired by `now_ms` stay
/// behind.
pub async fn copy_sled_to_postgres(
    from: &SledStore,
    to: &PgStore,
    now_ms: u64,
) -> Result<Copied, Error> {
    let already = to.user_count().await?;
    if already > 0 {
        return Err(Error::bad_request(format!(
            "the PostgreSQL database already has {already} users; migrate into an empty one"
        )));
    }
    let mut copied = Copied::default();
    for user in from.users()? {
        let passkeys = from.credentials_of(&user.id)?;
        match passkeys.split_first() {
            Some((first, rest)) => {
                to.create_user(&user, first).await?;
                for passkey in rest {
                    to.add_credential(passkey, u32::MAX).await?;
                }
            }
            None => to.put_user(&user).await?,
        }
        copied.users += 1;
        copied.passkeys += passkeys.len();
        if let Some(set) = from.recovery_set(&user.id)? {
            to.put_recovery_set(&user.id, &set).await?;
            copied.recovery_sets += 1;
        }
    }
    for (hash, session) in from.sessions()? {
        if session.expires_ms > now_ms {
            to.put_session(&hash, &session)?;
            copied.sessions += 1;
        }
    }
    to.flush().await?;
    let found = to.counts().await?;
    if found != copied {
        return Err(Error::internal(format!(
            "the copy does not add up: copied {copied}; the database holds {found}"
        )));
    }
    Ok(copied)
}
