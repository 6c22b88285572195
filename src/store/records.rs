//! The records the store keeps, whatever the backend: users, passkeys, sessions, recovery codes.
//! They are domain types; each backend decides how to lay them out (sled: JSON values in trees;
//! PostgreSQL: columns where a constraint or an index needs one, the rest as JSON).

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::Passkey;

use crate::protocol::UserView;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    /// Unix seconds.
    pub created_at: u64,
    /// How many passkeys the account has; kept in the record so the per-user limit is enforced
    /// inside the same transaction that adds a passkey.
    #[serde(default = "one")]
    pub passkeys: u32,
}

fn one() -> u32 {
    1
}

impl UserRecord {
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id,
            name: self.name.clone(),
            display_name: self.display_name.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub user_id: Uuid,
    pub passkey: Passkey,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of the last successful sign-in with it.
    #[serde(default)]
    pub last_used_at: Option<u64>,
    /// A name its owner gave it.
    #[serde(default)]
    pub label: Option<String>,
    /// The authenticator model's AAGUID, when the authenticator reported one.
    #[serde(default)]
    pub aaguid: Option<Uuid>,
    /// The passkey's public key as sign-in verifies with it, decoded from `passkey` at
    /// registration. Records from before it existed lack it and derive it on read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<crate::assertion::PublicKey>,
}

/// A persisted session (the token table's write-through copy), keyed by its token's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub last_used_ms: u64,
    pub user_agent: Option<String>,
    pub address: Option<std::net::IpAddr>,
    /// The passkey that opened the session (base64url); absent in records from before it was kept.
    #[serde(default)]
    pub credential_id: Option<String>,
}

/// One stored recovery code: its public id (the first group of the code) and the PHC string of
/// the Argon2id hash of the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCode {
    pub id: String,
    pub hash: String,
}

/// A user's current set of recovery codes; spent ones are gone from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverySet {
    /// Unix seconds.
    pub created_at: u64,
    pub codes: Vec<StoredCode>,
}

/// A deleted user and the ids of the passkeys that went with them.
#[derive(Debug, Clone)]
pub struct DeletedUser {
    pub user: UserRecord,
    pub credential_ids: Vec<Vec<u8>>,
}
