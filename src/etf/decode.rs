//! The bounded decoder: ETF bytes to a [`Term`], refusing anything over its [`Limits`].
//!
//! Hostile input is the normal case here: the server decodes whatever a client sends. So every
//! length field is checked against the bytes present before anything is reserved for it, every
//! reservation is charged to a budget of decoded bytes, and recursion carries a depth budget.

use bytes::Bytes;
use thiserror::Error;

use super::skim::skim;
use super::tag;
use super::term::{Atom, BigInt, NodeId, Term, MAX_ATOM_CHARS};
use super::Limits;

/// Why bytes are not an acceptable term. Offsets count from the start of the input.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty input")]
    Empty,
    /// The first byte is not the version byte 131.
    #[error("version byte is {0}, not 131")]
    BadVersion(u8),
    /// The input ends before the term does.
    #[error("input ends at byte {offset} but the term needs at least {needed} more")]
    Truncated {
        /// Where the input ended.
        offset: usize,
        /// How many more bytes the term claims, at least.
        needed: u64,
    },
    /// A tag byte that no OTP release defines.
    #[error("unknown tag {tag} at byte {offset}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Where it stood.
        offset: usize,
    },
    /// A tag OTP defines but this decoder deliberately refuses.
    #[error("{what} (tag {tag}) at byte {offset} is not accepted")]
    Unsupported {
        /// The tag byte.
        tag: u8,
        /// What it is.
        what: &'static str,
        /// Where it stood.
        offset: usize,
    },
    /// Nesting deeper than [`Limits::max_depth`].
    #[error("nesting deeper than {limit} at byte {offset}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Where the too-deep term starts.
        offset: usize,
    },
    /// A container with more elements than [`Limits::max_elements`].
    #[error("{count} elements at byte {offset} exceed the limit of {limit}")]
    TooManyElements {
        /// What the input claims.
        count: u64,
        /// The limit.
        limit: usize,
        /// Where the container starts.
        offset: usize,
    },
    /// Decoding would take more memory than [`Limits::max_total_bytes`].
    #[error("decoded term would exceed {limit} bytes at byte {offset}")]
    TooLarge {
        /// The limit.
        limit: usize,
        /// Where the term that crossed it starts.
        offset: usize,
    },
    /// A well-framed term whose content OTP would refuse too.
    #[error("invalid {what} at byte {offset}")]
    Invalid {
        /// What was wrong, e.g. "UTF-8 in atom".
        what: &'static str,
        /// Where the term starts.
        offset: usize,
    },
    /// Bytes left over after a complete term, where none were expected.
    #[error("{count} bytes after the end of the term at byte {offset}")]
    TrailingBytes {
        /// Where the term ended.
        offset: usize,
        /// How many bytes followed.
        count: usize,
    },
}

/// A decoder with fixed limits. Cheap to copy; holds no state between calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decoder {
    limits: Limits,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub const fn new(limits: Limits) -> Decoder {
        Decoder { limits }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Decodes exactly one term, version byte included, with no bytes after it.
    pub fn decode(&self, input: &[u8]) -> Result<Term, DecodeError> {
        let (term, used) = self.decode_prefix(input)?;
        if used != input.len() {
            return Err(DecodeError::TrailingBytes {
                offset: used,
                count: input.len() - used,
            });
        }
        Ok(term)
    }

    /// Decodes the term at the start of `input` and says how many bytes it took. Bytes after it
    /// are left alone, as OTP's `binary_to_term/1` does.
    pub fn decode_prefix(&self, input: &[u8]) -> Result<(Term, usize), DecodeError> {
        self.prefix(input, None)
    }

    /// [`Decoder::decode_prefix`], with the term's binaries sharing `input`'s memory rather
    /// than copied out of it: a reply's file contents are most of its frame.
    pub fn decode_prefix_shared(&self, input: &Bytes) -> Result<(Term, usize), DecodeError> {
        self.prefix(input, Some(input))
    }

    fn prefix(&self, input: &[u8], shared: Option<&Bytes>) -> Result<(Term, usize), DecodeError> {
        match self.version(input)? {
            Some(inflated) => Ok((self.body(&inflated, 0, None, true)?.0, input.len())),
            None => self.body(input, 1, shared, false),
        }
    }

    /// Checks the version byte; a compressed term is inflated (see [`Decoder::inflate`]), an
    /// uncompressed one is read where it stands.
    pub(super) fn version(&self, input: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        let version = *input.first().ok_or(DecodeError::Empty)?;
        if version != tag::VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        if input.get(1) == Some(&tag::COMPRESSED) {
            return self.inflate(input).map(Some);
        }
        Ok(None)
    }

    /// The term that starts at `input[start]` (after the version byte), and where it ends;
    /// `whole` asks for it to take the rest of `input`, as a compressed term must. `shared` is
    /// `input` itself, when binaries may point into it.
    pub(super) fn body<B: Build>(
        &self,
        input: &[u8],
        start: usize,
        shared: Option<&Bytes>,
        whole: bool,
    ) -> Result<(B, usize), DecodeError> {
        let mut reader = Reader {
            input,
            shared,
            pos: start,
            limits: self.limits,
            budget: self.limits.max_total_bytes,
        };
        let term = reader.term(0)?;
        if whole && reader.pos != input.len() {
            return Err(DecodeError::Invalid {
                what: "compressed term",
                offset: 1,
            });
        }
        Ok((term, reader.pos))
    }

    /// Where the term that starts at `input[start]` (after the version byte) ends, read and
    /// checked as [`Decoder::body`] reads it, without building it: the quick path for the
    /// common shapes when it is sure ([`skim`]), the decoder's own otherwise.
    pub(super) fn check(&self, input: &[u8], start: usize) -> Result<usize, DecodeError> {
        match skim(input, start, self.limits) {
            Some(end) => Ok(end),
            None => Ok(self.body::<Checked>(input, start, None, false)?.1),
        }
    }

    /// `131, 80, Size:32, Zlib/binary`, as `term_to_binary(T, [compressed])` writes it: the
    /// zlib stream takes the rest of the input, must inflate to exactly `Size` bytes (no more
    /// is inflated, and `Size` must fit the decoded-bytes limit), and those bytes must hold one
    /// whole term, as OTP's `binary_to_term/1` requires.
    fn inflate(&self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let header = input.get(2..6).ok_or_else(|| DecodeError::Truncated {
            offset: input.len(),
            needed: (6 - input.len()) as u64,
        })?;
        let size = u32::from_be_bytes(header.try_into().expect("four bytes")) as usize;
        if size > self.limits.max_total_bytes {
            return Err(DecodeError::TooLarge {
                limit: self.limits.max_total_bytes,
                offset: 1,
            });
        }
        let invalid = DecodeError::Invalid {
            what: "compressed term",
            offset: 1,
        };
        let inflated = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&input[6..], size)
            .map_err(|_| invalid.clone())?;
        if inflated.len() != size {
            return Err(invalid);
        }
        Ok(inflated)
    }
}

/// Decodes one term with the default (reply) limits; see [`Decoder::decode`].
pub fn decode(input: &[u8]) -> Result<Term, DecodeError> {
    Decoder::default().decode(input)
}

pub(super) const TERM_SIZE: usize = std::mem::size_of::<Term>();

/// What the reader makes of the terms it reads: the [`Term`] itself, or nothing but the check
/// ([`Checked`]). Both take the same path through the bytes, so a term is checked against the
/// same limits, at the same offsets, whether it is built or not.
pub(super) trait Build: Sized {
    /// A kind of term that is rare in the boot protocol, built as a [`Term`] either way.
    fn from_term(term: Term) -> Self;
    fn int(value: i64) -> Self;
    /// An atom, if it is no longer than an atom may be.
    fn atom(text: AtomText<'_>) -> Option<Self>;
    fn tuple(elems: Vec<Self>) -> Self;
    fn list(elems: Vec<Self>) -> Self;
    /// Appends the characters of a `STRING_EXT`, a small integer each.
    fn extend_string(elems: &mut Vec<Self>, bytes: &[u8]);
    fn improper_list(elems: Vec<Self>, tail: Self) -> Self;
    fn binary(bytes: &[u8], shared: Option<&Bytes>) -> Self;
    fn map(pairs: Vec<(Term, Self)>) -> Self;
}

impl Build for Term {
    fn from_term(term: Term) -> Term {
        term
    }
    fn int(value: i64) -> Term {
        Term::Int(value)
    }
    fn atom(text: AtomText<'_>) -> Option<Term> {
        text.atom().map(Term::Atom)
    }
    fn tuple(elems: Vec<Term>) -> Term {
        Term::Tuple(elems)
    }
    fn list(elems: Vec<Term>) -> Term {
        Term::List(elems)
    }
    fn extend_string(elems: &mut Vec<Term>, bytes: &[u8]) {
        elems.extend(bytes.iter().map(|&b| Term::Int(b.into())));
    }
    fn improper_list(elems: Vec<Term>, tail: Term) -> Term {
        Term::improper_list(elems, tail)
    }
    fn binary(bytes: &[u8], shared: Option<&Bytes>) -> Term {
        Term::Binary(shared_or_copied(bytes, shared))
    }
    fn map(pairs: Vec<(Term, Term)>) -> Term {
        Term::Map(pairs)
    }
}

/// The body of an atom: Latin-1 (`ATOM_EXT`, `SMALL_ATOM_EXT`) or checked UTF-8.
pub(super) enum AtomText<'a> {
    Latin1(&'a [u8]),
    Utf8(&'a str),
}

impl AtomText<'_> {
    /// The atom, if it is no longer than an atom may be.
    fn atom(self) -> Option<Atom> {
        match self {
            AtomText::Latin1(bytes) => Atom::from_latin1(bytes),
            AtomText::Utf8(text) => Atom::from_utf8(text),
        }
    }
}

/// A term that was read and checked, and not built: a vector of these takes no memory.
pub(super) struct Checked;

impl Build for Checked {
    fn from_term(_: Term) -> Checked {
        Checked
    }
    fn int(_: i64) -> Checked {
        Checked
    }
    fn atom(text: AtomText<'_>) -> Option<Checked> {
        match text {
            // A Latin-1 character is a byte.
            AtomText::Latin1(bytes) => bytes.len() <= MAX_ATOM_CHARS,
            AtomText::Utf8(text) => Atom::fits(text),
        }
        .then_some(Checked)
    }
    fn tuple(_: Vec<Checked>) -> Checked {
        Checked
    }
    fn list(_: Vec<Checked>) -> Checked {
        Checked
    }
    fn extend_string(_: &mut Vec<Checked>, _: &[u8]) {}
    fn improper_list(_: Vec<Checked>, _: Checked) -> Checked {
        Checked
    }
    fn binary(_: &[u8], _: Option<&Bytes>) -> Checked {
        Checked
    }
    fn map(_: Vec<(Term, Checked)>) -> Checked {
        Checked
    }
}

/// `bytes` as a [`Bytes`]: a view of `shared` when they lie in it, a copy otherwise.
fn shared_or_copied(bytes: &[u8], shared: Option<&Bytes>) -> Bytes {
    match shared {
        Some(shared) => shared.slice_ref(bytes),
        None => Bytes::copy_from_slice(bytes),
    }
}

struct Reader<'a> {
    input: &'a [u8],
    /// `input` itself, when binaries may point into it.
    shared: Option<&'a Bytes>,
    pos: usize,
    limits: Limits,
    /// Decoded bytes still allowed.
    budget: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.input.len(),
                needed: (n - self.remaining()) as u64,
            });
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    /// Takes `bytes` from the budget; `start` is where the term being decoded began.
    fn charge(&mut self, bytes: usize, start: usize) -> Result<(), DecodeError> {
        self.budget = self
            .budget
            .checked_sub(bytes)
            .ok_or(DecodeError::TooLarge {
                limit: self.limits.max_total_bytes,
                offset: start,
            })?;
        Ok(())
    }

    /// Checks a claimed element count before anything is reserved for it: against the limit,
    /// against the bytes present (each element takes at least `min_bytes_each`), and against the
    /// budget.
    fn elements(
        &mut self,
        count: u64,
        min_bytes_each: u64,
        start: usize,
    ) -> Result<usize, DecodeError> {
        if count > self.limits.max_elements as u64 {
            return Err(DecodeError::TooManyElements {
                count,
                limit: self.limits.max_elements,
                offset: start,
            });
        }
        let needed = count.saturating_mul(min_bytes_each);
        if needed > self.remaining() as u64 {
            return Err(DecodeError::Truncated {
                offset: self.input.len(),
                needed: needed - self.remaining() as u64,
            });
        }
        let count = count as usize;
        self.charge(count.saturating_mul(TERM_SIZE), start)?;
        Ok(count)
    }

    fn term<B: Build>(&mut self, depth: usize) -> Result<B, DecodeError> {
        let start = self.pos;
        self.charge(TERM_SIZE, start)?;
        let tag = self.u8()?;
        Ok(match tag {
            tag::SMALL_INTEGER => B::int(self.u8()?.into()),
            tag::INTEGER => B::int((self.u32()? as i32).into()),
            tag::SMALL_BIG => {
                let n = self.u8()?.into();
                B::from_term(self.big(n, start)?)
            }
            tag::LARGE_BIG => {
                let n = self.u32()? as usize;
                B::from_term(self.big(n, start)?)
            }
            tag::NEW_FLOAT => B::from_term(finite(f64::from_bits(self.u64()?), start)?),
            tag::FLOAT => B::from_term(self.old_float(start)?),
            tag::ATOM | tag::SMALL_ATOM | tag::ATOM_UTF8 | tag::SMALL_ATOM_UTF8 => {
                self.atom_body(tag, start)?
            }
            tag::SMALL_TUPLE | tag::LARGE_TUPLE => {
                let arity = match tag {
                    tag::SMALL_TUPLE => self.u8()?.into(),
                    _ => self.u32()?.into(),
                };
                B::tuple(self.sequence(arity, depth, start)?)
            }
            tag::NIL => B::list(Vec::new()),
            tag::STRING => {
                let len = self.u16()?.into();
                let len = self.elements(len, 1, start)?;
                let mut elems = Vec::new();
                B::extend_string(&mut elems, self.take(len)?);
                B::list(elems)
            }
            tag::LIST => self.list(depth, start)?,
            tag::BINARY => {
                let len = self.u32()? as usize;
                B::binary(self.payload(len, start)?, self.shared)
            }
            tag::BIT_BINARY => {
                let len = self.u32()? as usize;
                let bits = self.u8()?;
                if bits > 8 || (bits == 0) != (len == 0) {
                    return Err(DecodeError::Invalid {
                        what: "bit count in BIT_BINARY_EXT",
                        offset: start,
                    });
                }
                let bytes = self.payload(len, start)?;
                B::from_term(Term::bits(
                    shared_or_copied(bytes, self.shared),
                    bits.max(1),
                ))
            }
            tag::MAP => {
                let pairs = self.u32()?.into();
                let pairs = self.elements(pairs, 2, start)?;
                self.charge(pairs.saturating_mul(TERM_SIZE), start)?;
                // The keys are built even when only checking: a duplicate is told by comparing
                // them.
                let mut map = Vec::with_capacity(pairs);
                for _ in 0..pairs {
                    let key = self.nested::<Term>(depth, start)?;
                    let value = self.nested::<B>(depth, start)?;
                    map.push((key, value));
                }
                if has_duplicate_keys(map.iter().map(|(key, _)| key)) {
                    return Err(DecodeError::Invalid {
                        what: "map with a duplicate key",
                        offset: start,
                    });
                }
                B::map(map)
            }
            tag::PID | tag::NEW_PID => {
                let node = self.node_atom(start)?;
                let id = self.u32()?;
                let serial = self.u32()?;
                let creation = self.creation(tag == tag::PID, start)?;
                B::from_term(Term::Pid {
                    node: Box::new(NodeId { node, creation }),
                    id,
                    serial,
                })
            }
            tag::PORT | tag::NEW_PORT | tag::V4_PORT => {
                let node = self.node_atom(start)?;
                let id = match tag {
                    tag::V4_PORT => self.u64()?,
                    _ => self.u32()?.into(),
                };
                let creation = self.creation(tag == tag::PORT, start)?;
                B::from_term(Term::Port {
                    node: Box::new(NodeId { node, creation }),
                    id,
                })
            }
            tag::NEW_REFERENCE | tag::NEWER_REFERENCE => {
                let len = self.u16()?;
                if len > 5 {
                    return Err(DecodeError::Invalid {
                        what: "reference length",
                        offset: start,
                    });
                }
                let node = self.node_atom(start)?;
                let creation = self.creation(tag == tag::NEW_REFERENCE, start)?;
                let words = (0..len).map(|_| self.u32()).collect::<Result<_, _>>()?;
                B::from_term(Term::Ref {
                    node: Box::new(NodeId { node, creation }),
                    words,
                })
            }
            tag::EXPORT => {
                let module = self.node_atom(start)?;
                let function = self.node_atom(start)?;
                // OTP takes any integer encoding here; a fun has at most 255 arguments.
                let arity = match self.nested::<Term>(depth, start)? {
                    Term::Int(arity) => u8::try_from(arity).ok(),
                    _ => None,
                }
                .ok_or(DecodeError::Invalid {
                    what: "arity in EXPORT_EXT",
                    offset: start,
                })?;
                B::from_term(Term::Export {
                    module: Box::new(module),
                    function: Box::new(function),
                    arity,
                })
            }
            other => {
                return Err(match tag::unsupported(other) {
                    Some(what) => DecodeError::Unsupported {
                        tag: other,
                        what,
                        offset: start,
                    },
                    None => DecodeError::UnknownTag {
                        tag: other,
                        offset: start,
                    },
                })
            }
        })
    }

    /// A `LIST_EXT` and the chain of list tails after it, read in a loop into one vector: a
    /// tail is not nesting (OTP does not count it as such), and merging recursively decoded
    /// tails would copy the elements once per link.
    fn list<B: Build>(&mut self, depth: usize, start: usize) -> Result<B, DecodeError> {
        let mut elems = Vec::new();
        loop {
            let len = self.u32()?.into();
            let len = self.elements(len, 1, start)?;
            elems.reserve(len);
            for _ in 0..len {
                elems.push(self.nested(depth, start)?);
            }
            let tail_start = self.pos;
            match self.input.get(tail_start) {
                Some(&tag::LIST) => {
                    self.charge(TERM_SIZE, tail_start)?;
                    self.pos += 1;
                }
                Some(&tag::NIL) => {
                    self.pos += 1;
                    return Ok(B::list(elems));
                }
                Some(&tag::STRING) => {
                    self.pos += 1;
                    let len = self.u16()?.into();
                    let len = self.elements(len, 1, tail_start)?;
                    B::extend_string(&mut elems, self.take(len)?);
                    return Ok(B::list(elems));
                }
                // `[|T]`, a zero-length LIST_EXT, is just its tail, as in OTP.
                Some(_) => return Ok(B::improper_list(elems, self.nested(depth, start)?)),
                None => return Err(self.truncated(1)),
            }
        }
    }

    fn truncated(&self, needed: u64) -> DecodeError {
        DecodeError::Truncated {
            offset: self.input.len(),
            needed,
        }
    }

    /// A term one level deeper than the container that starts at `start`.
    fn nested<B: Build>(&mut self, depth: usize, start: usize) -> Result<B, DecodeError> {
        if depth >= self.limits.max_depth {
            return Err(DecodeError::TooDeep {
                limit: self.limits.max_depth,
                offset: start,
            });
        }
        self.term(depth + 1)
    }

    fn sequence<B: Build>(
        &mut self,
        count: u64,
        depth: usize,
        start: usize,
    ) -> Result<Vec<B>, DecodeError> {
        let count = self.elements(count, 1, start)?;
        let mut elems = Vec::with_capacity(count);
        for _ in 0..count {
            elems.push(self.nested(depth, start)?);
        }
        Ok(elems)
    }

    /// `len` bytes of binary payload, checked against the input and the budget first.
    fn payload(&mut self, len: usize, start: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(self.truncated((len - self.remaining()) as u64));
        }
        self.charge(len, start)?;
        self.take(len)
    }

    fn big(&mut self, n: usize, start: usize) -> Result<Term, DecodeError> {
        let negative = self.u8()? != 0;
        if n > self.remaining() {
            return Err(self.truncated((n - self.remaining()) as u64));
        }
        self.charge(n, start)?;
        Ok(BigInt::normalize(negative, self.take(n)?.to_vec()))
    }

    /// FLOAT_EXT: 31 bytes of `printf("%.20e")` text, NUL-terminated inside them. OTP reads
    /// it as `[+-]digits[.,]digits[(e|E)[+-]digits]` and nothing else.
    fn old_float(&mut self, start: usize) -> Result<Term, DecodeError> {
        let text = self.take(31)?;
        let invalid = DecodeError::Invalid {
            what: "FLOAT_EXT text",
            offset: start,
        };
        let end = text.iter().position(|&b| b == 0).ok_or(invalid.clone())?;
        let text: String = text[..end]
            .iter()
            .map(|&b| if b == b',' { '.' } else { char::from(b) })
            .collect();
        if !float_text(&text) {
            return Err(invalid);
        }
        finite(text.parse::<f64>().map_err(|_| invalid)?, start)
    }

    /// The body of an atom of any of the four encodings, as `B`.
    fn atom_body<B: Build>(&mut self, tag: u8, start: usize) -> Result<B, DecodeError> {
        let text = self.atom_text(tag, start)?;
        B::atom(text).ok_or_else(|| too_long_atom(start))
    }

    /// The text of an atom of any of the four encodings, checked to be UTF-8 where it claims
    /// to be.
    // Every reply checked holds a few atoms; left to itself the compiler calls this out of line.
    #[inline(always)]
    fn atom_text(&mut self, tag: u8, start: usize) -> Result<AtomText<'a>, DecodeError> {
        let len = match tag {
            tag::ATOM | tag::ATOM_UTF8 => self.u16()?.into(),
            _ => self.u8()?.into(),
        };
        if len > self.remaining() {
            return Err(self.truncated((len - self.remaining()) as u64));
        }
        self.charge(len, start)?;
        let bytes = self.take(len)?;
        Ok(match tag {
            tag::ATOM | tag::SMALL_ATOM => AtomText::Latin1(bytes),
            _ => AtomText::Utf8(
                std::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid {
                    what: "UTF-8 in atom",
                    offset: start,
                })?,
            ),
        })
    }

    /// The atom naming a node, module or function: any of the four atom encodings.
    fn node_atom(&mut self, start: usize) -> Result<Atom, DecodeError> {
        // Charged as a term, which also covers the box the atom or its node is held in.
        const _: () = assert!(std::mem::size_of::<NodeId>() <= TERM_SIZE);
        self.charge(TERM_SIZE, start)?;
        let at = self.pos;
        let tag = self.u8()?;
        if !matches!(
            tag,
            tag::ATOM | tag::SMALL_ATOM | tag::ATOM_UTF8 | tag::SMALL_ATOM_UTF8
        ) {
            return Err(DecodeError::Invalid {
                what: "atom expected",
                offset: at,
            });
        }
        self.atom_text(tag, start)?
            .atom()
            .ok_or_else(|| too_long_atom(start))
    }

    /// A node creation: one byte (two bits used, as OTP checks) in the old pid, port and
    /// reference encodings, four bytes in the new ones.
    fn creation(&mut self, old: bool, start: usize) -> Result<u32, DecodeError> {
        if !old {
            return self.u32();
        }
        match self.u8()? {
            creation @ 0..=3 => Ok(creation.into()),
            _ => Err(DecodeError::Invalid {
                what: "creation (above 3 in a one-byte field)",
                offset: start,
            }),
        }
    }
}

/// `[+-]?\d+\.\d+([eE][+-]?\d+)?`, the float text OTP's decoder accepts.
fn float_text(text: &str) -> bool {
    fn digits(s: &str) -> Option<&str> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (n > 0).then(|| &s[n..])
    }
    fn unsigned(s: &str) -> &str {
        s.strip_prefix(['+', '-']).unwrap_or(s)
    }
    let Some(rest) = digits(unsigned(text))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(digits)
    else {
        return false;
    };
    match rest.strip_prefix(['e', 'E']) {
        None => rest.is_empty(),
        Some(exponent) => digits(unsigned(exponent)) == Some(""),
    }
}

/// True when two keys of a map are the same term. Canonical encodings are equal exactly when
/// the terms are, so the keys are compared by their encodings, sorted.
fn has_duplicate_keys<'t>(keys: impl ExactSizeIterator<Item = &'t Term>) -> bool {
    if keys.len() < 2 {
        return false;
    }
    let mut keys: Vec<Vec<u8>> = keys
        .map(|key| super::encode(key, super::Profile::Otp26).unwrap_or_default())
        .collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

fn too_long_atom(start: usize) -> DecodeError {
    DecodeError::Invalid {
        what: "atom longer than 255 characters",
        offset: start,
    }
}

fn finite(value: f64, start: usize) -> Result<Term, DecodeError> {
    if value.is_finite() {
        Ok(Term::Float(value))
    } else {
        Err(DecodeError::Invalid {
            what: "float (not finite)",
            offset: start,
        })
    }
}
