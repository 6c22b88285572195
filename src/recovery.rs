//! Account recovery without a password: one-time recovery codes.
//!
//! A signed-in user makes a set of [`CODES_PER_SET`] codes, shown to them once. A code is
//! `XXXX-XXXX-XXXX-XXXX` in Crockford's base32 alphabet: the first group is the code's public
//! id, the other twelve characters (60 bits from the operating system's CSPRNG) its secret.
//!
//! Invariants:
//! - The store keeps only the id and an Argon2id hash (argon2's defaults: 19 MiB, 2 passes) of
//!   each secret, so a copy of the database yields no usable code; hashing runs on the blocking
//!   pool, never on a socket's task.
//! - A code signs in once: it is spent by a compare-and-swap in the store, so of two racing
//!   sign-ins with one code at most one wins. A new set replaces the old one whole.
//! - Attempts are rate-limited per address (IPv6 by /64) and per account before any hash is
//!   computed, whether the username exists or not; every attempt, won or lost, is an audit event.
//! - What a code grants is a short session ([`SESSION_SECS`]) that may only add a passkey to the
//!   account (`ws/dispatch.rs` enforces it); adding one turns it into an ordinary sign-in.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use dashmap::DashMap;
use uuid::Uuid;

use crate::api::Caller;
use crate::error::Error;
use crate::events::Event;
use crate::protocol::{RecoveryCodes, RecoveryStatus};
use crate::ratelimit::TokenBucket;
use crate::state::AppState;
use crate::store::{RecoverySet, StoredCode, UserRecord};

/// Codes in a set.
pub const CODES_PER_SET: usize = 10;
/// How long the session a code grants lasts, in seconds.
pub const SESSION_SECS: u64 = 600;
/// Attempts an account allows per [`WINDOW`] (refilled evenly), and an address.
pub const ATTEMPTS_PER_ACCOUNT: u32 = 5;
pub const ATTEMPTS_PER_ADDRESS: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Past this many tracked accounts or addresses the oldest knowledge is dropped (memory bound).
const MAX_TRACKED: usize = 100_000;

/// Crockford's base32: no I, L, O or U, so codes read back without ambiguity.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ID_CHARS: usize = 4;
const SECRET_CHARS: usize = 12;

/// The per-account and per-address allowances of recovery attempts.
#[derive(Default)]
pub struct Limiter {
    accounts: DashMap<Uuid, TokenBucket>,
    addresses: DashMap<IpAddr, TokenBucket>,
}

impl Limiter {
    /// Takes one attempt from the address's allowance, then from the account's.
    fn allow(&self, user: Option<Uuid>, address: Option<IpAddr>, now: Instant) -> bool {
        let per_sec = |n: u32| f64::from(n) / WINDOW.as_secs_f64();
        if let Some(address) = address.map(crate::admission::address_key) {
            if !take(&self.addresses, address, ATTEMPTS_PER_ADDRESS, per_sec, now) {
                return false;
            }
        }
        match user {
            Some(user) => take(&self.accounts, user, ATTEMPTS_PER_ACCOUNT, per_sec, now),
            None => true,
        }
    }
}

fn take<K: std::hash::Hash + Eq>(
    map: &DashMap<K, TokenBucket>,
    key: K,
    burst: u32,
    per_sec: impl Fn(u32) -> f64,
    now: Instant,
) -> bool {
    if map.len() > MAX_TRACKED {
        map.clear();
    }
    map.entry(key)
        .or_insert_with(|| TokenBucket::new(per_sec(burst), burst, now))
        .try_take(now)
}

fn random_chars(n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("getrandom: {e}")))?;
    // 32 symbols: the low five bits of a uniform byte are uniform.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// A code as people type it, read back: case, spaces and dashes ignored, O read as 0 and I or L
/// as 1. `None` when it cannot be a code.
pub fn parse(code: &str) -> Option<(String, String)> {
    let chars: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    let valid =
        chars.len() == ID_CHARS + SECRET_CHARS && chars.bytes().all(|b| ALPHABET.contains(&b));
    valid.then(|| {
        let (id, secret) = chars.split_at(ID_CHARS);
        (id.to_owned(), secret.to_owned())
    })
}

fn hash(secret: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::internal(format!("getrandom: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

fn verify(phc: &str, secret: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Runs slow hashing off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("hashing task: {e}")))
}

/// A new set: the codes to show, and what the store keeps of them.
fn new_set(created_at: u64) -> Result<(Vec<String>, RecoverySet), Error> {
    let mut shown = Vec::with_capacity(CODES_PER_SET);
    let mut codes = Vec::with_capacity(CODES_PER_SET);
    while codes.len() < CODES_PER_SET {
        let id = random_chars(ID_CHARS)?;
        if codes.iter().any(|c: &StoredCode| c.id == id) {
            continue;
        }
        let secret = random_chars(SECRET_CHARS)?;
        let text = format!("{id}{secret}");
        let groups: Vec<&str> = [0, 4, 8, 12].iter().map(|&i| &text[i..i + 4]).collect();
        shown.push(groups.join("-"));
        codes.push(StoredCode {
            id,
            hash: hash(&secret)?,
        });
    }
    Ok((shown, RecoverySet { created_at, codes }))
}

fn signed_in_user(caller: &Caller) -> Result<Uuid, Error> {
    caller
        .user
        .as_ref()
        .map(|u| u.id)
        .ok_or(Error::Unauthorized("Sign in first."))
}

/// How many codes the caller has left.
pub async fn status(state: &AppState, caller: &Caller) -> Result<RecoveryStatus, Error> {
    let user = signed_in_user(caller)?;
    let set = state.store.recovery_set(&user).await?;
    Ok(RecoveryStatus {
        remaining: set.as_ref().map_or(0, |s| s.codes.len()),
        created_at: set.map(|s| s.created_at),
    })
}

/// Makes a new set of codes for the caller, replacing the old one; answers once it is on disk.
pub async fn create(state: &AppState, caller: &Caller) -> Result<RecoveryCodes, Error> {
    let user = signed_in_user(caller)?;
    let created_at = state.clock.now_ms() / 1000;
    let (codes, set) = blocking(move || new_set(created_at)).await??;
    state.store.put_recovery_set(&user, &set).await?;
    state.store.flush().await?;
    state.events.emit(Event::RecoveryCodesCreated {
        user,
        count: codes.len(),
    });
    Ok(RecoveryCodes { codes, created_at })
}

/// Checks `username` and `code`, spends the code, and returns the account with the codes left.
pub async fn redeem(
    state: &AppState,
    username: &str,
    code: &str,
    address: Option<IpAddr>,
    now: Instant,
) -> Result<(UserRecord, usize), Error> {
    let user = state.store.user_by_name(username).await?;
    let user_id = user.as_ref().map(|u| u.id);
    let failed = |code: Error| {
        state.events.emit(Event::RecoveryFailed {
            user: user_id,
            code: code.code(),
            address,
        });
        Err(code)
    };
    if !state.recovery.allow(user_id, address, now) {
        return failed(Error::RateLimited(
            "Too many recovery attempts; wait a quarter of an hour and try again.",
        ));
    }
    let (Some(user), Some((id, secret))) = (user, parse(code)) else {
        return failed(Error::RecoveryFailed);
    };
    let stored = state
        .store
        .recovery_set(&user.id)
        .await?
        .and_then(|set| set.codes.into_iter().find(|c| c.id == id));
    let Some(stored) = stored else {
        return failed(Error::RecoveryFailed);
    };
    let phc = stored.hash.clone();
    if !blocking(move || verify(&phc, &secret)).await? {
        return failed(Error::RecoveryFailed);
    }
    let Some(remaining) = state
        .store
        .spend_recovery_code(&user.id, &id, &stored.hash)
        .await?
    else {
        return failed(Error::RecoveryFailed);
    };
    state.store.flush().await?;
    state.events.emit(Event::RecoveryCodeUsed {
        user: user.id,
        remaining,
        address,
    });
    Ok((user, remaining))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_four_groups_that_parse_back_however_they_are_typed() {
        let (shown, set) = new_set(7).unwrap();
        assert_eq!(shown.len(), CODES_PER_SET);
        assert_eq!(set.codes.len(), CODES_PER_SET);
        let code = &shown[0];
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.matches('-').count(), 3, "{code}");
        let (id, secret) = parse(code).unwrap();
        assert_eq!(id, set.codes[0].id);
        assert!(verify(&set.codes[0].hash, &secret));
        assert!(!verify(&set.codes[1].hash, &secret));
        let sloppy = format!(" {} ", code.to_lowercase().replace('-', " "));
        assert_eq!(parse(&sloppy), Some((id, secret)));
        assert_eq!(parse("ABCD-EFGH"), None);
        assert_eq!(parse("ABCD-EFGH-JKMN-PQR!"), None);
        // Only the hash is kept, in PHC form.
        assert!(set.codes[0].hash.starts_with("$argon2id$"));
        assert!(!set.codes[0].hash.contains(&parse(code).unwrap().1));
    }

    #[test]
    fn attempts_are_limited_per_address_and_per_account() {
        let limiter = Limiter::default();
        let now = Instant::now();
        let alice = Some(Uuid::new_v4());
        let here: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        for _ in 0..ATTEMPTS_PER_ACCOUNT {
            assert!(limiter.allow(alice, here, now));
        }
        assert!(
            !limiter.allow(alice, here, now),
            "the account's allowance is spent"
        );
        let elsewhere: Option<IpAddr> = Some("198.51.100.1".parse().unwrap());
        assert!(!limiter.allow(alice, elsewhere, now), "from anywhere");
        let bob = Some(Uuid::new_v4());
        let v6: Option<IpAddr> = Some("2001:db8::1".parse().unwrap());
        let same_64: Option<IpAddr> = Some("2001:db8::2".parse().unwrap());
        let mut allowed = 0;
        for i in 0..ATTEMPTS_PER_ADDRESS + 5 {
            let who = if i % 2 == 0 {
                None
            } else {
                bob.filter(|_| i < 8)
            };
            let from = if i % 2 == 0 { v6 } else { same_64 };
            allowed += u32::from(limiter.allow(who, from, now));
        }
        assert_eq!(allowed, ATTEMPTS_PER_ADDRESS, "one /64, one allowance");
        let later = now + WINDOW;
        assert!(
            limiter.allow(alice, here, later),
            "refilled after the window"
        );
    }
}
