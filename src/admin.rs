//! The backend API's domain side, for servers (never browsers) holding `admin.api_key`.

mod key;

pub use key::{ApiKey, MIN_KEY_CHARS};
