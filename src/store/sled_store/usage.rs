//! What a sign-in changes about a passkey (its signature counter, backup flags and time of last
//! use), kept in the `credential_use` tree as a fixed 14-byte value instead of being rewritten
//! into the passkey's JSON record. A sign-in then writes 14 bytes rather than decoding,
//! re-encoding and rewriting about 1 KiB of JSON, which was a tenth of the server's own work per
//! sign-in (docs/benchmarks.md).
//!
//! Invariant: no usage entry means the passkey has not signed in since it was registered, so its
//! JSON record is current. Readers go through [`SledStore::credential`], which applies the entry.

use webauthn_rs::prelude::{Credential, Passkey};

use super::{user_cred_key, CredentialRecord, SledStore};
use crate::assertion::{KnownCredential, Verified};
use crate::error::Error;

const FORMAT: u8 = 1;
const LEN: usize = 14;
const BACKUP_ELIGIBLE: u8 = 1;
const BACKED_UP: u8 = 2;

const NOT_REGISTERED: Error = Error::VerificationFailed("this passkey is no longer registered");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Usage {
    counter: u32,
    backup_eligible: bool,
    backup_state: bool,
    /// Unix seconds; 0: never.
    last_used_at: u64,
}

impl Usage {
    /// `FORMAT`, counter (u32 BE), flags, last use (u64 BE).
    fn encode(&self) -> [u8; LEN] {
        let mut out = [0; LEN];
        out[0] = FORMAT;
        out[1..5].copy_from_slice(&self.counter.to_be_bytes());
        if self.backup_eligible {
            out[5] |= BACKUP_ELIGIBLE;
        }
        if self.backup_state {
            out[5] |= BACKED_UP;
        }
        out[6..].copy_from_slice(&self.last_used_at.to_be_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Usage, Error> {
        let bytes: &[u8; LEN] = bytes
            .try_into()
            .ok()
            .filter(|b: &&[u8; LEN]| b[0] == FORMAT)
            .ok_or_else(|| Error::internal("credential usage record has an unknown format"))?;
        let mut counter = [0; 4];
        counter.copy_from_slice(&bytes[1..5]);
        let mut last_used_at = [0; 8];
        last_used_at.copy_from_slice(&bytes[6..]);
        Ok(Usage {
            counter: u32::from_be_bytes(counter),
            backup_eligible: bytes[5] & BACKUP_ELIGIBLE != 0,
            backup_state: bytes[5] & BACKED_UP != 0,
            last_used_at: u64::from_be_bytes(last_used_at),
        })
    }

    /// As registered (the JSON record, before any sign-in).
    fn registered(record: &CredentialRecord) -> Usage {
        let credential = Credential::from(record.passkey.clone());
        Usage {
            counter: credential.counter,
            backup_eligible: credential.backup_eligible,
            backup_state: credential.backup_state,
            last_used_at: record.last_used_at.unwrap_or(0),
        }
    }

    /// After a verified sign-in, or `verification_failed` if its counter did not increase (a
    /// possibly cloned authenticator). Authenticators that keep no counter send 0 every time.
    fn after(self, result: &Verified, now_secs: u64) -> Result<Usage, Error> {
        let counter = result.counter;
        if (counter > 0 || self.counter > 0) && counter <= self.counter {
            return Err(Error::VerificationFailed(
                "the signature counter did not increase; the passkey may be cloned",
            ));
        }
        Ok(Usage {
            counter,
            backup_eligible: self.backup_eligible || result.backup_eligible,
            backup_state: result.backup_state,
            last_used_at: now_secs,
        })
    }

    /// A passkey as `login.begin` read it, as of this usage.
    pub(super) fn apply_to_known(self, known: &mut KnownCredential) {
        known.counter = self.counter;
        known.backup_eligible = self.backup_eligible;
        known.backup_state = self.backup_state;
    }

    /// The record as of this usage.
    fn apply(self, record: CredentialRecord) -> CredentialRecord {
        let mut credential = Credential::from(record.passkey);
        credential.counter = self.counter;
        credential.backup_eligible = self.backup_eligible;
        credential.backup_state = self.backup_state;
        CredentialRecord {
            passkey: Passkey::from(credential),
            last_used_at: (self.last_used_at > 0).then_some(self.last_used_at),
            ..record
        }
    }
}

impl SledStore {
    /// `record` (as stored in JSON) with its latest sign-in applied.
    pub(super) fn with_usage(&self, record: CredentialRecord) -> Result<CredentialRecord, Error> {
        let cred_id = record.passkey.cred_id().as_slice();
        Ok(match self.credential_use.get(cred_id)? {
            Some(bytes) => Usage::decode(&bytes)?.apply(record),
            None => record,
        })
    }

    fn registered_usage(&self, cred_id: &[u8]) -> Result<Usage, Error> {
        let json = self.credentials.get(cred_id)?.ok_or(NOT_REGISTERED)?;
        Ok(Usage::registered(&super::from_json(&json)?))
    }

    /// Records a successful sign-in with one of `owner`'s passkeys: the new counter and backup
    /// flags, and the time of use.
    ///
    /// The counter check is repeated here, atomically against the stored value: a sign-in whose
    /// counter does not exceed the stored non-zero counter fails with `verification_failed`,
    /// even when two sign-ins race or the ceremony's begin-time copy of the passkey was stale.
    pub fn record_use(
        &self,
        result: &Verified,
        owner: &uuid::Uuid,
        now_secs: u64,
    ) -> Result<(), Error> {
        let cred_id = result.cred_id.as_slice();
        if !self
            .user_credentials
            .contains_key(user_cred_key(owner, cred_id))?
        {
            return Err(match self.credentials.contains_key(cred_id)? {
                true => Error::VerificationFailed("this passkey does not belong to the account"),
                false => NOT_REGISTERED,
            });
        }
        let mut outcome = Err(NOT_REGISTERED);
        self.credential_use.fetch_and_update(cred_id, |old| {
            let current = match old {
                Some(bytes) => Usage::decode(bytes),
                // Its first sign-in starts from the registered state (which never changes).
                None => self.registered_usage(cred_id),
            };
            match current.and_then(|usage| usage.after(result, now_secs)) {
                Ok(next) => {
                    outcome = Ok(());
                    Some(next.encode().to_vec())
                }
                Err(e) => {
                    outcome = Err(e);
                    old.map(<[u8]>::to_vec)
                }
            }
        })?;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_round_trips_and_refuses_unknown_bytes() {
        for usage in [
            Usage {
                counter: 0,
                backup_eligible: false,
                backup_state: false,
                last_used_at: 0,
            },
            Usage {
                counter: u32::MAX,
                backup_eligible: true,
                backup_state: true,
                last_used_at: 1_790_000_000,
            },
            Usage {
                counter: 7,
                backup_eligible: true,
                backup_state: false,
                last_used_at: 1,
            },
        ] {
            assert_eq!(Usage::decode(&usage.encode()).unwrap(), usage);
        }
        assert!(Usage::decode(&[]).is_err());
        assert!(Usage::decode(&[2; LEN]).is_err(), "unknown format");
        assert!(Usage::decode(&[1; LEN + 1]).is_err(), "wrong length");
    }
}
