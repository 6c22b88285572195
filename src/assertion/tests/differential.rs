//! Our verifier against webauthn-rs on thousands of assertions: valid ones, and ones altered in
//! every byte field of the authenticator data, every client data member, the signature's
//! encoding, counters, flags, credential ids, user handles and keys, each signed again where the
//! point is to reach the check behind the signature. The two must agree on every accept/reject,
//! except where one of the named [`Difference`]s (each with its own test below) explains why we
//! refuse what webauthn-rs accepts. EdDSA, which webauthn-rs cannot hold, is judged against
//! webauthn-rs's verdict on the same alteration of an ES256 assertion.
//!
//! Deterministic: a seeded xorshift drives the random alterations.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{json, Map};

use super::*;
use crate::assertion::authdata::{self, AT, BE, BS, ED, UP, UV};
use crate::assertion::Rejection;
use crate::softkey::Algorithm as Alg;

/// Where we are deliberately stricter than webauthn-rs 0.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Difference {
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
fn stricter_here(parts: &Parts) -> Vec<Difference> {
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

/// Marsaglia's xorshift64: enough to pick alterations reproducibly.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

type Alter = Rc<dyn Fn(&mut Parts, &Enrolled)>;

struct Mutation {
    label: String,
    /// Sign again after altering, so the alteration reaches the checks behind the signature.
    resign: bool,
    /// Means the same for every algorithm (so EdDSA can borrow ES256's reference verdict).
    generic: bool,
    alter: Alter,
}

fn m(
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

fn specific(mut mutation: Mutation) -> Mutation {
    mutation.generic = false;
    mutation
}

fn member(name: &'static str, value: Option<Value>) -> impl Fn(&mut Parts, &Enrolled) {
    move |p, _| p.set_member(name, value.clone())
}

/// Replaces the first `from` in the client data JSON text with `to`.
fn text(from: &'static str, to: &'static str) -> impl Fn(&mut Parts, &Enrolled) {
    move |p, _| {
        let json = String::from_utf8(p.client_data.clone()).unwrap();
        p.client_data = json.replacen(from, to, 1).into_bytes();
    }
}

fn flags_and_tail(flags: u8, tail: Vec<u8>) -> impl Fn(&mut Parts, &Enrolled) {
    move |p, _| {
        p.auth_data.truncate(37);
        p.auth_data[32] = flags;
        p.auth_data.extend_from_slice(&tail);
    }
}

/// Attested credential data for `enrolled`'s credential: AAGUID, id length, id, COSE key.
fn attested_data(cose: &[u8], cred_id: &[u8]) -> Vec<u8> {
    let len = u16::try_from(cred_id.len()).unwrap().to_be_bytes();
    [&[0u8; 16][..], &len, cred_id, cose].concat()
}

/// CBOR extension blobs, well formed or not.
fn extension_blobs() -> Vec<(&'static str, Vec<u8>)> {
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
fn mutations(alg: Alg, enrolled: &Enrolled, rng: &mut XorShift) -> Vec<Mutation> {
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

fn client_data_mutations(out: &mut Vec<Mutation>, rng: &mut XorShift) {
    let types = [
        json!("webauthn.create"),
        json!("webauthn.get "),
        json!("WEBAUTHN.GET"),
        json!(""),
        json!(1),
        json!(null),
    ];
    for value in types {
        out.push(m(
            format!("type {value}"),
            true,
            member("type", Some(value)),
        ));
    }
    out.push(m("no type", true, member("type", None)));
    let other_challenge = crate::b64url(&[rng.byte(); 32]);
    let challenges = [
        json!(other_challenge),
        json!(""),
        json!(1),
        json!(null),
        json!(["x"]),
    ];
    for value in challenges {
        out.push(m(
            format!("challenge {value}"),
            true,
            member("challenge", Some(value)),
        ));
    }
    out.push(m("no challenge", true, member("challenge", None)));
    let challenge_edit = |label: &str, edit: fn(&str) -> String| {
        m(
            format!("challenge {label}"),
            true,
            move |p: &mut Parts, _: &Enrolled| {
                let old = p.client_json()["challenge"].as_str().unwrap().to_owned();
                p.set_member("challenge", Some(json!(edit(&old))));
            },
        )
    };
    out.push(challenge_edit("padded", |c| format!("{c}=")));
    out.push(challenge_edit("shortened", |c| c[..c.len() - 1].to_owned()));
    out.push(challenge_edit("lengthened", |c| format!("{c}A")));
    // Not generic: whether it changes anything depends on the challenge's characters.
    out.push(specific(challenge_edit("standard alphabet", |c| {
        c.replace('-', "+").replace('_', "/")
    })));
    out.push(challenge_edit("first char changed", |c| {
        let first = if c.starts_with('A') { "B" } else { "A" };
        format!("{first}{}", &c[1..])
    }));
    out.push(specific(challenge_edit("upper-cased", |c| {
        c.to_uppercase()
    })));
    for origin in [
        "http://localhost:8081",
        "https://localhost:8080",
        "http://localhost",
        "http://evil.example:8080",
        "http://localhost:8080/",
        "HTTP://LOCALHOST:8080",
        "http://localhost:8080/login?x#y",
        " http://localhost:8080",
        "http://localhost:08080",
        "http://localhost.:8080",
        "null",
        "",
        "localhost",
    ] {
        out.push(m(
            format!("origin {origin:?}"),
            true,
            member("origin", Some(json!(origin))),
        ));
    }
    out.push(m("origin 1", true, member("origin", Some(json!(1)))));
    out.push(m("no origin", true, member("origin", None)));
    for value in [
        json!(true),
        json!(false),
        json!(null),
        json!("true"),
        json!(1),
    ] {
        out.push(m(
            format!("crossOrigin {value}"),
            true,
            member("crossOrigin", Some(value)),
        ));
    }
    out.push(m("no crossOrigin", true, member("crossOrigin", None)));
    for value in [
        json!("https://framer.example"),
        json!(null),
        json!(5),
        json!(""),
    ] {
        out.push(m(
            format!("topOrigin {value}"),
            true,
            member("topOrigin", Some(value)),
        ));
    }
    for value in [
        json!({"status": "present"}),
        json!({"status": "supported", "id": "abc"}),
        json!({"id": "abc"}),
        json!({"status": 1}),
        json!("present"),
        json!(null),
    ] {
        out.push(m(
            format!("tokenBinding {value}"),
            true,
            member("tokenBinding", Some(value)),
        ));
    }
    out.push(m(
        "unknown member",
        true,
        member(
            "other_keys_can_be_added_here",
            Some(json!("do not compare clientDataJSON against a template")),
        ),
    ));
    out.push(m(
        "duplicated type",
        true,
        text("{", r#"{"type":"webauthn.get","#),
    ));
    out.push(m(
        "duplicated origin",
        true,
        text("{", r#"{"origin":"http://localhost:8080","#),
    ));
    out.push(m(
        "escaped type",
        true,
        text("webauthn.get", r"webauthn\u002eget"),
    ));
    out.push(m("escaped origin", true, text("http://", r"http:\/\/")));
    out.push(m("pretty printed", true, |p, _| {
        let value: Value = serde_json::from_slice(&p.client_data).unwrap();
        p.client_data = serde_json::to_vec_pretty(&value).unwrap();
    }));
    out.push(m("trailing garbage", true, |p, _| {
        p.client_data.extend_from_slice(b" x")
    }));
    out.push(m("trailing whitespace", true, |p, _| {
        p.client_data.extend_from_slice(b" \n")
    }));
    out.push(m("truncated", true, |p, _| {
        p.client_data.pop();
    }));
    out.push(m("byte order mark", true, |p, _| {
        p.client_data
            .splice(0..0, [0xef, 0xbb, 0xbf])
            .for_each(drop)
    }));
    out.push(m(
        "control character",
        true,
        text("webauthn.get", "webauthn.g\u{1}et"),
    ));
    out.push(m("invalid UTF-8", true, |p, _| {
        let at = p.client_data.len() / 2;
        p.client_data.insert(at, 0xff);
    }));
    out.push(m("not an object", true, |p, _| {
        p.client_data = b"[1,2]".to_vec()
    }));
    out.push(m("members reordered", true, |p, _| {
        let map: Map<String, Value> = p.client_json();
        let mut reversed = Map::new();
        for (k, v) in map.into_iter().rev() {
            reversed.insert(k, v);
        }
        p.set_client_json(reversed);
    }));
    // The same alterations without signing again: the signature no longer covers them.
    out.push(m(
        "unsigned unknown member",
        false,
        member("extra", Some(json!(1))),
    ));
    out.push(m(
        "unsigned origin",
        false,
        member("origin", Some(json!("http://localhost:8080"))),
    ));
}

fn signature_mutations(out: &mut Vec<Mutation>, alg: Alg, rng: &mut XorShift) {
    for _ in 0..6 {
        let (pos, bit) = (rng.next() as usize, 1u8 << rng.below(8));
        out.push(specific(m(
            format!("signature bit flip at {pos}"),
            false,
            move |p, _| {
                let i = pos % p.signature.len();
                p.signature[i] ^= bit;
            },
        )));
    }
    out.push(specific(m("signature empty", false, |p, _| {
        p.signature.clear()
    })));
    out.push(specific(m("signature truncated", false, |p, _| {
        p.signature.pop();
    })));
    out.push(specific(m("signature + trailing byte", false, |p, _| {
        p.signature.push(0)
    })));
    match alg {
        Alg::Es256 | Alg::Es384 => {
            let len = if alg == Alg::Es256 { 32 } else { 48 };
            out.push(specific(m("ECDSA high s", false, move |p, _| {
                let sig = openssl::ecdsa::EcdsaSig::from_der(&p.signature).unwrap();
                let nid = if len == 32 {
                    openssl::nid::Nid::X9_62_PRIME256V1
                } else {
                    openssl::nid::Nid::SECP384R1
                };
                let group = openssl::ec::EcGroup::from_curve_name(nid).unwrap();
                let mut order = openssl::bn::BigNum::new().unwrap();
                let mut ctx = openssl::bn::BigNumContext::new().unwrap();
                group.order(&mut order, &mut ctx).unwrap();
                let high = &order - sig.s();
                let r = sig.r().to_owned().unwrap();
                p.signature = openssl::ecdsa::EcdsaSig::from_private_components(r, high)
                    .unwrap()
                    .to_der()
                    .unwrap();
            })));
            out.push(specific(m("ECDSA raw r ‖ s", false, move |p, _| {
                let sig = openssl::ecdsa::EcdsaSig::from_der(&p.signature).unwrap();
                p.signature = [
                    sig.r().to_vec_padded(len).unwrap(),
                    sig.s().to_vec_padded(len).unwrap(),
                ]
                .concat();
            })));
            out.push(specific(m(
                "ECDSA r with an extra zero byte",
                false,
                |p, _| {
                    let r_len = usize::from(p.signature[3]);
                    let mut der = vec![0x30, p.signature[1] + 1, 0x02, p.signature[3] + 1, 0x00];
                    der.extend_from_slice(&p.signature[4..]);
                    assert_eq!(der.len(), p.signature.len() + 1, "{r_len}");
                    p.signature = der;
                },
            )));
            out.push(specific(m(
                "ECDSA long-form sequence length",
                false,
                |p, _| {
                    let mut der = vec![0x30, 0x81, p.signature[1]];
                    der.extend_from_slice(&p.signature[2..]);
                    p.signature = der;
                },
            )));
            out.push(specific(m("ECDSA r = 0", false, |p, _| {
                let sig = openssl::ecdsa::EcdsaSig::from_der(&p.signature).unwrap();
                let s = sig.s().to_vec();
                let body = [&[0x02, 0x01, 0x00, 0x02, s.len() as u8][..], &s].concat();
                p.signature = [&[0x30, body.len() as u8][..], &body].concat();
            })));
            out.push(specific(m("ECDSA SEQUENCE tag changed", false, |p, _| {
                p.signature[0] = 0x31
            })));
        }
        Alg::Rs256 => {
            out.push(specific(m("RSA leading zero added", false, |p, _| {
                p.signature.insert(0, 0)
            })));
            out.push(specific(m("RSA first byte dropped", false, |p, _| {
                p.signature.remove(0);
            })));
            out.push(specific(m("RSA all zero", false, |p, _| {
                p.signature.iter_mut().for_each(|b| *b = 0)
            })));
            out.push(specific(m("RSA modulus-sized ones", false, |p, _| {
                p.signature.iter_mut().for_each(|b| *b = 0xff)
            })));
        }
        Alg::EdDsa => {}
    }
}

/// A random alteration: one to three byte-level edits anywhere, usually signed again.
fn random_mutation(rng: &mut XorShift, n: usize) -> Mutation {
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

/// The decisions on `alter`ed ES256 assertions: (ours, webauthn-rs's).
fn both(
    flow: Flow,
    alter: impl Fn(&mut Parts, &Enrolled),
) -> (Result<crate::assertion::Verified, Rejection>, bool) {
    let wa = webauthn();
    let mut enrolled = enroll(&wa, Alg::Es256);
    let ceremony = Ceremony::begin(&wa, &enrolled, flow, Stored::FRESH);
    let mut parts = Parts::sign(&mut enrolled, &ceremony);
    alter(&mut parts, &enrolled);
    parts.resign(&enrolled);
    let theirs = ceremony.reference(&wa, &enrolled, &parts).unwrap().is_ok();
    (ceremony.ours(&verifier(), &enrolled, &parts), theirs)
}

#[test]
fn difference_cross_origin_client_data_is_refused_here_and_accepted_by_webauthn_rs() {
    for (name, value) in [
        ("crossOrigin", json!(true)),
        ("topOrigin", json!("https://framer.example")),
    ] {
        let (ours, theirs) = both(Flow::Username, member(name, Some(value)));
        assert_eq!(
            (ours, theirs),
            (Err(Rejection::CrossOrigin), true),
            "{name}"
        );
    }
}

#[test]
fn difference_trailing_authenticator_data_is_refused_here_and_accepted_by_webauthn_rs() {
    let (ours, theirs) = both(Flow::Username, |p, _| {
        p.auth_data
            .extend_from_slice(b"unsigned? no, signed, but not data")
    });
    assert_eq!((ours, theirs), (Err(Rejection::TrailingAuthData), true));
    let (ours, theirs) = both(
        Flow::Discoverable,
        flags_and_tail(UP | UV | ED, vec![0xa0, 0x00]),
    );
    assert_eq!((ours, theirs), (Err(Rejection::TrailingAuthData), true));
}

#[test]
fn difference_attested_credential_data_in_an_assertion_is_refused_here_and_accepted_by_webauthn_rs()
{
    let (ours, theirs) = both(Flow::Username, |p, e| {
        let cose = e.key.credentials()[0].cose_public_key().unwrap();
        flags_and_tail(UP | UV | AT, attested_data(&cose, &e.cred_id))(p, e);
    });
    assert_eq!(
        (ours, theirs),
        (Err(Rejection::AttestedDataInAssertion), true)
    );
}

#[test]
fn difference_origin_is_compared_as_a_string_here_and_as_a_url_by_webauthn_rs() {
    for origin in [
        "http://localhost:8080/",
        "HTTP://LOCALHOST:8080",
        "http://localhost:8080/path",
    ] {
        let (ours, theirs) = both(Flow::Username, member("origin", Some(json!(origin))));
        assert_eq!(
            (ours, theirs),
            (Err(Rejection::OriginNotAllowed), true),
            "{origin}"
        );
    }
}

#[test]
fn difference_a_padded_challenge_is_refused_here_and_accepted_by_webauthn_rs() {
    let (ours, theirs) = both(Flow::Username, |p, _| {
        let c = p.client_json()["challenge"].as_str().unwrap().to_owned();
        p.set_member("challenge", Some(json!(format!("{c}="))));
    });
    assert_eq!((ours, theirs), (Err(Rejection::ChallengeMismatch), true));
}

#[test]
fn difference_eddsa_assertions_verify_here_and_webauthn_rs_cannot_hold_the_key() {
    let wa = webauthn();
    let mut enrolled = enroll(&wa, Alg::EdDsa);
    assert!(
        enrolled.passkey.is_none(),
        "see options.rs: webauthn-rs refuses to register it"
    );
    for flow in [Flow::Username, Flow::Discoverable] {
        let ceremony = Ceremony::begin(&wa, &enrolled, flow, Stored::FRESH);
        let parts = Parts::sign(&mut enrolled, &ceremony);
        assert!(ceremony.ours(&verifier(), &enrolled, &parts).is_ok());
        let mut forged = parts.clone();
        forged.signature[10] ^= 1;
        assert_eq!(
            ceremony.ours(&verifier(), &enrolled, &forged),
            Err(Rejection::SignatureInvalid)
        );
        // Ed25519 signs the message itself: an alteration without a new signature fails.
        forged = parts.clone();
        forged.auth_data[36] ^= 1;
        assert_eq!(
            ceremony.ours(&verifier(), &enrolled, &forged),
            Err(Rejection::SignatureInvalid)
        );
    }
}
