//! The client data of an assertion (WebAuthn L3 §5.8.1 `CollectedClientData`), parsed in one
//! borrowing pass (§7.2 steps 8–9): the members the checks read, with their JSON types enforced
//! as webauthn-rs enforces them, so one parser's refusal is the other's. Unknown members are
//! skipped (the dictionary is extensible), duplicated known members refuse the whole object.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::Rejection;

#[derive(Debug, Deserialize)]
pub struct ClientData<'a> {
    #[serde(rename = "type", borrow)]
    pub type_: Cow<'a, str>,
    #[serde(borrow)]
    pub challenge: Cow<'a, str>,
    #[serde(borrow)]
    pub origin: Cow<'a, str>,
    #[serde(rename = "crossOrigin", default)]
    pub cross_origin: Option<bool>,
    /// Present (not null) only when the ceremony ran in a cross-origin iframe.
    #[serde(rename = "topOrigin", default)]
    pub top_origin: Option<IgnoredAny>,
    /// Token Binding is gone from L3, but webauthn-rs still requires this member, when present,
    /// to be `{"status": string, "id"?: string}`; requiring the same keeps the two in step.
    #[serde(rename = "tokenBinding", default, borrow)]
    _token_binding: Option<TokenBinding<'a>>,
}

#[derive(Debug, Deserialize)]
struct TokenBinding<'a> {
    #[serde(rename = "status", borrow)]
    _status: Cow<'a, str>,
    #[serde(rename = "id", default, borrow)]
    _id: Option<Cow<'a, str>>,
}

impl<'a> ClientData<'a> {
    /// Parses `json` (UTF-8, one object, nothing but whitespace after it).
    pub fn parse(json: &'a [u8]) -> Result<ClientData<'a>, Rejection> {
        serde_json::from_slice(json).map_err(|_| Rejection::ClientDataMalformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_read_with_their_types_and_escapes() {
        let json = br#"{"type":"webauthn.get","challenge":"abc","origin":"http:\/\/localhost:8080","crossOrigin":false,"other":{"x":[1]}}"#;
        let c = ClientData::parse(json).unwrap();
        assert_eq!(
            (&*c.type_, &*c.challenge, &*c.origin),
            ("webauthn.get", "abc", "http://localhost:8080")
        );
        assert_eq!(c.cross_origin, Some(false));
        assert!(c.top_origin.is_none());
        let top = br#"{"type":"t","challenge":"c","origin":"o","topOrigin":"https://a.example"}"#;
        assert!(ClientData::parse(top).unwrap().top_origin.is_some());
        let null_top = br#"{"type":"t","challenge":"c","origin":"o","topOrigin":null}"#;
        assert!(ClientData::parse(null_top).unwrap().top_origin.is_none());
    }

    #[test]
    fn ill_typed_missing_or_duplicated_members_are_refused() {
        for json in [
            &br#"{"challenge":"c","origin":"o"}"#[..],
            br#"{"type":"t","challenge":1,"origin":"o"}"#,
            br#"{"type":"t","challenge":"c","origin":"o","crossOrigin":"false"}"#,
            br#"{"type":"t","challenge":"c","origin":"o","tokenBinding":"present"}"#,
            br#"{"type":"t","challenge":"c","origin":"o","tokenBinding":{"id":"x"}}"#,
            br#"{"type":"t","type":"t","challenge":"c","origin":"o"}"#,
            br#"{"type":"t","challenge":"c","origin":"o"} x"#,
            b"{\"type\":\"t\xff\",\"challenge\":\"c\",\"origin\":\"o\"}",
            b"[]",
        ] {
            assert_eq!(
                ClientData::parse(json).map(|_| ()),
                Err(Rejection::ClientDataMalformed),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        let with_binding =
            br#"{"type":"t","challenge":"c","origin":"o","tokenBinding":{"status":"present"}}"#;
        assert!(ClientData::parse(with_binding).is_ok());
    }
}
