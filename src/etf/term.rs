//! The Erlang term: the value model that ETF bytes decode into and encode from.
//!
//! Every Erlang term has exactly one representation here, so that two terms are equal when
//! Erlang's `=:=` says so and encoding is a function of the term alone (plus the profile):
//! - integers that fit an `i64` are always [`Term::Int`], larger ones [`Term::Big`];
//! - a proper list is [`Term::List`] (the empty vector is `[]`), whatever tag carried it on the
//!   wire (`NIL_EXT`, `STRING_EXT` or `LIST_EXT`); strings are lists of [`Term::Int`] code points;
//! - an improper list has at least one element and a tail that is not a list;
//! - a bitstring whose length is a whole number of bytes is a [`Term::Binary`].
//!
//! The decoder only produces canonical terms. Terms built by hand should follow the same rules
//! ([`Term::list`], [`Term::improper_list`] and [`Term::bits`] do).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

/// An atom's text. Atoms hold at most 255 characters (OTP's `MAX_ATOM_CHARACTERS`).
///
/// The atoms of the boot protocol (commands, `ok`, `error`, the file errors, the fields of a
/// file info) are held as static text: a client decodes two or more in every reply.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Atom(Cow<'static, str>);

/// The atom spelled by `bytes` if it is one of the boot protocol's.
fn known_atom(bytes: &[u8]) -> Option<&'static str> {
    Some(match bytes {
        b"ok" => "ok",
        b"error" => "error",
        b"get" => "get",
        b"list_dir" => "list_dir",
        b"read_file_info" => "read_file_info",
        b"read_link_info" => "read_link_info",
        b"get_cwd" => "get_cwd",
        b"file_info" => "file_info",
        b"regular" => "regular",
        b"directory" => "directory",
        b"symlink" => "symlink",
        b"device" => "device",
        b"other" => "other",
        b"read" => "read",
        b"write" => "write",
        b"read_write" => "read_write",
        b"none" => "none",
        b"undefined" => "undefined",
        b"enoent" => "enoent",
        b"enotdir" => "enotdir",
        b"eisdir" => "eisdir",
        b"eacces" => "eacces",
        b"eio" => "eio",
        b"einval" => "einval",
        b"badarg" => "badarg",
        b"unknown_command" => "unknown_command",
        _ => return None,
    })
}

/// The most characters an atom may hold.
pub const MAX_ATOM_CHARS: usize = 255;

/// Latin-1 bytes as text, each byte the character of its code point (`ATOM_EXT`,
/// `STRING_EXT` and Latin-1 file names). ASCII, nearly every name, is taken as it is rather
/// than a character at a time.
pub fn latin1_to_string(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        String::from_utf8(bytes.to_vec()).expect("ASCII is UTF-8")
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

/// Whether every character of `text` fits Latin-1 (one byte each in `ATOM_EXT` and
/// `STRING_EXT`). ASCII, nearly every name, is told at once.
pub(crate) fn is_latin1(text: &str) -> bool {
    text.is_ascii() || text.chars().all(|c| (c as u32) < 256)
}

/// How many characters `text` has; for ASCII, its length.
pub(crate) fn char_count(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

impl Atom {
    /// An atom from text of at most [`MAX_ATOM_CHARS`] characters; `None` if it is longer.
    pub fn new(text: impl Into<String>) -> Option<Atom> {
        let text = text.into();
        match known_atom(text.as_bytes()) {
            Some(known) => Some(Atom(Cow::Borrowed(known))),
            None => Atom::owned(text),
        }
    }

    /// The atom whose `ATOM_EXT` or `SMALL_ATOM_EXT` body is `bytes` (Latin-1), if it is
    /// short enough; a protocol atom is not copied.
    pub(crate) fn from_latin1(bytes: &[u8]) -> Option<Atom> {
        match known_atom(bytes) {
            Some(known) => Some(Atom(Cow::Borrowed(known))),
            None => Atom::owned(latin1_to_string(bytes)),
        }
    }

    /// The atom spelled by `text` (an `ATOM_UTF8_EXT` or `SMALL_ATOM_UTF8_EXT` body), if it
    /// is short enough; a protocol atom is not copied.
    pub(crate) fn from_utf8(text: &str) -> Option<Atom> {
        match known_atom(text.as_bytes()) {
            Some(known) => Some(Atom(Cow::Borrowed(known))),
            None => Atom::owned(text.to_owned()),
        }
    }

    fn owned(text: String) -> Option<Atom> {
        Atom::fits(&text).then_some(Atom(Cow::Owned(text)))
    }

    /// Whether `text` has at most [`MAX_ATOM_CHARS`] characters.
    pub(crate) fn fits(text: &str) -> bool {
        // No more bytes than the limit is no more characters either.
        text.len() <= MAX_ATOM_CHARS || text.chars().count() <= MAX_ATOM_CHARS
    }

    /// The atom's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when every character fits Latin-1, the condition for OTP ≤ 25 to use `ATOM_EXT`.
    pub fn is_latin1(&self) -> bool {
        is_latin1(&self.0)
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::etf::display::QuotedAtom(self.as_str()))
    }
}

/// An integer outside the `i64` range, as sign and magnitude.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BigInt {
    /// True for a negative number.
    pub negative: bool,
    /// The magnitude, least significant byte first, with no trailing zero bytes.
    pub magnitude: Vec<u8>,
}

impl BigInt {
    /// The canonical term for a sign and a little-endian magnitude: `Int` when it fits an `i64`.
    pub fn normalize(negative: bool, mut magnitude: Vec<u8>) -> Term {
        while magnitude.last() == Some(&0) {
            magnitude.pop();
        }
        if magnitude.len() <= 8 {
            let mut le = [0u8; 8];
            le[..magnitude.len()].copy_from_slice(&magnitude);
            let value = u64::from_le_bytes(le);
            if !negative && value <= i64::MAX as u64 {
                return Term::Int(value as i64);
            }
            if negative && value <= i64::MAX as u64 + 1 {
                return Term::Int((value as i64).wrapping_neg());
            }
        }
        Term::Big(BigInt {
            negative,
            magnitude,
        })
    }
}

/// A node-local identifier's home node and creation, shared by pids, ports and references.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeId {
    /// The node name, e.g. `nonode@nohost`.
    pub node: Atom,
    /// The node incarnation.
    pub creation: u32,
}

/// An Erlang term.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// An integer in the `i64` range.
    Int(i64),
    /// An integer outside the `i64` range.
    Big(BigInt),
    /// A finite float (Erlang has no NaN or infinities).
    Float(f64),
    /// An atom.
    Atom(Atom),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A proper list; empty is `[]`.
    List(Vec<Term>),
    /// A list with at least one element whose tail is not a list.
    ImproperList(Vec<Term>, Box<Term>),
    /// A binary (a whole number of bytes).
    Binary(Bytes),
    /// A bitstring that is not a whole number of bytes: `bytes` holds them with the last byte's
    /// unused low bits zero, and only the high `last_bits` (1..=7) bits of the last byte count.
    BitBinary {
        /// The bytes, the last one partial.
        bytes: Bytes,
        /// How many bits of the last byte belong to the bitstring, 1..=7.
        last_bits: u8,
    },
    /// A map, its pairs in wire order.
    Map(Vec<(Term, Term)>),
    /// A process identifier.
    Pid {
        /// Home node (boxed, as in the other rare variants, so that every term stays small:
        /// a string decodes to a term per character).
        node: Box<NodeId>,
        /// Process number.
        id: u32,
        /// Serial.
        serial: u32,
    },
    /// A port identifier.
    Port {
        /// Home node.
        node: Box<NodeId>,
        /// Port number.
        id: u64,
    },
    /// A reference.
    Ref {
        /// Home node.
        node: Box<NodeId>,
        /// 0 to 5 words.
        words: Vec<u32>,
    },
    /// An external fun `fun M:F/A`.
    Export {
        /// Module.
        module: Box<Atom>,
        /// Function.
        function: Box<Atom>,
        /// Arity.
        arity: u8,
    },
}

impl Term {
    /// An atom term. Panics if `text` is longer than an atom may be; for untrusted text use
    /// [`Atom::new`].
    pub fn atom(text: &str) -> Term {
        Term::Atom(Atom::from_utf8(text).expect("atom longer than 255 characters"))
    }

    /// A tuple term.
    pub fn tuple(elems: impl Into<Vec<Term>>) -> Term {
        Term::Tuple(elems.into())
    }

    /// A proper list term.
    pub fn list(elems: impl Into<Vec<Term>>) -> Term {
        Term::List(elems.into())
    }

    /// `[elems | tail]` in canonical form: a list tail is merged into the elements.
    pub fn improper_list(mut elems: Vec<Term>, tail: Term) -> Term {
        match tail {
            Term::List(rest) => {
                elems.extend(rest);
                Term::List(elems)
            }
            Term::ImproperList(rest, tail) => {
                elems.extend(rest);
                Term::ImproperList(elems, tail)
            }
            tail if elems.is_empty() => tail,
            tail => Term::ImproperList(elems, Box::new(tail)),
        }
    }

    /// An Erlang string: a list of the characters' code points.
    pub fn string(text: &str) -> Term {
        Term::List(text.chars().map(|c| Term::Int(c as i64)).collect())
    }

    /// A binary term.
    pub fn binary(bytes: impl Into<Bytes>) -> Term {
        Term::Binary(bytes.into())
    }

    /// A bitstring of `bytes`, of which the last one holds only `last_bits` bits (1..=8), in
    /// canonical form: unused bits are cleared, and a whole last byte gives a binary.
    pub fn bits(bytes: impl Into<Bytes>, last_bits: u8) -> Term {
        let bytes: Bytes = bytes.into();
        assert!((1..=8).contains(&last_bits), "last_bits must be 1..=8");
        if last_bits == 8 || bytes.is_empty() {
            return Term::Binary(bytes);
        }
        let mut owned = bytes.to_vec();
        let last = owned.len() - 1;
        owned[last] &= 0xFFu8 << (8 - last_bits);
        Term::BitBinary {
            bytes: owned.into(),
            last_bits,
        }
    }

    /// The atom's text, if this is an atom.
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Term::Atom(a) => Some(a.as_str()),
            _ => None,
        }
    }

    /// The elements, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(elems) => Some(elems),
            _ => None,
        }
    }

    /// True if this is a tuple of `arity` whose first element is the atom `tag`.
    pub fn is_tagged(&self, tag: &str, arity: usize) -> bool {
        matches!(self.as_tuple(), Some(elems) if elems.len() == arity && elems[0].as_atom() == Some(tag))
    }

    /// The text, if this is a proper list of Unicode code points (an Erlang string). `[]` is the
    /// empty string.
    pub fn as_string(&self) -> Option<String> {
        match self {
            Term::List(elems) => elems
                .iter()
                .map(|e| match e {
                    Term::Int(i) => u32::try_from(*i).ok().and_then(char::from_u32),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

impl From<i64> for Term {
    fn from(value: i64) -> Term {
        Term::Int(value)
    }
}

impl From<Atom> for Term {
    fn from(value: Atom) -> Term {
        Term::Atom(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_is_no_larger_than_a_binary_and_its_tag() {
        // A string decodes to a term per character, a file info to dozens: the rare variants
        // are boxed so that no term pays for them.
        assert!(std::mem::size_of::<Term>() <= std::mem::size_of::<Bytes>() + 8);
    }

    #[test]
    fn protocol_atoms_are_held_as_spelled() {
        let spelled = [
            "ok",
            "error",
            "get",
            "list_dir",
            "read_file_info",
            "read_link_info",
            "get_cwd",
            "file_info",
            "regular",
            "directory",
            "symlink",
            "device",
            "other",
            "read",
            "write",
            "read_write",
            "none",
            "undefined",
            "enoent",
            "enotdir",
            "eisdir",
            "eacces",
            "eio",
            "einval",
            "badarg",
            "unknown_command",
        ];
        for text in spelled {
            let atom = Atom::from_latin1(text.as_bytes()).expect("short");
            assert!(matches!(atom.0, Cow::Borrowed(_)), "{text}");
            assert_eq!(atom.as_str(), text);
            assert_eq!(Atom::from_utf8(text), Some(atom.clone()));
            assert_eq!(Atom::new(text), Some(atom));
        }
        // Any other atom is its own text, and equal to the same text however it was made.
        for text in ["oks", "O", "", "x\u{e9}"] {
            let owned = Atom::new(text).expect("short");
            assert!(matches!(owned.0, Cow::Owned(_)), "{text}");
            assert_eq!(owned.as_str(), text);
            assert_eq!(Atom::from_utf8(text), Some(owned));
        }
        assert_eq!(
            Atom::from_latin1(b"caf\xe9").map(|a| a.as_str().to_owned()),
            Some("café".to_owned())
        );
        assert_eq!(Atom::from_latin1(&[b'a'; 256]), None);
        assert_eq!(
            Atom::from_utf8(&"é".repeat(255)).map(|a| a.0.len()),
            Some(510)
        );
        assert_eq!(Atom::from_utf8(&"é".repeat(256)), None);
    }

    #[test]
    fn latin1_bytes_are_their_code_points() {
        assert_eq!(latin1_to_string(b"/lib/kernel.beam"), "/lib/kernel.beam");
        assert_eq!(latin1_to_string(b""), "");
        // Above ASCII, a byte is one character of two UTF-8 bytes, not the byte itself.
        let text = latin1_to_string(b"caf\xe9\xff");
        assert_eq!(text, "café\u{ff}");
        assert_eq!(text.chars().count(), 5);
    }
}
