//! A term decoded when asked: checked against a decoder's limits when it arrives, and held as
//! the bytes it came in until something looks inside.
//!
//! A reply's value is most of what a boot moves: directory listings of hundreds of names, file
//! infos, file contents. A client that hands it on without looking inside would build its tree
//! (a term per character of every name) only to drop it. [`LazyTerm::decode_prefix`] reads the
//! bytes exactly as [`Decoder::decode_prefix_shared`] does, limits and errors included, without
//! building anything; [`LazyTerm::term`] builds the tree for whoever asks.
//!
//! ```
//! use bytes::Bytes;
//! use erlboot::etf::{self, Decoder, LazyTerm, Profile, Term};
//!
//! let names = Term::list([Term::string("kernel"), Term::string("stdlib")]);
//! let reply = Term::tuple([Term::atom("list_dir"), Term::tuple([Term::atom("ok"), names.clone()])]);
//! let bytes = Bytes::from(etf::encode(&reply, Profile::Otp25).unwrap());
//!
//! let (lazy, _) = LazyTerm::decode_prefix(&bytes, &Decoder::default()).unwrap();
//! let [tag, result] = lazy.tuple().unwrap();
//! assert!(tag.is_atom("list_dir"));
//! let [_, value] = result.tuple().unwrap();
//! assert_eq!(value.term(), names);
//! ```

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use super::decode::{Checked, DecodeError, Decoder};
use super::{tag, Atom, Term};

/// A term, held either as the encoding a decoder accepted or as a built [`Term`]. Two are equal
/// when their terms are, whichever way each is held; equal encodings are compared as bytes.
#[derive(Clone)]
pub struct LazyTerm(Repr);

#[derive(Clone)]
enum Repr {
    /// The encoding of one term, without the version byte, that `decoder` accepted: decoding it
    /// again with `decoder` cannot fail.
    Encoded {
        bytes: Bytes,
        decoder: Decoder,
    },
    Built(Term),
}

impl LazyTerm {
    /// Checks the term at the start of `input` (version byte included) as
    /// [`Decoder::decode_prefix_shared`] does, and says how many bytes it took. Bytes after it
    /// are left alone; a compressed term is held inflated.
    pub fn decode_prefix(
        input: &Bytes,
        decoder: &Decoder,
    ) -> Result<(LazyTerm, usize), DecodeError> {
        match decoder.version(input)? {
            Some(inflated) => {
                decoder.body::<Checked>(&inflated, 0, None, true)?;
                Ok((LazyTerm::encoded(inflated.into(), decoder), input.len()))
            }
            None => {
                let end = decoder.check(input, 1)?;
                Ok((LazyTerm::encoded(input.slice(1..end), decoder), end))
            }
        }
    }

    fn encoded(bytes: Bytes, decoder: &Decoder) -> LazyTerm {
        LazyTerm(Repr::Encoded {
            bytes,
            decoder: *decoder,
        })
    }

    /// The term, built. Binaries in it share the memory the term arrived in.
    pub fn term(&self) -> Term {
        self.part().term()
    }

    /// The term, built; see [`LazyTerm::term`].
    pub fn into_term(self) -> Term {
        match self.0 {
            Repr::Built(term) => term,
            encoded => LazyTerm(encoded).term(),
        }
    }

    /// The bytes, if the term is a binary (a whole number of bytes), without building anything
    /// else: a file's contents, sharing the memory they arrived in.
    pub fn binary(&self) -> Option<Bytes> {
        match &self.0 {
            // The canonical encoding is read in place; any other that may be a binary (a
            // bitstring of whole bytes or of none, a binary behind empty lists) as the decoder
            // reads it.
            Repr::Encoded { bytes, .. } => match bytes.first() {
                Some(&tag::BINARY) => Some(bytes.slice(5..)),
                Some(&(tag::BIT_BINARY | tag::LIST)) => match self.term() {
                    Term::Binary(contents) => Some(contents),
                    _ => None,
                },
                _ => None,
            },
            Repr::Built(Term::Binary(contents)) => Some(contents.clone()),
            Repr::Built(_) => None,
        }
    }

    /// Whether the term is the atom `name`.
    pub fn is_atom(&self, name: &str) -> bool {
        self.part().is_atom(name)
    }

    /// The elements, if the term is a tuple of exactly `N`; each is held as the term is.
    pub fn tuple<const N: usize>(&self) -> Option<[LazyTerm; N]> {
        Some(self.part().tuple::<N>()?.map(Part::to_lazy))
    }

    /// The whole term as a [`Part`], to be looked into without taking any of it.
    pub(crate) fn part(&self) -> Part<'_> {
        Part(match &self.0 {
            Repr::Encoded { bytes, decoder } => PartRepr::Encoded {
                bytes,
                whole: bytes,
                decoder,
            },
            Repr::Built(term) => PartRepr::Built(term),
        })
    }
}

/// A part of a [`LazyTerm`], borrowed: looked at without a reference count moving (a reply is
/// looked into for its tags on every exchange), and made a term of its own only when kept.
#[derive(Clone, Copy)]
pub(crate) struct Part<'a>(PartRepr<'a>);

#[derive(Clone, Copy)]
enum PartRepr<'a> {
    /// One term's encoding, within the encoding of the whole.
    Encoded {
        bytes: &'a [u8],
        whole: &'a Bytes,
        decoder: &'a Decoder,
    },
    Built(&'a Term),
}

impl<'a> Part<'a> {
    /// The part as a term of its own, sharing the whole's memory.
    pub(crate) fn to_lazy(self) -> LazyTerm {
        match self.0 {
            PartRepr::Encoded {
                bytes,
                whole,
                decoder,
            } => LazyTerm::encoded(whole.slice_ref(bytes), decoder),
            PartRepr::Built(term) => LazyTerm::from(term.clone()),
        }
    }

    /// The part, built; binaries in it share the whole's memory.
    pub(crate) fn term(self) -> Term {
        match self.0 {
            PartRepr::Encoded {
                bytes,
                whole,
                decoder,
            } => {
                // A reply's error reason is nearly always an atom: made from its bytes as the
                // decoder makes it, without the decoder's setup.
                if let Some(atom) = accepted_atom(bytes) {
                    return Term::Atom(atom);
                }
                let at = bytes.as_ptr() as usize - whole.as_ptr() as usize;
                decoder
                    .body::<Term>(whole, at, Some(whole), false)
                    .expect("the decoder accepted these bytes when they arrived")
                    .0
            }
            PartRepr::Built(term) => term.clone(),
        }
    }

    /// Whether the part is the atom `name`.
    pub(crate) fn is_atom(self, name: &str) -> bool {
        let bytes = match self.0 {
            PartRepr::Encoded { bytes, .. } => past_empty_lists(bytes),
            PartRepr::Built(term) => return term.as_atom() == Some(name),
        };
        let Some((utf8, text)) = atom_at(bytes, 0) else {
            return false;
        };
        let Some(text) = bytes.get(text) else {
            return false;
        };
        // Latin-1 is UTF-8 only where it is ASCII.
        match utf8 || text.is_ascii() {
            true => text == name.as_bytes(),
            false => self.term().as_atom() == Some(name),
        }
    }

    /// The elements, if the part is a tuple of exactly `N`.
    pub(crate) fn tuple<const N: usize>(self) -> Option<[Part<'a>; N]> {
        let (bytes, whole, decoder) = match self.0 {
            PartRepr::Encoded {
                bytes,
                whole,
                decoder,
            } => (past_empty_lists(bytes), whole, decoder),
            PartRepr::Built(Term::Tuple(elems)) => {
                let elems: &[Term; N] = elems.as_slice().try_into().ok()?;
                return Some(std::array::from_fn(|i| Part(PartRepr::Built(&elems[i]))));
            }
            PartRepr::Built(_) => return None,
        };
        let (arity, mut at) = match *bytes.first()? {
            tag::SMALL_TUPLE => (usize::from(*bytes.get(1)?), 2),
            tag::LARGE_TUPLE => {
                let arity = u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?);
                (usize::try_from(arity).ok()?, 5)
            }
            _ => return None,
        };
        if arity != N {
            return None;
        }
        Some(std::array::from_fn(|i| {
            // The bytes hold exactly this tuple, so the last element is the rest of them: a
            // reply's value is not walked again to find where it ends.
            let end = match i + 1 == N {
                true => bytes.len(),
                false => atom_end(bytes, at).unwrap_or_else(|| checked_end(bytes, at, decoder)),
            };
            let element = &bytes[at..end];
            at = end;
            Part(PartRepr::Encoded {
                bytes: element,
                whole,
                decoder,
            })
        }))
    }
}

/// Where the atom at `at` ends, if one begins there: a reply's tags are atoms, read on every
/// exchange, and an accepted atom ends where its head says (no check needed).
fn atom_end(bytes: &[u8], at: usize) -> Option<usize> {
    let len = match *bytes.get(at)? {
        tag::SMALL_ATOM_UTF8 | tag::SMALL_ATOM => 2 + usize::from(*bytes.get(at + 1)?),
        tag::ATOM_UTF8 | tag::ATOM => {
            3 + usize::from(u16::from_be_bytes([
                *bytes.get(at + 1)?,
                *bytes.get(at + 2)?,
            ]))
        }
        _ => return None,
    };
    Some(at + len)
}

/// The atom that begins at `at`, if one does ([`atom_end`]): whether its text is UTF-8 (else
/// Latin-1), and where its text lies.
fn atom_at(bytes: &[u8], at: usize) -> Option<(bool, Range<usize>)> {
    let end = atom_end(bytes, at)?;
    let head = match bytes[at] {
        tag::SMALL_ATOM_UTF8 | tag::SMALL_ATOM => 2,
        _ => 3,
    };
    let utf8 = matches!(bytes[at], tag::SMALL_ATOM_UTF8 | tag::ATOM_UTF8);
    Some((utf8, at + head..end))
}

/// Where the accepted term at `at` ends, as the decoder finds it: kept out of line, so that
/// the tuple split a reply's tags take stays small.
#[inline(never)]
fn checked_end(bytes: &[u8], at: usize, decoder: &Decoder) -> usize {
    decoder
        .check(bytes, at)
        .expect("the decoder accepted these bytes when they arrived")
}

/// The atom `bytes` begin with, if they begin with one (accepted by the decoder).
fn accepted_atom(bytes: &[u8]) -> Option<Atom> {
    let (utf8, text) = atom_at(bytes, 0)?;
    let text = bytes.get(text)?;
    match utf8 {
        true => Atom::from_utf8(std::str::from_utf8(text).ok()?),
        false => Atom::from_latin1(text),
    }
}

/// The encoding of the term `bytes` encode, past any zero-length `LIST_EXT`s in front of it:
/// OTP reads `[|T]` as `T` (and so does the decoder), so what the term is shows only after them.
fn past_empty_lists(mut bytes: &[u8]) -> &[u8] {
    while let Some(rest) = bytes.strip_prefix(&[tag::LIST, 0, 0, 0, 0]) {
        bytes = rest;
    }
    bytes
}

impl From<Term> for LazyTerm {
    fn from(term: Term) -> LazyTerm {
        LazyTerm(Repr::Built(term))
    }
}

impl PartialEq for LazyTerm {
    fn eq(&self, other: &LazyTerm) -> bool {
        if let (Repr::Encoded { bytes: a, .. }, Repr::Encoded { bytes: b, .. }) =
            (&self.0, &other.0)
        {
            // One encoding decodes to one term; different encodings can still be equal terms
            // (an atom in Latin-1 and in UTF-8, a string as a list of integers). The same
            // memory (a value handed over in the buffer its sender held) is the same encoding
            // without reading it.
            if (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b {
                return true;
            }
        }
        self.term() == other.term()
    }
}

impl PartialEq<Term> for LazyTerm {
    fn eq(&self, other: &Term) -> bool {
        match &self.0 {
            Repr::Built(term) => term == other,
            Repr::Encoded { .. } => self.term() == *other,
        }
    }
}

impl fmt::Debug for LazyTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.term(), f)
    }
}

impl fmt::Display for LazyTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.term(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::{encode, Limits, Profile};

    fn lazy(bytes: &[u8]) -> LazyTerm {
        let bytes = Bytes::copy_from_slice(bytes);
        let (lazy, used) = LazyTerm::decode_prefix(&bytes, &Decoder::default()).unwrap();
        assert_eq!(used, bytes.len());
        lazy
    }

    /// Values are equal when their bytes are: in the same memory or in copies, whatever their
    /// lengths; values of one length but other bytes are not.
    #[test]
    fn values_are_equal_by_their_bytes_wherever_they_are_held() {
        let frame = Bytes::from_static(&[131, tag::BINARY, 0, 0, 0, 2, b'a', b'b']);
        let decoder = Decoder::default();
        let held = LazyTerm::decode_prefix(&frame, &decoder).unwrap().0;
        let again = LazyTerm::decode_prefix(&frame, &decoder).unwrap().0;
        assert_eq!(held, again, "the same memory");
        assert_eq!(held, lazy(&frame), "a copy");
        let other = lazy(&[131, tag::BINARY, 0, 0, 0, 2, b'a', b'c']);
        assert_ne!(held, other, "another binary of the same length");
        assert_ne!(held, lazy(&[131, tag::BINARY, 0, 0, 0, 1, b'a']));
    }

    #[test]
    fn an_atom_is_told_in_each_of_its_encodings() {
        // café: ATOM_EXT and SMALL_ATOM_EXT in Latin-1, ATOM_UTF8_EXT and SMALL_ATOM_UTF8_EXT.
        let encodings: [&[u8]; 4] = [
            &[131, tag::ATOM, 0, 4, b'c', b'a', b'f', 0xE9],
            &[131, tag::SMALL_ATOM, 4, b'c', b'a', b'f', 0xE9],
            &[131, tag::ATOM_UTF8, 0, 5, b'c', b'a', b'f', 0xC3, 0xA9],
            &[131, tag::SMALL_ATOM_UTF8, 5, b'c', b'a', b'f', 0xC3, 0xA9],
        ];
        let terms = encodings.map(lazy);
        for term in &terms {
            assert!(term.is_atom("café"), "{term:?}");
            assert!(!term.is_atom("caf") && !term.is_atom("cafe"), "{term:?}");
            assert_eq!(term, &Term::atom("café"));
            // Equal terms in different encodings are equal.
            assert!(terms.iter().all(|other| other == term));
        }
        let ok = lazy(&[131, tag::SMALL_ATOM, 2, b'o', b'k']);
        assert!(ok.is_atom("ok") && !ok.is_atom("o") && !ok.is_atom("okay"));
        assert!(!lazy(&[131, tag::SMALL_INTEGER, 7]).is_atom("7"));
    }

    #[test]
    fn a_term_compares_and_prints_as_the_term_it_holds() {
        let term = Term::tuple([Term::atom("ok"), Term::string("/srv")]);
        let encoded = lazy(&encode(&term, Profile::Otp25).unwrap());
        let built = LazyTerm::from(term.clone());
        for held in [&encoded, &built] {
            assert_eq!(held, &term);
            assert_ne!(held, &Term::Int(1));
            assert_eq!(format!("{held}"), format!("{term}"));
            assert_eq!(format!("{held:?}"), format!("{term:?}"));
        }
    }

    #[test]
    fn a_string_equals_its_list_of_integers() {
        let string = lazy(&encode(&Term::string("ab"), Profile::Otp25).unwrap());
        let list = lazy(&[131, tag::LIST, 0, 0, 0, 2, 97, b'a', 97, b'b', tag::NIL]);
        assert_eq!(string, list);
        assert_ne!(string, lazy(&[131, tag::STRING, 0, 2, b'a', b'c']));
    }

    #[test]
    fn a_tuple_splits_after_atoms_in_every_encoding_and_after_other_terms() {
        let cases: [(&[u8], [Term; 3]); 3] = [
            (
                &[
                    131,
                    tag::SMALL_TUPLE,
                    3,
                    tag::ATOM,
                    0,
                    1,
                    b'a',
                    tag::SMALL_ATOM_UTF8,
                    1,
                    b'b',
                    tag::SMALL_INTEGER,
                    7,
                ],
                [Term::atom("a"), Term::atom("b"), Term::from(7)],
            ),
            (
                &[
                    131,
                    tag::SMALL_TUPLE,
                    3,
                    tag::ATOM_UTF8,
                    0,
                    2,
                    b'o',
                    b'k',
                    tag::SMALL_ATOM,
                    2,
                    b'o',
                    b'k',
                    tag::SMALL_TUPLE,
                    0,
                ],
                [Term::atom("ok"), Term::atom("ok"), Term::tuple([])],
            ),
            (
                &[
                    131,
                    tag::SMALL_TUPLE,
                    3,
                    tag::SMALL_INTEGER,
                    1,
                    tag::NIL,
                    tag::SMALL_ATOM_UTF8,
                    0,
                ],
                [Term::from(1), Term::List(vec![]), Term::atom("")],
            ),
        ];
        for (bytes, want) in cases {
            let term = lazy(bytes);
            let got = term.tuple::<3>().expect("a triple");
            for (got, want) in got.iter().zip(&want) {
                assert_eq!(got, want, "{bytes:?}");
            }
        }
    }

    #[test]
    fn an_atom_is_built_as_the_decoder_builds_it_in_every_encoding() {
        let cases: [&[u8]; 6] = [
            &[131, tag::ATOM, 0, 6, b'e', b'n', b'o', b'e', b'n', b't'],
            &[131, tag::SMALL_ATOM, 2, b'o', b'k'],
            &[131, tag::ATOM, 0, 2, b'o', 0xE9],
            &[131, tag::SMALL_ATOM_UTF8, 3, b'o', 0xC3, 0xA9],
            &[131, tag::ATOM_UTF8, 0, 5, b'e', b'a', b'c', b'c', b's'],
            &[131, tag::SMALL_ATOM_UTF8, 0],
        ];
        for bytes in cases {
            let want = crate::etf::decode(bytes).unwrap();
            assert!(matches!(want, Term::Atom(_)));
            assert_eq!(lazy(bytes).term(), want, "{bytes:?}");
            assert_eq!(lazy(bytes).part().term(), want, "{bytes:?}");
        }
        assert_eq!(
            lazy(&[131, tag::ATOM, 0, 2, b'o', 0xE9]).term(),
            Term::atom("oé")
        );
    }

    #[test]
    fn a_tuple_splits_into_its_elements_however_its_arity_is_written() {
        let pair = Term::tuple([Term::atom("ok"), Term::string("x")]);
        let small = encode(&pair, Profile::Otp25).unwrap();
        let mut large = vec![131, tag::LARGE_TUPLE, 0, 0, 0, 2];
        large.extend_from_slice(&small[3..]);
        for bytes in [small, large] {
            let term = lazy(&bytes);
            let [first, second] = term.tuple().expect("a pair");
            assert!(first.is_atom("ok"));
            assert_eq!(second, Term::string("x"));
            assert!(term.tuple::<1>().is_none() && term.tuple::<3>().is_none());
            assert!(first.tuple::<2>().is_none());
        }
        // A built term splits the same way.
        let built = LazyTerm::from(pair);
        let [first, _] = built.tuple().expect("a pair");
        assert!(first.is_atom("ok"));
    }

    #[test]
    fn a_term_behind_empty_lists_is_what_it_is() {
        // [|T] is T, as OTP reads it: a zero-length LIST_EXT in front of an atom, a pair, a
        // binary, twice in front of the pair.
        let empty = [tag::LIST, 0, 0, 0, 0];
        let atom = [&empty[..], &[tag::SMALL_ATOM_UTF8, 1, b'a']].concat();
        let pair = [&empty[..], &empty, &[tag::SMALL_TUPLE, 2, tag::NIL, 97, 7]].concat();
        let binary = [&empty[..], &[tag::BINARY, 0, 0, 0, 1, b'x']].concat();
        let [atom, pair, binary] = [atom, pair, binary].map(|b| lazy(&[&[131][..], &b].concat()));
        assert!(atom.is_atom("a"));
        assert_eq!(atom, Term::atom("a"));
        let [nil, seven] = pair.tuple().expect("a pair");
        assert_eq!(
            (nil, seven),
            (Term::List(vec![]).into(), Term::Int(7).into())
        );
        assert_eq!(binary.binary(), Some(Bytes::from_static(b"x")));
    }

    #[test]
    fn file_contents_are_read_in_place() {
        let bytes = Bytes::from(encode(&Term::binary(&b"beam"[..]), Profile::Otp25).unwrap());
        let (term, _) = LazyTerm::decode_prefix(&bytes, &Decoder::default()).unwrap();
        let contents = term.binary().expect("a binary");
        assert_eq!(contents, &b"beam"[..]);
        assert!(bytes.as_ptr_range().contains(&contents.as_ptr()));
        assert_eq!(lazy(&[131, tag::NIL]).binary(), None);
        // BIT_BINARY_EXT of whole bytes, or of none, is a binary too, as OTP reads it.
        for (bits, binary) in [
            (
                &[131, tag::BIT_BINARY, 0, 0, 0, 2, 8, 1, 2][..],
                Some(&[1u8, 2][..]),
            ),
            (&[131, tag::BIT_BINARY, 0, 0, 0, 0, 0], Some(&[][..])),
            (&[131, tag::BIT_BINARY, 0, 0, 0, 1, 3, 0xE0], None),
        ] {
            let term = lazy(bits);
            assert_eq!(term.binary().as_deref(), binary, "{bits:?}");
            assert_eq!(matches!(term.term(), Term::Binary(_)), binary.is_some());
        }
        assert_eq!(LazyTerm::from(Term::Int(1)).binary(), None);
    }

    #[test]
    fn trailing_bytes_are_left_and_compressed_terms_held_inflated() {
        let mut bytes = encode(&Term::atom("ok"), Profile::Otp25).unwrap();
        let len = bytes.len();
        bytes.extend_from_slice(b"junk");
        let (term, used) =
            LazyTerm::decode_prefix(&Bytes::from(bytes), &Decoder::default()).unwrap();
        assert_eq!((term.is_atom("ok"), used), (true, len));

        // {get,"/x"}, compressed as term_to_binary(T, [compressed]) writes it.
        let inner = [104, 2, 100, 0, 3, 103, 101, 116, 107, 0, 2, 47, 120];
        let mut compressed = vec![131, tag::COMPRESSED, 0, 0, 0, inner.len() as u8];
        compressed.extend(miniz_oxide::deflate::compress_to_vec_zlib(&inner, 6));
        let term = lazy(&compressed);
        let [command, name] = term.tuple().expect("a pair");
        assert!(command.is_atom("get"));
        assert_eq!(name, Term::string("/x"));
    }

    #[test]
    fn limits_are_those_of_the_decoder() {
        // A listing of 300 one-letter names, within the reply limits and beyond tight ones.
        let names = Term::List((0..300).map(|_| Term::string("a")).collect());
        let bytes = Bytes::from(encode(&names, Profile::Otp25).unwrap());
        let tight = Decoder::new(Limits {
            max_elements: 100,
            ..Limits::reply()
        });
        let err = LazyTerm::decode_prefix(&bytes, &tight).map(|(term, _)| term);
        assert_eq!(err.unwrap_err(), tight.decode(&bytes).unwrap_err());
        assert_eq!(lazy(&bytes), names);
    }
}
