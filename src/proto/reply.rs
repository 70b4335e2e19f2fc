//! Replies, server to client: `{Command, {ok, Value}}`, `{Command, {error, Reason}}`, and the
//! untagged `{error, Reason}` that answers an unknown command.

use bytes::Bytes;

use crate::etf::{DecodeError, Decoder, Emitter, EncodeError, Profile, Term};

use super::{Command, FileInfo};

/// An error reason, as OTP's file layer gives it: usually a POSIX atom such as `enoent`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason(pub Term);

impl Reason {
    /// A reason that is an atom, e.g. `Reason::atom("enoent")`.
    pub fn atom(name: &str) -> Reason {
        Reason(Term::atom(name))
    }

    /// The atom, if the reason is one.
    pub fn as_atom(&self) -> Option<&str> {
        self.0.as_atom()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A reply as the client understands it.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `{get, {ok, Binary}}` or `{get, {error, Reason}}`.
    Get(Result<Bytes, Reason>),
    /// `{list_dir, {ok, [Name]}}` or an error.
    ListDir(Result<Vec<String>, Reason>),
    /// `{read_file_info, {ok, #file_info{}}}` or an error.
    ReadFileInfo(Result<FileInfo, Reason>),
    /// `{read_link_info, {ok, #file_info{}}}` or an error.
    ReadLinkInfo(Result<FileInfo, Reason>),
    /// `{get_cwd, {ok, Dir}}` or an error; answers both `get_cwd` and `{get_cwd, Drive}`.
    GetCwd(Result<String, Reason>),
    /// `{error, Reason}`: OTP's answer to an unknown command (`unknown_command`) or to bytes it
    /// cannot decode (`{badarg, Stacktrace}`).
    Error(Reason),
    /// Any other term.
    Other(Term),
}

impl Reply {
    /// Reads a reply from a frame's payload, ignoring bytes after the term.
    pub fn decode(payload: &[u8], decoder: &Decoder) -> Result<Reply, DecodeError> {
        let (term, _) = decoder.decode_prefix(payload)?;
        Ok(Reply::from_term(term))
    }

    /// The ETF payload of this reply, as the profile's `term_to_binary/1` encodes it.
    pub fn encode(&self, profile: Profile) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(profile, &mut out)?;
        Ok(out)
    }

    /// Appends the ETF payload to `out`: the same bytes as encoding [`Reply::to_term`], written
    /// straight from the reply (a server answers hundreds of these per boot).
    pub fn encode_into(&self, profile: Profile, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut e = Emitter::new(profile, out);
        let command = match self {
            Reply::Error(reason) => {
                e.tuple(2);
                e.atom("error");
                return e.term(&reason.0);
            }
            Reply::Other(term) => return e.term(term),
            _ => self.command().expect("a tagged reply"),
        };
        e.tuple(2);
        e.atom(command.atom());
        e.tuple(2);
        let reason = match self {
            Reply::Get(Err(r))
            | Reply::ListDir(Err(r))
            | Reply::ReadFileInfo(Err(r))
            | Reply::ReadLinkInfo(Err(r))
            | Reply::GetCwd(Err(r)) => r,
            Reply::Get(Ok(contents)) => {
                e.atom("ok");
                return e.term(&Term::Binary(contents.clone()));
            }
            Reply::ListDir(Ok(names)) => {
                e.atom("ok");
                if !names.is_empty() {
                    e.list(names.len())?;
                    for name in names {
                        e.string(name)?;
                    }
                }
                e.nil();
                return Ok(());
            }
            Reply::ReadFileInfo(Ok(info)) | Reply::ReadLinkInfo(Ok(info)) => {
                e.atom("ok");
                info.emit(&mut e);
                return Ok(());
            }
            Reply::GetCwd(Ok(dir)) => {
                e.atom("ok");
                return e.string(dir);
            }
            Reply::Error(_) | Reply::Other(_) => unreachable!("answered above"),
        };
        e.atom("error");
        e.term(&reason.0)
    }

    /// About how many bytes [`Reply::encode_into`] appends: enough for nearly every reply, so
    /// that its buffer is sized once rather than grown as it is written.
    pub fn size_hint(&self) -> usize {
        // A tagged error, a file info record (203 bytes with every number at its largest) or
        // the head of a file's contents.
        const SMALL: usize = 224;
        match self {
            Reply::Get(Ok(contents)) => SMALL + contents.len(),
            // A name is a STRING_EXT: a tag, a length, its bytes.
            Reply::ListDir(Ok(names)) => SMALL + names.iter().map(|n| n.len() + 3).sum::<usize>(),
            Reply::GetCwd(Ok(dir)) => SMALL + dir.len(),
            _ => SMALL,
        }
    }

    /// A `{Command, {error, Reason}}` reply for any command.
    pub fn error(command: Command, reason: Reason) -> Reply {
        match command {
            Command::Get => Reply::Get(Err(reason)),
            Command::ListDir => Reply::ListDir(Err(reason)),
            Command::ReadFileInfo => Reply::ReadFileInfo(Err(reason)),
            Command::ReadLinkInfo => Reply::ReadLinkInfo(Err(reason)),
            Command::GetCwd => Reply::GetCwd(Err(reason)),
        }
    }

    /// The command this reply is tagged with, if any.
    pub fn command(&self) -> Option<Command> {
        Some(match self {
            Reply::Get(_) => Command::Get,
            Reply::ListDir(_) => Command::ListDir,
            Reply::ReadFileInfo(_) => Command::ReadFileInfo,
            Reply::ReadLinkInfo(_) => Command::ReadLinkInfo,
            Reply::GetCwd(_) => Command::GetCwd,
            Reply::Error(_) | Reply::Other(_) => return None,
        })
    }

    /// Classifies a term. A tagged reply whose value has an unexpected shape is [`Reply::Other`],
    /// so that every term re-encodes to the bytes it came from.
    pub fn from_term(term: Term) -> Reply {
        Reply::classify(&term).unwrap_or(Reply::Other(term))
    }

    fn classify(term: &Term) -> Option<Reply> {
        let [tag, result] = term.as_tuple()? else {
            return None;
        };
        let tag = tag.as_atom()?;
        if tag == "error" {
            return Some(Reply::Error(Reason(result.clone())));
        }
        let command = Command::from_atom(tag)?;
        let [status, value] = result.as_tuple()? else {
            return None;
        };
        if status.as_atom()? == "error" {
            return Some(Reply::error(command, Reason(value.clone())));
        }
        (status.as_atom()? == "ok").then_some(())?;
        Some(match command {
            Command::Get => match value {
                Term::Binary(bytes) => Reply::Get(Ok(bytes.clone())),
                _ => return None,
            },
            Command::ListDir => match value {
                Term::List(names) => Reply::ListDir(Ok(names
                    .iter()
                    .map(Term::as_string)
                    .collect::<Option<_>>()?)),
                _ => return None,
            },
            Command::ReadFileInfo => Reply::ReadFileInfo(Ok(FileInfo::from_term(value)?)),
            Command::ReadLinkInfo => Reply::ReadLinkInfo(Ok(FileInfo::from_term(value)?)),
            Command::GetCwd => Reply::GetCwd(Ok(value.as_string()?)),
        })
    }

    /// The term on the wire.
    pub fn to_term(&self) -> Term {
        fn tagged<T>(
            command: Command,
            result: &Result<T, Reason>,
            ok: impl Fn(&T) -> Term,
        ) -> Term {
            let result = match result {
                Ok(value) => Term::tuple([Term::atom("ok"), ok(value)]),
                Err(reason) => Term::tuple([Term::atom("error"), reason.0.clone()]),
            };
            Term::tuple([Term::atom(command.atom()), result])
        }
        match self {
            Reply::Get(r) => tagged(Command::Get, r, |b| Term::Binary(b.clone())),
            Reply::ListDir(r) => tagged(Command::ListDir, r, |names| {
                Term::List(names.iter().map(|n| Term::string(n)).collect())
            }),
            Reply::ReadFileInfo(r) => tagged(Command::ReadFileInfo, r, FileInfo::to_term),
            Reply::ReadLinkInfo(r) => tagged(Command::ReadLinkInfo, r, FileInfo::to_term),
            Reply::GetCwd(r) => tagged(Command::GetCwd, r, |dir| Term::string(dir)),
            Reply::Error(reason) => Term::tuple([Term::atom("error"), reason.0.clone()]),
            Reply::Other(term) => term.clone(),
        }
    }
}
