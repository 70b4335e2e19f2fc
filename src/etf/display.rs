//! Erlang source syntax for terms, as `io:format("~p")` would roughly print them.
//!
//! Used by the CLI and by test and report messages; not part of the wire format.

use std::fmt::{self, Display, Formatter, Write};

use super::term::Term;

/// An atom's text, quoted when Erlang's reader would need quotes.
pub(crate) struct QuotedAtom<'a>(pub &'a str);

const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "else", "end", "fun", "if", "let", "maybe", "not", "of", "or",
    "orelse", "receive", "rem", "try", "when", "xor",
];

impl Display for QuotedAtom<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let bare = text.starts_with(|c: char| c.is_ascii_lowercase())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
            && !RESERVED.contains(&text);
        if bare {
            return f.write_str(text);
        }
        f.write_char('\'')?;
        for c in text.chars() {
            escaped(f, c, '\'')?;
        }
        f.write_char('\'')
    }
}

fn escaped(f: &mut Formatter<'_>, c: char, quote: char) -> fmt::Result {
    match c {
        '\\' => f.write_str("\\\\"),
        '\n' => f.write_str("\\n"),
        '\t' => f.write_str("\\t"),
        c if c == quote => write!(f, "\\{c}"),
        c if c.is_control() => write!(f, "\\x{{{:X}}}", c as u32),
        c => f.write_char(c),
    }
}

fn printable_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\t')
}

/// A list that reads better as a string: printable code points only.
fn printable(elems: &[Term]) -> Option<String> {
    elems
        .iter()
        .map(|e| match e {
            Term::Int(i) => u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .filter(|c| printable_char(*c)),
            _ => None,
        })
        .collect()
}

fn comma_separated<T>(
    f: &mut Formatter<'_>,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Formatter<'_>, T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        each(f, item)?;
    }
    Ok(())
}

fn node_display(f: &mut Formatter<'_>, kind: &str, node: &super::NodeId) -> fmt::Result {
    write!(
        f,
        "#{kind}<{}.{}",
        QuotedAtom(node.node.as_str()),
        node.creation
    )
}

impl Display for Term {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Term::Int(i) => write!(f, "{i}"),
            Term::Big(big) => {
                // Hex is exact and needs no bignum arithmetic.
                let sign = if big.negative { "-" } else { "" };
                write!(f, "{sign}16#")?;
                for byte in big.magnitude.iter().rev() {
                    write!(f, "{byte:02X}")?;
                }
                Ok(())
            }
            Term::Float(x) => write!(f, "{x:?}"),
            Term::Atom(a) => write!(f, "{}", QuotedAtom(a.as_str())),
            Term::Tuple(elems) => {
                f.write_char('{')?;
                comma_separated(f, elems, |f, e| write!(f, "{e}"))?;
                f.write_char('}')
            }
            Term::List(elems) => match printable(elems) {
                Some(text) if !text.is_empty() => {
                    f.write_char('"')?;
                    for c in text.chars() {
                        escaped(f, c, '"')?;
                    }
                    f.write_char('"')
                }
                _ => {
                    f.write_char('[')?;
                    comma_separated(f, elems, |f, e| write!(f, "{e}"))?;
                    f.write_char(']')
                }
            },
            Term::ImproperList(elems, tail) => {
                f.write_char('[')?;
                comma_separated(f, elems, |f, e| write!(f, "{e}"))?;
                write!(f, "|{tail}]")
            }
            Term::Binary(bytes) => {
                f.write_str("<<")?;
                match std::str::from_utf8(bytes) {
                    Ok(text) if !text.is_empty() && text.chars().all(printable_char) => {
                        f.write_char('"')?;
                        for c in text.chars() {
                            escaped(f, c, '"')?;
                        }
                        f.write_char('"')?;
                    }
                    _ => comma_separated(f, bytes.iter(), |f, b| write!(f, "{b}"))?,
                }
                f.write_str(">>")
            }
            Term::BitBinary { bytes, last_bits } => {
                f.write_str("<<")?;
                // Decoded bitstrings always have a partial last byte; a hand-built one may not.
                let Some((last, whole)) = bytes.split_last() else {
                    return f.write_str(">>");
                };
                for b in whole {
                    write!(f, "{b},")?;
                }
                let bits = (*last_bits).clamp(1, 8);
                write!(f, "{}:{bits}>>", last >> (8 - bits))
            }
            Term::Map(pairs) => {
                f.write_str("#{")?;
                comma_separated(f, pairs, |f, (k, v)| write!(f, "{k} => {v}"))?;
                f.write_char('}')
            }
            Term::Pid { node, id, serial } => {
                node_display(f, "Pid", node)?;
                write!(f, ".{id}.{serial}>")
            }
            Term::Port { node, id } => {
                node_display(f, "Port", node)?;
                write!(f, ".{id}>")
            }
            Term::Ref { node, words } => {
                node_display(f, "Ref", node)?;
                for w in words {
                    write!(f, ".{w}")?;
                }
                f.write_char('>')
            }
            Term::Export {
                module,
                function,
                arity,
            } => write!(
                f,
                "fun {}:{}/{arity}",
                QuotedAtom(module.as_str()),
                QuotedAtom(function.as_str())
            ),
        }
    }
}
