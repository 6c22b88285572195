//! A passkey's public key in the form sign-in verifies with, and the signature check itself
//! (WebAuthn L3 §7.2 steps 20–21), through ring.
//!
//! [`PublicKey`] is decoded once from the passkey's COSE key, at registration, checked with
//! OpenSSL ([`PublicKey::check`]) and stored beside it (`CredentialRecord::public_key`);
//! records from before that field derive it from their COSE key on read
//! ([`PublicKey::from_passkey`]). Its bytes are what ring takes as they are, so a sign-in
//! builds no key object: ring reads the point or modulus in place as it verifies.
//!
//! Accepted: ES256 (P-256), ES384 (P-384), RS256 (PKCS #1 v1.5, SHA-256, 1,024 to 8,192-bit
//! moduli) and EdDSA (Ed25519). Why ring and not OpenSSL, already a dependency: its P-256
//! check takes 34 µs here against OpenSSL 3.0's 38.4 (docs/benchmarks.md).

use std::fmt;
use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcGroupRef, EcPoint};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use ring::signature;
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

    /// Registration's check that the key is usable (the point is on its curve, the RSA key
    /// parses and its modulus is 1,024 to 8,192 bits, the Ed25519 key is 32 bytes), so a
    /// passkey sign-in could not verify is refused once, at registration.
    ///
    /// For the two curves the point check is the whole of what `EC_KEY_check_key` asks of a
    /// public key but one part: that `n·Q` is the point at infinity. P-256 and P-384 have
    /// cofactor 1, so every point on them but infinity has order `n` and that scalar
    /// multiplication (14 % of a registration's server CPU and 69 % of its instructions when it
    /// ran, docs/benchmarks.md) proves nothing more (SEC 1 v2 §3.2.2.1 needs it only for
    /// `h > 1`); the test below holds the two checks equal.
    pub fn check(&self) -> Result<(), KeyError> {
        let ec = |group: &EcGroupRef| -> Result<(), KeyError> {
            let mut ctx = BigNumContext::new()?;
            // Decoding an uncompressed point already refuses one off the curve; asked again
            // here so the check does not rest on that.
            let point = EcPoint::from_bytes(group, &self.key, &mut ctx)?;
            if point.is_infinity(group) || !point.is_on_curve(group, &mut ctx)? {
                return Err(KeyError::Invalid);
            }
            Ok(())
        };
        match self.alg {
            Algorithm::Es256 => ec(curve(&P256, Nid::X9_62_PRIME256V1)?),
            Algorithm::Es384 => ec(curve(&P384, Nid::SECP384R1)?),
            Algorithm::Rs256 => {
                let bits = Rsa::public_key_from_der_pkcs1(&self.key)?.n().num_bits();
                (1024..=8192)
                    .contains(&bits)
                    .then_some(())
                    .ok_or(KeyError::Unsupported)
            }
            Algorithm::EdDsa => PKey::public_key_from_raw_bytes(&self.key, Id::ED25519)
                .map(|_| ())
                .map_err(|_| KeyError::Invalid),
        }
    }

    /// Whether `signature` is this key's valid signature of `auth_data ‖ client_data_hash`
    /// (§7.2 steps 20–21). ring parses the key and the signature strictly (ECDSA as minimal
    /// ASN.1 DER, nothing after it; RSA exactly the modulus' length) and refuses what does not
    /// parse, the same as a signature that does not verify.
    pub fn verify(&self, auth_data: &[u8], client_data_hash: &[u8; 32], signature: &[u8]) -> bool {
        let algorithm: &'static dyn signature::VerificationAlgorithm = match self.alg {
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_ASN1,
            Algorithm::Es384 => &signature::ECDSA_P384_SHA384_ASN1,
            Algorithm::Rs256 => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            Algorithm::EdDsa => &signature::ED25519,
        };
        // The message is at most a few hundred bytes: one small copy, hashed inside ring.
        let message = [auth_data, &client_data_hash[..]].concat();
        signature::UnparsedPublicKey::new(algorithm, &self.key)
            .verify(&message, signature)
            .is_ok()
    }
}

/// The curves' groups, built once: OpenSSL takes ~12 µs to build one from its name.
static P256: OnceLock<EcGroup> = OnceLock::new();
static P384: OnceLock<EcGroup> = OnceLock::new();

fn curve(cell: &'static OnceLock<EcGroup>, nid: Nid) -> Result<&'static EcGroupRef, KeyError> {
    if let Some(group) = cell.get() {
        return Ok(group);
    }
    let group = EcGroup::from_curve_name(nid)?;
    Ok(cell.get_or_init(|| group))
}

mod b64url {
    //! Unpadded base64url for the key bytes in JSON.
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

    /// The whole of OpenSSL's public-key check, which registration ran before.
    fn openssl_check_key(key: &PublicKey, nid: Nid) -> bool {
        let group = EcGroup::from_curve_name(nid).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        EcPoint::from_bytes(&group, &key.key, &mut ctx)
            .and_then(|point| openssl::ec::EcKey::from_public_key(&group, &point))
            .and_then(|ec| ec.check_key())
            .is_ok()
    }

    #[test]
    fn the_point_check_decides_as_openssls_whole_key_check() {
        for (alg, nid, len) in [
            (Algorithm::Es256, Nid::X9_62_PRIME256V1, 32),
            (Algorithm::Es384, Nid::SECP384R1, 48),
        ] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            let mut ctx = BigNumContext::new().unwrap();
            let ec = openssl::ec::EcKey::generate(&group).unwrap();
            let valid = ec
                .public_key()
                .to_bytes(
                    &group,
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )
                .unwrap();
            let mut candidates = vec![valid.clone(), vec![0], vec![4], valid[..len].to_vec()];
            // Every single-bit change of x or y: off the curve (or, rarely, not a point).
            for i in 1..valid.len() {
                for bit in [0x01u8, 0x80] {
                    let mut bad = valid.clone();
                    bad[i] ^= bit;
                    candidates.push(bad);
                }
            }
            let mut compressed_prefix = valid.clone();
            compressed_prefix[0] = 2;
            candidates.push(compressed_prefix);
            for bytes in candidates {
                let key = PublicKey { alg, key: bytes };
                assert_eq!(
                    key.check().is_ok(),
                    openssl_check_key(&key, nid),
                    "{alg:?} {:02x?}",
                    key.key
                );
            }
            assert!(PublicKey { alg, key: valid }.check().is_ok());
        }
    }
}
