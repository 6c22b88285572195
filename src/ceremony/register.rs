//! Registration: a new account with its first passkey, or another passkey for a signed-in user.

use uuid::Uuid;
use webauthn_rs::prelude::{CreationChallengeResponse, RegisterPublicKeyCredential};
use webauthn_rs_proto::{AuthenticatorSelectionCriteria, ResidentKeyRequirement};

use super::pending::{CeremonyKind, PendingState};
use super::{check_same_origin, verification_error, Ceremonies, SignedIn};
use crate::assertion::{PublicKey, Rejection};
use crate::config::ResidentKey;
use crate::endpoints::Transport;
use crate::error::Error;
use crate::events::Event;
use crate::names;
use crate::store::{CredentialRecord, UserRecord};
use crate::tokens::SessionMeta;

/// A registered passkey: the signed-in account and the new credential's id (base64url).
#[derive(Debug)]
pub struct Registered {
    pub signed_in: SignedIn,
    pub credential_id: String,
    /// False when the passkey was added to an existing account.
    pub new_account: bool,
}

impl Ceremonies {
    /// `register.begin`. A new username starts a new account; an existing one is allowed only
    /// when `signed_in_as` (user, session) is that account (it adds a passkey, excluding the
    /// ones it has), and only while that session lives.
    pub async fn register_begin(
        &self,
        username: &str,
        display_name: Option<&str>,
        token: bool,
        signed_in_as: Option<(Uuid, Uuid)>,
        from: Option<std::net::IpAddr>,
        via: Transport,
    ) -> Result<(Uuid, CreationChallengeResponse), Error> {
        self.allow_begin(from)?;
        let max = self.inner.max_username_chars;
        let name = names::username(username, max)?;
        let signed_in_as = signed_in_as
            .filter(|(user, session)| self.inner.tokens.user_of(session) == Some(*user));
        let (user, existing, exclude) = match self.store().user_by_name(&name).await? {
            Some(user) if signed_in_as.map(|(u, _)| u) == Some(user.id) => {
                if user.passkeys >= self.inner.max_passkeys {
                    return Err(Error::PasskeyLimit(self.inner.max_passkeys));
                }
                let exclude = self
                    .store()
                    .credentials_of(&user.id)
                    .await?
                    .into_iter()
                    .map(|c| c.passkey.cred_id().clone())
                    .collect();
                (user, true, Some(exclude))
            }
            Some(_) => return Err(Error::UsernameTaken),
            None => {
                let display_name = match display_name {
                    Some(d) => names::nickname("displayName", d, max)?,
                    None => name.clone(),
                };
                let user = UserRecord {
                    id: Uuid::new_v4(),
                    name,
                    display_name,
                    created_at: self.now_secs(),
                    passkeys: 1,
                };
                (user, false, None)
            }
        };
        let (mut options, state) = self
            .inner
            .webauthn
            .start_passkey_registration(user.id, &user.name, &user.display_name, exclude)
            .map_err(|e| Error::internal(format!("start registration: {e}")))?;
        set_resident_key(&mut options, self.inner.resident_key);
        let pending = PendingState::Register {
            state,
            user,
            existing,
            authorized_by: signed_in_as
                .filter(|_| existing)
                .map(|(_, session)| session),
            token,
        };
        let id = self.park(pending, from, via).await?;
        Ok((id, options))
    }

    /// `register.finish`. The ceremony is consumed whatever the outcome. Returns only after the
    /// new passkey is flushed to disk.
    pub async fn register_finish(
        &self,
        ceremony_id: &Uuid,
        credential: &RegisterPublicKeyCredential,
        token: bool,
        via: Transport,
        meta: &SessionMeta,
    ) -> Result<Registered, Error> {
        let mut username = None;
        let outcome = self
            .register_finish_inner(ceremony_id, credential, token, via, meta, &mut username)
            .await;
        match &outcome {
            Ok(done) => {
                let user = done.signed_in.user.id;
                let credential_id = done.credential_id.clone();
                self.inner.events.emit(Event::RegistrationSucceeded {
                    user,
                    credential_id: credential_id.clone(),
                    new_account: done.new_account,
                });
                if !done.new_account {
                    self.inner.events.emit(Event::PasskeyAdded {
                        user,
                        credential_id,
                    });
                }
            }
            Err(e) => self.inner.events.emit(Event::RegistrationFailed {
                username,
                code: e.code(),
            }),
        }
        outcome
    }

    async fn register_finish_inner(
        &self,
        ceremony_id: &Uuid,
        credential: &RegisterPublicKeyCredential,
        token: bool,
        via: Transport,
        meta: &SessionMeta,
        username: &mut Option<String>,
    ) -> Result<Registered, Error> {
        let PendingState::Register {
            state,
            user,
            existing,
            authorized_by,
            token: token_at_begin,
        } = self.take(ceremony_id, CeremonyKind::Register).await?
        else {
            return Err(Error::CeremonyNotFound);
        };
        *username = Some(user.name.clone());
        // Adding a passkey is allowed only while the session that asked for it lives: one
        // revoked in the meantime (logout, sessions.revoke, a deleted passkey) cannot finish.
        if existing && authorized_by.and_then(|s| self.inner.tokens.user_of(&s)) != Some(user.id) {
            return Err(Error::Unauthorized(
                "The session that began adding this passkey has ended; sign in again.",
            ));
        }
        check_same_origin(&credential.response.client_data_json)?;
        // What webauthn-rs lets through: id length, trailing bytes (WebAuthn L3 §6.5.1).
        crate::aaguid::check_registration_shape(&credential.response.attestation_object)
            .map_err(Error::VerificationFailed)?;
        let passkey = match self
            .inner
            .webauthn
            .finish_passkey_registration(credential, &state)
        {
            Ok(passkey) => passkey,
            // webauthn-rs reports an excluded credential (one of the account's own) as an
            // altered algorithm: a registered id is named as such. Asked only on this path; on
            // success the store's write is what refuses an id already registered.
            Err(_) if self.store().credential(&credential.raw_id).await?.is_some() => {
                return Err(Error::CredentialInUse)
            }
            Err(e) => return Err(verification_error(e)),
        };
        check_key_matches_its_algorithm(&passkey)?;
        // Decoded once, here, in the form sign-in verifies with; a key sign-in could not use
        // is refused now rather than at every sign-in.
        let public_key = PublicKey::from_passkey(&passkey)
            .ok()
            .filter(|key| key.check().is_ok())
            .ok_or(Rejection::UnusableKey)?;
        let record = CredentialRecord {
            user_id: user.id,
            passkey,
            created_at: self.now_secs(),
            last_used_at: None,
            label: None,
            aaguid: crate::aaguid::from_attestation_object(&credential.response.attestation_object),
            public_key: Some(public_key),
        };
        if existing {
            self.store()
                .add_credential(&record, self.inner.max_passkeys)
                .await?;
        } else {
            self.store().create_user(&user, &record).await?;
        }
        self.store().flush().await?;
        let credential_id = crate::b64url(record.passkey.cred_id());
        let want_token = token || token_at_begin;
        Ok(Registered {
            signed_in: self
                .signed_in(user, &credential_id, want_token, via, existing, meta)
                .await?,
            credential_id,
            new_account: !existing,
        })
    }
}

/// A COSE key whose algorithm names another curve than the key's (alg -35, ES384, on a P-256
/// key, say) would register and then never verify; refused at registration instead.
fn check_key_matches_its_algorithm(passkey: &webauthn_rs::prelude::Passkey) -> Result<(), Error> {
    use webauthn_rs::prelude::{COSEAlgorithm as A, COSEKeyType as K, ECDSACurve as C};
    let key = &webauthn_rs::prelude::Credential::from(passkey.clone()).cred;
    let consistent = match (&key.type_, &key.key) {
        (A::ES256, K::EC_EC2(ec)) => ec.curve == C::SECP256R1,
        (A::ES384, K::EC_EC2(ec)) => ec.curve == C::SECP384R1,
        (A::ES521, K::EC_EC2(ec)) => ec.curve == C::SECP521R1,
        (A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512, K::RSA(_)) => true,
        (A::EDDSA, K::EC_OKP(_)) => true,
        _ => false,
    };
    if consistent {
        Ok(())
    } else {
        Err(Error::VerificationFailed(
            "the passkey's key does not match its algorithm (the curve or key type is another's)",
        ))
    }
}

/// webauthn-rs asks for non-resident keys; usernameless sign-in needs resident ones, so the
/// requirement comes from the config. The server-side state does not depend on it.
fn set_resident_key(options: &mut CreationChallengeResponse, wanted: ResidentKey) {
    let requirement = match wanted {
        ResidentKey::Required => ResidentKeyRequirement::Required,
        ResidentKey::Preferred => ResidentKeyRequirement::Preferred,
        ResidentKey::Discouraged => ResidentKeyRequirement::Discouraged,
    };
    let selection = options
        .public_key
        .authenticator_selection
        .get_or_insert_with(AuthenticatorSelectionCriteria::default);
    selection.resident_key = Some(requirement);
    selection.require_resident_key = wanted == ResidentKey::Required;
}
