//! The token itself: 32 CSPRNG bytes shown once as 64 upper-case hex digits, and its SHA-256,
//! which is all the server keeps.

use std::fmt;

use serde::Serialize;

use crate::error::Error;

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

pub(super) fn new_token() -> Result<(IssuedToken, TokenHash), Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::internal(format!("no randomness for a token: {e}")))?;
    let hash = hash_token(&bytes);
    Ok((IssuedToken(encode_hex_upper(&bytes)), hash))
}

/// SHA-256 of a token's bytes. Every lookup pays this: OpenSSL 3's one-shot `SHA256()` fetches
/// the algorithm on each call (about 0.4 µs here), the incremental context does not (0.08 µs).
pub(super) fn hash_token(bytes: &[u8; 32]) -> TokenHash {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(bytes);
    hasher.finish()
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
pub(super) fn decode_hex_32(s: &str) -> Option<[u8; 32]> {
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
