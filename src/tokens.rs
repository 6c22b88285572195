//! Bearer tokens: issue, look up, expire, revoke, and tell live sockets when theirs is revoked.
//!
//! Invariants:
//! - A token is 32 bytes from the operating system's CSPRNG, shown to the client once as 64
//!   upper-case hex digits. The table keeps only its SHA-256, so neither memory nor logs hold a
//!   usable token, and a lookup cannot leak the token through timing.
//! - A token dies at `created + lifetime` whatever happens, and earlier when it has been unused
//!   for the idle timeout. A socket that authenticated with it counts as use while it is open.
//! - Every socket that authenticated with a token holds a [`Revocation`]; removing the token
//!   from the table (logout, absolute expiry) fires all of them at once.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::{Millis, SharedClock};
use crate::protocol::UserView;

/// SHA-256 of a token's 32 bytes: the table key.
pub type TokenHash = [u8; 32];

/// A freshly issued token: the only place its text exists. Debug never prints it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IssuedToken(String);

impl IssuedToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[doc(hidden)]
    pub fn from_hex_for_tests(s: &str) -> Self {
        IssuedToken(s.to_owned())
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedToken(…)")
    }
}

/// What a valid token stands for.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub user: Arc<UserView>,
    pub hash: TokenHash,
    /// Absolute expiry, Unix seconds.
    pub expires_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not 64 hex digits")]
    Malformed,
    #[error("the token is unknown, expired or revoked")]
    Invalid,
}

/// Fires when the token a socket authenticated with is revoked or expires.
#[derive(Debug)]
pub struct Revocation(watch::Receiver<()>);

impl Revocation {
    /// Resolves once the token is gone from the table.
    pub async fn fired(&mut self) {
        // The sender lives in the table entry and never sends: `changed` returns only when the
        // entry, and with it the sender, is dropped.
        while self.0.changed().await.is_ok() {}
    }
}

struct Entry {
    user: Arc<UserView>,
    expires_ms: Millis,
    last_used_ms: AtomicU64,
    sockets: watch::Sender<()>,
}

impl Entry {
    fn is_expired(&self, now: Millis, idle_ms: Millis) -> bool {
        if now >= self.expires_ms {
            return true;
        }
        let idle = now.saturating_sub(self.last_used_ms.load(Ordering::Relaxed)) >= idle_ms;
        idle && self.sockets.receiver_count() == 0
    }
}

/// The in-memory token table. Cheap to clone: clones share the table.
#[derive(Clone)]
pub struct TokenTable {
    inner: Arc<Inner>,
}

struct Inner {
    map: DashMap<TokenHash, Entry>,
    lifetime_ms: Millis,
    idle_ms: Millis,
    clock: SharedClock,
}

impl TokenTable {
    pub fn new(lifetime_secs: u64, idle_secs: u64, clock: SharedClock) -> Self {
        TokenTable {
            inner: Arc::new(Inner {
                map: DashMap::new(),
                lifetime_ms: lifetime_secs.saturating_mul(1000),
                idle_ms: idle_secs.saturating_mul(1000),
                clock,
            }),
        }
    }

    /// Issues a new token for `user`.
    pub fn issue(&self, user: Arc<UserView>) -> Result<(IssuedToken, TokenInfo), getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let now = self.inner.clock.now_ms();
        let hash = openssl::sha::sha256(&bytes);
        let expires_ms = now.saturating_add(self.inner.lifetime_ms);
        let (sockets, _) = watch::channel(());
        self.inner.map.insert(
            hash,
            Entry {
                user: user.clone(),
                expires_ms,
                last_used_ms: AtomicU64::new(now),
                sockets,
            },
        );
        let info = TokenInfo {
            user,
            hash,
            expires_at: expires_ms / 1000,
        };
        Ok((IssuedToken(encode_hex_upper(&bytes)), info))
    }

    /// Looks a presented token up, sliding its idle timer. An expired token is removed.
    pub fn lookup(&self, token: &str) -> Result<TokenInfo, TokenError> {
        let bytes = decode_hex_32(token).ok_or(TokenError::Malformed)?;
        let hash = openssl::sha::sha256(&bytes);
        self.lookup_hash(&hash)
    }

    pub fn lookup_hash(&self, hash: &TokenHash) -> Result<TokenInfo, TokenError> {
        let now = self.inner.clock.now_ms();
        let found = self.inner.map.get(hash).map(|entry| {
            if entry.is_expired(now, self.inner.idle_ms) {
                None
            } else {
                entry.last_used_ms.fetch_max(now, Ordering::Relaxed);
                Some(TokenInfo {
                    user: entry.user.clone(),
                    hash: *hash,
                    expires_at: entry.expires_ms / 1000,
                })
            }
        });
        match found {
            Some(Some(info)) => Ok(info),
            Some(None) => {
                // The read guard is gone; re-check under the write lock before removing.
                self.inner
                    .map
                    .remove_if(hash, |_, e| e.is_expired(now, self.inner.idle_ms));
                Err(TokenError::Invalid)
            }
            None => Err(TokenError::Invalid),
        }
    }

    /// Subscribes a socket to the token's revocation. `None` if the token is already gone.
    pub fn watch(&self, hash: &TokenHash) -> Option<Revocation> {
        self.inner
            .map
            .get(hash)
            .map(|e| Revocation(e.sockets.subscribe()))
    }

    /// Marks a token used now; sockets call this when they close so the idle timer restarts.
    pub fn touch(&self, hash: &TokenHash) {
        if let Some(e) = self.inner.map.get(hash) {
            e.last_used_ms
                .fetch_max(self.inner.clock.now_ms(), Ordering::Relaxed);
        }
    }

    /// Revokes a token; every socket that authenticated with it is told at once.
    pub fn revoke(&self, hash: &TokenHash) -> bool {
        self.inner.map.remove(hash).is_some()
    }

    /// Removes expired tokens (firing their sockets' revocations). Returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.inner.clock.now_ms();
        let before = self.inner.map.len();
        self.inner
            .map
            .retain(|_, e| !e.is_expired(now, self.inner.idle_ms));
        before.saturating_sub(self.inner.map.len())
    }

    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn encode_hex_upper(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX_UPPER[(b >> 4) as usize] as char);
        s.push(HEX_UPPER[(b & 0x0f) as usize] as char);
    }
    s
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
fn decode_hex_32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;
    use uuid::Uuid;

    fn table(clock: &ManualClock) -> TokenTable {
        TokenTable::new(86_400, 3_600, Arc::new(clock.clone()))
    }

    fn user() -> Arc<UserView> {
        Arc::new(UserView {
            id: Uuid::new_v4(),
            name: "alice".into(),
            display_name: "Alice".into(),
        })
    }

    #[test]
    fn issued_tokens_are_64_upper_hex_and_distinct() {
        let t = table(&ManualClock::new());
        let (a, _) = t.issue(user()).unwrap();
        let (b, _) = t.issue(user()).unwrap();
        assert_eq!(a.as_str().len(), 64);
        assert!(a
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "IssuedToken(…)");
    }

    #[test]
    fn lookup_finds_the_user_and_rejects_others() {
        let t = table(&ManualClock::new());
        let u = user();
        let (tok, info) = t.issue(u.clone()).unwrap();
        let found = t.lookup(tok.as_str()).unwrap();
        assert_eq!(found.user.id, u.id);
        assert_eq!(found.hash, info.hash);
        assert_eq!(
            t.lookup(&tok.as_str().to_lowercase()).unwrap().user.id,
            u.id
        );
        assert_eq!(t.lookup("nope").unwrap_err(), TokenError::Malformed);
        assert_eq!(t.lookup(&"0".repeat(64)).unwrap_err(), TokenError::Invalid);
        assert_eq!(
            t.lookup(&"G".repeat(64)).unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn the_table_keeps_no_raw_token() {
        let t = table(&ManualClock::new());
        let (tok, info) = t.issue(user()).unwrap();
        assert!(t.inner.map.iter().all(|e| *e.key() == info.hash));
        assert_ne!(&info.hash[..], decode_hex_32(tok.as_str()).unwrap());
    }

    #[test]
    fn idle_timeout_slides_with_use_and_expires_unused_tokens() {
        let clock = ManualClock::new();
        let t = table(&clock);
        let (tok, _) = t.issue(user()).unwrap();
        clock.advance(Duration::from_secs(3_000));
        assert!(t.lookup(tok.as_str()).is_ok());
        clock.advance(Duration::from_secs(3_000));
        assert!(t.lookup(tok.as_str()).is_ok(), "use slid the idle timer");
        clock.advance(Duration::from_secs(3_600));
        assert_eq!(t.lookup(tok.as_str()).unwrap_err(), TokenError::Invalid);
        assert!(t.is_empty(), "an expired token is removed on lookup");
    }

    #[test]
    fn absolute_lifetime_ends_even_a_busy_token() {
        let clock = ManualClock::new();
        let t = table(&clock);
        let (tok, info) = t.issue(user()).unwrap();
        let _socket = t.watch(&info.hash).unwrap();
        for _ in 0..24 {
            clock.advance(Duration::from_secs(3_599));
            assert!(t.lookup(tok.as_str()).is_ok());
        }
        clock.advance(Duration::from_secs(100));
        assert!(t.lookup(tok.as_str()).is_err());
    }

    #[test]
    fn a_live_socket_keeps_an_idle_token_alive() {
        let clock = ManualClock::new();
        let t = table(&clock);
        let (tok, info) = t.issue(user()).unwrap();
        let socket = t.watch(&info.hash).unwrap();
        clock.advance(Duration::from_secs(7_200));
        assert_eq!(t.sweep(), 0);
        drop(socket);
        t.touch(&info.hash);
        assert!(t.lookup(tok.as_str()).is_ok());
        clock.advance(Duration::from_secs(3_600));
        assert_eq!(t.sweep(), 1);
    }

    #[tokio::test]
    async fn revoking_fires_every_watching_socket() {
        let t = table(&ManualClock::new());
        let (tok, info) = t.issue(user()).unwrap();
        let mut a = t.watch(&info.hash).unwrap();
        let mut b = t.watch(&info.hash).unwrap();
        assert!(t.revoke(&info.hash));
        a.fired().await;
        b.fired().await;
        assert!(t.lookup(tok.as_str()).is_err());
        assert!(t.watch(&info.hash).is_none());
        assert!(!t.revoke(&info.hash));
    }
}
