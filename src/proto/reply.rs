//! Replies, server to client: `{Command, {ok, Value}}`, `{Command, {error, Reason}}`, and the
//! untagged `{error, Reason}` that answers an unknown command.

use bytes::Bytes;

use crate::etf::{self, DecodeError, Decoder, EncodeError, Profile, Term};

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
        etf::encode(&self.to_term(), profile)
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
