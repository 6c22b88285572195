//! Creating an account with its first passkey: single-key writes in a fixed order, not a sled
//! transaction.
//!
//! Why not a transaction: sled 0.34 starts every transaction (and every batch) by writing out
//! its current log buffer and then one holding the batch's manifest, each with a `pwrite` and
//! a waiting `sync_file_range` on its I/O pool, under a lock that stops every other write. At
//! 64 concurrent registrations that was 1.7 synchronous disk writes per registration and over
//! half of its server CPU (docs/benchmarks.md, "Durable registration"); the group commit that
//! follows (`flush`) makes the registration durable anyway, so the transaction bought only
//! atomicity, which the order below gives instead.
//!
//! The order, each step one sled operation:
//! 1. `registering[user id]` = the intent (the username key and the credential id);
//! 2. `users[user id]` = the user (a fresh id: nothing points at it yet);
//! 3. `usernames[key]`: compare-and-swap from absent to the user id, which claims the name;
//! 4. `credentials[credential id]`: compare-and-swap from absent to the record, which claims
//!    the credential id;
//! 5. `user_credentials[user ‖ credential]` = nothing, the step that completes the account;
//! 6. `credential_use[credential id]` removed (a stale entry a racing sign-in left);
//! 7. `registering[user id]` removed.
//!
//! Invariants: a compare-and-swap that finds the name or credential id taken undoes the steps
//! before it (only what this call wrote) and answers `username_taken` or `credential_in_use`,
//! so two racing registrations of one name or one credential id cannot both win. sled recovers
//! its log as a prefix of the writes made (a batch's manifest relies on the same), so after a
//! crash every account with an intent left is either complete (step 5 is there) or is rolled
//! back at the next open ([`SledStore::finish_interrupted_registrations`]); both happen before
//! anything reads the store. Before its flush a registration is acknowledged to no one, so a
//! reader that meets one half-written sees an account without passkeys, or a passkey whose
//! account it cannot find, and refuses it as it would an unknown one.

use sled::CompareAndSwapError;
use uuid::Uuid;

use super::{to_json, user_cred_key, username_key, CredentialRecord, SledStore, UserRecord};
use crate::error::Error;

/// What `registering` holds for an account being created: enough to roll it back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Intent {
    name_key: Vec<u8>,
    cred_id: Vec<u8>,
}

impl Intent {
    /// `len(name key)` as two bytes, big-endian, the name key, then the credential id.
    fn encode(&self) -> Result<Vec<u8>, Error> {
        let len = u16::try_from(self.name_key.len())
            .map_err(|_| Error::internal("username key longer than 65,535 bytes"))?;
        let mut out = Vec::with_capacity(2 + self.name_key.len() + self.cred_id.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.name_key);
        out.extend_from_slice(&self.cred_id);
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Intent, Error> {
        let bad = || Error::internal("a registration intent that does not decode");
        let (len, rest) = bytes.split_first_chunk::<2>().ok_or_else(bad)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(bad());
        }
        let (name_key, cred_id) = rest.split_at(len);
        Ok(Intent {
            name_key: name_key.to_vec(),
            cred_id: cred_id.to_vec(),
        })
    }
}

impl SledStore {
    /// The body of [`SledStore::create_user`] (see the module's doc for the order and why).
    pub(super) fn create_user_in_order(
        &self,
        user: &UserRecord,
        cred: &CredentialRecord,
    ) -> Result<(), Error> {
        let cred_id = cred.passkey.cred_id().as_slice();
        let intent = Intent {
            name_key: username_key(&user.name).into_bytes(),
            cred_id: cred_id.to_vec(),
        };
        // No reads first: `register.begin` has seen the name free, a taken credential id is
        // rare, and the compare-and-swaps are the guards either way.
        let id = user.id.as_bytes();
        let cred_json = to_json(cred)?;
        self.registering.insert(id, intent.encode()?)?;
        let written = (|| -> Result<Option<Error>, Error> {
            self.users.insert(id, to_json(user)?)?;
            let name =
                self.usernames
                    .compare_and_swap(&intent.name_key, None::<&[u8]>, Some(&id[..]))?;
            if let Err(CompareAndSwapError { .. }) = name {
                return Ok(Some(Error::UsernameTaken));
            }
            let credential =
                self.credentials
                    .compare_and_swap(cred_id, None::<&[u8]>, Some(cred_json))?;
            if let Err(CompareAndSwapError { .. }) = credential {
                return Ok(Some(Error::CredentialInUse));
            }
            self.user_credentials
                .insert(user_cred_key(&user.id, cred_id), &[])?;
            Ok(None)
        })();
        match written {
            Ok(None) => {}
            Ok(Some(refused)) => {
                self.roll_back(&user.id, &intent)?;
                return Err(refused);
            }
            // A storage error: undone as far as the store lets us now; the intent left behind
            // has the next open finish the job.
            Err(e) => {
                let _ = self.roll_back(&user.id, &intent);
                return Err(e);
            }
        }
        self.credential_use.remove(cred_id)?;
        self.registering.remove(id)?;
        Ok(())
    }

    /// Undoes what a registration of `user` wrote, leaving whatever another account owns.
    fn roll_back(&self, user: &Uuid, intent: &Intent) -> Result<(), Error> {
        let id = &user.as_bytes()[..];
        self.user_credentials
            .remove(user_cred_key(user, &intent.cred_id))?;
        if let Some(record) = self.credentials.get(&intent.cred_id)? {
            // Only the owner's id is read: the record may be another account's.
            #[derive(serde::Deserialize)]
            struct Owner {
                user_id: Uuid,
            }
            if super::from_json::<Owner>(&record)?.user_id == *user {
                let _ = self.credentials.compare_and_swap(
                    &intent.cred_id,
                    Some(record),
                    None::<&[u8]>,
                )?;
            }
        }
        let _ = self
            .usernames
            .compare_and_swap(&intent.name_key, Some(id), None::<&[u8]>)?;
        self.users.remove(id)?;
        self.registering.remove(id)?;
        Ok(())
    }

    /// Completes or rolls back every registration a crash interrupted (at open, before anything
    /// reads the store); returns how many were rolled back.
    pub(super) fn finish_interrupted_registrations(&self) -> Result<usize, Error> {
        let mut rolled_back = 0;
        for entry in self.registering.iter() {
            let (key, value) = entry?;
            let user = Uuid::from_slice(&key).map_err(Error::internal)?;
            let intent = Intent::decode(&value)?;
            let complete = self
                .user_credentials
                .get(user_cred_key(&user, &intent.cred_id))?
                .is_some();
            if complete {
                self.credential_use.remove(&intent.cred_id)?;
                self.registering.remove(&key)?;
            } else {
                self.roll_back(&user, &intent)?;
                rolled_back += 1;
            }
        }
        if rolled_back > 0 {
            tracing::warn!(
                rolled_back,
                "registrations a crash interrupted before they were acknowledged were undone"
            );
        }
        Ok(rolled_back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_round_trip_and_short_ones_are_refused() {
        let intent = Intent {
            name_key: b"alice".to_vec(),
            cred_id: vec![1, 2, 3],
        };
        let bytes = intent.encode().unwrap();
        assert_eq!(bytes, [&[0, 5][..], b"alice", &[1, 2, 3]].concat());
        assert_eq!(Intent::decode(&bytes).unwrap(), intent);
        assert!(Intent::decode(&[0]).is_err());
        assert!(Intent::decode(&[0, 9, b'a']).is_err());
    }

    /// A passkey registered through webauthn-rs with the software authenticator.
    fn record(user: &UserRecord) -> CredentialRecord {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config::for_tests(dir.path()).unwrap();
        let wa = crate::ceremony::build_webauthn(&config).unwrap();
        let mut key = crate::softkey::SoftAuthenticator::new();
        let (ccr, state) = wa
            .start_passkey_registration(user.id, &user.name, &user.display_name, None)
            .unwrap();
        let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
        let response = key.register(&options, "http://localhost:8080").unwrap();
        let passkey = wa
            .finish_passkey_registration(&serde_json::from_value(response).unwrap(), &state)
            .unwrap();
        CredentialRecord {
            user_id: user.id,
            public_key: Some(crate::assertion::PublicKey::from_passkey(&passkey).unwrap()),
            passkey,
            created_at: 0,
            last_used_at: None,
            label: None,
            aaguid: None,
        }
    }

    fn user(name: &str) -> UserRecord {
        UserRecord {
            id: Uuid::new_v4(),
            name: name.into(),
            display_name: name.into(),
            created_at: 0,
            passkeys: 1,
        }
    }

    /// Nothing of `user`'s registration is left in any tree.
    fn nothing_left_of(store: &SledStore, user: &UserRecord, cred: &CredentialRecord) {
        let cred_id = cred.passkey.cred_id().as_slice();
        assert!(store.user(&user.id).unwrap().is_none());
        assert!(store.registering.get(user.id.as_bytes()).unwrap().is_none());
        assert!(store
            .user_credentials
            .get(user_cred_key(&user.id, cred_id))
            .unwrap()
            .is_none());
        if let Some(other) = store.user_by_name(&user.name).unwrap() {
            assert_ne!(other.id, user.id);
        }
        if let Some(other) = store.credential(cred_id).unwrap() {
            assert_ne!(other.user_id, user.id);
        }
    }

    #[test]
    fn a_registration_is_complete_and_leaves_no_intent() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let alice = user("Alice");
        let cred = record(&alice);
        store.create_user(&alice, &cred).unwrap();
        assert_eq!(store.user_by_name("alice").unwrap().unwrap(), alice);
        let creds = store.credentials_of(&alice.id).unwrap();
        assert_eq!(creds.len(), 1);
        assert_eq!(creds[0].passkey.cred_id(), cred.passkey.cred_id());
        assert_eq!(store.registering.len(), 0);
    }

    #[test]
    fn a_taken_name_or_credential_refuses_and_undoes_only_what_the_loser_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let alice = user("alice");
        let alices = record(&alice);
        store.create_user(&alice, &alices).unwrap();

        let same_name = user("ALICE");
        let its_cred = record(&same_name);
        let err = store.create_user(&same_name, &its_cred).unwrap_err();
        assert!(matches!(err, Error::UsernameTaken), "{err:?}");
        nothing_left_of(&store, &same_name, &its_cred);

        // Another name, alice's credential id.
        let bob = user("bob");
        let mut stolen = alices.clone();
        stolen.user_id = bob.id;
        let err = store.create_user(&bob, &stolen).unwrap_err();
        assert!(matches!(err, Error::CredentialInUse), "{err:?}");
        nothing_left_of(&store, &bob, &stolen);
        assert!(
            store.user_by_name("bob").unwrap().is_none(),
            "the name is free again"
        );

        // Alice's account is untouched, and bob can register with a passkey of his own.
        assert_eq!(store.user_by_name("alice").unwrap().unwrap(), alice);
        let kept = store.credential(alices.passkey.cred_id()).unwrap().unwrap();
        assert_eq!(kept.user_id, alice.id);
        store.create_user(&bob, &record(&bob)).unwrap();
    }

    #[test]
    fn racing_registrations_of_one_name_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let u = user("carol");
                let c = record(&u);
                (u, c)
            })
            .collect();
        let barrier = std::sync::Barrier::new(racers.len());
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let tasks: Vec<_> = racers
                .iter()
                .map(|(u, c)| {
                    let (store, barrier) = (&store, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        store.create_user(u, c)
                    })
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let winners: Vec<_> = outcomes.iter().filter(|o| o.is_ok()).collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|o| o.is_ok() || matches!(o, Err(Error::UsernameTaken))));
        let winner = store.user_by_name("carol").unwrap().unwrap();
        for (u, c) in &racers {
            if u.id != winner.id {
                nothing_left_of(&store, u, c);
            }
        }
        assert_eq!(store.user_count(), 1);
        assert_eq!(store.registering.len(), 0);
    }

    /// Writes the first `steps` steps of the module doc's order, as a crash would leave them.
    fn interrupted(store: &SledStore, user: &UserRecord, cred: &CredentialRecord, steps: usize) {
        let id = user.id.as_bytes();
        let cred_id = cred.passkey.cred_id().as_slice();
        let intent = Intent {
            name_key: username_key(&user.name).into_bytes(),
            cred_id: cred_id.to_vec(),
        };
        let writes: [&dyn Fn(); 6] = [
            &|| {
                drop(
                    store
                        .registering
                        .insert(id, intent.encode().unwrap())
                        .unwrap(),
                )
            },
            &|| drop(store.users.insert(id, to_json(user).unwrap()).unwrap()),
            &|| drop(store.usernames.insert(&intent.name_key, &id[..]).unwrap()),
            &|| {
                drop(
                    store
                        .credentials
                        .insert(cred_id, to_json(cred).unwrap())
                        .unwrap(),
                )
            },
            &|| {
                drop(
                    store
                        .user_credentials
                        .insert(user_cred_key(&user.id, cred_id), &[])
                        .unwrap(),
                )
            },
            &|| drop(store.credential_use.remove(cred_id).unwrap()),
        ];
        for write in &writes[..steps] {
            write();
        }
    }

    /// Opens `dir` again. sled lets go of a dropped database's file lock from its own threads,
    /// which under a loaded test run can take a moment: until then the open fails.
    fn reopen(dir: &std::path::Path) -> SledStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match SledStore::open(dir) {
                Ok(store) => return store,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("reopen {}: {e}", dir.display()),
            }
        }
    }

    #[test]
    fn a_registration_a_crash_interrupted_is_undone_at_the_next_open_or_kept_if_complete() {
        let dir = tempfile::tempdir().unwrap();
        let mut cases = Vec::new();
        {
            let store = SledStore::open(dir.path()).unwrap();
            for steps in 1..=6 {
                let u = user(&format!("user{steps}"));
                let c = record(&u);
                interrupted(&store, &u, &c, steps);
                cases.push((steps, u, c));
            }
            store.db.flush().unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.registering.len(), 0, "every intent is resolved");
        for (steps, u, c) in &cases {
            if *steps >= 5 {
                assert_eq!(store.user_by_name(&u.name).unwrap().as_ref(), Some(u));
                assert_eq!(store.credentials_of(&u.id).unwrap().len(), 1);
            } else {
                nothing_left_of(&store, u, c);
                assert!(store.user_by_name(&u.name).unwrap().is_none(), "{steps}");
            }
        }
        // A rolled-back name and credential register again.
        let (_, u, c) = &cases[3];
        store.create_user(u, c).unwrap();
    }
}
