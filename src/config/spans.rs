//! A TOML document read with the byte span of every value, so that an error can name the line a
//! value was written on.

use std::ops::Range;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::explain::KeyPath;

/// A TOML document with the span of every value, so errors can give the line.
pub(super) struct Node {
    pub(super) span: Option<Range<usize>>,
    kind: Kind,
}

enum Kind {
    Table(Vec<(String, Node)>),
    Leaf(toml::Value),
}

impl Node {
    /// Every value that is not a table, with its key.
    pub(super) fn leaves(
        &self,
        prefix: &mut KeyPath,
        out: &mut Vec<(KeyPath, toml::Value, Option<Range<usize>>)>,
    ) {
        match &self.kind {
            Kind::Leaf(value) => out.push((prefix.clone(), value.clone(), self.span.clone())),
            Kind::Table(entries) => {
                for (key, node) in entries {
                    prefix.push(key.clone());
                    node.leaves(prefix, out);
                    prefix.pop();
                }
            }
        }
    }
}

/// The names by which toml's deserializer hands out a value's span (those of
/// `serde_spanned::Spanned`, which toml does not re-export). Should they ever change, values
/// arrive without spans and errors lose only their line numbers (a unit test would say so).
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const SPAN_FIELDS: &[&str] = &[
    "$__serde_spanned_private_start",
    "$__serde_spanned_private_end",
    "$__serde_spanned_private_value",
];

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, SPAN_FIELDS, NodeVisitor)
    }
}

/// A value with its span, or, where toml has no span to give (a table named only by a dotted
/// header), the value alone.
struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(unspanned(Kind::Table(Vec::new())));
        };
        if first != SPAN_FIELDS[0] {
            let mut entries = vec![(first, map.next_value::<Node>()?)];
            while let Some(key) = map.next_key::<String>()? {
                entries.push((key, map.next_value::<Node>()?));
            }
            return Ok(unspanned(Kind::Table(entries)));
        }
        let start: usize = map.next_value()?;
        let mut end = start;
        let mut kind = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == SPAN_FIELDS[1] {
                end = map.next_value()?;
            } else {
                kind = Some(map.next_value::<Kind>()?);
            }
        }
        let kind = kind.ok_or_else(|| serde::de::Error::custom("a span without a value"))?;
        Ok(Node {
            span: Some(start..end),
            kind,
        })
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Node, E> {
        KindVisitor.visit_bool(v).map(unspanned)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Node, E> {
        KindVisitor.visit_i64(v).map(unspanned)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node, E> {
        KindVisitor.visit_u64(v).map(unspanned)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node, E> {
        KindVisitor.visit_f64(v).map(unspanned)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Node, E> {
        KindVisitor.visit_str(v).map(unspanned)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
        KindVisitor.visit_seq(seq).map(unspanned)
    }
}

fn unspanned(kind: Kind) -> Node {
    Node { span: None, kind }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Leaf(toml::Value::Boolean(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Leaf(toml::Value::Integer(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Kind, E> {
        i64::try_from(v)
            .map(|v| Kind::Leaf(toml::Value::Integer(v)))
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Leaf(toml::Value::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Leaf(toml::Value::String(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<toml::Value>()? {
            items.push(item);
        }
        Ok(Kind::Leaf(toml::Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let node = map.next_value::<Node>()?;
            entries.push((key, node));
        }
        Ok(Kind::Table(entries))
    }
}
