//! Proptest strategies for terms of every type the codec handles, in canonical form.
#![allow(dead_code)]

use erlboot::etf::{Atom, BigInt, NodeId, Term};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

/// A character from one of the ranges whose encodings differ: ASCII, Latin-1, the rest of the
/// BMP, and the astral planes.
pub fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range(' ', '~'),
        proptest::char::range('\u{A0}', '\u{FF}'),
        proptest::char::range('\u{100}', '\u{D7FF}'),
        proptest::char::range('\u{10000}', '\u{10FFFF}'),
    ]
}

pub fn text(max: usize) -> impl Strategy<Value = String> {
    vec(any_char(), 0..=max).prop_map(|chars| chars.into_iter().collect())
}

pub fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        4 => "[a-z][a-z_0-9]{0,10}".prop_map(|s| Atom::new(s).unwrap()),
        2 => text(12).prop_map(|s| Atom::new(s).unwrap()),
        1 => (any_char(), 200..=255usize).prop_map(|(c, n)| Atom::new(c.to_string().repeat(n)).unwrap()),
    ]
}

fn node() -> impl Strategy<Value = NodeId> {
    // Creation 0 and `nonode@nohost` would be the oracle's own node, where OTP checks pid and
    // port numbers against its tables; keep generated identifiers remote.
    ("[a-z]{1,6}@[a-z]{1,6}", 1..=u32::MAX).prop_map(|(name, creation)| NodeId {
        node: Atom::new(name).unwrap(),
        creation,
    })
}

pub fn integer() -> impl Strategy<Value = Term> {
    prop_oneof![
        (0..=255i64).prop_map(Term::Int),
        any::<i32>().prop_map(|i| Term::Int(i.into())),
        any::<i64>().prop_map(Term::Int),
        (any::<bool>(), vec(any::<u8>(), 0..40)).prop_map(|(neg, mag)| BigInt::normalize(neg, mag)),
        Just(Term::Int(i64::MIN)),
        Just(Term::Int(i64::MAX)),
        (any::<bool>(), vec(any::<u8>(), 256..300))
            .prop_map(|(neg, mag)| BigInt::normalize(neg, mag)),
    ]
}

pub fn leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        4 => integer(),
        2 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Term::Float),
        3 => atom().prop_map(Term::Atom),
        3 => text(24).prop_map(|s| Term::string(&s)),
        2 => vec(0..=255i64, 1..40).prop_map(|v| Term::list(v.into_iter().map(Term::Int).collect::<Vec<_>>())),
        2 => vec(any::<u8>(), 0..64).prop_map(Term::binary),
        1 => (vec(any::<u8>(), 1..16), 1..=7u8).prop_map(|(b, bits)| Term::bits(b, bits)),
        1 => (node(), any::<u32>(), any::<u32>()).prop_map(|(node, id, serial)| Term::Pid { node: Box::new(node), id, serial }),
        1 => (node(), prop_oneof![any::<u32>().prop_map(u64::from), any::<u64>()]).prop_map(|(node, id)| Term::Port { node: Box::new(node), id }),
        1 => (node(), vec(any::<u32>(), 1..=5)).prop_map(|(node, words)| Term::Ref { node: Box::new(node), words }),
        1 => (atom(), atom(), any::<u8>()).prop_map(|(module, function, arity)| Term::Export { module: Box::new(module), function: Box::new(function), arity }),
        1 => Just(Term::List(vec![])),
    ]
}

/// Any term. Map keys are integers in ascending order: the order OTP keeps small maps in, so
/// their encoding is OTP's too. (Atom keys are not generated: OTP 26+ orders them by atom-table
/// index, which differs from run to run.)
pub fn term() -> impl Strategy<Value = Term> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            3 => vec(inner.clone(), 0..8).prop_map(Term::Tuple),
            1 => vec(leaf(), 256..300).prop_map(Term::Tuple),
            3 => vec(inner.clone(), 0..8).prop_map(Term::List),
            2 => (vec(inner.clone(), 1..4), leaf()).prop_map(|(elems, tail)| Term::improper_list(elems, tail)),
            2 => btree_map(any::<i64>(), inner, 0..5)
                .prop_map(|m| Term::Map(m.into_iter().map(|(k, v)| (Term::Int(k), v)).collect())),
        ]
    })
}
