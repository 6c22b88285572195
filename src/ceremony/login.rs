//! Sign-in: with a username (the user's passkeys are offered) or usernameless (the passkey's
//! user handle names the account; used by autofill).

use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::pending::{CeremonyKind, PendingState};
use super::{Ceremonies, SignedIn};
use crate::endpoints::Transport;
use crate::error::Error;
use crate::events::Event;
use crate::tokens::SessionMeta;

impl Ceremonies {
    /// `login.begin`: with a username, a sign-in for that account; without, a discoverable one.
    pub async fn login_begin(
        &self,
        username: Option<&str>,
        token: bool,
        from: Option<std::net::IpAddr>,
        via: Transport,
    ) -> Result<(Uuid, RequestChallengeResponse), Error> {
        self.allow_begin(from)?;
        let assertions = &self.inner.assertions;
        let (options, state) = match username {
            Some(name) => {
                let name = crate::names::username(name, self.inner.max_username_chars)?;
                // One read for both (on PostgreSQL one query).
                let (user, passkeys) = self
                    .store()
                    .user_with_sign_in_passkeys(&name)
                    .await?
                    .ok_or(Error::UnknownUser)?;
                self.inner
                    .attempts
                    .check(&user.id, self.inner.clock.now_ms())?;
                if passkeys.is_empty() {
                    // The account exists (its name is taken) but has nothing to sign in with.
                    return Err(Error::NoPasskey);
                }
                let (options, state) = assertions.start_login(passkeys)?;
                let pending = PendingState::Login { state, user, token };
                (options, pending)
            }
            None => {
                let (options, state) = assertions.start_discoverable()?;
                (options, PendingState::Discoverable { state, token })
            }
        };
        let id = self.park(state, from, via).await?;
        Ok((id, options))
    }

    /// `login.finish`. The ceremony is consumed whatever the outcome.
    pub async fn login_finish(
        &self,
        ceremony_id: &Uuid,
        credential: &PublicKeyCredential,
        token: bool,
        via: Transport,
        meta: &SessionMeta,
    ) -> Result<SignedIn, Error> {
        let mut user = None;
        let started = std::time::Instant::now();
        let outcome = self
            .login_finish_inner(ceremony_id, credential, token, via, meta, &mut user)
            .await;
        if let Some(metrics) = self.inner.events.metrics() {
            metrics.sign_in().observe(started.elapsed());
        }
        match &outcome {
            Ok(signed_in) => {
                self.inner.attempts.succeeded(&signed_in.user.id);
                self.inner.events.emit(Event::SignInSucceeded {
                    user: signed_in.user.id,
                    credential_id: crate::b64url(credential.get_credential_id()),
                })
            }
            Err(e) => {
                // A failed verification counts against the account (not a stale ceremony,
                // nor the backoff's own refusal).
                if let (Some(user), crate::error::ErrorCode::VerificationFailed) = (&user, e.code())
                {
                    self.inner.attempts.failed(user, self.inner.clock.now_ms());
                }
                self.inner.events.emit(Event::SignInFailed {
                    user,
                    code: e.code(),
                })
            }
        }
        outcome
    }

    async fn login_finish_inner(
        &self,
        ceremony_id: &Uuid,
        credential: &PublicKeyCredential,
        token: bool,
        via: Transport,
        meta: &SessionMeta,
        user_seen: &mut Option<Uuid>,
    ) -> Result<SignedIn, Error> {
        let pending = self.take(ceremony_id, CeremonyKind::Login).await?;
        // Verified here, WebAuthn L3 §7.2 step by step (src/assertion/); webauthn-rs only
        // reads the user handle.
        let (webauthn, assertions) = (&self.inner.webauthn, &self.inner.assertions);
        let (user, result, token_at_begin) =
            match pending {
                PendingState::Login { state, user, token } => {
                    *user_seen = Some(user.id);
                    // Also at finish: ceremonies begun before the backoff started wait it out too.
                    self.inner
                        .attempts
                        .check(&user.id, self.inner.clock.now_ms())?;
                    // WebAuthn L3 §7.2 step 6: a user handle, when the authenticator returns one,
                    // must be the account's (webauthn-rs checks it only on the usernameless path).
                    if let Some(handle) = &credential.response.user_handle {
                        if handle.as_slice() != user.id.as_bytes() {
                            return Err(Error::VerificationFailed(
                                "the passkey's user handle names another account",
                            ));
                        }
                    }
                    let result =
                        self.timed_check(|| assertions.finish_login(credential, &state))?;
                    (Some(user), result, token)
                }
                PendingState::Discoverable { state, token } => {
                    let (user_id, cred_id) = webauthn
                        .identify_discoverable_authentication(credential)
                        .map_err(|_| {
                            Error::VerificationFailed("the passkey returned no valid user handle")
                        })?;
                    let record = self.store().credential(cred_id).await?.ok_or(
                        Error::VerificationFailed("this passkey is not registered here"),
                    )?;
                    *user_seen = Some(record.user_id);
                    self.inner
                        .attempts
                        .check(&record.user_id, self.inner.clock.now_ms())?;
                    if record.user_id != user_id {
                        return Err(Error::VerificationFailed(
                            "the passkey belongs to another account than its user handle names",
                        ));
                    }
                    let result = self.timed_check(|| {
                        assertions.finish_discoverable(credential, &state, record)
                    })?;
                    (None, result, token)
                }
                PendingState::Register { .. } => return Err(Error::CeremonyNotFound),
            };
        let user_id = user_seen.ok_or(Error::UnknownUser)?;
        let user = match user {
            Some(user) => user,
            None => self
                .store()
                .user(&user_id)
                .await?
                .ok_or(Error::UnknownUser)?,
        };
        let credential_id = crate::b64url(&result.cred_id);
        let want_token = token || token_at_begin;
        let opening = self.opening(&user, &credential_id, want_token, via, false, meta)?;
        // The stored credential is the authority on ownership and on the counter (the state
        // captured at begin may be stale): the store checks both in one atomic update, which
        // writes the token's session too, only if they pass.
        self.store()
            .record_sign_in(&result, &user_id, self.now_secs(), opening.record())
            .await?;
        self.opened(user, opening, true).await
    }
}

impl Ceremonies {
    /// Runs one assertion check (parsing and the signature) and records how long it took.
    fn timed_check<T>(&self, check: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let outcome = check();
        if let Some(metrics) = self.inner.events.metrics() {
            metrics.signature_check().observe(started.elapsed());
        }
        outcome
    }
}
