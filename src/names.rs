//! What a name may be: usernames, display names and passkey labels.
//!
//! Usernames follow RFC 8265's PRECIS profiles (through `precis-profiles`): the name is kept in
//! its `UsernameCasePreserved` form (full-width letters mapped to their usual width, NFC) and is
//! unique under its `UsernameCaseMapped` form (also case-folded). Both refuse spaces, control,
//! format and invisible characters (U+200B, U+2060, U+00AD, bidi overrides and isolates) and
//! apply the bidi rule, so two names that look the same are one account, and no name can pose as
//! another in `/chat` or `X-Auth-User`. Display names and passkey labels follow RFC 8266's
//! `Nickname` profile: spaces allowed (runs of them folded), the same invisible and direction
//! characters refused.
//!
//! Domain code only: nothing here knows of HTTP or sockets.

use precis_core::profile::PrecisFastInvocation;
use precis_profiles::{Nickname, UsernameCaseMapped, UsernameCasePreserved};

use crate::error::Error;

/// A username as given, checked and in the form it is stored and shown in.
pub fn username(value: &str, max_chars: usize) -> Result<String, Error> {
    let trimmed = non_empty("username", value, max_chars)?;
    UsernameCasePreserved::enforce(trimmed)
        .map(|name| name.into_owned())
        .map_err(|_| {
            Error::bad_request(
                "\"username\" may hold letters, digits and symbols, but no spaces and no \
                 invisible, control or direction-changing characters.",
            )
        })
}

/// The key a username is unique under: its `UsernameCaseMapped` form, so `Alice@Example.com`,
/// `alice@example.com` and `ａｌｉｃｅ@example.com` are one account. A stored name from before
/// these rules that the profile refuses keeps the old key (trimmed, lower-cased).
pub fn username_key(name: &str) -> String {
    let name = name.trim();
    match UsernameCaseMapped::enforce(name) {
        Ok(key) => key.into_owned(),
        Err(_) => name.to_lowercase(),
    }
}

/// A display name or passkey label (`field` names it in the error), in its `Nickname` form.
pub fn nickname(field: &str, value: &str, max_chars: usize) -> Result<String, Error> {
    non_empty(field, value, max_chars)?;
    let name = Nickname::enforce(value).map_err(|_| {
        Error::bad_request(format!(
            "\"{field}\" must not contain invisible, control or direction-changing characters."
        ))
    })?;
    non_empty(field, &name, max_chars).map(str::to_owned)
}

fn non_empty<'a>(field: &str, value: &'a str, max_chars: usize) -> Result<&'a str, Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::bad_request(format!(
            "\"{field}\" must not be empty."
        )));
    }
    if trimmed.chars().count() > max_chars {
        return Err(Error::bad_request(format!(
            "\"{field}\" is longer than {max_chars} characters."
        )));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalike_usernames_are_refused_or_fold_into_one() {
        assert_eq!(
            username("  Alice@Example.com ", 64).unwrap(),
            "Alice@Example.com"
        );
        for impostor in [
            "alice\u{200B}@example.com",
            "alice\u{2060}@example.com",
            "ali\u{00AD}ce@example.com",
            "\u{202E}moc.elpmaxe@ecila",
            "alice\u{2066}@example.com",
            "alice smith",
            "a\u{0}b",
        ] {
            assert!(username(impostor, 64).is_err(), "{impostor:?}");
        }
        // NFD and full-width forms are the same account as the plain one.
        let plain = username_key("josé@example.com");
        assert_eq!(
            username_key(&username("jose\u{301}@example.com", 64).unwrap()),
            plain
        );
        assert_eq!(
            username_key(&username("ＪＯＳÉ@example.com", 64).unwrap()),
            plain
        );
        assert_eq!(username_key("  Alice@Example.COM "), "alice@example.com");
        assert!(username("   ", 64).is_err());
        assert!(username(&"é".repeat(11), 10).is_err());
    }

    #[test]
    fn display_names_and_labels_keep_spaces_but_not_invisible_characters() {
        assert_eq!(
            nickname("displayName", "  Alice   Smith ", 64).unwrap(),
            "Alice Smith"
        );
        assert_eq!(
            nickname("label", "Work laptop 💻", 64).unwrap(),
            "Work laptop 💻"
        );
        for bad in ["Ali\u{200B}ce", "\u{202E}ecilA", "a\u{0}b", "Bob\u{2060}"] {
            assert!(nickname("displayName", bad, 64).is_err(), "{bad:?}");
        }
        assert!(nickname("label", "   ", 64).is_err());
    }
}
