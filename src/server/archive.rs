//! `.ez` archives: a bounded zip reader that answers `get`, `list_dir` and `read_file_info` inside
//! an archive exactly as OTP 25's `erl_prim_loader` and `prim_zip` do for a boot server.
//!
//! # How OTP reads an archive (erts-13.1.5, `erl_prim_loader.erl` and `prim_zip.erl`)
//!
//! - [`split`] is `name_split(undefined, File)` / `archive_split/3` (erl_prim_loader.erl 1328,
//!   1358): the first component ending in `.ez` that is followed by `/` or by the end of the name
//!   names the archive; the rest, unchanged (no `.`/`..` handling), is the path inside.
//! - The zip is read by `prim_zip:open/3`: the end record is searched in windows of 22, 44, ...,
//!   45056 bytes from the end (a file shorter than the window is `einval`, no record in the
//!   largest window is `bad_eocd`), the central directory is parsed all or nothing
//!   (`bad_central_directory`), and entry names are bytes taken as Latin-1 characters.
//! - `open_archive/4` and `ensure_virtual_dirs/6` (erl_prim_loader.erl 1152, 1174) add a
//!   virtual directory entry before each entry whose parent directories have not been seen; a
//!   virtual directory's info is the archive's own `file_info` with `type = directory`.
//! - `get` matches the path against entry names exactly (`path_split/1`, 1307): a directory
//!   entry is reached only with its trailing `/` (and gives `<<>>`); the archive itself and a
//!   directory without the `/` give `enoent`.
//! - `list_dir` collects the names one level below, in reverse archive order, and answers
//!   `enotdir` unless the directory itself exists (`prim_list_dir`, 959).
//! - `read_file_info` of the archive itself (`a.ez`, `a.ez/`) is the archive's own info with
//!   `type = directory`, without opening the zip; below it an entry matches with or without
//!   a trailing `/` (`prim_read_file_info`, 1011). A zip entry's info comes from its central
//!   directory header (`cd_file_header_to_file_info`, prim_zip.erl 469): size from the header's
//!   uncompressed size, `regular` or `directory` by a trailing `/`, `read_write`, mode 8#066,
//!   one link, zeros for devices, inode, uid and gid, and all three times the DOS date and time
//!   taken literally (no time zone, and the 2-second field read as seconds).
//!   `read_link_info` is the same inside an archive.
//! - An entry's data is read from its local header to the next entry's local header (in
//!   central directory order), skipping 12 bytes when flag bit 3 is set; method 0 is returned
//!   as is, method 8 raw-inflated until the stream ends or the input runs out, CRCs unchecked.
//!
//! The first request on an archive (OTP opening it) visits every entry and the last match
//! wins; later requests on the same connection use the cached list and stop at the first
//! match ([`Pass`]). They differ only for archives with duplicate names.
//!
//! Where OTP's connection process crashes (a bad local header, an unknown compression method,
//! corrupt deflate data), this module answers [`FileError::Io`]; where an entry would inflate
//! past [`Limits::max_entry_size`], [`FileError::NoMemory`].

use std::collections::HashMap;

use bytes::Bytes;

use super::files::FileError;
use crate::proto::{Access, DateTime, FileInfo, FileType};

/// The archive extension, `init:archive_extension()`.
pub const EXTENSION: &str = ".ez";

/// Splits a requested name into the archive's path and the path inside it, as OTP's
/// `archive_split/3` does, or `None` when the name does not refer into an archive.
///
/// OTP then makes the archive path absolute against the server's cwd (`absname/1`); that
/// names the same file, so relative archive paths are returned as they are.
pub fn split(name: &str) -> Option<(&str, &str)> {
    for (i, c) in name.char_indices() {
        if c == '/' && name[..i].ends_with(EXTENSION) {
            return Some((&name[..i], &name[i + 1..]));
        }
    }
    name.ends_with(EXTENSION).then_some((name, ""))
}

/// Which of OTP's two walks over an archive a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pass {
    /// The first request on an archive in a connection: every entry is visited, the last match
    /// wins.
    Opening,
    /// Every later request: the walk stops at the first match.
    #[default]
    Cached,
}

/// Bounds on what an untrusted archive may make the reader hold or produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Central directory entries.
    pub max_entries: usize,
    /// Entries plus the virtual directories added for them.
    pub max_nodes: usize,
    /// Bytes one entry may inflate to, and the largest uncompressed size a deflated entry may
    /// declare.
    pub max_entry_size: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
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
    /// More central directory entries than [`Limits::max_entries`].
    #[error("{count} zip entries, more than the limit of {max}")]
    TooManyEntries {
        /// Entries the end record declares.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More entries and virtual directories than [`Limits::max_nodes`].
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
struct Entry {
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
    entries: Vec<Entry>,
    nodes: Vec<Node>,
    limits: Limits,
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
    /// Parses an archive with the default [`Limits`].
    pub fn parse(data: Bytes) -> Result<Archive, ArchiveError> {
        Archive::parse_with(data, Limits::default())
    }

    /// Parses an archive as `prim_zip:open/3` does, within `limits`.
    pub fn parse_with(data: Bytes, limits: Limits) -> Result<Archive, ArchiveError> {
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
                entries.push(Entry {
                    name: name.iter().map(|&b| char::from(b)).collect(),
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
        })
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
    fn nodes(entries: &[Entry], limits: Limits) -> Result<Vec<Node>, ArchiveError> {
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
    fn read(&self, entry: &Entry) -> Result<Bytes, FileError> {
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
        Ok(self.entry_info(&self.entries[node.entry as usize]))
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
    fn entry_info(&self, entry: &Entry) -> FileInfo {
        let time = dos_date_time(entry.dos_date, entry.dos_time);
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
