//! Authenticator data of an assertion (WebAuthn L3 §6.1), read without copying:
//! `rpIdHash (32) ‖ flags (1) ‖ signCount (4, big-endian) ‖ extensions (CBOR map, if ED)`.
//!
//! Stricter than webauthn-rs on purpose, so nothing unsigned-for can ride along: the bytes must
//! end where the flags say they end (no trailing bytes, with or without extensions), and the AT
//! flag (attested credential data) is refused, since an assertion never carries it
//! (authenticatorGetAssertion, §6.3.3, builds its authData without attestedCredentialData).
//! Extensions, when present, must be one well-formed CBOR map with text keys; their values are
//! not interpreted.

use super::Rejection;

/// Flag bits (§6.1).
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
pub const AT: u8 = 0x40;
pub const ED: u8 = 0x80;

/// How deep CBOR may nest inside the extensions (webauthn-rs's CBOR decoder stops at 128 too).
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthData<'a> {
    pub rp_id_hash: &'a [u8; 32],
    pub flags: u8,
    pub counter: u32,
}

impl AuthData<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Reads `bytes` as assertion authenticator data.
pub fn parse(bytes: &[u8]) -> Result<AuthData<'_>, Rejection> {
    const MALFORMED: Rejection = Rejection::AuthDataMalformed;
    let (rp_id_hash, rest) = bytes.split_first_chunk::<32>().ok_or(MALFORMED)?;
    let (&flags, rest) = rest.split_first().ok_or(MALFORMED)?;
    let (counter, rest) = rest.split_first_chunk::<4>().ok_or(MALFORMED)?;
    if flags & AT != 0 {
        return Err(Rejection::AttestedDataInAssertion);
    }
    let rest = if flags & ED != 0 {
        extensions_map(rest).ok_or(Rejection::ExtensionsMalformed)?
    } else {
        rest
    };
    if !rest.is_empty() {
        return Err(Rejection::TrailingAuthData);
    }
    Ok(AuthData {
        rp_id_hash,
        flags,
        counter: u32::from_be_bytes(*counter),
    })
}

/// Skips one CBOR map with text-string keys at the start of `bytes`; returns what follows.
fn extensions_map(bytes: &[u8]) -> Option<&[u8]> {
    let mut reader = Cbor { bytes, pos: 0 };
    let (major, len) = reader.head()?;
    if major != 5 {
        return None;
    }
    reader.entries(len, 1, |r, depth| {
        let (key_major, key_len) = r.head()?;
        if key_major != 3 {
            return None;
        }
        r.string_body(3, key_len)?;
        r.item(depth)
    })?;
    Some(&bytes[reader.pos..])
}

/// A definite length, or `None` for an indefinite-length item (additional information 31).
type Length = Option<u64>;

struct Cbor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cbor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// An item's head: major type and argument. For major type 7 the argument is the raw
    /// additional information (or the simple value), never indefinite.
    fn head(&mut self) -> Option<(u8, Length)> {
        let initial = *self.take(1)?.first()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let argument = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
            27 => u64::from_be_bytes(self.take(8)?.try_into().ok()?),
            31 if matches!(major, 2..=5) => return Some((major, None)),
            _ => return None, // 28–30 are reserved; 31 is not allowed for major 0, 1, 6, 7
        };
        if major == 7 && info == 24 && argument < 32 {
            return None; // two-byte simple values below 32 are not well-formed
        }
        Some((major, Some(argument)))
    }

    /// Skips one complete item.
    fn item(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (major, len) = self.head()?;
        match major {
            0 | 1 | 7 => Some(()),
            2 | 3 => self.string_body(major, len),
            4 => self.entries(len, depth + 1, |r, d| r.item(d)),
            5 => self.entries(len, depth + 1, |r, d| {
                r.item(d)?;
                r.item(d)
            }),
            6 => self.item(depth + 1),
            _ => None,
        }
    }

    /// The body of a byte (2) or text (3) string; indefinite ones are chunks of the same
    /// major type. Text must be UTF-8.
    fn string_body(&mut self, major: u8, len: Length) -> Option<()> {
        match len {
            Some(n) => {
                let chunk = self.take(usize::try_from(n).ok()?)?;
                (major != 3 || std::str::from_utf8(chunk).is_ok()).then_some(())
            }
            None => loop {
                if self.peek()? == 0xff {
                    self.pos += 1;
                    return Some(());
                }
                match self.head()? {
                    (m, Some(n)) if m == major => self.string_body(major, Some(n))?,
                    _ => return None,
                }
            },
        }
    }

    /// `len` entries (array items or map pairs), each read by `entry`; indefinite ones end
    /// at a break byte.
    fn entries(
        &mut self,
        len: Length,
        depth: usize,
        mut entry: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        match len {
            Some(n) => (0..n).try_for_each(|_| entry(self, depth)),
            None => loop {
                if self.peek()? == 0xff {
                    self.pos += 1;
                    return Some(());
                }
                entry(self, depth)?;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_data(flags: u8, tail: &[u8]) -> Vec<u8> {
        [&[7u8; 32][..], &[flags, 0, 0, 1, 2], tail].concat()
    }

    #[test]
    fn the_fixed_part_is_read_in_place() {
        let bytes = auth_data(UP | UV | BE, &[]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.rp_id_hash, &[7u8; 32]);
        assert_eq!(parsed.counter, 0x0102);
        assert!(parsed.has(UP) && parsed.has(UV) && parsed.has(BE) && !parsed.has(BS));
        for len in 0..37 {
            assert_eq!(parse(&bytes[..len]), Err(Rejection::AuthDataMalformed));
        }
    }

    #[test]
    fn trailing_bytes_are_refused_with_or_without_extensions() {
        assert_eq!(
            parse(&auth_data(UP, &[0])),
            Err(Rejection::TrailingAuthData)
        );
        // {"uvm": []} then one byte too many.
        let ext = [0xa1, 0x63, b'u', b'v', b'm', 0x80];
        assert!(parse(&auth_data(UP | ED, &ext)).is_ok());
        assert_eq!(
            parse(&auth_data(UP | ED, &[&ext[..], &[0]].concat())),
            Err(Rejection::TrailingAuthData)
        );
    }

    #[test]
    fn attested_credential_data_is_refused_in_an_assertion() {
        assert_eq!(
            parse(&auth_data(UP | AT, &[0; 20])),
            Err(Rejection::AttestedDataInAssertion)
        );
    }

    #[test]
    fn extensions_must_be_one_well_formed_map_with_text_keys() {
        let ok: &[&[u8]] = &[
            &[0xa0],                                           // {}
            &[0xbf, 0xff],                                     // {_ }
            &[0xa1, 0x61, b'a', 0xc1, 0x1a, 0, 0, 0, 1],       // {"a": 1(1)}
            &[0xa1, 0x7f, 0x61, b'a', 0xff, 0x9f, 0x01, 0xff], // {(_ "a"): [_ 1]}
            &[0xa1, 0x61, b'a', 0xf9, 0x3c, 0x00],             // {"a": 1.0 (half)}
            &[0xa1, 0x61, b'a', 0xf8, 0x20],                   // {"a": simple(32)}
        ];
        for ext in ok {
            assert!(parse(&auth_data(UP | ED, ext)).is_ok(), "{ext:02x?}");
        }
        let bad: &[&[u8]] = &[
            &[],                                         // ED set, nothing there
            &[0x80],                                     // an array, not a map
            &[0xa1, 0x01, 0x02],                         // integer key
            &[0xa1, 0x61, b'a'],                         // value missing
            &[0xa1, 0x61, 0xff, 0x01],                   // key not UTF-8
            &[0xbf, 0x61, b'a', 0x01],                   // indefinite map without its break
            &[0xa1, 0x61, b'a', 0x1c],                   // reserved additional information
            &[0xa1, 0x61, b'a', 0xf8, 0x10],             // two-byte simple value below 32
            &[0xa1, 0x61, b'a', 0x5f, 0x61, b'x', 0xff], // text chunk in a byte string
            &[0xa1, 0x61, b'a', 0x1f],                   // indefinite integer
            &[
                0xa1, 0x61, b'a', 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ], // huge
        ];
        for ext in bad {
            assert_eq!(
                parse(&auth_data(UP | ED, ext)),
                Err(Rejection::ExtensionsMalformed),
                "{ext:02x?}"
            );
        }
        let deep = [&[0xa1, 0x61, b'a'][..], &[0x81; 200], &[0x00]].concat();
        assert_eq!(
            parse(&auth_data(UP | ED, &deep)),
            Err(Rejection::ExtensionsMalformed)
        );
    }
}
