//! The wire around the authenticator: reading the options a server sends, writing
//! `clientDataJSON`, and the few CBOR items attestation needs.

use serde_json::Value;

use super::alg::Algorithm;
use super::{decode_b64url, SoftKeyError};

/// The parts of creation options the authenticator needs.
pub(super) struct CreationRequest<'a> {
    pub(super) rp_id: &'a str,
    pub(super) user_handle: Vec<u8>,
    pub(super) challenge: &'a Value,
}

impl<'a> CreationRequest<'a> {
    /// `alg` is the key type the authenticator would create; the options must offer it.
    pub(super) fn parse(options: &'a Value, alg: Algorithm) -> Result<Self, SoftKeyError> {
        let rp_id = str_field(&options["rp"], "id")?;
        let user_handle = decode_b64url(str_field(&options["user"], "id")?)?;
        let challenge = challenge_field(options)?;
        let offered = options
            .get("pubKeyCredParams")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| p.get("alg").and_then(Value::as_i64) == Some(alg.cose_id()));
        if !offered {
            return Err(SoftKeyError::BadOptions(format!(
                "pubKeyCredParams does not offer {alg:?} ({})",
                alg.cose_id()
            )));
        }
        Ok(CreationRequest {
            rp_id,
            user_handle,
            challenge,
        })
    }
}

pub(super) fn str_field<'a>(value: &'a Value, name: &str) -> Result<&'a str, SoftKeyError> {
    value
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SoftKeyError::BadOptions(format!("missing string field {name:?}")))
}

/// The challenge is echoed into clientDataJSON exactly as the RP encoded it, so it stays a
/// JSON string value and is never decoded.
pub(super) fn challenge_field(options: &Value) -> Result<&Value, SoftKeyError> {
    match options.get("challenge") {
        Some(challenge @ Value::String(_)) => Ok(challenge),
        _ => Err(SoftKeyError::BadOptions(
            "missing string field \"challenge\"".into(),
        )),
    }
}

/// The id of a credential descriptor (`excludeCredentials` / `allowCredentials` entry), if well formed.
pub(super) fn descriptor_id(descriptor: &Value) -> Option<Vec<u8>> {
    decode_b64url(descriptor.get("id")?.as_str()?).ok()
}

/// clientDataJSON with its members in the order browsers write them. `challenge` is a JSON
/// string value; `Value`'s Display and `Value::from` escape both strings correctly.
pub(super) fn client_data_json(kind: &str, challenge: &Value, origin: &str) -> String {
    format!(
        r#"{{"type":"{kind}","challenge":{challenge},"origin":{},"crossOrigin":false}}"#,
        Value::from(origin)
    )
}

/// Writes a CBOR item head: major type in the top 3 bits, length in the shortest form.
fn cbor_head(out: &mut Vec<u8>, major: u8, len: usize) {
    let major = major << 5;
    if len < 24 {
        out.push(major | len as u8);
    } else if let Ok(n) = u8::try_from(len) {
        out.extend_from_slice(&[major | 24, n]);
    } else if let Ok(n) = u16::try_from(len) {
        out.push(major | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(major | 26);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

pub(crate) fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len());
    out.extend_from_slice(bytes);
}

pub(super) fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len());
    out.extend_from_slice(text.as_bytes());
}
