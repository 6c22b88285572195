//! Alterations of the signature: bit flips, truncation, and per algorithm the encodings a lax
//! parser might take (ECDSA high S, raw `r ‖ s`, non-minimal or long-form DER, r = 0; RSA with a
//! byte more or less).

use super::{m, specific, Mutation, XorShift};
use crate::softkey::Algorithm as Alg;

pub(super) fn signature_mutations(out: &mut Vec<Mutation>, alg: Alg, rng: &mut XorShift) {
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
