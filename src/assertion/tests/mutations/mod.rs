//! The alterations the differential test applies: every byte of the authenticator data's fixed
//! part, every flags value, extensions and attested data, truncations and trailing bytes, other
//! RP ids, credential ids and user handles, another key, and seeded random byte edits; the
//! client data members (`client_data.rs`) and signature encodings (`signature.rs`) in their own
//! files. Each says whether to sign again after altering, and whether it means the same for
//! every algorithm (so EdDSA can borrow ES256's reference verdict).

mod client_data;
mod signature;

use std::rc::Rc;

use serde_json::json;

use super::*;
use crate::assertion::authdata::{AT, BE, BS, ED, UP, UV};
use crate::softkey::Algorithm as Alg;
use client_data::client_data_mutations;
use signature::signature_mutations;

/// Marsaglia's xorshift64: enough to pick alterations reproducibly.
pub(super) struct XorShift(pub(super) u64);

impl XorShift {
    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(super) fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

pub(super) type Alter = Rc<dyn Fn(&mut Parts, &Enrolled)>;

pub(super) struct Mutation {
    pub(super) label: String,
    /// Sign again after altering, so the alteration reaches the checks behind the signature.
    pub(super) resign: bool,
    /// Means the same for every algorithm (so EdDSA can borrow ES256's reference verdict).
    pub(super) generic: bool,
    pub(super) alter: Alter,
}

pub(super) fn m(
    label: impl Into<String>,
    resign: bool,
    alter: impl Fn(&mut Parts, &Enrolled) + 'static,
) -> Mutation {
    Mutation {
        label: label.into(),
        resign,
        generic: true,
        alter: Rc::new(alter),
    }
}

pub(super) fn specific(mut mutation: Mutation) -> Mutation {
    mutation.generic = false;
    mutation
}

pub(super) fn member(name: &'static str, value: Option<Value>) -> impl Fn(&mut Parts, &Enrolled) {
    move |p, _| p.set_member(name, value.clone())
}

/// Replaces the first `from` in the client data JSON text with `to`.
pub(super) fn text(from: &'static str, to: &'static str) -> impl Fn(&mut Parts, &Enrolled) {
    move |p, _| {
        let json = String::from_utf8(p.client_data.clone()).unwrap();
        p.client_data = json.replacen(from, to, 1).into_bytes();
    }
}

pub(super) fn flags_and_tail(flags: u8, tail: Vec<u8>) -> impl Fn(&mut Parts, &Enrolled) {
    move |p, _| {
        p.auth_data.truncate(37);
        p.auth_data[32] = flags;
        p.auth_data.extend_from_slice(&tail);
    }
}

/// Attested credential data for `enrolled`'s credential: AAGUID, id length, id, COSE key.
pub(super) fn attested_data(cose: &[u8], cred_id: &[u8]) -> Vec<u8> {
    let len = u16::try_from(cred_id.len()).unwrap().to_be_bytes();
    [&[0u8; 16][..], &len, cred_id, cose].concat()
}

/// CBOR extension blobs, well formed or not.
pub(super) fn extension_blobs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty map", vec![0xa0]),
        (
            "uvm",
            vec![0xa1, 0x63, b'u', b'v', b'm', 0x81, 0x83, 2, 2, 2],
        ),
        (
            "credProtect",
            vec![
                0xa1, 0x6b, b'c', b'r', b'e', b'd', b'P', b'r', b'o', b't', b'e', b'c', b't', 0x02,
            ],
        ),
        (
            "two members",
            vec![0xa2, 0x61, b'a', 0xf5, 0x61, b'b', 0x40],
        ),
        ("indefinite map", vec![0xbf, 0x61, b'a', 0x01, 0xff]),
        (
            "nested",
            vec![0xa1, 0x61, b'a', 0xa1, 0x61, b'b', 0x82, 0x01, 0x20],
        ),
        (
            "tagged value",
            vec![0xa1, 0x61, b'a', 0xc1, 0x1a, 0, 0, 0, 1],
        ),
        (
            "float value",
            vec![0xa1, 0x61, b'a', 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0],
        ),
        ("nothing", vec![]),
        ("array", vec![0x81, 0x01]),
        ("integer key", vec![0xa1, 0x01, 0x02]),
        ("truncated", vec![0xa1, 0x61, b'a']),
        ("bad utf-8 key", vec![0xa1, 0x61, 0xff, 0x01]),
        ("unterminated indefinite", vec![0xbf, 0x61, b'a', 0x01]),
        ("reserved info", vec![0xa1, 0x61, b'a', 0x1c]),
        ("text", vec![0x61, b'a']),
    ]
}

/// Every alteration of the fixed list, for an assertion of `alg`.
pub(super) fn mutations(alg: Alg, enrolled: &Enrolled, rng: &mut XorShift) -> Vec<Mutation> {
    let mut out = Vec::new();
    for i in 0..12 {
        out.push(m(format!("valid #{i}"), i % 2 == 0, |_, _| {}));
    }
    // Every byte of the fixed part (rpIdHash, flags, counter), one random bit, signed or not.
    for i in 0..37 {
        let bit = 1u8 << rng.below(8);
        for resign in [true, false] {
            out.push(m(
                format!("authData[{i}] ^= {bit:#04x}"),
                resign,
                move |p, _| p.auth_data[i] ^= bit,
            ));
        }
    }
    // Every flags byte.
    for flags in 0..=255u8 {
        out.push(m(format!("flags {flags:#04x}"), true, move |p, _| {
            p.auth_data[32] = flags
        }));
    }
    // Flags with what they announce, or not.
    let cose = enrolled.key.credentials()[0].cose_public_key().unwrap();
    let acd = attested_data(&cose, &enrolled.cred_id);
    for (name, ext) in extension_blobs() {
        for base in [UP | UV, UP | UV | BE | BS] {
            out.push(m(
                format!("ED {base:#04x} + {name}"),
                true,
                flags_and_tail(base | ED, ext.clone()),
            ));
            out.push(m(
                format!("ED {base:#04x} + {name} + trailing"),
                true,
                flags_and_tail(base | ED, [&ext[..], &[0x00]].concat()),
            ));
        }
        out.push(m(
            format!("ED clear + {name}"),
            true,
            flags_and_tail(UP | UV, ext.clone()),
        ));
        out.push(m(
            format!("AT|ED + attested data + {name}"),
            true,
            flags_and_tail(UP | UV | AT | ED, [&acd[..], &ext].concat()),
        ));
    }
    out.push(specific(m(
        "AT + attested data",
        true,
        flags_and_tail(UP | UV | AT, acd.clone()),
    )));
    out.push(m(
        "AT + nothing",
        true,
        flags_and_tail(UP | UV | AT, Vec::new()),
    ));
    out.push(m(
        "AT + truncated attested data",
        true,
        flags_and_tail(UP | UV | AT, acd[..20].to_vec()),
    ));
    out.push(m(
        "RFU bits",
        true,
        flags_and_tail(UP | UV | 0x02 | 0x20, Vec::new()),
    ));
    for len in 0..37 {
        out.push(m(format!("authData[..{len}]"), true, move |p, _| {
            p.auth_data.truncate(len)
        }));
    }
    for extra in [1usize, 2, 4, 32] {
        let tail: Vec<u8> = (0..extra).map(|_| rng.byte()).collect();
        for resign in [true, false] {
            let tail = tail.clone();
            out.push(m(format!("{extra} trailing bytes"), resign, move |p, _| {
                p.auth_data.extend_from_slice(&tail)
            }));
        }
    }
    for rp_id in ["example.com", "localhost.", "LOCALHOST", "", "ocalhost"] {
        out.push(m(format!("rpIdHash of {rp_id:?}"), true, move |p, _| {
            p.auth_data[..32].copy_from_slice(&openssl::sha::sha256(rp_id.as_bytes()))
        }));
    }
    client_data_mutations(&mut out, rng);
    signature_mutations(&mut out, alg, rng);
    // Credential ids and user handles (which the signature does not cover).
    out.push(m("rawId of another credential", false, |p, _| {
        p.raw_id = vec![7; 16]
    }));
    out.push(m("rawId truncated", false, |p, _| p.raw_id.truncate(8)));
    out.push(m("rawId empty", false, |p, _| p.raw_id.clear()));
    out.push(m("no userHandle", false, |p, _| p.user_handle = None));
    out.push(m("empty userHandle", false, |p, _| {
        p.user_handle = Some(Vec::new())
    }));
    out.push(m("another userHandle", false, |p, _| {
        p.user_handle = Some(vec![1; 16])
    }));
    out.push(specific(m("signed by another key", false, |p, e| {
        let mut other = SoftAuthenticator::with_algorithm(e.key.credentials()[0].algorithm());
        let options = json!({
            "rp": {"id": RP_ID}, "user": {"id": "AAAA"}, "challenge": "AAAA",
            "pubKeyCredParams": [{"type": "public-key", "alg": other.algorithm.cose_id()}],
        });
        other.register(&options, ORIGIN).unwrap();
        let id = other.credentials()[0].id.clone();
        p.signature = other.sign_raw(&id, &p.auth_data, &p.client_data).unwrap();
    })));
    out
}

/// A random alteration: one to three byte-level edits anywhere, usually signed again.
pub(super) fn random_mutation(rng: &mut XorShift, n: usize) -> Mutation {
    let edits: Vec<(u8, u64, u8)> = (0..1 + rng.below(3))
        .map(|_| (rng.byte() % 6, rng.next(), rng.byte()))
        .collect();
    let resign = rng.below(5) != 0;
    m(format!("random #{n} {edits:?}"), resign, move |p, _| {
        for &(kind, at, byte) in &edits {
            let target = if kind < 3 {
                &mut p.auth_data
            } else {
                &mut p.client_data
            };
            let len = target.len();
            match kind % 3 {
                0 if len > 0 => target[at as usize % len] ^= 1 << (byte % 8),
                1 => target.insert(at as usize % (len + 1), byte),
                _ if len > 0 => {
                    target.remove(at as usize % len);
                }
                _ => {}
            }
        }
    })
}
