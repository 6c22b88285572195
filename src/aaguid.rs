//! Authenticator models by AAGUID, so people can tell their passkeys apart ("iCloud Keychain",
//! "Google Password Manager"), and reading the AAGUID out of a registration.
//!
//! The AAGUID sits in the attested credential data of the registration's authenticator data
//! (bytes 37..53). webauthn-rs verifies the attestation object but does not keep the AAGUID, so
//! it is read here, after verification, with a minimal CBOR walk.

use uuid::Uuid;

/// Well-known passkey providers (from the community-maintained passkey AAGUID list).
const KNOWN: &[(&str, &str)] = &[
    (
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
        "Google Password Manager",
    ),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("b5397666-4885-aa6b-cebf-e52262a439a2", "Chromium Browser"),
    ("771b48fd-d3d4-4f74-9232-fc157ab0507a", "Edge on Mac"),
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    (
        "dd4ec289-e01d-41c9-bb89-70fa845d4bf2",
        "iCloud Keychain (Managed)",
    ),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("53414d53-554e-4700-0000-000000000000", "Samsung Pass"),
    ("531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"),
    ("b84e4048-15dc-4dd0-8640-f4f60813c8af", "NordPass"),
    ("0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6", "Keeper"),
];

/// The authenticator model named by `aaguid`, if known. The all-zero AAGUID names nothing.
pub fn authenticator_name(aaguid: &Uuid) -> Option<&'static str> {
    if aaguid.is_nil() {
        return None;
    }
    KNOWN
        .iter()
        .find(|(id, _)| Uuid::parse_str(id).is_ok_and(|known| known == *aaguid))
        .map(|(_, name)| *name)
}

/// Reads the AAGUID from an attestation object (CBOR map with an `authData` byte string).
/// `None` when it is absent or the object is not what a verified registration carries.
pub fn from_attestation_object(cbor: &[u8]) -> Option<Uuid> {
    let auth_data = auth_data_of(cbor)?;
    // rpIdHash (32) | flags (1) | signCount (4) | AAGUID (16) | …; the AT flag (0x40) says the
    // attested credential data is present.
    let flags = *auth_data.get(32)?;
    if flags & 0x40 == 0 {
        return None;
    }
    Uuid::from_slice(auth_data.get(37..53)?).ok()
}

/// The longest credential id WebAuthn allows (L3 §6.5.1: "at most 1023 bytes").
pub const MAX_CREDENTIAL_ID: usize = 1023;

/// Checks the shape of a registration's authenticator data that webauthn-rs does not: the
/// attested credential data is present, the credential id is 1 to 1023 bytes, and the data ends
/// where the COSE key (and, with ED set, the extensions map) ends: no trailing bytes.
pub fn check_registration_shape(cbor: &[u8]) -> Result<(), &'static str> {
    const MALFORMED: &str = "the authenticator data is malformed";
    let auth_data = auth_data_of(cbor).ok_or(MALFORMED)?;
    let flags = *auth_data.get(32).ok_or(MALFORMED)?;
    if flags & 0x40 == 0 {
        return Err("the authenticator data carries no attested credential");
    }
    let id_len = auth_data.get(53..55).ok_or(MALFORMED)?;
    let id_len = usize::from(u16::from_be_bytes([id_len[0], id_len[1]]));
    if id_len == 0 {
        return Err("the credential id is empty");
    }
    if id_len > MAX_CREDENTIAL_ID {
        return Err("the credential id is longer than 1023 bytes");
    }
    let mut r = Reader {
        buf: auth_data,
        pos: 55 + id_len,
    };
    // The credential public key, then the extensions map when ED (0x80) says there is one.
    r.skip().ok_or(MALFORMED)?;
    if flags & 0x80 != 0 {
        let start = r.pos;
        let (major, _) = r.head().ok_or(MALFORMED)?;
        r.pos = start;
        if major != 5 {
            return Err(MALFORMED);
        }
        r.skip().ok_or(MALFORMED)?;
    }
    if r.pos != auth_data.len() {
        return Err("the authenticator data has bytes after its last member");
    }
    Ok(())
}

/// Finds the `authData` value of the top-level map.
fn auth_data_of(cbor: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { buf: cbor, pos: 0 };
    let (major, entries) = r.head()?;
    if major != 5 {
        return None;
    }
    for _ in 0..entries {
        let key = r.item_text()?;
        if key == Some("authData") {
            let (major, len) = r.head()?;
            return (major == 2).then(|| r.take(len)).flatten();
        }
        r.skip()?;
    }
    None
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, len: u64) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(usize::try_from(len).ok()?)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// A data item's major type and argument (definite lengths only, as CTAP2 requires).
    fn head(&mut self) -> Option<(u8, u64)> {
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
            27 => u64::from_be_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        };
        Some((major, arg))
    }

    /// A map key: `Some(text)` for a text string, `None` for any other (skipped) item.
    fn item_text(&mut self) -> Option<Option<&'a str>> {
        let start = self.pos;
        let (major, len) = self.head()?;
        if major == 3 {
            return Some(std::str::from_utf8(self.take(len)?).ok());
        }
        self.pos = start;
        self.skip()?;
        Some(None)
    }

    /// Skips one data item, nested ones included (depth-limited).
    fn skip(&mut self) -> Option<()> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: u8) -> Option<()> {
        if depth > 16 {
            return None;
        }
        let (major, arg) = self.head()?;
        match major {
            0 | 1 | 7 => {}
            2 | 3 => {
                self.take(arg)?;
            }
            4 => {
                for _ in 0..arg {
                    self.skip_depth(depth + 1)?;
                }
            }
            5 => {
                for _ in 0..arg.checked_mul(2)? {
                    self.skip_depth(depth + 1)?;
                }
            }
            6 => self.skip_depth(depth + 1)?,
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::softkey::{decode_b64url, SoftAuthenticator};
    use serde_json::json;

    #[test]
    fn known_aaguids_have_names_and_zero_has_none() {
        let icloud = Uuid::parse_str("fbfc3007-154e-4ecc-8c0b-6e020557d7bd").unwrap();
        assert_eq!(authenticator_name(&icloud), Some("iCloud Keychain"));
        assert_eq!(authenticator_name(&Uuid::nil()), None);
        assert_eq!(authenticator_name(&Uuid::new_v4()), None);
    }

    #[test]
    fn the_aaguid_is_read_from_a_real_attestation_object() {
        let mut key = SoftAuthenticator::new();
        let options = json!({
            "rp": {"id": "localhost", "name": "x"},
            "user": {"id": "AAAA", "name": "a", "displayName": "a"},
            "challenge": "AAAA",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        });
        let cred = key.register(&options, "http://localhost:8080").unwrap();
        let att = decode_b64url(cred["response"]["attestationObject"].as_str().unwrap()).unwrap();
        assert_eq!(from_attestation_object(&att), Some(Uuid::nil()));
        assert_eq!(from_attestation_object(&att[..10]), None);
        assert_eq!(from_attestation_object(b"\xa0"), None);
        assert_eq!(from_attestation_object(&[]), None);
    }
}
