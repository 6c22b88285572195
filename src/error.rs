//! The error type of every operation a client can ask for, and its wire code.
//!
//! Each variant maps to exactly one [`ErrorCode`]; `http/` turns a code into a status and `ws/`
//! into an error frame, each in one place. Expected failures carry a message meant for people;
//! [`Error::Internal`] keeps its detail for the log and shows clients only "internal error".

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UsernameTaken,
    UnknownUser,
    CeremonyNotFound,
    VerificationFailed,
    CredentialInUse,
    Unauthorized,
    RateLimited,
    NotFound,
    LastPasskey,
    PasskeyLimit,
    NoPasskey,
    UnknownCredential,
    RecoveryFailed,
    UpstreamUnavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the declaration.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadRequest,
        ErrorCode::UsernameTaken,
        ErrorCode::UnknownUser,
        ErrorCode::CeremonyNotFound,
        ErrorCode::VerificationFailed,
        ErrorCode::CredentialInUse,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::NotFound,
        ErrorCode::LastPasskey,
        ErrorCode::PasskeyLimit,
        ErrorCode::NoPasskey,
        ErrorCode::UnknownCredential,
        ErrorCode::RecoveryFailed,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::CeremonyNotFound => "ceremony_not_found",
            ErrorCode::VerificationFailed => "verification_failed",
            ErrorCode::CredentialInUse => "credential_in_use",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotFound => "not_found",
            ErrorCode::LastPasskey => "last_passkey",
            ErrorCode::PasskeyLimit => "passkey_limit",
            ErrorCode::NoPasskey => "no_passkey",
            ErrorCode::UnknownCredential => "unknown_credential",
            ErrorCode::RecoveryFailed => "recovery_failed",
            ErrorCode::UpstreamUnavailable => "upstream_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("This username is already registered.")]
    UsernameTaken,
    #[error("No account has this username.")]
    UnknownUser,
    #[error("This ceremony is unknown, already finished or expired; begin a new one.")]
    CeremonyNotFound,
    #[error("The passkey could not be verified: {0}.")]
    VerificationFailed(&'static str),
    #[error("This passkey is already registered.")]
    CredentialInUse,
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A presented token is malformed, unknown, expired or revoked (HTTP adds
    /// `error="invalid_token"` to its challenge).
    #[error("The token is unknown, expired or revoked.")]
    InvalidToken,
    #[error("{0}")]
    RateLimited(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("This is the account's last passkey; deleting it needs \"allowLast\": true.")]
    LastPasskey,
    #[error("This account already has the most passkeys allowed ({0}).")]
    PasskeyLimit(u32),
    #[error(
        "This account has no passkey left: add one from a device still signed in to it, or \
         recover the account."
    )]
    NoPasskey,
    /// A sign-in presented a passkey this server does not know (deleted, or never registered):
    /// the browser may be told to forget it (WebAuthn `signalUnknownCredential`).
    #[error("This passkey is not registered here (any more); sign in with another one.")]
    UnknownCredential,
    /// A recovery code that does not match the username, or was used already.
    #[error("That username and recovery code do not match, or the code was used already.")]
    RecoveryFailed,
    /// The upstream of a proxied path cannot be reached, or failed (the detail is logged,
    /// never shown).
    #[error("The service behind this path is unavailable; try again later.")]
    UpstreamUnavailable,
    /// Unexpected: storage or library failure. The string is for the log only.
    #[error("Internal error.")]
    Internal(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::UsernameTaken => ErrorCode::UsernameTaken,
            Error::UnknownUser => ErrorCode::UnknownUser,
            Error::CeremonyNotFound => ErrorCode::CeremonyNotFound,
            Error::VerificationFailed(_) => ErrorCode::VerificationFailed,
            Error::CredentialInUse => ErrorCode::CredentialInUse,
            Error::Unauthorized(_) | Error::InvalidToken => ErrorCode::Unauthorized,
            Error::RateLimited(_) => ErrorCode::RateLimited,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::LastPasskey => ErrorCode::LastPasskey,
            Error::PasskeyLimit(_) => ErrorCode::PasskeyLimit,
            Error::NoPasskey => ErrorCode::NoPasskey,
            Error::UnknownCredential => ErrorCode::UnknownCredential,
            Error::RecoveryFailed => ErrorCode::RecoveryFailed,
            Error::UpstreamUnavailable => ErrorCode::UpstreamUnavailable,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    /// Logs the error at the level it deserves: unexpected ones as errors with their detail,
    /// expected ones (bad input, failed verification) at debug only.
    pub fn log(&self, context: &str) {
        match self {
            Error::Internal(detail) => tracing::error!(context, detail, "internal error"),
            other => {
                tracing::debug!(context, code = other.code().as_str(), %other, "request refused")
            }
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::internal(format!("storage: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = Error::internal("sled: disk on fire at /var/secret");
        assert_eq!(e.to_string(), "Internal error.");
        assert_eq!(e.code(), ErrorCode::Internal);
    }

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
