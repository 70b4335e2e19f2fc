//! The `#file_info{}` record (kernel/include/file.hrl), a 14-tuple on the wire.

use crate::etf::{BigInt, Emitter, Term};

/// What kind of file a `#file_info{}` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `device`.
    Device,
    /// `directory`; also what OTP reports for an `.ez` archive and the directories inside it.
    Directory,
    /// `other`.
    Other,
    /// `regular`.
    Regular,
    /// `symlink` (only from `read_link_info`).
    Symlink,
}

/// What the server's OS user may do with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `read_write`.
    ReadWrite,
    /// `none`.
    None,
}

/// A calendar time `{{Y,M,D},{H,Mi,S}}`, in the server's local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime {
    /// Year, e.g. 2024.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
}

/// `#file_info{}` with every field OTP sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileInfo {
    /// Size in bytes.
    pub size: u64,
    /// Kind of file.
    pub file_type: FileType,
    /// Access for the server's user.
    pub access: Access,
    /// Last access.
    pub atime: DateTime,
    /// Last modification.
    pub mtime: DateTime,
    /// Last status change.
    pub ctime: DateTime,
    /// `st_mode`, e.g. 0o100644.
    pub mode: u32,
    /// Hard links.
    pub links: u64,
    /// `st_dev`.
    pub major_device: u64,
    /// `st_rdev`.
    pub minor_device: u64,
    /// `st_ino`.
    pub inode: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl FileType {
    fn atom(self) -> &'static str {
        match self {
            FileType::Device => "device",
            FileType::Directory => "directory",
            FileType::Other => "other",
            FileType::Regular => "regular",
            FileType::Symlink => "symlink",
        }
    }

    fn from_atom(atom: &str) -> Option<FileType> {
        [
            FileType::Device,
            FileType::Directory,
            FileType::Other,
            FileType::Regular,
            FileType::Symlink,
        ]
        .into_iter()
        .find(|t| t.atom() == atom)
    }
}

impl Access {
    fn atom(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "read_write",
            Access::None => "none",
        }
    }

    fn from_atom(atom: &str) -> Option<Access> {
        [Access::Read, Access::Write, Access::ReadWrite, Access::None]
            .into_iter()
            .find(|a| a.atom() == atom)
    }
}

impl DateTime {
    fn to_term(self) -> Term {
        let int = |v: u8| Term::Int(v.into());
        Term::tuple([
            Term::tuple([Term::Int(self.year.into()), int(self.month), int(self.day)]),
            Term::tuple([int(self.hour), int(self.minute), int(self.second)]),
        ])
    }

    fn from_term(term: &Term) -> Option<DateTime> {
        let [date, time] = term.as_tuple()? else {
            return None;
        };
        let [year, month, day] = date.as_tuple()? else {
            return None;
        };
        let [hour, minute, second] = time.as_tuple()? else {
            return None;
        };
        Some(DateTime {
            year: int(year)?,
            month: int(month)?,
            day: int(day)?,
            hour: int(hour)?,
            minute: int(minute)?,
            second: int(second)?,
        })
    }
}

/// An integer term as `T`, if it fits.
fn int<T: TryFrom<i64>>(term: &Term) -> Option<T> {
    match term {
        Term::Int(i) => T::try_from(*i).ok(),
        _ => None,
    }
}

/// A `u64` term, which needs a bignum past `i64::MAX`.
fn unsigned(term: &Term) -> Option<u64> {
    match term {
        Term::Int(i) => u64::try_from(*i).ok(),
        Term::Big(BigInt {
            negative: false,
            magnitude,
        }) if magnitude.len() <= 8 => {
            let mut le = [0; 8];
            le[..magnitude.len()].copy_from_slice(magnitude);
            Some(u64::from_le_bytes(le))
        }
        _ => None,
    }
}

fn unsigned_term(value: u64) -> Term {
    BigInt::normalize(false, value.to_le_bytes().to_vec())
}

impl FileInfo {
    /// Writes the record's tuple, as [`FileInfo::to_term`] encodes.
    pub fn emit(&self, out: &mut Emitter<'_>) {
        out.tuple(14);
        out.atom("file_info");
        out.unsigned(self.size);
        out.atom(self.file_type.atom());
        out.atom(self.access.atom());
        for time in [self.atime, self.mtime, self.ctime] {
            out.tuple(2);
            out.tuple(3);
            out.int(time.year.into());
            out.int(time.month.into());
            out.int(time.day.into());
            out.tuple(3);
            out.int(time.hour.into());
            out.int(time.minute.into());
            out.int(time.second.into());
        }
        out.int(self.mode.into());
        out.unsigned(self.links);
        out.unsigned(self.major_device);
        out.unsigned(self.minor_device);
        out.unsigned(self.inode);
        out.int(self.uid.into());
        out.int(self.gid.into());
    }

    /// The record as a 14-tuple tagged `file_info`.
    pub fn to_term(&self) -> Term {
        Term::tuple([
            Term::atom("file_info"),
            unsigned_term(self.size),
            Term::atom(self.file_type.atom()),
            Term::atom(self.access.atom()),
            self.atime.to_term(),
            self.mtime.to_term(),
            self.ctime.to_term(),
            Term::Int(self.mode.into()),
            unsigned_term(self.links),
            unsigned_term(self.major_device),
            unsigned_term(self.minor_device),
            unsigned_term(self.inode),
            Term::Int(self.uid.into()),
            Term::Int(self.gid.into()),
        ])
    }

    /// The record from its tuple; `None` unless every field has the type OTP sends.
    pub fn from_term(term: &Term) -> Option<FileInfo> {
        let [tag, size, file_type, access, atime, mtime, ctime, mode, links, major, minor, inode, uid, gid] =
            term.as_tuple()?
        else {
            return None;
        };
        (tag.as_atom()? == "file_info").then_some(())?;
        Some(FileInfo {
            size: unsigned(size)?,
            file_type: FileType::from_atom(file_type.as_atom()?)?,
            access: Access::from_atom(access.as_atom()?)?,
            atime: DateTime::from_term(atime)?,
            mtime: DateTime::from_term(mtime)?,
            ctime: DateTime::from_term(ctime)?,
            mode: int(mode)?,
            links: unsigned(links)?,
            major_device: unsigned(major)?,
            minor_device: unsigned(minor)?,
            inode: unsigned(inode)?,
            uid: int(uid)?,
            gid: int(gid)?,
        })
    }
}
