//! A reply frame as OTP's client reads it (`inet_send_and_rcv`, erl_prim_loader.erl:749–763).
//!
//! OTP's client is lenient where its server is exact: only `{get,{ok,_}}` is recognised by its
//! tag, any other `{_,{ok,_}}` is a success whatever the tag, and `{_,{error,E}}`, `{error,E}`
//! and an undecodable frame are all plain errors. So a reply answering a different command is
//! taken as the answer, as OTP takes it.

use bytes::Bytes;
use thiserror::Error;

use crate::etf::{DecodeError, Decoder, LazyTerm, Term};

/// A successful reply. The value is checked as OTP's `binary_to_term/1` would check it, and
/// built only when asked ([`LazyTerm::term`]): the client hands it on without looking inside.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// `{get,{ok,Contents}}`: OTP's `get_file` returns `{ok,Contents,FullName}`. The contents
    /// are a binary from any OTP server; the client does not check that they are.
    File(LazyTerm),
    /// `{_,{ok,Value}}` with any other first element, the command tag unchecked.
    Ok(LazyTerm),
}

impl Response {
    /// The value after `ok`.
    pub fn value(&self) -> &LazyTerm {
        match self {
            Response::File(value) | Response::Ok(value) => value,
        }
    }

    /// The value after `ok`, owned.
    pub fn into_value(self) -> LazyTerm {
        match self {
            Response::File(value) | Response::Ok(value) => value,
        }
    }
}

/// A reply that is not a success.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum ReplyError {
    /// `{_,{error,E}}`, `{error,E}`, or a term that is literally `{'EXIT',E}` (OTP's `catch`
    /// cannot tell that from a failed decode): `E`.
    #[error("the server answered error {0}")]
    Server(Term),
    /// Bytes that are not a term, or a term beyond the decoder's limits. OTP returns
    /// `{error,{badarg,Stacktrace}}` with its own stack; the connection stays open.
    #[error("undecodable reply: {0}")]
    Undecodable(DecodeError),
    /// Any other term. OTP's `case` has no clause for it; the `case_clause` error is caught by
    /// `?SAFE2` (erl_prim_loader.erl:89), which returns `{error,{{case_clause,Term},Stack}}`
    /// together with the loader state from before the request (see the loader's docs).
    #[error("unexpected reply {0}")]
    Unexpected(Term),
    /// A reply frame longer than the loader's configured limit (OTP has none); the loader
    /// closes the connection and does not resend.
    #[error("reply frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
}

/// Reads one reply frame's payload, clause by clause in OTP's order. Bytes after the term are
/// ignored, as `binary_to_term/1` ignores them. File contents share the payload's memory.
pub fn read_reply(payload: &Bytes, decoder: &Decoder) -> Result<Response, ReplyError> {
    let term = match LazyTerm::decode_prefix(payload, decoder) {
        Ok((term, _)) => term,
        Err(e) => return Err(ReplyError::Undecodable(e)),
    };
    // Looked into in place: only the value is taken out.
    let Some([first, second]) = term.part().tuple() else {
        return Err(ReplyError::Unexpected(term.into_term()));
    };
    match second.tuple() {
        // {get,{ok,BinFile}}, then {_Cmd,Res={ok,_}}, then {_Cmd,{error,Error}}.
        Some([status, value]) if status.is_atom("ok") => match first.is_atom("get") {
            true => Ok(Response::File(value.to_lazy())),
            false => Ok(Response::Ok(value.to_lazy())),
        },
        Some([status, value]) if status.is_atom("error") => Err(ReplyError::Server(value.term())),
        // {error,Error}, then {'EXIT',Error}.
        _ if first.is_atom("error") || first.is_atom("EXIT") => {
            Err(ReplyError::Server(second.term()))
        }
        _ => Err(ReplyError::Unexpected(term.into_term())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::{encode, Profile};

    fn read(term: Term) -> Result<Response, ReplyError> {
        read_reply(
            &encode(&term, Profile::Otp25).unwrap().into(),
            &Decoder::default(),
        )
    }

    fn ok(value: Term) -> Term {
        Term::tuple([Term::atom("ok"), value])
    }

    fn error(reason: Term) -> Term {
        Term::tuple([Term::atom("error"), reason])
    }

    fn tagged(tag: &str, result: Term) -> Term {
        Term::tuple([Term::atom(tag), result])
    }

    #[test]
    fn golden_replies() {
        // PROTOCOL.md §5.4, OTP 25 and OTP 29 server replies without their headers.
        let hi = [
            0x83, 0x68, 0x02, 0x64, 0x00, 0x03, 0x67, 0x65, 0x74, 0x68, 0x02, 0x64, 0x00, 0x02,
            0x6F, 0x6B, 0x6D, 0x00, 0x00, 0x00, 0x03, 0x68, 0x69, 0x0A,
        ];
        let hi29 = [
            0x83, 0x68, 0x02, 0x77, 0x03, 0x67, 0x65, 0x74, 0x68, 0x02, 0x77, 0x02, 0x6F, 0x6B,
            0x6D, 0x00, 0x00, 0x00, 0x03, 0x68, 0x69, 0x0A,
        ];
        for bytes in [&hi[..], &hi29[..]] {
            assert_eq!(
                read_reply(&Bytes::copy_from_slice(bytes), &Decoder::default()),
                Ok(Response::File(Term::binary(&b"hi\n"[..]).into()))
            );
        }
    }

    #[test]
    fn get_with_ok_is_a_file_whatever_the_value() {
        assert_eq!(
            read(tagged("get", ok(Term::atom("x")))),
            Ok(Response::File(Term::atom("x").into()))
        );
    }

    #[test]
    fn the_tag_of_other_successes_is_not_checked() {
        let names = Term::list([Term::string("a")]);
        for tag in ["list_dir", "get_cwd", "whatever", "error"] {
            assert_eq!(
                read(tagged(tag, ok(names.clone()))),
                Ok(Response::Ok(names.clone().into())),
                "{tag}"
            );
        }
        // Not even an atom.
        assert_eq!(
            read(Term::tuple([Term::Int(7), ok(Term::Int(1))])),
            Ok(Response::Ok(Term::Int(1).into()))
        );
    }

    #[test]
    fn errors_tagged_untagged_and_exit() {
        let enoent = Term::atom("enoent");
        assert_eq!(
            read(tagged("get", error(enoent.clone()))),
            Err(ReplyError::Server(enoent.clone()))
        );
        assert_eq!(
            read(error(Term::atom("unknown_command"))),
            Err(ReplyError::Server(Term::atom("unknown_command")))
        );
        // {error,{error,X}} is {_Cmd,{error,Error}}: X.
        assert_eq!(
            read(error(error(enoent.clone()))),
            Err(ReplyError::Server(enoent))
        );
        assert_eq!(
            read(tagged("EXIT", Term::atom("boom"))),
            Err(ReplyError::Server(Term::atom("boom")))
        );
        // {error,{ok,X}} is a success, by clause order.
        assert_eq!(
            read(error(ok(Term::Int(1)))),
            Ok(Response::Ok(Term::Int(1).into()))
        );
    }

    #[test]
    fn undecodable_and_unexpected() {
        assert!(matches!(
            read_reply(&Bytes::from_static(&[131, 200]), &Decoder::default()),
            Err(ReplyError::Undecodable(_))
        ));
        assert!(matches!(
            read_reply(&Bytes::new(), &Decoder::default()),
            Err(ReplyError::Undecodable(_))
        ));
        for term in [
            Term::atom("foo"),
            Term::tuple([Term::atom("get")]),
            tagged("get", Term::atom("ok")),
            tagged(
                "get",
                Term::tuple([Term::atom("ok"), Term::Int(1), Term::Int(2)]),
            ),
            tagged("get", Term::tuple([Term::atom("maybe"), Term::Int(1)])),
        ] {
            assert_eq!(read(term.clone()), Err(ReplyError::Unexpected(term)));
        }
    }

    #[test]
    fn a_reply_behind_an_empty_list_is_read_as_the_reply() {
        // [|{get,{ok,<<"hi">>}}]: OTP's binary_to_term reads a zero-length LIST_EXT as its tail.
        let reply = encode(&tagged("get", ok(Term::binary(&b"hi"[..]))), Profile::Otp25).unwrap();
        let wrapped = [&[131, 108, 0, 0, 0, 0][..], &reply[1..]].concat();
        assert_eq!(
            read_reply(&wrapped.into(), &Decoder::default()),
            Ok(Response::File(Term::binary(&b"hi"[..]).into()))
        );
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut bytes = encode(&tagged("get_cwd", ok(Term::string("/"))), Profile::Otp25).unwrap();
        bytes.extend_from_slice(b"junk");
        assert_eq!(
            read_reply(&bytes.into(), &Decoder::default()),
            Ok(Response::Ok(Term::string("/").into()))
        );
    }
}
