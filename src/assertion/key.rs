//! A passkey's public key in the form sign-in verifies with, and the signature check itself
//! (WebAuthn L3 §7.2 step 21), through OpenSSL.
//!
//! [`PublicKey`] is decoded once from the passkey's COSE key, at registration, and stored beside
//! it (`CredentialRecord::public_key`); records from before that field are derived from their
//! COSE key on read ([`PublicKey::from_passkey`]). At sign-in it becomes an OpenSSL key in a few
//! hundred nanoseconds ([`Curves`] holds the EC groups, which cost far more to build).
//!
//! Accepted: ES256 (P-256), ES384 (P-384), RS256 (PKCS #1 v1.5, SHA-256) and EdDSA (Ed25519).
//! ECDSA signatures must be strict ASN.1 DER, as WebAuthn specifies; anything else is refused
//! before OpenSSL sees it.

use std::fmt;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use openssl::sha::{Sha256, Sha384};
use openssl::sign::Verifier;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{COSEAlgorithm, COSEKey, COSEKeyType, ECDSACurve, EDDSACurve, Passkey};

/// A signature algorithm sign-in accepts, stored as its COSE identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum Algorithm {
    Es256,
    Es384,
    Rs256,
    EdDsa,
}

impl From<Algorithm> for i64 {
    fn from(alg: Algorithm) -> i64 {
        match alg {
            Algorithm::Es256 => -7,
            Algorithm::Es384 => -35,
            Algorithm::Rs256 => -257,
            Algorithm::EdDsa => -8,
        }
    }
}

impl TryFrom<i64> for Algorithm {
    type Error = String;
    fn try_from(id: i64) -> Result<Algorithm, String> {
        match id {
            -7 => Ok(Algorithm::Es256),
            -35 => Ok(Algorithm::Es384),
            -257 => Ok(Algorithm::Rs256),
            -8 => Ok(Algorithm::EdDsa),
            other => Err(format!("unsupported COSE algorithm {other}")),
        }
    }
}

/// A public key ready to verify with: the algorithm and the key's raw bytes, which are the
/// SEC1 uncompressed point (`04 ‖ x ‖ y`) for ES256 and ES384, the PKCS #1 `RSAPublicKey` DER
/// for RS256, and the 32-byte key for Ed25519.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub alg: Algorithm,
    #[serde(with = "b64url")]
    pub key: Vec<u8>,
}

// Not secret, but long and useless in a log line.
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?}, {} bytes)", self.alg, self.key.len())
    }
}

/// Why a COSE key cannot become a [`PublicKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key's algorithm or curve is not one sign-in accepts")]
    Unsupported,
    #[error("the key's bytes do not make a valid key")]
    Invalid,
}

impl From<ErrorStack> for KeyError {
    fn from(_: ErrorStack) -> KeyError {
        KeyError::Invalid
    }
}

impl PublicKey {
    /// The key of a registered passkey.
    pub fn from_passkey(passkey: &Passkey) -> Result<PublicKey, KeyError> {
        PublicKey::from_cose(passkey.get_public_key())
    }

    /// Converts webauthn-rs's parsed COSE key; the algorithm must match the key type and curve.
    pub fn from_cose(cose: &COSEKey) -> Result<PublicKey, KeyError> {
        let ec_point = |x: &[u8], y: &[u8], len: usize| {
            if x.len() != len || y.len() != len {
                return Err(KeyError::Invalid);
            }
            Ok([&[0x04][..], x, y].concat())
        };
        let (alg, key) = match (&cose.type_, &cose.key) {
            (COSEAlgorithm::ES256, COSEKeyType::EC_EC2(ec))
                if ec.curve == ECDSACurve::SECP256R1 =>
            {
                (Algorithm::Es256, ec_point(&ec.x, &ec.y, 32)?)
            }
            (COSEAlgorithm::ES384, COSEKeyType::EC_EC2(ec))
                if ec.curve == ECDSACurve::SECP384R1 =>
            {
                (Algorithm::Es384, ec_point(&ec.x, &ec.y, 48)?)
            }
            (COSEAlgorithm::RS256, COSEKeyType::RSA(rsa)) => {
                let n = BigNum::from_slice(&rsa.n)?;
                let e = BigNum::from_slice(&rsa.e)?;
                let der = Rsa::from_public_components(n, e)?.public_key_to_der_pkcs1()?;
                (Algorithm::Rs256, der)
            }
            (COSEAlgorithm::EDDSA, COSEKeyType::EC_OKP(okp))
                if okp.curve == EDDSACurve::ED25519 =>
            {
                if okp.x.len() != 32 {
                    return Err(KeyError::Invalid);
                }
                (Algorithm::EdDsa, okp.x.clone())
            }
            _ => return Err(KeyError::Unsupported),
        };
        Ok(PublicKey { alg, key })
    }
}

/// The EC groups, built once: `EC_GROUP_new_by_curve_name` costs several times what turning a
/// point into a key does.
pub struct Curves {
    p256: EcGroup,
    p384: EcGroup,
}

impl Curves {
    pub fn new() -> Result<Curves, ErrorStack> {
        Ok(Curves {
            p256: EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?,
            p384: EcGroup::from_curve_name(Nid::SECP384R1)?,
        })
    }

    /// Checks that `key` makes a usable OpenSSL key (the point is on its curve, the RSA key
    /// parses, and so on): registration refuses a passkey that sign-in could not verify.
    pub fn check(&self, key: &PublicKey) -> Result<(), KeyError> {
        self.verifying_key(key).map(|_| ())
    }

    fn verifying_key(&self, key: &PublicKey) -> Result<VerifyingKey, KeyError> {
        let ec = |group: &EcGroup| -> Result<EcKey<Public>, KeyError> {
            let mut ctx = BigNumContext::new()?;
            let point = EcPoint::from_bytes(group, &key.key, &mut ctx)?;
            Ok(EcKey::from_public_key(group, &point)?)
        };
        Ok(match key.alg {
            Algorithm::Es256 => VerifyingKey::Es256(ec(&self.p256)?),
            Algorithm::Es384 => VerifyingKey::Es384(ec(&self.p384)?),
            Algorithm::Rs256 => {
                VerifyingKey::Rs256(PKey::from_rsa(Rsa::public_key_from_der_pkcs1(&key.key)?)?)
            }
            Algorithm::EdDsa => {
                VerifyingKey::EdDsa(PKey::public_key_from_raw_bytes(&key.key, Id::ED25519)?)
            }
        })
    }

    /// Whether `signature` is `key`'s valid signature of `auth_data ‖ client_data_hash`.
    /// Errors (a key that does not parse) count as invalid.
    pub fn verify(
        &self,
        key: &PublicKey,
        auth_data: &[u8],
        client_data_hash: &[u8; 32],
        signature: &[u8],
    ) -> Result<bool, KeyError> {
        let key = self.verifying_key(key)?;
        let valid = key.verify(auth_data, client_data_hash, signature);
        // A failed check may leave entries on OpenSSL's per-thread error queue; drop them so
        // they cannot be blamed on a later, unrelated call.
        let _ = ErrorStack::get();
        Ok(valid.unwrap_or(false))
    }
}

enum VerifyingKey {
    Es256(EcKey<Public>),
    Es384(EcKey<Public>),
    Rs256(PKey<Public>),
    EdDsa(PKey<Public>),
}

impl VerifyingKey {
    fn verify(
        &self,
        auth_data: &[u8],
        client_data_hash: &[u8; 32],
        signature: &[u8],
    ) -> Result<bool, ErrorStack> {
        match self {
            VerifyingKey::Es256(key) => {
                let Some(sig) = ecdsa_signature(signature, 32)? else {
                    return Ok(false);
                };
                let mut hasher = Sha256::new();
                hasher.update(auth_data);
                hasher.update(client_data_hash);
                sig.verify(&hasher.finish(), key)
            }
            VerifyingKey::Es384(key) => {
                let Some(sig) = ecdsa_signature(signature, 48)? else {
                    return Ok(false);
                };
                let mut hasher = Sha384::new();
                hasher.update(auth_data);
                hasher.update(client_data_hash);
                sig.verify(&hasher.finish(), key)
            }
            VerifyingKey::Rs256(key) => {
                let mut verifier = Verifier::new(MessageDigest::sha256(), key)?;
                verifier.update(auth_data)?;
                verifier.update(client_data_hash)?;
                verifier.verify(signature)
            }
            VerifyingKey::EdDsa(key) => {
                let message = [auth_data, &client_data_hash[..]].concat();
                Verifier::new_without_digest(key)?.verify_oneshot(signature, &message)
            }
        }
    }
}

/// An ECDSA signature from strict DER (`SEQUENCE { INTEGER r, INTEGER s }`, minimal lengths and
/// integers, nothing after it), or `None`. Integers longer than the curve's scalars are refused
/// here; zero or too large ones are refused by the verification.
fn ecdsa_signature(der: &[u8], scalar_len: usize) -> Result<Option<EcdsaSig>, ErrorStack> {
    let Some((r, s)) = der_sequence(der).and_then(|body| {
        let (r, rest) = der_unsigned(body, scalar_len)?;
        let (s, rest) = der_unsigned(rest, scalar_len)?;
        rest.is_empty().then_some((r, s))
    }) else {
        return Ok(None);
    };
    let sig = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
    Ok(Some(sig))
}

/// The contents of a DER SEQUENCE that spans all of `der`.
fn der_sequence(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    let (body, rest) = der_length(rest)?;
    (tag == 0x30 && rest.is_empty()).then_some(body)
}

/// A DER length and the `len` bytes it announces: `(contents, after)`.
fn der_length(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        // One length byte: only for lengths the short form cannot hold.
        0x81 => {
            let (&len, rest) = rest.split_first()?;
            (len >= 0x80).then_some((usize::from(len), rest))?
        }
        // Signatures of our curves are never longer; longer forms are refused.
        _ => return None,
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A DER INTEGER that is non-negative and minimally encoded, as big-endian magnitude bytes of at
/// most `max_len`: `(magnitude, after)`.
fn der_unsigned(bytes: &[u8], max_len: usize) -> Option<(&[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (value, rest) = der_length(rest)?;
    if tag != 0x02 || value.is_empty() || value[0] & 0x80 != 0 {
        return None;
    }
    // A leading zero byte is only allowed (and required) before a byte with its top bit set.
    let magnitude = match value {
        [0, next, ..] if next & 0x80 == 0 => return None,
        [0, tail @ ..] if !tail.is_empty() => tail,
        _ => value,
    };
    (magnitude.len() <= max_len).then_some((magnitude, rest))
}

/// Unpadded base64url for the key bytes in JSON.
mod b64url {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_must_be_strict_der() {
        let good = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07];
        assert!(der_sequence(&good).is_some());
        let (r, rest) = der_unsigned(&good[2..], 32).unwrap();
        assert_eq!(
            (r, der_unsigned(rest, 32).unwrap().0),
            (&[5u8][..], &[7u8][..])
        );
        // A needed leading zero is stripped; an unneeded one, a negative value, a long-form
        // length for a short length, trailing bytes and oversized integers are refused.
        assert_eq!(
            der_unsigned(&[0x02, 0x02, 0x00, 0x80], 32).unwrap().0,
            &[0x80u8][..]
        );
        assert!(der_unsigned(&[0x02, 0x02, 0x00, 0x7f], 32).is_none());
        assert!(der_unsigned(&[0x02, 0x01, 0x80], 32).is_none());
        assert!(der_unsigned(&[0x02, 0x00], 32).is_none());
        assert!(der_sequence(&[0x30, 0x81, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07]).is_none());
        assert!(der_sequence(&[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07, 0x00]).is_none());
        assert!(der_unsigned(&[&[0x02, 33, 0x01][..], &[0; 32]].concat(), 32).is_none());
        assert!(ecdsa_signature(&[0x30, 0x03, 0x02, 0x01, 0x05], 32)
            .unwrap()
            .is_none());
    }

    #[test]
    fn public_keys_round_trip_as_json_with_their_cose_algorithm() {
        let key = PublicKey {
            alg: Algorithm::Es384,
            key: vec![4, 1, 2],
        };
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, r#"{"alg":-35,"key":"BAEC"}"#);
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<PublicKey>(r#"{"alg":-36,"key":"BAEC"}"#).is_err());
        assert_eq!(format!("{key:?}"), "PublicKey(Es384, 3 bytes)");
    }
}
