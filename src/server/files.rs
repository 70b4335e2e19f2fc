//! Where a session's files come from: the [`FileSource`] trait and the errors it answers with.
//!
//! File names arrive as Erlang strings (code points), exactly as the client sent them, relative
//! or absolute; a source decides what they mean on its file system. Two sources exist:
//! [`DiskSource`](super::DiskSource) (the real file system, jailed and cached) and
//! [`MemorySource`](super::MemorySource) (a tree held in memory, for the simulator and replay).

use std::time::Duration;

use bytes::Bytes;

use crate::etf::Profile;
use crate::proto::{FileInfo, Reason};

/// Whether a file-info lookup follows a final symbolic link (`read_file_info`) or describes the
/// link itself (`read_link_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Follow {
    /// `read_file_info`: describe what the link points to.
    Links,
    /// `read_link_info`: describe the link.
    NoLinks,
}

/// A state of a source: an answer given at one version may be given again while the source is
/// at the same version, as far as [`FileSource::reuse`] allows.
pub type Version = u64;

/// What a session needs to know from its source to answer one request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Question {
    /// [`FileSource::get`].
    Get(String),
    /// [`FileSource::list_dir`].
    ListDir(String),
    /// [`FileSource::file_info`].
    FileInfo(String, Follow),
    /// [`FileSource::cwd`].
    Cwd,
}

impl Question {
    /// The file name asked about, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Question::Get(name) | Question::ListDir(name) | Question::FileInfo(name, _) => {
                Some(name)
            }
            Question::Cwd => None,
        }
    }
}

/// A question as a session hands it to its driver: what to read, for which client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileQuestion {
    /// What to read.
    pub question: Question,
    /// The encoding profile of the client's release (OTP 25 or OTP 26+), for answers that
    /// differ between releases (file times inside `.ez` archives).
    pub profile: Profile,
    /// Whether the session would remember the answer: only then is [`FileAnswer::reuse`]
    /// worth working out.
    pub remember: bool,
    /// Whether this is the connection's first question into the `.ez` archive the name points
    /// into: OTP's connection opens the archive then, and that walk answers differently from
    /// later ones ([`Pass`](crate::archive::Pass)).
    pub first_in_archive: bool,
}

/// What a source found for a question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A file's contents.
    Contents(Bytes),
    /// A directory's names.
    Names(Vec<String>),
    /// A `#file_info{}`.
    Info(FileInfo),
    /// The working directory.
    Cwd(String),
}

/// The answer to a [`FileQuestion`], as the driver hands it back to the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileAnswer {
    /// What was found, or the error OTP's file layer would give.
    pub result: Result<Found, FileError>,
    /// Whether the answer may be given again ([`Reuse::Never`] unless the question asked).
    pub reuse: Reuse,
    /// The source's version read before the question was answered: a remembered answer is
    /// tied to it.
    pub version: Option<Version>,
}

impl FileAnswer {
    /// An answer that failed with `error` and may not be remembered: what a driver hands back
    /// when the source could not be asked at all.
    pub fn failed(error: FileError) -> FileAnswer {
        FileAnswer {
            result: Err(error),
            reuse: Reuse::Never,
            version: None,
        }
    }
}

/// Whether an answer may be given again without asking the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// No: nothing would tell when this answer changes.
    Never,
    /// Not this answer, but a later answer to the same question may be (a file time that can
    /// still move without a change the source would see).
    NotYet,
    /// Yes, while the source stays at the version it was at before the question was asked,
    /// and for at most this long.
    For(Duration),
}

/// The file operations a boot session needs, answered as OTP's `prim_file` would answer them.
pub trait FileSource: Send + Sync {
    /// The whole contents of a file (`{get, Name}`).
    fn get(&self, name: &str) -> Result<Bytes, FileError>;

    /// The names in a directory, in the order the file system lists them, without `.` and
    /// `..` (`{list_dir, Name}`).
    fn list_dir(&self, name: &str) -> Result<Vec<String>, FileError>;

    /// A `#file_info{}` with times in the server's local time (`{read_file_info, Name}` and
    /// `{read_link_info, Name}`).
    fn file_info(&self, name: &str, follow: Follow) -> Result<FileInfo, FileError>;

    /// The directory relative names resolve against, which `get_cwd` reports.
    fn cwd(&self) -> Result<String, FileError>;

    /// The source's version now, or `None` if it cannot tell when its answers change (the
    /// default): then every request is answered afresh.
    fn version(&self) -> Option<Version> {
        None
    }

    /// The version now if it can be told without waiting, as a driver on an async worker asks
    /// it before looking up remembered replies (`None`: answer afresh); by default
    /// [`FileSource::version`].
    fn current_version(&self) -> Option<Version> {
        self.version()
    }

    /// Whether the answer just given to `question` may be given again (see [`Reuse`]);
    /// `info` is that answer when it was a file info. Asked only of a source with a version.
    fn reuse(&self, question: &Question, info: Option<&FileInfo>) -> Reuse {
        let _ = (question, info);
        Reuse::Never
    }

    /// What the source finds for a question. By default the question's client makes no
    /// difference; a source whose answers depend on the client's release (`.ez` archives on
    /// disk) looks at [`FileQuestion::profile`] and [`FileQuestion::first_in_archive`].
    fn find(&self, question: &FileQuestion) -> Result<Found, FileError> {
        find_plain(self, &question.question)
    }

    /// Answers a session's question: the version first, then the answer, then (if the
    /// question asks) whether it may be given again. This may block on the file system: a
    /// driver on an async runtime calls it off its workers.
    fn answer(&self, question: &FileQuestion) -> FileAnswer {
        let version = self.version();
        let result = self.find(question);
        let reuse = match (question.remember, version) {
            (true, Some(_)) => {
                let info = match &result {
                    Ok(Found::Info(info)) => Some(info),
                    _ => None,
                };
                self.reuse(&question.question, info)
            }
            _ => Reuse::Never,
        };
        FileAnswer {
            result,
            reuse,
            version,
        }
    }
}

/// What `source` finds for `question` through its plain methods, whoever the client: the
/// default [`FileSource::find`], and what a source's own `find` falls back to.
pub(crate) fn find_plain<S: FileSource + ?Sized>(
    source: &S,
    question: &Question,
) -> Result<Found, FileError> {
    match question {
        Question::Get(name) => source.get(name).map(Found::Contents),
        Question::ListDir(name) => source.list_dir(name).map(Found::Names),
        Question::FileInfo(name, follow) => source.file_info(name, *follow).map(Found::Info),
        Question::Cwd => source.cwd().map(Found::Cwd),
    }
}

/// Why a file operation failed: the POSIX error OTP's file layer would name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FileError {
    /// No such file or directory; also anything outside the jail.
    #[error("enoent")]
    NoEntry,
    /// A path component is not a directory.
    #[error("enotdir")]
    NotDirectory,
    /// A directory where a file was expected.
    #[error("eisdir")]
    IsDirectory,
    /// Permission denied.
    #[error("eacces")]
    Access,
    /// Too many levels of symbolic links.
    #[error("eloop")]
    Loop,
    /// A name or component too long.
    #[error("enametoolong")]
    NameTooLong,
    /// An invalid argument for the operation.
    #[error("einval")]
    Invalid,
    /// A name that cannot be a file name here (a NUL, or a code point the file-name encoding
    /// cannot hold): OTP's `badarg`.
    #[error("badarg")]
    BadName,
    /// Not supported on this system.
    #[error("enotsup")]
    NotSupported,
    /// Out of memory, or a file larger than the server will hold.
    #[error("enomem")]
    NoMemory,
    /// Any other I/O error.
    #[error("eio")]
    Io,
    /// An `.ez` archive without a valid zip end record (`prim_zip`'s `bad_eocd`).
    #[error("bad_eocd")]
    BadEndRecord,
    /// An `.ez` archive whose zip central directory is cut short or malformed (`prim_zip`'s
    /// `bad_central_directory`).
    #[error("bad_central_directory")]
    BadCentralDirectory,
}

impl FileError {
    /// The atom OTP uses for this error.
    pub fn atom(self) -> &'static str {
        match self {
            FileError::NoEntry => "enoent",
            FileError::NotDirectory => "enotdir",
            FileError::IsDirectory => "eisdir",
            FileError::Access => "eacces",
            FileError::Loop => "eloop",
            FileError::NameTooLong => "enametoolong",
            FileError::Invalid => "einval",
            FileError::BadName => "badarg",
            FileError::NotSupported => "enotsup",
            FileError::NoMemory => "enomem",
            FileError::Io => "eio",
            FileError::BadEndRecord => "bad_eocd",
            FileError::BadCentralDirectory => "bad_central_directory",
        }
    }

    /// The error OTP names with `atom`, if it is one a source can give.
    pub fn from_atom(atom: &str) -> Option<FileError> {
        const ALL: [FileError; 13] = [
            FileError::NoEntry,
            FileError::NotDirectory,
            FileError::IsDirectory,
            FileError::Access,
            FileError::Loop,
            FileError::NameTooLong,
            FileError::Invalid,
            FileError::BadName,
            FileError::NotSupported,
            FileError::NoMemory,
            FileError::Io,
            FileError::BadEndRecord,
            FileError::BadCentralDirectory,
        ];
        ALL.into_iter().find(|e| e.atom() == atom)
    }

    /// The reason in an `{error, Reason}` reply.
    pub fn reason(self) -> Reason {
        Reason::atom(self.atom())
    }

    /// The error for an operating-system error number.
    pub fn from_errno(errno: i32) -> FileError {
        match errno {
            libc::ENOENT => FileError::NoEntry,
            libc::ENOTDIR => FileError::NotDirectory,
            libc::EISDIR => FileError::IsDirectory,
            libc::EACCES | libc::EPERM => FileError::Access,
            libc::ELOOP => FileError::Loop,
            libc::ENAMETOOLONG => FileError::NameTooLong,
            libc::EINVAL => FileError::Invalid,
            libc::ENOTSUP => FileError::NotSupported,
            libc::ENOMEM => FileError::NoMemory,
            _ => FileError::Io,
        }
    }
}

impl From<std::io::Error> for FileError {
    fn from(error: std::io::Error) -> FileError {
        match error.raw_os_error() {
            Some(errno) => FileError::from_errno(errno),
            None if error.kind() == std::io::ErrorKind::NotFound => FileError::NoEntry,
            None if error.kind() == std::io::ErrorKind::OutOfMemory => FileError::NoMemory,
            None => FileError::Io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_reads_back_from_its_atom_and_nothing_else_does() {
        for errno in [
            libc::ENOENT,
            libc::ENOTDIR,
            libc::EISDIR,
            libc::EACCES,
            libc::EIO,
        ] {
            let error = FileError::from_errno(errno);
            assert_eq!(FileError::from_atom(error.atom()), Some(error));
        }
        for error in [
            FileError::BadName,
            FileError::BadCentralDirectory,
            FileError::Loop,
        ] {
            assert_eq!(FileError::from_atom(error.atom()), Some(error));
        }
        assert_eq!(FileError::from_atom("unknown_command"), None);
        assert_eq!(FileError::from_atom(""), None);
    }
}
