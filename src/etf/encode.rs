//! The encoder: a [`Term`] to the bytes OTP's `term_to_binary/1` gives for it.
//!
//! The choices `term_to_binary/1` makes differently across the releases in scope are the atom
//! encoding and the port encoding, so that is what a [`Profile`] selects. Everything else follows OTP's rules:
//! integers in the smallest of `SMALL_INTEGER`, `INTEGER`, `SMALL_BIG`, `LARGE_BIG`; proper lists
//! of 1..=65535 integers in 0..=255 as `STRING_EXT`; floats as `NEW_FLOAT_EXT`; pids, ports and
//! references in their 32-bit-creation forms (ports as the profile says).

use thiserror::Error;

use super::tag;
use super::term::{char_count, is_latin1, Atom, NodeId, Term, MAX_ATOM_CHARS};

/// Which release's `term_to_binary/1` to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// OTP 17 to 25 (`minor_version` 1): Latin-1 atoms as `ATOM_EXT`, other atoms as
    /// `SMALL_ATOM_UTF8_EXT` (or `ATOM_UTF8_EXT` past 255 bytes); ports numbered below 2^28 as
    /// `NEW_PORT_EXT`, others as `V4_PORT_EXT`.
    #[default]
    Otp25,
    /// OTP 26 and later (`minor_version` 2): every atom as `SMALL_ATOM_UTF8_EXT` (or
    /// `ATOM_UTF8_EXT` past 255 bytes), and every port as `V4_PORT_EXT` (checked against
    /// OTP 27; that OTP 26 already encodes ports so is inferred from its release notes).
    Otp26,
}

/// A term that the format cannot carry.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    /// A length that does not fit its field (more than 2³²−1 bytes or elements).
    #[error("{what} of length {len} does not fit the format")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A reference with more than five words.
    #[error("a reference holds at most 5 words, not {0}")]
    RefWords(usize),
}

/// Encodes `term` with the version byte, as `term_to_binary/1` of the profile's release does.
pub fn encode(term: &Term, profile: Profile) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(term, profile, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `term`, version byte included, to `out`.
pub fn encode_into(term: &Term, profile: Profile, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(tag::VERSION);
    Writer { out, profile }.term(term)
}

/// Port numbers from here on take `V4_PORT_EXT` even in OTP 25 (seen on OTP 25.2.3).
const OTP25_NEW_PORT_LIMIT: u64 = 1 << 28;

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    profile: Profile,
}

fn len32(len: usize, what: &'static str) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::TooLong { what, len })
}

impl Writer<'_> {
    fn term(&mut self, term: &Term) -> Result<(), EncodeError> {
        match term {
            Term::Int(i) => self.int(*i),
            Term::Big(big) => self.big(big.negative, &big.magnitude)?,
            Term::Float(f) => {
                self.out.push(tag::NEW_FLOAT);
                self.out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Term::Atom(atom) => self.atom(atom),
            Term::Tuple(elems) => {
                if let Ok(arity) = u8::try_from(elems.len()) {
                    self.out.extend_from_slice(&[tag::SMALL_TUPLE, arity]);
                } else {
                    self.out.push(tag::LARGE_TUPLE);
                    self.u32(len32(elems.len(), "tuple")?);
                }
                for elem in elems {
                    self.term(elem)?;
                }
            }
            Term::List(elems) if elems.is_empty() => self.out.push(tag::NIL),
            Term::List(elems) => match string_bytes(elems) {
                Some(bytes) => {
                    self.out.push(tag::STRING);
                    self.out
                        .extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                    self.out.extend(bytes);
                }
                None => self.list(elems, None)?,
            },
            Term::ImproperList(elems, tail) => self.list(elems, Some(tail))?,
            Term::Binary(bytes) => {
                self.out.push(tag::BINARY);
                self.u32(len32(bytes.len(), "binary")?);
                self.out.extend_from_slice(bytes);
            }
            Term::BitBinary { bytes, last_bits } => {
                self.out.push(tag::BIT_BINARY);
                self.u32(len32(bytes.len(), "bitstring")?);
                self.out.push(*last_bits);
                self.out.extend_from_slice(bytes);
            }
            Term::Map(pairs) => {
                self.out.push(tag::MAP);
                self.u32(len32(pairs.len(), "map")?);
                for (key, value) in pairs {
                    self.term(key)?;
                    self.term(value)?;
                }
            }
            Term::Pid { node, id, serial } => {
                self.out.push(tag::NEW_PID);
                self.atom(&node.node);
                self.u32(*id);
                self.u32(*serial);
                self.u32(node.creation);
            }
            Term::Port { node, id } => self.port(node, *id),
            Term::Ref { node, words } => {
                if words.len() > 5 {
                    return Err(EncodeError::RefWords(words.len()));
                }
                self.out.push(tag::NEWER_REFERENCE);
                self.out
                    .extend_from_slice(&(words.len() as u16).to_be_bytes());
                self.atom(&node.node);
                self.u32(node.creation);
                for word in words {
                    self.u32(*word);
                }
            }
            Term::Export {
                module,
                function,
                arity,
            } => {
                self.out.push(tag::EXPORT);
                self.atom(module);
                self.atom(function);
                self.out.extend_from_slice(&[tag::SMALL_INTEGER, *arity]);
            }
        }
        Ok(())
    }

    fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn int(&mut self, value: i64) {
        if let Ok(small) = u8::try_from(value) {
            self.out.extend_from_slice(&[tag::SMALL_INTEGER, small]);
        } else if let Ok(int) = i32::try_from(value) {
            self.out.push(tag::INTEGER);
            self.out.extend_from_slice(&int.to_be_bytes());
        } else {
            let le = value.unsigned_abs().to_le_bytes();
            let digits = 8 - le.iter().rev().take_while(|&&b| b == 0).count();
            // Cannot fail: at most 8 digits.
            let _ = self.big(value < 0, &le[..digits]);
        }
    }

    fn big(&mut self, negative: bool, magnitude: &[u8]) -> Result<(), EncodeError> {
        if let Ok(n) = u8::try_from(magnitude.len()) {
            self.out.extend_from_slice(&[tag::SMALL_BIG, n]);
        } else {
            self.out.push(tag::LARGE_BIG);
            self.u32(len32(magnitude.len(), "bignum")?);
        }
        self.out.push(negative.into());
        self.out.extend_from_slice(magnitude);
        Ok(())
    }

    fn atom(&mut self, atom: &Atom) {
        self.atom_text(atom.as_str(), atom.is_latin1());
    }

    fn atom_text(&mut self, text: &str, latin1: bool) {
        // An atom has at most 255 characters, so its Latin-1 form fits ATOM_EXT's 16-bit length
        // and its UTF-8 form (at most 1020 bytes) fits ATOM_UTF8_EXT's.
        if self.profile == Profile::Otp25 && latin1 {
            self.out.push(tag::ATOM);
            self.out
                .extend_from_slice(&(char_count(text) as u16).to_be_bytes());
            self.latin1(text);
        } else if let Ok(len) = u8::try_from(text.len()) {
            self.out.extend_from_slice(&[tag::SMALL_ATOM_UTF8, len]);
            self.out.extend_from_slice(text.as_bytes());
        } else {
            self.out.push(tag::ATOM_UTF8);
            self.out
                .extend_from_slice(&(text.len() as u16).to_be_bytes());
            self.out.extend_from_slice(text.as_bytes());
        }
    }

    /// Latin-1 text, one byte a character; ASCII, nearly every name, copied as it is.
    fn latin1(&mut self, text: &str) {
        if text.is_ascii() {
            self.out.extend_from_slice(text.as_bytes());
        } else {
            self.out.extend(text.chars().map(|c| c as u8));
        }
    }

    fn port(&mut self, node: &NodeId, id: u64) {
        // OTP 25 keeps the 32-bit form for port numbers below 2^28 (its internal port number
        // width), whichever node they belong to.
        match id {
            0..OTP25_NEW_PORT_LIMIT if self.profile == Profile::Otp25 => {
                self.out.push(tag::NEW_PORT);
                self.atom(&node.node);
                self.u32(id as u32);
            }
            _ => {
                self.out.push(tag::V4_PORT);
                self.atom(&node.node);
                self.out.extend_from_slice(&id.to_be_bytes());
            }
        }
        self.u32(node.creation);
    }

    fn list(&mut self, elems: &[Term], tail: Option<&Term>) -> Result<(), EncodeError> {
        self.out.push(tag::LIST);
        self.u32(len32(elems.len(), "list")?);
        for elem in elems {
            self.term(elem)?;
        }
        match tail {
            Some(tail) => self.term(tail),
            None => {
                self.out.push(tag::NIL);
                Ok(())
            }
        }
    }
}

/// A term written piece by piece, for encoders that know a term's shape and would otherwise
/// build a [`Term`] only to encode it (the server's replies). The bytes are exactly those
/// [`encode_into`] writes for the same term; the caller writes a container's elements after
/// its header, in order.
pub struct Emitter<'a> {
    writer: Writer<'a>,
}

impl<'a> Emitter<'a> {
    /// Starts a term: writes the version byte to `out`.
    pub fn new(profile: Profile, out: &'a mut Vec<u8>) -> Emitter<'a> {
        out.push(tag::VERSION);
        Emitter {
            writer: Writer { out, profile },
        }
    }

    /// A tuple header; its `arity` elements follow.
    pub fn tuple(&mut self, arity: u8) {
        self.writer
            .out
            .extend_from_slice(&[tag::SMALL_TUPLE, arity]);
    }

    /// An atom of at most 255 characters (the caller's names are fixed and short).
    pub fn atom(&mut self, name: &str) {
        debug_assert!(name.chars().count() <= MAX_ATOM_CHARS);
        self.writer.atom_text(name, is_latin1(name));
    }

    /// An integer.
    pub fn int(&mut self, value: i64) {
        self.writer.int(value);
    }

    /// A non-negative integer, however large.
    pub fn unsigned(&mut self, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.writer.int(value),
            Err(_) => {
                // Cannot fail: 8 digits.
                let _ = self.writer.big(false, &value.to_le_bytes());
            }
        }
    }

    /// A string as a list of code points (`[]`, `STRING_EXT` or `LIST_EXT`, as `Term::string`).
    pub fn string(&mut self, text: &str) -> Result<(), EncodeError> {
        if text.is_empty() {
            self.nil();
            return Ok(());
        }
        let count = char_count(text);
        if count <= u16::MAX as usize && is_latin1(text) {
            self.writer.out.push(tag::STRING);
            self.writer
                .out
                .extend_from_slice(&(count as u16).to_be_bytes());
            self.writer.latin1(text);
            return Ok(());
        }
        self.list(count)?;
        for c in text.chars() {
            self.writer.int(i64::from(u32::from(c)));
        }
        self.nil();
        Ok(())
    }

    /// A proper list's header; `len` elements and then [`Emitter::nil`] follow. An empty list
    /// is just `nil`.
    pub fn list(&mut self, len: usize) -> Result<(), EncodeError> {
        self.writer.out.push(tag::LIST);
        self.writer.u32(len32(len, "list")?);
        Ok(())
    }

    /// A binary's header; the caller writes its `len` bytes after it.
    pub fn binary_header(&mut self, len: usize) -> Result<(), EncodeError> {
        self.writer.out.push(tag::BINARY);
        self.writer.u32(len32(len, "binary")?);
        Ok(())
    }

    /// `[]`, or the tail of a proper list.
    pub fn nil(&mut self) {
        self.writer.out.push(tag::NIL);
    }

    /// Any term.
    pub fn term(&mut self, term: &Term) -> Result<(), EncodeError> {
        self.writer.term(term)
    }
}

/// The bytes of a list that `term_to_binary` sends as `STRING_EXT`: 1 to 65535 integers, each
/// 0..=255.
fn string_bytes(elems: &[Term]) -> Option<impl ExactSizeIterator<Item = u8> + '_> {
    if elems.len() > u16::MAX as usize {
        return None;
    }
    elems
        .iter()
        .all(|e| matches!(e, Term::Int(0..=255)))
        .then(|| {
            elems.iter().map(|e| match e {
                Term::Int(b) => *b as u8,
                _ => unreachable!("checked above"),
            })
        })
}
