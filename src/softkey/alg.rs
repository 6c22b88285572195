//! The key types the software authenticator can hold: ES256 (its default), ES384, RS256 and
//! EdDSA (Ed25519). Each yields its public half as a COSE_Key and signs an assertion's message
//! (`authenticatorData ‖ SHA-256(clientDataJSON)`) as WebAuthn encodes that algorithm's
//! signatures: ECDSA as ASN.1 DER, RSA as PKCS #1 v1.5 with SHA-256, Ed25519 as its 64 raw bytes.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sha::{Sha256, Sha384};
use openssl::sign::Signer;

use super::{cbor_bytes, SoftKeyError};

/// A signature algorithm, by its COSE name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys here).
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Rs256,
        Algorithm::EdDsa,
    ];

    /// The COSE algorithm identifier (`pubKeyCredParams[].alg`).
    pub fn cose_id(self) -> i64 {
        match self {
            Algorithm::Es256 => -7,
            Algorithm::Es384 => -35,
            Algorithm::Rs256 => -257,
            Algorithm::EdDsa => -8,
        }
    }
}

/// A private key of one of the [`Algorithm`]s. Clones share the key (a reference count).
#[derive(Clone)]
pub(super) enum KeyPair {
    Es256(EcKey<Private>),
    Es384(EcKey<Private>),
    Rs256(PKey<Private>),
    EdDsa(PKey<Private>),
}

impl KeyPair {
    pub(super) fn generate(alg: Algorithm) -> Result<KeyPair, SoftKeyError> {
        let ec = |nid| -> Result<EcKey<Private>, SoftKeyError> {
            let group = EcGroup::from_curve_name(nid)?;
            Ok(EcKey::generate(&group)?)
        };
        Ok(match alg {
            Algorithm::Es256 => KeyPair::Es256(ec(Nid::X9_62_PRIME256V1)?),
            Algorithm::Es384 => KeyPair::Es384(ec(Nid::SECP384R1)?),
            Algorithm::Rs256 => KeyPair::Rs256(PKey::from_rsa(Rsa::generate(2048)?)?),
            Algorithm::EdDsa => KeyPair::EdDsa(PKey::generate_ed25519()?),
        })
    }

    pub(super) fn algorithm(&self) -> Algorithm {
        match self {
            KeyPair::Es256(_) => Algorithm::Es256,
            KeyPair::Es384(_) => Algorithm::Es384,
            KeyPair::Rs256(_) => Algorithm::Rs256,
            KeyPair::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// How Debug shows the key: its kind, never its bytes.
    pub(super) fn redacted(&self) -> &'static str {
        match self {
            KeyPair::Es256(_) | KeyPair::Es384(_) => "EcKey(…)",
            KeyPair::Rs256(_) => "RsaKey(…)",
            KeyPair::EdDsa(_) => "Ed25519Key(…)",
        }
    }

    /// The public key as a COSE_Key, map keys in CTAP2 canonical order (1, 3, -1, -2, -3).
    /// Small integers are single CBOR bytes: 0x01..0x17 positive, 0x20.. = -1.., 0x26 = -7,
    /// 0x27 = -8; -35 is 0x38 0x22 and -257 is 0x39 0x01 0x00.
    pub(super) fn cose_key(&self) -> Result<Vec<u8>, SoftKeyError> {
        let mut out = Vec::with_capacity(300);
        match self {
            KeyPair::Es256(key) => {
                out.extend_from_slice(&[0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01]);
                ec_coordinates(&mut out, key, 32)?;
            }
            KeyPair::Es384(key) => {
                out.extend_from_slice(&[0xa5, 0x01, 0x02, 0x03, 0x38, 0x22, 0x20, 0x02]);
                ec_coordinates(&mut out, key, 48)?;
            }
            KeyPair::Rs256(key) => {
                let rsa = key.rsa()?;
                out.extend_from_slice(&[0xa4, 0x01, 0x03, 0x03, 0x39, 0x01, 0x00, 0x20]);
                cbor_bytes(&mut out, &rsa.n().to_vec());
                out.push(0x21);
                cbor_bytes(&mut out, &rsa.e().to_vec());
            }
            KeyPair::EdDsa(key) => {
                out.extend_from_slice(&[0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21]);
                cbor_bytes(&mut out, &key.raw_public_key()?);
            }
        }
        Ok(out)
    }

    /// Signs `auth_data ‖ client_data_hash`, the message of a WebAuthn assertion.
    pub(super) fn sign(
        &self,
        auth_data: &[u8],
        client_data_hash: &[u8; 32],
    ) -> Result<Vec<u8>, SoftKeyError> {
        Ok(match self {
            // Hashing in pieces avoids building the concatenation.
            KeyPair::Es256(key) => {
                let mut hasher = Sha256::new();
                hasher.update(auth_data);
                hasher.update(client_data_hash);
                EcdsaSig::sign(&hasher.finish(), key)?.to_der()?
            }
            KeyPair::Es384(key) => {
                let mut hasher = Sha384::new();
                hasher.update(auth_data);
                hasher.update(client_data_hash);
                EcdsaSig::sign(&hasher.finish(), key)?.to_der()?
            }
            KeyPair::Rs256(key) => {
                let mut signer = Signer::new(MessageDigest::sha256(), key)?;
                signer.update(auth_data)?;
                signer.update(client_data_hash)?;
                signer.sign_to_vec()?
            }
            KeyPair::EdDsa(key) => {
                let message = [auth_data, client_data_hash].concat();
                Signer::new_without_digest(key)?.sign_oneshot_to_vec(&message)?
            }
        })
    }
}

/// Appends `-2: x, -3: y` for an EC key whose coordinates are `len` bytes.
fn ec_coordinates(out: &mut Vec<u8>, key: &EcKey<Private>, len: i32) -> Result<(), SoftKeyError> {
    let mut ctx = BigNumContext::new()?;
    let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
    key.public_key()
        .affine_coordinates(key.group(), &mut x, &mut y, &mut ctx)?;
    out.push(0x21);
    cbor_bytes(out, &x.to_vec_padded(len)?);
    out.push(0x22);
    cbor_bytes(out, &y.to_vec_padded(len)?);
    Ok(())
}
