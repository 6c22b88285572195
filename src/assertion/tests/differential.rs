//! Our verifier against webauthn-rs on thousands of assertions: valid ones, and ones altered in
//! every byte field of the authenticator data, every client data member, the signature's
//! encoding, counters, flags, credential ids, user handles and keys, each signed again where the
//! point is to reach the check behind the signature (the alterations are in `mutations/`). The
//! two must agree on every accept/reject, except where one of the named [`Difference`]s (each
//! with its own test in `differences.rs`) explains why we refuse what webauthn-rs accepts.
//! EdDSA, which webauthn-rs cannot hold, is judged against webauthn-rs's verdict on the same
//! alteration of an ES256 assertion.
//!
//! Deterministic: a seeded xorshift drives the random alterations.

use std::collections::BTreeMap;

use serde_json::json;

use super::mutations::{m, mutations, random_mutation, Mutation, XorShift};
use super::*;
use crate::assertion::authdata::{self, AT, BE, BS, UP, UV};
use crate::assertion::Rejection;
use crate::softkey::Algorithm as Alg;

/// Where we are deliberately stricter than webauthn-rs 0.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Difference {
    /// `crossOrigin: true` or a `topOrigin`: refused by the ceremony policy; webauthn-rs does
    /// not look at either when verifying an assertion.
    CrossOrigin,
    /// Bytes after the authenticator data's end: webauthn-rs ignores them.
    TrailingAuthData,
    /// The AT flag: webauthn-rs parses attested credential data in an assertion and goes on.
    AttestedData,
    /// `origin` is compared as a string; webauthn-rs parses it as a URL, so
    /// `http://localhost:8080/`, `HTTP://LOCALHOST:8080` or a path pass there.
    OriginString,
    /// A padded challenge: webauthn-rs's base64 decoder ignores padding.
    ChallengePadding,
}

/// The differences that make `parts` something we refuse and webauthn-rs may accept.
pub(super) fn stricter_here(parts: &Parts) -> Vec<Difference> {
    let mut out = Vec::new();
    let ad = &parts.auth_data;
    if ad.len() >= 37 {
        if ad[32] & AT != 0 {
            out.push(Difference::AttestedData);
        } else if authdata::parse(ad) == Err(Rejection::TrailingAuthData) {
            out.push(Difference::TrailingAuthData);
        }
    }
    if let Ok(Value::Object(c)) = serde_json::from_slice::<Value>(&parts.client_data) {
        let top = c.get("topOrigin").is_some_and(|v| !v.is_null());
        if c.get("crossOrigin") == Some(&json!(true)) || top {
            out.push(Difference::CrossOrigin);
        }
        if let Some(Value::String(origin)) = c.get("origin") {
            let ours = Url::parse(ORIGIN).unwrap().origin();
            if origin != ORIGIN && Url::parse(origin).is_ok_and(|u| u.origin() == ours) {
                out.push(Difference::OriginString);
            }
        }
        if let Some(Value::String(challenge)) = c.get("challenge") {
            if challenge.ends_with('=') {
                out.push(Difference::ChallengePadding);
            }
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    cases: usize,
    both_accept: usize,
    both_reject: usize,
    explained: BTreeMap<Difference, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn judge(
        &mut self,
        label: &str,
        parts: &Parts,
        ours: &Result<crate::assertion::Verified, Rejection>,
        reference: Result<Option<webauthn_rs::prelude::AuthenticationResult>, String>,
    ) {
        self.cases += 1;
        match (ours, &reference) {
            (Ok(v), Ok(Some(r))) => {
                self.both_accept += 1;
                let same = v.counter == r.counter()
                    && v.backup_eligible == r.backup_eligible()
                    && v.backup_state == r.backup_state()
                    && v.user_verified == r.user_verified()
                    && v.cred_id == *r.cred_id();
                if !same {
                    self.failures
                        .push(format!("{label}: results differ: {v:?} / {r:?}"));
                }
            }
            (Ok(_), Ok(None)) => self.both_accept += 1,
            (Err(_), Err(_)) => self.both_reject += 1,
            (Err(why), Ok(_)) => match stricter_here(parts).first() {
                Some(d) => *self.explained.entry(*d).or_default() += 1,
                None => self
                    .failures
                    .push(format!("{label}: we refuse ({why:?}), webauthn-rs accepts")),
            },
            (Ok(_), Err(e)) => self
                .failures
                .push(format!("{label}: we accept, webauthn-rs refuses ({e})")),
        }
    }
}

/// Runs `mutation` on a copy of `base` for both verifiers; returns webauthn-rs's verdict.
fn run(
    tally: &mut Tally,
    fx: (&Webauthn, &Verifier),
    enrolled: &Enrolled,
    ceremony: &Ceremony,
    base: &Parts,
    mutation: &Mutation,
    borrowed_verdict: Option<Result<(), String>>,
) -> Result<(), String> {
    let (wa, verifier) = fx;
    let mut parts = base.clone();
    (mutation.alter)(&mut parts, enrolled);
    if mutation.resign {
        parts.resign(enrolled);
    }
    let ours = ceremony.ours(verifier, enrolled, &parts);
    let label = format!(
        "{:?}/{:?}/{:?}: {}",
        enrolled.key.credentials()[0].algorithm(),
        ceremony.flow,
        ceremony.stored,
        mutation.label
    );
    let reference = match ceremony.reference(wa, enrolled, &parts) {
        Some(r) => r.map(Some).map_err(|e| e.to_string()),
        None => match borrowed_verdict {
            Some(v) => v.map(|()| None),
            None => return Ok(()), // EdDSA, signature-specific: covered by the step tests
        },
    };
    tally.judge(&label, &parts, &ours, reference.clone());
    reference.map(|_| ())
}

#[test]
fn our_verifier_and_webauthn_rs_agree_on_thousands_of_assertions() {
    let wa = webauthn();
    let verifier = verifier();
    let mut rng = XorShift(0x5eed_a55e_7710_u64);
    let mut tally = Tally::default();
    let mut eddsa = enroll(&wa, Alg::EdDsa);
    for alg in [Alg::Es256, Alg::Es384, Alg::Rs256] {
        let mut enrolled = enroll(&wa, alg);
        let mut list = mutations(alg, &enrolled, &mut rng);
        let random = if alg == Alg::Es256 { 600 } else { 150 };
        list.extend((0..random).map(|n| random_mutation(&mut rng, n)));
        for flow in [Flow::Username, Flow::Discoverable] {
            let ceremony = Ceremony::begin(&wa, &enrolled, flow, Stored::FRESH);
            let base = Parts::sign(&mut enrolled, &ceremony);
            // EdDSA in lockstep with ES256, on the same alterations.
            let ed = (alg == Alg::Es256).then(|| {
                let c = Ceremony::begin(&wa, &eddsa, flow, Stored::FRESH);
                let b = Parts::sign(&mut eddsa, &c);
                (c, b)
            });
            for mutation in &list {
                let verdict = run(
                    &mut tally,
                    (&wa, &verifier),
                    &enrolled,
                    &ceremony,
                    &base,
                    mutation,
                    None,
                );
                if let (Some((c, b)), true) = (&ed, mutation.generic) {
                    let _ = run(
                        &mut tally,
                        (&wa, &verifier),
                        &eddsa,
                        c,
                        b,
                        mutation,
                        Some(verdict),
                    );
                }
            }
        }
        // Stored counters and backup flags against the assertion's.
        let counters = [0u32, 1, 7, u32::MAX - 1, u32::MAX];
        for stored_counter in counters {
            for counter in [
                0,
                1,
                stored_counter.saturating_sub(1),
                stored_counter,
                stored_counter.saturating_add(1),
                u32::MAX,
            ] {
                let stored = Stored {
                    counter: stored_counter,
                    ..Stored::FRESH
                };
                let mutation = m(format!("counter {counter}"), true, move |p, _| {
                    p.auth_data[33..37].copy_from_slice(&counter.to_be_bytes())
                });
                for flow in [Flow::Username, Flow::Discoverable] {
                    let ceremony = Ceremony::begin(&wa, &enrolled, flow, stored);
                    let base = Parts::sign(&mut enrolled, &ceremony);
                    let _ = run(
                        &mut tally,
                        (&wa, &verifier),
                        &enrolled,
                        &ceremony,
                        &base,
                        &mutation,
                        None,
                    );
                }
            }
        }
        for (be, bs) in [(false, false), (true, false), (true, true), (false, true)] {
            let stored = Stored {
                counter: 0,
                backup_eligible: be,
                backup_state: bs,
            };
            for flow in [Flow::Username, Flow::Discoverable] {
                let ceremony = Ceremony::begin(&wa, &enrolled, flow, stored);
                let base = Parts::sign(&mut enrolled, &ceremony);
                for flags in [UP | UV, UP | UV | BE, UP | UV | BE | BS, UP | UV | BS] {
                    let mutation = m(format!("flags {flags:#04x}"), true, move |p, _| {
                        p.auth_data[32] = flags
                    });
                    let _ = run(
                        &mut tally,
                        (&wa, &verifier),
                        &enrolled,
                        &ceremony,
                        &base,
                        &mutation,
                        None,
                    );
                }
            }
        }
    }
    let Tally {
        cases,
        both_accept,
        both_reject,
        explained,
        failures,
    } = &tally;
    println!("{cases} assertions: {both_accept} accepted by both, {both_reject} refused by both, stricter here: {explained:?}");
    assert!(
        failures.is_empty(),
        "{} disagreements, first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(*cases >= 3000, "{cases}");
    assert!(
        *both_accept >= 300 && *both_reject >= 2000,
        "{both_accept} / {both_reject}"
    );
    for d in [
        Difference::CrossOrigin,
        Difference::TrailingAuthData,
        Difference::AttestedData,
        Difference::OriginString,
        Difference::ChallengePadding,
    ] {
        assert!(
            explained.get(&d).copied().unwrap_or(0) > 0,
            "{d:?} never came up"
        );
    }
}
