//! Keeping the username index under the current rule ([`crate::names::username_key`]).
//!
//! The index was once keyed by `trim().to_lowercase()`; it is now keyed by the PRECIS
//! `UsernameCaseMapped` form. At open, an index of an older version is rebuilt from the users
//! (new keys written first, stale ones removed after, the version last, so a crash part-way
//! leaves an index that is rebuilt again at the next open). Names that now fold into one are
//! reported: the oldest account keeps the name; the others still sign in without a username
//! (their passkeys know them) until an operator renames or removes them.

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::{from_json, username_key, SledStore, UserRecord};
use crate::error::Error;

/// The version of the username index this code writes.
const USERNAME_INDEX_VERSION: u8 = 2;
const VERSION_KEY: &[u8] = b"username_index_version";

/// Accounts whose usernames now fold into one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub key: String,
    /// The oldest account, which keeps the name.
    pub kept: Uuid,
    pub others: Vec<Uuid>,
}

impl SledStore {
    /// Rebuilds the username index if it is of an older version; returns the collisions found.
    pub(super) fn migrate_usernames(&self) -> Result<Vec<Collision>, Error> {
        let current = self.meta.get(VERSION_KEY)?;
        if current.as_deref() == Some(&[USERNAME_INDEX_VERSION][..]) {
            return Ok(Vec::new());
        }
        let mut by_key: BTreeMap<String, Vec<UserRecord>> = BTreeMap::new();
        for entry in self.users.iter() {
            let (_, value) = entry?;
            let user: UserRecord = from_json(&value)?;
            by_key
                .entry(username_key(&user.name))
                .or_default()
                .push(user);
        }
        let mut collisions = Vec::new();
        let mut keys = HashSet::new();
        for (key, mut users) in by_key {
            users.sort_by_key(|u| (u.created_at, u.id));
            self.usernames
                .insert(key.as_bytes(), users[0].id.as_bytes())?;
            if users.len() > 1 {
                collisions.push(Collision {
                    key: key.clone(),
                    kept: users[0].id,
                    others: users[1..].iter().map(|u| u.id).collect(),
                });
            }
            keys.insert(key.into_bytes());
        }
        for entry in self.usernames.iter() {
            let (key, _) = entry?;
            if !keys.contains(key.as_ref()) {
                self.usernames.remove(key)?;
            }
        }
        self.meta.insert(VERSION_KEY, &[USERNAME_INDEX_VERSION])?;
        self.db.flush()?;
        for c in &collisions {
            tracing::warn!(
                username = %c.key,
                kept = %c.kept,
                others = ?c.others,
                "usernames that now name one account: the oldest keeps it; the others sign in \
                 with their passkeys without a username until renamed or removed"
            );
        }
        Ok(collisions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, created_at: u64) -> UserRecord {
        UserRecord {
            id: Uuid::new_v4(),
            name: name.into(),
            display_name: name.into(),
            created_at,
            passkeys: 1,
        }
    }

    #[test]
    fn an_old_index_is_rekeyed_and_names_that_now_collide_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, fullwidth, other) = (
            user("alice@example.com", 1),
            user("ＡＬＩＣＥ@example.com", 2),
            user("Jose\u{301}", 3),
        );
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.usernames.clear().unwrap();
            store.meta.clear().unwrap();
            // As the old rule wrote them: trimmed and lower-cased.
            for u in [&plain, &fullwidth, &other] {
                store
                    .users
                    .insert(u.id.as_bytes(), serde_json::to_vec(u).unwrap())
                    .unwrap();
                store
                    .usernames
                    .insert(u.name.trim().to_lowercase().as_bytes(), u.id.as_bytes())
                    .unwrap();
            }
            store.db.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.user_by_name("ALICE@example.com").unwrap().unwrap().id,
            plain.id
        );
        assert_eq!(
            store
                .user_by_name("ａｌｉｃｅ@example.com")
                .unwrap()
                .unwrap()
                .id,
            plain.id
        );
        assert_eq!(store.user_by_name("josé").unwrap().unwrap().id, other.id);
        assert_eq!(store.usernames.len(), 2, "stale keys are gone");
        // Reported once, at the rebuild; the index is current from then on.
        let again = store.migrate_usernames().unwrap();
        assert!(again.is_empty());
        store.meta.remove(VERSION_KEY).unwrap();
        let found = store.migrate_usernames().unwrap();
        assert_eq!(
            found,
            vec![Collision {
                key: "alice@example.com".into(),
                kept: plain.id,
                others: vec![fullwidth.id],
            }]
        );
    }
}
