//! The quick check: where a term of the common shapes ends, read in one loop without building
//! or recursing, for input the decoder would certainly accept.
//!
//! Every reply a client reads is checked whole before its value is handed on ([`LazyTerm`]),
//! and replies are nearly all small integers, atoms, tuples, strings, lists and binaries: a
//! file info is some forty terms. The decoder's general path costs a call, a budget charge and
//! a `Result` per term; this reads such a term at a few instructions a term. It answers only
//! when the decoder's answer is sure to be the same acceptance at the same end; for anything
//! else (another tag, an error, a term near a limit) it answers `None` and the decoder reads
//! the bytes itself, errors included.
//!
//! [`LazyTerm`]: super::LazyTerm

use super::decode::TERM_SIZE;
use super::term::MAX_ATOM_CHARS;
use super::{tag, Limits};

/// Containers open at once, at most; deeper terms are left to the decoder. A reply's value
/// nests a few deep (a file info's times are three).
const STACK: usize = 16;

/// Where the term starting at `input[start]` ends, if it is one the decoder with `limits`
/// accepts there and of the shapes read here; `None` otherwise (not that it is refused).
pub(super) fn skim(input: &[u8], start: usize, limits: Limits) -> Option<usize> {
    // Each term takes at least a byte, each element is a term, and each byte of text or
    // contents is a byte of input, so the decoder's budget charges at most a few terms' size
    // a byte, and no container can claim more elements than there are bytes: input this short
    // stays within both limits whatever it holds, and only the depth is left to count.
    let len = input.len().checked_sub(start)?;
    if len > limits.max_elements || len.saturating_mul(3 * TERM_SIZE + 1) > limits.max_total_bytes {
        return None;
    }
    let max_open = limits.max_depth.min(STACK);
    // For each open tuple or list, how many elements are still to be read; a set bit in
    // `lists` says a list tail follows them.
    let mut left = [0u32; STACK];
    let mut lists = 0u32;
    let mut open = 0;
    let mut pos = start;
    loop {
        // One term's head, and for a leaf its whole.
        let opened = match *input.get(pos)? {
            tag::SMALL_INTEGER => {
                pos += 2;
                None
            }
            tag::INTEGER => {
                pos += 5;
                None
            }
            tag::NIL => {
                pos += 1;
                None
            }
            tag @ (tag::ATOM | tag::ATOM_UTF8) => {
                pos = atom(input, pos + 3, u16_at(input, pos + 1)?.into(), tag)?;
                None
            }
            tag @ (tag::SMALL_ATOM | tag::SMALL_ATOM_UTF8) => {
                let len = *input.get(pos + 1)?;
                pos = atom(input, pos + 2, len.into(), tag)?;
                None
            }
            tag::STRING => {
                pos += 3 + usize::from(u16_at(input, pos + 1)?);
                None
            }
            tag::BINARY => {
                let len = usize::try_from(u32_at(input, pos + 1)?).ok()?;
                pos = pos.checked_add(5 + len)?;
                None
            }
            tag::SMALL_TUPLE => {
                let arity = *input.get(pos + 1)?;
                pos += 2;
                (arity > 0).then_some((u32::from(arity), false))
            }
            tag::LARGE_TUPLE => {
                let arity = u32_at(input, pos + 1)?;
                pos += 5;
                (arity > 0).then_some((arity, false))
            }
            tag::LIST => {
                let (after, left) = list_from(input, pos)?;
                pos = after;
                left.map(|left| (left, true))
            }
            _ => return None,
        };
        if pos > input.len() {
            return None;
        }
        if let Some((elements, list)) = opened {
            // Its elements are a level deeper, which the decoder allows below its limit.
            if open >= max_open {
                return None;
            }
            left[open] = elements;
            lists = (lists & !(1 << open)) | (u32::from(list) << open);
            open += 1;
            continue;
        }
        // A whole term was read: it is an element of the innermost open container, which
        // closes when that was its last, and is then a whole term of the one around it.
        loop {
            let Some(top) = open.checked_sub(1) else {
                return Some(pos);
            };
            left[top] -= 1;
            if left[top] > 0 {
                break;
            }
            if lists & (1 << top) != 0 {
                let (after, more) = tail(input, pos)?;
                pos = after;
                if let Some(more) = more {
                    left[top] = more;
                    break;
                }
            }
            open = top;
        }
    }
}

/// A `LIST_EXT` at `pos`: where reading goes on, and how many elements are to be read there
/// (`None`: the list is whole, its tail read).
fn list_from(input: &[u8], pos: usize) -> Option<(usize, Option<u32>)> {
    match u32_at(input, pos + 1)? {
        0 => tail(input, pos + 5),
        left => Some((pos + 5, Some(left))),
    }
}

/// A list's tail at `pos`, as the decoder reads it: `[]` or a string end the list, and another
/// `LIST_EXT` goes on with its elements. Any other tail (an improper list) is the decoder's.
fn tail(input: &[u8], pos: usize) -> Option<(usize, Option<u32>)> {
    match *input.get(pos)? {
        tag::NIL => Some((pos + 1, None)),
        tag::STRING => {
            let end = pos + 3 + usize::from(u16_at(input, pos + 1)?);
            (end <= input.len()).then_some((end, None))
        }
        tag::LIST => list_from(input, pos),
        _ => None,
    }
}

/// Past the text of an atom of `len` bytes at `pos`, if the decoder takes it: at most
/// [`MAX_ATOM_CHARS`] bytes (so as many characters at most), and UTF-8 where the tag says so.
fn atom(input: &[u8], pos: usize, len: usize, tag: u8) -> Option<usize> {
    let text = input.get(pos..pos + len)?;
    let utf8 = matches!(tag, tag::ATOM_UTF8 | tag::SMALL_ATOM_UTF8);
    if len > MAX_ATOM_CHARS || (utf8 && std::str::from_utf8(text).is_err()) {
        return None;
    }
    Some(pos + len)
}

fn u16_at(input: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        input.get(pos..pos + 2)?.try_into().ok()?,
    ))
}

fn u32_at(input: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        input.get(pos..pos + 4)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::{encode, Decoder, Profile, Term};

    fn tuple<const N: usize>(elems: [Term; N]) -> Term {
        Term::tuple(elems)
    }

    fn atom(text: &str) -> Term {
        Term::atom(text)
    }

    /// The shapes of a boot's replies, as OTP's server sends them.
    fn replies() -> Vec<Term> {
        let ok = |command: &str, value: Term| tuple([atom(command), tuple([atom("ok"), value])]);
        let time = tuple([
            tuple([Term::Int(2024), Term::Int(12), Term::Int(2)]),
            tuple([Term::Int(16), Term::Int(25), Term::Int(13)]),
        ]);
        let info = tuple([
            atom("file_info"),
            Term::Int(657_081),
            atom("regular"),
            atom("read_write"),
            time.clone(),
            time.clone(),
            time,
            Term::Int(33_188),
            Term::Int(1),
            Term::Int(2049),
            Term::Int(0),
            Term::Int(1_234_567),
            Term::Int(0),
            Term::Int(0),
        ]);
        vec![
            ok("get", Term::binary(&b"FOR1\0\0\0\x10BEAM"[..])),
            ok("get", Term::binary(&[][..])),
            ok("read_file_info", info),
            ok(
                "list_dir",
                Term::list([
                    Term::string("kernel.app"),
                    Term::string("caf\u{e9}.beam"),
                    Term::string("\u{3bb}.beam"),
                    Term::string(""),
                ]),
            ),
            ok("list_dir", Term::list([])),
            ok("get_cwd", Term::string("/usr/lib/erlang")),
            tuple([atom("get"), tuple([atom("error"), atom("enoent")])]),
            tuple([atom("error"), atom("unknown_command")]),
            tuple([atom("\u{e9}t\u{e9}"), atom("\u{3bb}"), Term::Int(-1)]),
            Term::tuple(vec![Term::Int(1); 300]),
        ]
    }

    /// Every reply of a boot is read here, not left to the decoder, and ends where the
    /// decoder ends it, bytes after it left alone; every shorter cut of it is left to the
    /// decoder, which refuses it.
    #[test]
    fn replies_end_where_the_decoder_ends_them() {
        let decoder = Decoder::default();
        for reply in replies() {
            for profile in [Profile::Otp25, Profile::Otp26] {
                let mut bytes = encode(&reply, profile).unwrap();
                let end = bytes.len();
                bytes.extend_from_slice(b"junk");
                assert_eq!(skim(&bytes, 1, Limits::reply()), Some(end), "{reply}");
                assert_eq!(decoder.decode_prefix(&bytes).unwrap().1, end);
                for cut in 1..end {
                    assert_eq!(skim(&bytes[..cut], 1, Limits::reply()), None, "{reply} cut");
                    assert!(decoder.decode_prefix(&bytes[..cut]).is_err());
                }
            }
        }
    }

    /// Lists as other encoders may write them: continued by further `LIST_EXT`s, empty ones
    /// included, and ended by a string.
    #[test]
    fn list_tails_are_read_as_the_decoder_reads_them() {
        let cases: [&[u8]; 7] = [
            // [1,2], as two links.
            &[131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106],
            // [1|"ab"]: a string tail.
            &[131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, b'a', b'b'],
            // [|[|[]]]: empty links, then [].
            &[131, 108, 0, 0, 0, 0, 108, 0, 0, 0, 0, 106],
            // [|"ab"]
            &[131, 108, 0, 0, 0, 0, 107, 0, 2, b'a', b'b'],
            // {[[1]], []}: a list inside a list, closing together.
            &[
                131, 104, 2, 108, 0, 0, 0, 1, 108, 0, 0, 0, 1, 97, 1, 106, 106, 106,
            ],
            // {[1], {2}}: a tuple where a list was, at the same depth, takes no tail.
            &[131, 104, 2, 108, 0, 0, 0, 1, 97, 1, 106, 104, 1, 97, 2],
            // {{}, 1}, the empty tuple as LARGE_TUPLE_EXT: no elements.
            &[131, 104, 2, 105, 0, 0, 0, 0, 97, 1],
        ];
        for bytes in cases {
            let end = Decoder::default().decode_prefix(bytes).unwrap().1;
            assert_eq!(end, bytes.len());
            assert_eq!(skim(bytes, 1, Limits::reply()), Some(end), "{bytes:?}");
        }
    }

    /// What is left to the decoder: other tags, improper lists, atoms it may refuse, strings
    /// and binaries that run past the input, and terms at or near a limit.
    #[test]
    fn anything_else_is_left_to_the_decoder() {
        let long_latin1 = [&[131, 100, 1, 0][..], &[b'a'; 256]].concat();
        let bad_utf8 = [131, 119, 2, 0xc3, 0x28];
        let cases: [&[u8]; 9] = [
            // A map, a float, a pid's node atom: not read here.
            &[131, 116, 0, 0, 0, 0],
            &[131, 70, 0, 0, 0, 0, 0, 0, 0, 0],
            &[131, 110, 1, 0, 1],
            // [1|2]
            &[131, 108, 0, 0, 0, 1, 97, 1, 97, 2],
            &long_latin1,
            &bad_utf8,
            // A string and a binary longer than the input, ending a tuple and a list.
            &[131, 104, 1, 107, 0, 3, b'a', b'b'],
            &[131, 108, 0, 0, 0, 1, 109, 0, 0, 0, 2, 0, 106],
            // A string tail longer than the input.
            &[131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 9, b'a'],
        ];
        for bytes in cases {
            assert_eq!(skim(bytes, 1, Limits::reply()), None, "{bytes:?}");
        }
        // An atom of 255 Latin-1 characters is read here, one of 256 is not.
        let longest = [&[131, 100, 0, 255][..], &[b'a'; 255]].concat();
        assert_eq!(skim(&longest, 1, Limits::reply()), Some(longest.len()));
    }

    /// Depth is counted as the decoder counts it (the top level is 0; a container's elements
    /// are a level deeper, an empty one has none), up to the nesting read here.
    #[test]
    fn depth_is_counted_as_the_decoder_counts_it() {
        // {{{1}}}: the innermost tuple is at depth 2, its element at 3.
        let nested = [131, 104, 1, 104, 1, 104, 1, 97, 1];
        // {{{}}}: nothing at depth 3.
        let empty = [131, 104, 1, 104, 1, 104, 0];
        let limits = |max_depth| Limits {
            max_depth,
            ..Limits::reply()
        };
        assert_eq!(skim(&nested, 1, limits(3)), Some(nested.len()));
        assert_eq!(skim(&nested, 1, limits(2)), None);
        assert!(Decoder::new(limits(2)).decode(&nested).is_err());
        assert_eq!(skim(&empty, 1, limits(2)), Some(empty.len()));
        assert!(Decoder::new(limits(2)).decode(&empty).is_ok());
        // Deeper than the nesting read here, within the decoder's limit.
        let deep = [&[131][..], &[104, 1].repeat(STACK + 1), &[106]].concat();
        assert_eq!(skim(&deep, 1, Limits::reply()), None);
        assert!(Decoder::default().decode(&deep).is_ok());
        let deepest = [&[131][..], &[104, 1].repeat(STACK), &[106]].concat();
        assert_eq!(skim(&deepest, 1, Limits::reply()), Some(deepest.len()));
    }

    /// Input long enough that a term in it might cross the element or the memory limit is
    /// left to the decoder, whatever it holds.
    #[test]
    fn input_that_might_cross_a_limit_is_left_to_the_decoder() {
        let bytes = encode(&Term::list(vec![Term::Int(1); 8]), Profile::Otp25).unwrap();
        let len = bytes.len() - 1;
        let limits = |max_elements, max_total_bytes| Limits {
            max_depth: 8,
            max_elements,
            max_total_bytes,
        };
        let roomy = limits(len, len * (3 * TERM_SIZE + 1));
        assert_eq!(skim(&bytes, 1, roomy), Some(bytes.len()));
        assert_eq!(
            skim(&bytes, 1, limits(len - 1, roomy.max_total_bytes)),
            None
        );
        assert_eq!(
            skim(&bytes, 1, limits(len, roomy.max_total_bytes - 1)),
            None
        );
        assert_eq!(skim(&bytes, bytes.len() + 1, roomy), None);
    }
}
