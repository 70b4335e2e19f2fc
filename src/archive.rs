//! `.ez` archives: a bounded zip reader that answers `get`, `list_dir` and `read_file_info` inside
//! an archive exactly as OTP's `erl_prim_loader` and `prim_zip` do for a boot server.
//!
//! # How OTP reads an archive
//!
//! Line numbers are those of OTP 25.2.3 (erts-13.1.5, `src/erl_prim_loader.erl` and
//! `src/prim_zip.erl`); OTP 27.3 was checked by running it (`tests/archive_oracle.rs`).
//!
//! - [`split`] is `name_split(undefined, File)` (erl_prim_loader.erl 1328) and
//!   `archive_split/3` (1358): the first component ending in `.ez` that is followed by `/` or by
//!   the end of the name names the archive; the rest, unchanged (no `.`/`..` handling, no
//!   collapsing of `//`), is the path inside.
//! - The zip is read by `prim_zip:open/3`. The end record is searched for in windows of 22, 44,
//!   ..., 45056 bytes from the end of the file, each scanned from its start
//!   (`get_end_of_central_dir/3` 325, `find_eocd_header/1` 338); a window longer than the file
//!   is `einval` (the seek fails), none found is `bad_eocd`, and the record must be followed by
//!   exactly its comment (`eocd_and_comment_from_bin/1` 457). The central directory is parsed
//!   all or nothing (`get_cd_loop/11` 237, `get_file_header/1` 284: `bad_central_directory`),
//!   using the end record's total entry count; names are bytes taken as Latin-1 characters.
//! - `open_archive/4` (erl_prim_loader.erl 1152) and `ensure_virtual_dirs/6` (1174) put a
//!   virtual directory entry before each entry whose parent directories have not been seen;
//!   a virtual directory's info is the archive's own `file_info` with `type = directory`.
//! - `get` (`prim_get_file/2` 934) compares the path with each entry name exactly
//!   (`path_split/1` 1307): a directory entry is reached only with its trailing `/` and gives
//!   `<<>>`; the archive itself and a directory without the `/` give `enoent`.
//! - `list_dir` (`prim_list_dir/2` 961) collects the names one level below, in reverse archive
//!   order (duplicates included), and answers `enotdir` unless the directory itself exists; any
//!   failure to open the archive is `enotdir` too.
//! - `read_file_info` (`prim_read_file_info/3` 1014) of the archive itself (`a.ez`, `a.ez/`)
//!   is the archive's own info with `type = directory`, without opening the zip, so even a
//!   file that is not a zip answers this way. Below it, an entry matches with or without a
//!   trailing `/`. A zip entry's info comes from its central directory header
//!   (`cd_file_header_to_file_info/3`, prim_zip.erl 477): size from the header's uncompressed
//!   size, `regular` or `directory` by a trailing `/`, `read_write`, mode 8#066, one link, zeros
//!   for devices, inode, uid and gid, and all three times the DOS date and time taken
//!   literally: no time zone, no range checks, and in OTP 25 the 2-second field read as
//!   seconds; OTP 27 doubles it ([`DosSeconds`]). `read_link_info` is the same as
//!   `read_file_info` for every name that splits, including the archive itself.
//! - An entry's data (`get_z_file/4` 174) runs from its local header to the next entry's local
//!   header in central directory order (or to the central directory), skipping 12 more bytes
//!   when flag bit 3 is set (`offset_over_z_data_descriptor/1` 216). Method 0 is returned as
//!   is, method 8 raw-inflated until the stream ends or the input runs out (trailing bytes are
//!   ignored, a cut stream gives what was decoded); CRCs and the compressed size are not used.
//!
//! The first request on an archive in a connection (OTP opening it, 1072) visits every entry
//! and the last match wins; later requests use the cached entry list and stop at the first
//! match (`foldl_archive/3` 1202). They differ only for archives with duplicate names, or with
//! a directory entry after its contents ([`Pass`]).
//!
//! Where OTP's connection process crashes (a bad local header, an unknown compression method,
//! corrupt deflate data: the `throw` escapes `prim_zip:open/3` or zlib raises), this module
//! answers [`FileError::Io`]; where an entry would inflate past [`ArchiveLimits::max_entry_size`],
//! [`FileError::NoMemory`].

use std::collections::HashMap;

use bytes::Bytes;

use crate::etf::{latin1_to_string, Profile};
use crate::proto::{Access, DateTime, FileInfo, FileType};
use crate::server::FileError;

/// The archive extension, `init:archive_extension()`.
pub const EXTENSION: &str = ".ez";

/// Splits a requested name into the archive's path and the path inside it, as OTP's
/// `archive_split/3` does, or `None` when the name does not refer into an archive.
///
/// OTP then makes the archive path absolute against the server's cwd (`absname/1`); that
/// names the same file, so relative archive paths are returned as they are.
pub fn split(name: &str) -> Option<(&str, &str)> {
    // Every request's name is split, and nearly none holds the extension: those are told by
    // one search.
    if !name.contains(EXTENSION) {
        return None;
    }
    // The first separator after the extension ends the archive's path.
    let inside = name
        .match_indices('/')
        .map(|(at, _)| at)
        .find(|&at| name[..at].ends_with(EXTENSION));
    match inside {
        Some(at) => Some((&name[..at], &name[at + 1..])),
        None => name.ends_with(EXTENSION).then_some((name, "")),
    }
}

/// Which of OTP's two walks over an archive a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pass {
    /// The first request on an archive in a connection: every entry is visited, the last match
    /// wins. (OTP also reads the data of every earlier match of a `get`, and crashes if one is
    /// unreadable; only the last is read here, so that duplicates cannot multiply the work.)
    Opening,
    /// Every later request: the walk stops at the first match.
    #[default]
    Cached,
}

/// How the DOS time's seconds field (two-second units, 0..=31) becomes the seconds of an
/// entry's `file_info`: this changed between OTP releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DosSeconds {
    /// The field as stored, 0..=31 (OTP 25: `dos_date_time_to_datetime/2`, prim_zip.erl 531; 26
    /// not checked).
    #[default]
    AsStored,
    /// Twice the field, 0..=62 (OTP 27.3, after erlang/otp PR #8537). OTP 28 and later may
    /// cap it at 59 (PR #9537); not checked.
    Doubled,
}

impl DosSeconds {
    /// The reading of a client of this encoding profile's release: OTP 25 and earlier as
    /// stored; OTP 26 and later (whose requests look alike) doubled, as OTP 27 reads them.
    pub fn of(profile: Profile) -> DosSeconds {
        match profile {
            Profile::Otp25 => DosSeconds::AsStored,
            Profile::Otp26 => DosSeconds::Doubled,
        }
    }
}

/// Bounds on what an untrusted archive may make the reader hold or produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Central directory entries.
    pub max_entries: usize,
    /// Entries plus the virtual directories added for them.
    pub max_nodes: usize,
    /// Bytes one entry may inflate to, and the largest uncompressed size a deflated entry may
    /// declare.
    pub max_entry_size: usize,
}

impl Default for ArchiveLimits {
    fn default() -> ArchiveLimits {
        ArchiveLimits {
            max_entries: 65_535,
            max_nodes: 1 << 20,
            max_entry_size: 256 << 20,
        }
    }
}

/// Why an archive could not be opened. [`FileError::from`] gives the reason OTP answers `get`
/// and `read_file_info` with; `list_dir` always answers `enotdir`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The end record was not found before the search window outgrew the file (OTP: `einval`,
    /// from seeking before the start of the file).
    #[error("no zip end record in a {len}-byte file")]
    ShortFile {
        /// The file's length.
        len: usize,
    },
    /// No end record in the last 45056 bytes, or a malformed one (OTP: `bad_eocd`).
    #[error("no valid zip end record")]
    BadEndRecord,
    /// The central directory is cut short or malformed (OTP: `bad_central_directory`).
    #[error("bad zip central directory")]
    BadCentralDirectory,
    /// More central directory entries than [`ArchiveLimits::max_entries`].
    #[error("{count} zip entries, more than the limit of {max}")]
    TooManyEntries {
        /// Entries the end record declares.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More entries and virtual directories than [`ArchiveLimits::max_nodes`].
    #[error("more than {max} files and directories in the archive")]
    TooManyNodes {
        /// The limit.
        max: usize,
    },
}

impl From<&ArchiveError> for FileError {
    fn from(error: &ArchiveError) -> FileError {
        match error {
            ArchiveError::ShortFile { .. } => FileError::Invalid,
            ArchiveError::BadEndRecord => FileError::BadEndRecord,
            ArchiveError::BadCentralDirectory => FileError::BadCentralDirectory,
            ArchiveError::TooManyEntries { .. } | ArchiveError::TooManyNodes { .. } => {
                FileError::NoMemory
            }
        }
    }
}

impl From<ArchiveError> for FileError {
    fn from(error: ArchiveError) -> FileError {
        FileError::from(&error)
    }
}

/// One central directory entry.
#[derive(Clone, Debug)]
struct ZipEntry {
    /// The name, each byte taken as a Latin-1 character.
    name: String,
    /// Where its local header starts.
    offset: u32,
    /// Where its data chunk ends: the next entry's local header, or the central directory.
    end: u32,
    uncompressed_size: u32,
    dos_time: u16,
    dos_date: u16,
}

/// An entry or a virtual directory, named by a prefix of an entry's name.
#[derive(Clone, Copy, Debug)]
struct Node {
    entry: u32,
    /// Bytes of the entry's name that name this node; a virtual directory ends in `/`.
    len: u32,
    virtual_dir: bool,
}

/// A parsed `.ez` archive: its entries and OTP's virtual directories, in OTP's order.
#[derive(Clone, Debug)]
pub struct Archive {
    data: Bytes,
    entries: Vec<ZipEntry>,
    nodes: Vec<Node>,
    limits: ArchiveLimits,
    seconds: DosSeconds,
}

const EOCD_MAGIC: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
const CENTRAL_MAGIC: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
const LOCAL_MAGIC: [u8; 4] = [0x50, 0x4b, 0x03, 0x04];
const EOCD_SIZE: usize = 22;
const CENTRAL_SIZE: usize = 46;
const LOCAL_SIZE: usize = 30;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `find_eocd_header/1`: the bytes after the first end-record magic in the window, looking
/// at positions while more than 18 bytes follow the current one.
fn find_end_record(window: &[u8]) -> Option<&[u8]> {
    let mut p = 0;
    loop {
        if window.len() >= p + 4 && window[p..p + 4] == EOCD_MAGIC {
            return Some(&window[p + 4..]);
        }
        if window.len().saturating_sub(p + 1) > EOCD_SIZE - 4 {
            p += 1;
        } else {
            return None;
        }
    }
}

/// `prim_file:pread/3` on the archive: the bytes at `offset`, cut at the end of the file;
/// `None` (eof) at or past the end.
fn pread(data: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    (offset < data.len()).then(|| &data[offset..data.len().min(offset.saturating_add(len))])
}

/// Directory prefixes seen so far, as a trie of name components (OTP's `Dirs` list).
#[derive(Default)]
struct Dirs {
    components: HashMap<Box<str>, u32>,
    children: HashMap<(u32, u32), u32>,
    seen: Vec<bool>,
}

impl Dirs {
    /// The trie node of each directory prefix of `name` (cut at each `/`), outermost first.
    fn prefixes(&mut self, name: &str) -> Vec<(usize, u32)> {
        if self.seen.is_empty() {
            self.seen.push(false);
        }
        let mut node = 0;
        let mut start = 0;
        let mut out = Vec::new();
        for (i, _) in name.match_indices('/') {
            let component = &name[start..i];
            let id = match self.components.get(component) {
                Some(&id) => id,
                None => {
                    let id = self.components.len() as u32;
                    self.components.insert(component.into(), id);
                    id
                }
            };
            let next_node = self.seen.len() as u32;
            node = *self.children.entry((node, id)).or_insert(next_node);
            if node == next_node {
                self.seen.push(false);
            }
            out.push((i, node));
            start = i + 1;
        }
        out
    }
}

impl Archive {
    /// Parses an archive with the default [`ArchiveLimits`].
    pub fn parse(data: Bytes) -> Result<Archive, ArchiveError> {
        Archive::parse_with(data, ArchiveLimits::default())
    }

    /// Parses an archive as `prim_zip:open/3` does, within `limits`.
    pub fn parse_with(data: Bytes, limits: ArchiveLimits) -> Result<Archive, ArchiveError> {
        let end_record = Archive::end_record(&data)?;
        let count = usize::from(u16_at(end_record, 6));
        let cd_size = u32_at(end_record, 8) as usize;
        let cd_offset = u32_at(end_record, 12);
        if count > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                count,
                max: limits.max_entries,
            });
        }
        let mut entries = Vec::new();
        if count > 0 {
            let mut cd = pread(&data, cd_offset as usize, cd_size)
                .ok_or(ArchiveError::BadCentralDirectory)?;
            entries.reserve(count.min(cd.len() / CENTRAL_SIZE));
            for _ in 0..count {
                if cd.len() < CENTRAL_SIZE || cd[..4] != CENTRAL_MAGIC {
                    return Err(ArchiveError::BadCentralDirectory);
                }
                let name_len = usize::from(u16_at(cd, 28));
                let rest = name_len + usize::from(u16_at(cd, 30)) + usize::from(u16_at(cd, 32));
                if cd.len() - CENTRAL_SIZE < rest {
                    return Err(ArchiveError::BadCentralDirectory);
                }
                let name = &cd[CENTRAL_SIZE..CENTRAL_SIZE + name_len];
                entries.push(ZipEntry {
                    name: latin1_to_string(name),
                    offset: u32_at(cd, 42),
                    end: 0,
                    uncompressed_size: u32_at(cd, 24),
                    dos_time: u16_at(cd, 12),
                    dos_date: u16_at(cd, 14),
                });
                cd = &cd[CENTRAL_SIZE + rest..];
            }
            for i in 0..entries.len() {
                entries[i].end = entries.get(i + 1).map_or(cd_offset, |next| next.offset);
            }
        }
        let nodes = Archive::nodes(&entries, limits)?;
        Ok(Archive {
            data,
            entries,
            nodes,
            limits,
            seconds: DosSeconds::default(),
        })
    }

    /// The archive answering `file_info` with the seconds of the given OTP release.
    pub fn with_dos_seconds(self, seconds: DosSeconds) -> Archive {
        Archive { seconds, ..self }
    }

    /// `get_end_of_central_dir/3` and `eocd_and_comment_from_bin/1`: the 18 bytes after the
    /// end record's magic, which must be followed by exactly its comment.
    fn end_record(data: &[u8]) -> Result<&[u8], ArchiveError> {
        let mut size = EOCD_SIZE;
        loop {
            if size > 0xffff {
                return Err(ArchiveError::BadEndRecord);
            }
            if size > data.len() {
                return Err(ArchiveError::ShortFile { len: data.len() });
            }
            if let Some(rest) = find_end_record(&data[data.len() - size..]) {
                if rest.len() < EOCD_SIZE - 4
                    || rest.len() != EOCD_SIZE - 4 + usize::from(u16_at(rest, 16))
                {
                    return Err(ArchiveError::BadEndRecord);
                }
                return Ok(rest);
            }
            size *= 2;
        }
    }

    /// The entries with OTP's virtual directories inserted (`ensure_virtual_dirs/6`).
    fn nodes(entries: &[ZipEntry], limits: ArchiveLimits) -> Result<Vec<Node>, ArchiveError> {
        let mut dirs = Dirs::default();
        let mut nodes = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let prefixes = dirs.prefixes(&entry.name);
            let mut walk = prefixes.len();
            if entry.name.ends_with('/') {
                // A directory entry joins `Dirs` before its parents are ensured.
                let (_, own) = prefixes[walk - 1];
                if dirs.seen[own as usize] {
                    walk = 0;
                } else {
                    dirs.seen[own as usize] = true;
                    walk -= 1;
                }
            }
            // Every ancestor of a directory in `Dirs` is in `Dirs`, so the missing ones are
            // the innermost few.
            let mut first_missing = walk;
            while first_missing > 0 && !dirs.seen[prefixes[first_missing - 1].1 as usize] {
                first_missing -= 1;
                dirs.seen[prefixes[first_missing].1 as usize] = true;
            }
            for &(slash, _) in &prefixes[first_missing..walk] {
                nodes.push(Node {
                    entry: index as u32,
                    len: slash as u32 + 1,
                    virtual_dir: true,
                });
            }
            nodes.push(Node {
                entry: index as u32,
                len: entry.name.len() as u32,
                virtual_dir: false,
            });
            if nodes.len() > limits.max_nodes {
                return Err(ArchiveError::TooManyNodes {
                    max: limits.max_nodes,
                });
            }
        }
        Ok(nodes)
    }

    /// The entry names in central directory order, each byte as a Latin-1 character.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    fn node_name(&self, node: &Node) -> &str {
        &self.entries[node.entry as usize].name[..node.len as usize]
    }

    /// The node OTP's walk settles on among those `matches` accepts.
    fn find(&self, pass: Pass, matches: impl Fn(&str) -> bool) -> Option<&Node> {
        let mut all = self.nodes.iter().filter(|n| matches(self.node_name(n)));
        match pass {
            Pass::Cached => all.next(),
            Pass::Opening => all.last(),
        }
    }

    /// `{get, Archive/Inner}` on a connection that has read this archive before.
    pub fn get(&self, inner: &str) -> Result<Bytes, FileError> {
        self.get_in(Pass::Cached, inner)
    }

    /// `{get, Archive/Inner}` in the given pass.
    pub fn get_in(&self, pass: Pass, inner: &str) -> Result<Bytes, FileError> {
        let node = self
            .find(pass, |name| name == inner)
            .ok_or(FileError::NoEntry)?;
        if node.virtual_dir {
            return Ok(Bytes::new());
        }
        self.read(&self.entries[node.entry as usize])
    }

    /// `get_z_file/4`: an entry's data.
    fn read(&self, entry: &ZipEntry) -> Result<Bytes, FileError> {
        let offset = entry.offset as usize;
        let size = (entry.end as usize)
            .checked_sub(offset)
            .ok_or(FileError::Io)?;
        let chunk = pread(&self.data, offset, size).ok_or(FileError::Io)?;
        if chunk.len() < LOCAL_SIZE || chunk[..4] != LOCAL_MAGIC {
            return Err(FileError::Io);
        }
        let flags = u16_at(chunk, 6);
        let method = u16_at(chunk, 8);
        let skip = LOCAL_SIZE
            + usize::from(u16_at(chunk, 26))
            + usize::from(u16_at(chunk, 28))
            + if flags & 8 != 0 { 12 } else { 0 };
        if chunk.len() < skip {
            return Err(FileError::Io);
        }
        let start = offset + skip;
        match method {
            0 => Ok(self.data.slice(start..offset + chunk.len())),
            8 => {
                let max = self.limits.max_entry_size;
                if entry.uncompressed_size as usize > max {
                    return Err(FileError::NoMemory);
                }
                inflate(&chunk[skip..], max)
            }
            _ => Err(FileError::Io),
        }
    }

    /// `{list_dir, Archive/Inner}`: the names one level below `inner`, in OTP's order.
    pub fn list_dir(&self, inner: &str) -> Result<Vec<String>, FileError> {
        let mut found = false;
        let mut names = Vec::new();
        for node in &self.nodes {
            let name = self.node_name(node);
            if let Some(rest) = name.strip_prefix(inner).and_then(|r| r.strip_prefix('/')) {
                if rest.is_empty() {
                    found = true;
                    continue;
                }
                if !rest.contains('/') {
                    names.push(rest);
                    continue;
                }
                if let Some(dir) = rest.strip_suffix('/') {
                    if !dir.contains('/') {
                        names.push(dir);
                        continue;
                    }
                }
            }
            if inner.is_empty() {
                let top = name.strip_suffix('/').unwrap_or(name);
                if !top.contains('/') {
                    names.push(top);
                    found = true;
                }
            }
        }
        if !found {
            return Err(FileError::NotDirectory);
        }
        Ok(names.into_iter().rev().map(str::to_owned).collect())
    }

    /// `{read_file_info, Archive/Inner}` (and `read_link_info`, the same inside an archive) on
    /// a connection that has read this archive before. `archive_info` is what
    /// `read_file_info` gives for the archive file itself.
    pub fn file_info(&self, inner: &str, archive_info: &FileInfo) -> Result<FileInfo, FileError> {
        self.file_info_in(Pass::Cached, inner, archive_info)
    }

    /// `{read_file_info, Archive/Inner}` in the given pass.
    pub fn file_info_in(
        &self,
        pass: Pass,
        inner: &str,
        archive_info: &FileInfo,
    ) -> Result<FileInfo, FileError> {
        self.file_info_as(pass, self.seconds, inner, archive_info)
    }

    /// `{read_file_info, Archive/Inner}` in the given pass, with the given release's reading
    /// of DOS seconds.
    pub fn file_info_as(
        &self,
        pass: Pass,
        seconds: DosSeconds,
        inner: &str,
        archive_info: &FileInfo,
    ) -> Result<FileInfo, FileError> {
        if inner.is_empty() {
            return Ok(Archive::directory_info(archive_info));
        }
        let node = self
            .find(pass, |name| {
                name == inner
                    || (name.len() == inner.len() + 1
                        && name.ends_with('/')
                        && name.starts_with(inner))
            })
            .ok_or(FileError::NoEntry)?;
        if node.virtual_dir {
            return Ok(Archive::directory_info(archive_info));
        }
        Ok(self.entry_info(&self.entries[node.entry as usize], seconds))
    }

    /// What OTP answers for the archive itself (`a.ez`, `a.ez/`), whether or not it is a zip,
    /// and for a virtual directory: the archive's own info with `type = directory`.
    pub fn directory_info(archive_info: &FileInfo) -> FileInfo {
        FileInfo {
            file_type: FileType::Directory,
            ..archive_info.clone()
        }
    }

    /// `cd_file_header_to_file_info/3`.
    fn entry_info(&self, entry: &ZipEntry, seconds: DosSeconds) -> FileInfo {
        let mut time = dos_date_time(entry.dos_date, entry.dos_time);
        if seconds == DosSeconds::Doubled {
            time.second *= 2;
        }
        FileInfo {
            size: entry.uncompressed_size.into(),
            file_type: if entry.name.ends_with('/') {
                FileType::Directory
            } else {
                FileType::Regular
            },
            access: Access::ReadWrite,
            atime: time,
            mtime: time,
            ctime: time,
            mode: 0o066,
            links: 1,
            major_device: 0,
            minor_device: 0,
            inode: 0,
            uid: 0,
            gid: 0,
        }
    }
}

/// `zlib:inflate/2` on a raw deflate stream, cut off after `max` bytes of output: data after
/// the end of the stream is ignored, and a stream cut short gives what was decoded so far.
fn inflate(mut input: &[u8], max: usize) -> Result<Bytes, FileError> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let mut out = vec![0; input.len().saturating_mul(2).clamp(64, max.max(64))];
    let mut state = Box::<DecompressorOxide>::default();
    let mut written = 0;
    loop {
        let (status, used, produced) = decompress(&mut state, input, &mut out, written, flags);
        written += produced;
        input = &input[used.min(input.len())..];
        match status {
            TINFLStatus::Done
            | TINFLStatus::FailedCannotMakeProgress
            | TINFLStatus::NeedsMoreInput => {
                if written > max {
                    return Err(FileError::NoMemory);
                }
                out.truncate(written);
                return Ok(out.into());
            }
            TINFLStatus::HasMoreOutput => {
                if out.len() >= max {
                    return Err(FileError::NoMemory);
                }
                out.resize(out.len().saturating_mul(2).min(max), 0);
            }
            _ => return Err(FileError::Io),
        }
    }
}

/// `dos_date_time_to_datetime/2`: the fields as stored, unchecked; the seconds field holds
/// two-second units but is read as seconds.
fn dos_date_time(date: u16, time: u16) -> DateTime {
    DateTime {
        year: 1980 + i32::from(date >> 9),
        month: ((date >> 5) & 0xf) as u8,
        day: (date & 0x1f) as u8,
        hour: (time >> 11) as u8,
        minute: ((time >> 5) & 0x3f) as u8,
        second: (time & 0x1f) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erlboot_support::zip::{self, build};

    fn parse(data: Vec<u8>) -> Result<Archive, ArchiveError> {
        Archive::parse(Bytes::from(data))
    }

    fn small(max_entry_size: usize) -> ArchiveLimits {
        ArchiveLimits {
            max_entry_size,
            ..ArchiveLimits::default()
        }
    }

    fn info() -> FileInfo {
        let t = DateTime {
            year: 2020,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        FileInfo {
            size: 999,
            file_type: FileType::Regular,
            access: Access::Read,
            atime: t,
            mtime: t,
            ctime: t,
            mode: 0o100644,
            links: 2,
            major_device: 7,
            minor_device: 0,
            inode: 42,
            uid: 1,
            gid: 1,
        }
    }

    #[test]
    fn split_follows_archive_split() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("a.ez", Some(("a.ez", ""))),
            ("a.ez/", Some(("a.ez", ""))),
            ("a.ez/.", Some(("a.ez", "."))),
            ("a.ez/..", Some(("a.ez", ".."))),
            ("a.ez//c", Some(("a.ez", "/c"))),
            (".ez", Some((".ez", ""))),
            ("/.ez/x", Some(("/.ez", "x"))),
            ("x/a.ez/b.ez/c", Some(("x/a.ez", "b.ez/c"))),
            ("a.ez.ez/c", Some(("a.ez.ez", "c"))),
            ("a.ezz.ez/c", Some(("a.ezz.ez", "c"))),
            ("a.ez.ezb/x.ez", Some(("a.ez.ezb/x.ez", ""))),
            ("€.ez/é", Some(("€.ez", "é"))),
            ("a.ezb/c", None),
            ("a.EZ/c", None),
            ("/", None),
            ("", None),
            ("ez", None),
        ];
        for (name, want) in cases {
            assert_eq!(split(name), *want, "{name:?}");
        }
    }

    #[test]
    fn stored_and_deflated_entries_read_back() {
        let text = b"deflate me, deflate me, deflate me".repeat(20);
        let a = parse(build(&[
            zip::stored(b"s", b"stored"),
            zip::deflated(b"d", &text),
        ]))
        .unwrap();
        assert_eq!(&a.get("s").unwrap()[..], b"stored");
        assert_eq!(&a.get("d").unwrap()[..], &text[..]);
        assert_eq!(a.get("x"), Err(FileError::NoEntry));
        assert_eq!(a.get(""), Err(FileError::NoEntry));
    }

    #[test]
    fn virtual_directories_come_before_their_entries() {
        let a = parse(build(&[
            zip::stored(b"b/x", b"x"),
            zip::stored(b"a/y", b"y"),
            zip::stored(b"b/z/", b""),
            zip::stored(b"c", b"c"),
        ]))
        .unwrap();
        assert_eq!(a.list_dir("").unwrap(), ["c", "a", "b"]);
        assert_eq!(a.list_dir("b").unwrap(), ["z", "x"]);
        assert_eq!(a.list_dir("b/"), Err(FileError::NotDirectory));
        assert_eq!(a.list_dir("c"), Err(FileError::NotDirectory));
        assert_eq!(a.list_dir("."), Err(FileError::NotDirectory));
        // A directory is reached by `get` only with its slash, and is empty.
        assert_eq!(a.get("b"), Err(FileError::NoEntry));
        assert_eq!(&a.get("b/").unwrap()[..], b"");
        // A virtual directory has the archive's info as a directory; a real one its own.
        let archive = info();
        let virtual_dir = a.file_info("b", &archive).unwrap();
        assert_eq!(virtual_dir, Archive::directory_info(&archive));
        assert_eq!(virtual_dir.file_type, FileType::Directory);
        assert_eq!(virtual_dir.mode, 0o100644);
        let real_dir = a.file_info("b/z/", &archive).unwrap();
        assert_eq!(
            (real_dir.file_type, real_dir.mode),
            (FileType::Directory, 54)
        );
        assert_eq!(a.file_info("b/z", &archive), Ok(real_dir));
        assert_eq!(
            a.file_info("", &archive).unwrap().file_type,
            FileType::Directory
        );
    }

    #[test]
    fn entry_info_takes_dos_fields_literally() {
        let mut e = zip::stored(b"f", b"12345");
        e.time = (23 << 11) | (59 << 5) | 29;
        e.date = (44 << 9) | (2 << 5) | 29;
        let a = parse(build(&[e])).unwrap();
        let fi = a.file_info("f", &info()).unwrap();
        let want = DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 23,
            minute: 59,
            second: 29,
        };
        assert_eq!(
            (fi.size, fi.file_type, fi.access),
            (5, FileType::Regular, Access::ReadWrite)
        );
        assert_eq!((fi.atime, fi.mtime, fi.ctime), (want, want, want));
        assert_eq!(
            (fi.mode, fi.links, fi.inode, fi.uid, fi.major_device),
            (54, 1, 0, 0, 0)
        );
        // Read as OTP 27 reads it, the seconds field counts two-second units.
        let doubled = a.with_dos_seconds(DosSeconds::Doubled);
        let fi = doubled.file_info("f", &info()).unwrap();
        assert_eq!(fi.mtime, DateTime { second: 58, ..want });
    }

    #[test]
    fn duplicates_depend_on_the_pass() {
        let a = parse(build(&[
            zip::stored(b"x", b"one"),
            zip::stored(b"x", b"two"),
        ]))
        .unwrap();
        assert_eq!(&a.get_in(Pass::Cached, "x").unwrap()[..], b"one");
        assert_eq!(&a.get_in(Pass::Opening, "x").unwrap()[..], b"two");
        assert_eq!(a.list_dir("").unwrap(), ["x", "x"]);
    }

    #[test]
    fn latin1_names_and_the_data_descriptor_flag() {
        let mut d = zip::stored(b"\xe9", b"0123456789ABdata");
        d.flags = 8;
        let a = parse(build(&[d])).unwrap();
        assert_eq!(a.names().collect::<Vec<_>>(), ["é"]);
        // prim_zip skips 12 bytes when bit 3 is set, before the data.
        assert_eq!(&a.get("é").unwrap()[..], b"data");
    }

    #[test]
    fn end_record_search_matches_prim_zip() {
        assert_eq!(
            parse(vec![]).unwrap_err(),
            ArchiveError::ShortFile { len: 0 }
        );
        assert_eq!(
            parse(b"hello\n".to_vec()).unwrap_err(),
            ArchiveError::ShortFile { len: 6 }
        );
        assert_eq!(
            parse(vec![b'x'; 30]).unwrap_err(),
            ArchiveError::ShortFile { len: 30 }
        );
        assert_eq!(
            parse(vec![b'x'; 50_000]).unwrap_err(),
            ArchiveError::BadEndRecord
        );
        let empty = build(&[]);
        assert_eq!(empty.len(), 22);
        let a = parse(empty.clone()).unwrap();
        assert_eq!(a.names().count(), 0);
        assert_eq!(a.list_dir(""), Err(FileError::NotDirectory));
        // Trailing bytes make the comment length wrong.
        let mut trailing = build(&[zip::stored(b"a", b"a")]);
        trailing.push(0);
        assert_eq!(parse(trailing).unwrap_err(), ArchiveError::BadEndRecord);
        // The errors map to the reasons OTP replies with.
        assert_eq!(
            FileError::from(ArchiveError::ShortFile { len: 3 }).atom(),
            "einval"
        );
        assert_eq!(
            FileError::from(ArchiveError::BadEndRecord).atom(),
            "bad_eocd"
        );
        assert_eq!(
            FileError::from(ArchiveError::BadCentralDirectory).atom(),
            "bad_central_directory"
        );
    }

    #[test]
    fn lying_counts_and_offsets_are_errors() {
        let good = build(&[zip::stored(b"a/b", b"b"), zip::stored(b"c", b"c")]);
        let end = zip::end_record(&good);
        let with = |at: usize, bytes: &[u8]| {
            let mut z = good.clone();
            z[at..at + bytes.len()].copy_from_slice(bytes);
            parse(z)
        };
        // 65535 entries claimed, two present: no large allocation, a clean error.
        assert_eq!(
            with(end + 10, &[0xff, 0xff]).unwrap_err(),
            ArchiveError::BadCentralDirectory
        );
        // A central directory past the end, or 4 GiB long.
        assert_eq!(
            with(end + 16, &[0xff; 4]).unwrap_err(),
            ArchiveError::BadCentralDirectory
        );
        assert_eq!(with(end + 12, &[0xff; 4]).unwrap().names().count(), 2);
        // Fewer entries than present: the rest is ignored.
        assert_eq!(with(end + 10, &[1, 0]).unwrap().names().count(), 1);
        // A name length past the directory.
        let cd = u32::from_le_bytes(good[end + 16..end + 20].try_into().unwrap()) as usize;
        assert_eq!(
            with(cd + 28, &[0xff, 0xff]).unwrap_err(),
            ArchiveError::BadCentralDirectory
        );
        // A local header offset into the middle of nowhere: that entry cannot be read.
        let a = with(cd + 42, &[0xff, 0xff, 0, 0]).unwrap();
        assert_eq!(a.get("a/b"), Err(FileError::Io));
        assert_eq!(a.file_info("a/b", &info()).unwrap().size, 1);
    }

    #[test]
    fn bombs_are_bounded() {
        let zeros = vec![0u8; 4 << 20];
        let bomb = build(&[zip::deflated(b"bomb", &zeros)]);
        assert!(bomb.len() < 10_000);
        let a = Archive::parse_with(Bytes::from(bomb.clone()), small(1 << 20)).unwrap();
        assert_eq!(a.get("bomb"), Err(FileError::NoMemory));
        let a = Archive::parse_with(Bytes::from(bomb), small(4 << 20)).unwrap();
        assert_eq!(a.get("bomb").unwrap().len(), 4 << 20);
        // A bomb that declares a small size is stopped while inflating.
        let mut liar = zip::deflated(b"liar", &zeros);
        liar.uncompressed = 10;
        let a = Archive::parse_with(Bytes::from(build(&[liar])), small(1 << 20)).unwrap();
        assert_eq!(a.get("liar"), Err(FileError::NoMemory));
        // A declared size over the limit fails before inflating.
        let mut big = zip::deflated(b"big", b"tiny");
        big.uncompressed = u32::MAX;
        let a = Archive::parse_with(Bytes::from(build(&[big])), small(1 << 20)).unwrap();
        assert_eq!(a.get("big"), Err(FileError::NoMemory));
        assert_eq!(
            a.file_info("big", &info()).unwrap().size,
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn entry_and_node_limits() {
        let entries: Vec<_> = (0..10)
            .map(|i| zip::stored(format!("d{i}/e{i}/f").as_bytes(), b""))
            .collect();
        let data = Bytes::from(build(&entries));
        let limits = |max_entries, max_nodes| ArchiveLimits {
            max_entries,
            max_nodes,
            max_entry_size: 1,
        };
        assert_eq!(
            Archive::parse_with(data.clone(), limits(9, 100)).unwrap_err(),
            ArchiveError::TooManyEntries { count: 10, max: 9 }
        );
        assert_eq!(
            Archive::parse_with(data.clone(), limits(10, 29)).unwrap_err(),
            ArchiveError::TooManyNodes { max: 29 }
        );
        assert!(Archive::parse_with(data, limits(10, 30)).is_ok());
    }

    /// A 30,000-level name and 2,000 wide ones: what a quadratic walk of components would
    /// take minutes over.
    #[test]
    fn deep_and_wide_names_parse() {
        let deep = "a/".repeat(30_000) + "leaf";
        let wide: Vec<_> = (0..2_000)
            .map(|i| zip::stored(format!("{i}/{}", "b/".repeat(10)).as_bytes(), b""))
            .collect();
        let mut entries = vec![zip::stored(deep.as_bytes(), b"leaf")];
        entries.extend(wide);
        let a = parse(build(&entries)).unwrap();
        assert_eq!(&a.get(&deep).unwrap()[..], b"leaf");
        assert_eq!(a.list_dir(&deep[..deep.len() - 5]).unwrap(), ["leaf"]);
        assert_eq!(a.list_dir("0/b/b").unwrap(), ["b"]);
    }

    #[test]
    fn no_cut_or_flipped_byte_panics() {
        let zip = build(&[
            zip::stored(b"a-1.0/ebin/a.beam", b"FOR1 beam"),
            zip::deflated(b"a-1.0/priv/x", &b"hello ".repeat(50)),
            zip::stored(b"a-1.0/", b""),
        ]);
        let exercise = |data: Vec<u8>| {
            if let Ok(a) = Archive::parse_with(Bytes::from(data), small(1 << 16)) {
                for name in a.names().map(str::to_owned).collect::<Vec<_>>() {
                    let _ = a.get_in(Pass::Opening, &name);
                    let _ = a.get(&name);
                    let _ = a.list_dir(&name);
                    let _ = a.file_info(&name, &info());
                }
                let _ = a.list_dir("");
            }
        };
        for cut in 0..zip.len() {
            exercise(zip[..cut].to_vec());
            exercise(zip[cut..].to_vec());
        }
        for at in 0..zip.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut z = zip.clone();
                z[at] ^= flip;
                exercise(z);
            }
        }
    }
}
