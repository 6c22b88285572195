//! Alterations of the client data: every member's value and type, missing and duplicated
//! members, escapes, whitespace, order, syntax and encoding.

use serde_json::{json, Map, Value};

use super::{m, member, specific, text, Mutation, XorShift};
use crate::assertion::tests::{Enrolled, Parts};

pub(super) fn client_data_mutations(out: &mut Vec<Mutation>, rng: &mut XorShift) {
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
