//! What account self-service does to the store: recovery codes (tree `recovery`) and a user's
//! display name.
//!
//! Trees and keys: `recovery`: user id (16 bytes) → [`RecoverySet`] as JSON. A set holds only
//! slow hashes of its codes (see `crate::recovery`); a code is spent by a compare-and-swap that
//! removes it, so two sign-ins racing with one code cannot both spend it.

use uuid::Uuid;

use super::{from_json, to_json, RecoverySet, SledStore, UserRecord};
use crate::error::Error;

/// How often a compare-and-swap is retried when another writer changed the record meanwhile.
const CAS_ATTEMPTS: usize = 8;

impl SledStore {
    fn recovery_tree(&self) -> Result<sled::Tree, Error> {
        Ok(self.db.open_tree("recovery")?)
    }

    /// The user's recovery codes, if they ever made some.
    pub fn recovery_set(&self, user: &Uuid) -> Result<Option<RecoverySet>, Error> {
        self.recovery_tree()?
            .get(user.as_bytes())?
            .map(|v| from_json(&v))
            .transpose()
    }

    /// Replaces the user's recovery codes (the old ones stop working). Not flushed: callers that
    /// show the new codes await [`SledStore::flush`] first.
    pub fn put_recovery_set(&self, user: &Uuid, set: &RecoverySet) -> Result<(), Error> {
        self.recovery_tree()?
            .insert(user.as_bytes(), to_json(set)?)?;
        Ok(())
    }

    /// Removes the user's recovery codes (when the account is deleted).
    pub fn remove_recovery_set(&self, user: &Uuid) -> Result<(), Error> {
        self.recovery_tree()?.remove(user.as_bytes())?;
        Ok(())
    }

    /// Spends the code `code_id` if it is still in the set whose hash matched: `Some(codes left)`,
    /// or `None` when it was spent (or the set replaced) meanwhile.
    pub fn spend_recovery_code(
        &self,
        user: &Uuid,
        code_id: &str,
        hash: &str,
    ) -> Result<Option<usize>, Error> {
        let tree = self.recovery_tree()?;
        for _ in 0..CAS_ATTEMPTS {
            let Some(old) = tree.get(user.as_bytes())? else {
                return Ok(None);
            };
            let mut set: RecoverySet = from_json(&old)?;
            let before = set.codes.len();
            set.codes.retain(|c| !(c.id == code_id && c.hash == hash));
            if set.codes.len() == before {
                return Ok(None);
            }
            let new = to_json(&set)?;
            if tree
                .compare_and_swap(user.as_bytes(), Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(set.codes.len()));
            }
        }
        Err(Error::internal("recovery code kept racing other writes"))
    }

    /// Sets a user's display name; `None` when the user does not exist.
    pub fn set_display_name(
        &self,
        user: &Uuid,
        display_name: &str,
    ) -> Result<Option<UserRecord>, Error> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(old) = self.users.get(user.as_bytes())? else {
                return Ok(None);
            };
            let mut record: UserRecord = from_json(&old)?;
            record.display_name = display_name.to_owned();
            let new = to_json(&record)?;
            if self
                .users
                .compare_and_swap(user.as_bytes(), Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(record));
            }
        }
        Err(Error::internal("display name kept racing other writes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredCode;

    fn set(ids: &[&str]) -> RecoverySet {
        RecoverySet {
            created_at: 1,
            codes: ids
                .iter()
                .map(|id| StoredCode {
                    id: (*id).into(),
                    hash: format!("h-{id}"),
                })
                .collect(),
        }
    }

    #[test]
    fn a_code_is_spent_once_and_a_replaced_set_spends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let user = Uuid::new_v4();
        assert_eq!(store.recovery_set(&user).unwrap(), None);
        store.put_recovery_set(&user, &set(&["A", "B"])).unwrap();
        assert_eq!(
            store.spend_recovery_code(&user, "A", "h-A").unwrap(),
            Some(1)
        );
        assert_eq!(store.spend_recovery_code(&user, "A", "h-A").unwrap(), None);
        // A hash from an older set with the same id does not spend the new set's code.
        store.put_recovery_set(&user, &set(&["B"])).unwrap();
        assert_eq!(
            store.spend_recovery_code(&user, "B", "h-old").unwrap(),
            None
        );
        assert_eq!(store.recovery_set(&user).unwrap().unwrap().codes.len(), 1);
        store.remove_recovery_set(&user).unwrap();
        assert_eq!(store.recovery_set(&user).unwrap(), None);
    }
}
