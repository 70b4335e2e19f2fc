//! The real file system as a [`FileSource`]: names decoded as the server's file-name encoding,
//! resolved against its working directory, confined by the [`Jail`], contents cached.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::etf::latin1_to_string;
use crate::proto::{Access, DateTime, FileInfo, FileType};

use super::cache::{Cache, FileId, Stamp};
use super::jail::Jail;
use super::watch::{Watch, WatchError};
use crate::archive::{self, Archive, DosSeconds, Pass};
use crate::server::{
    find_plain, FileError, FileQuestion, FileSource, Follow, Found, Question, Reuse, Version,
};

/// How file names map between the code points on the wire and the bytes on disk, as OTP's
/// `file:native_name_encoding()` decides it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameEncoding {
    /// Names on disk are UTF-8 (OTP under a UTF-8 locale). Names that are not valid UTF-8
    /// are left out of directory listings, as OTP leaves them out.
    #[default]
    Utf8,
    /// Each byte is one code point (OTP under `LANG=C`); a code point above 255 is `badarg`.
    Latin1,
}

impl NameEncoding {
    /// The bytes on disk for a name from the wire.
    pub fn to_disk(self, name: &str) -> Result<OsString, FileError> {
        if name.contains('\0') {
            return Err(FileError::BadName);
        }
        match self {
            NameEncoding::Utf8 => Ok(OsString::from(name)),
            NameEncoding::Latin1 => name
                .chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| FileError::BadName))
                .collect::<Result<Vec<u8>, _>>()
                .map(OsString::from_vec),
        }
    }

    /// The name for the wire of a name on disk; `None` if it cannot be told in this encoding.
    pub fn from_disk(self, name: &OsStr) -> Option<String> {
        match self {
            NameEncoding::Utf8 => name.to_str().map(str::to_owned),
            NameEncoding::Latin1 => Some(latin1_to_string(name.as_bytes())),
        }
    }
}

/// How a [`DiskSource`] is set up.
#[derive(Clone, Debug)]
pub struct DiskConfig {
    /// Which paths may be served.
    pub jail: Jail,
    /// The working directory relative names resolve against (absolute).
    pub cwd: PathBuf,
    /// The file-name encoding.
    pub encoding: NameEncoding,
    /// Bytes of file contents to keep in memory.
    pub cache_bytes: usize,
    /// Watch the roots for changes (see [`Watch`]), so that answers about files under them
    /// may be remembered. Only a jail of roots can be watched.
    pub watch: bool,
}

/// Files from the local file system.
///
/// Resolving a name through the jail costs a system call per path component, so each name is
/// resolved once and remembered with the file it led to: a later request for the same name
/// costs one `stat`, and is trusted when that `stat` finds the same file (a name that now leads
/// elsewhere is resolved again). A name that does not exist is absent whatever the jail says,
/// which costs one `stat` too.
///
/// With a [`Watch`] on the roots the source has a [`version`](FileSource::version), and lets
/// answers be remembered ([`reuse`](FileSource::reuse)) when every file and directory they
/// depend on lies in a watched directory: names under a root with no symbolic link on the way,
/// files with a single link, and file infos whose access time cannot move unseen.
pub struct DiskSource {
    jail: Jail,
    cwd: PathBuf,
    cwd_name: Result<String, FileError>,
    encoding: NameEncoding,
    cache: Mutex<Cache>,
    verified: Mutex<HashMap<(PathBuf, bool), FileId>>,
    archives: Mutex<HashMap<FileId, (Stamp, Arc<Archive>)>>,
    watch: Result<Watch, Option<WatchError>>,
}

/// Parsed `.ez` archives kept at most; the memory is then cleared and refilled.
const ARCHIVES: usize = 64;

/// The largest `.ez` file read into memory.
const MAX_ARCHIVE_BYTES: u64 = 512 << 20;

/// Names remembered as resolved at most; the memory is then cleared and refilled.
const VERIFIED_NAMES: usize = 16 * 1024;

/// Names longer than this are resolved every time rather than remembered.
const VERIFIED_NAME_LEN: usize = 512;

impl DiskSource {
    /// A source as configured.
    pub fn new(config: DiskConfig) -> DiskSource {
        let cwd_name = config
            .encoding
            .from_disk(config.cwd.as_os_str())
            .ok_or(FileError::BadName);
        let watch = match (&config.jail, config.watch) {
            (Jail::Roots(roots), true) => Watch::new(roots, &config.cwd).map_err(Some),
            _ => Err(None),
        };
        DiskSource {
            watch,
            jail: config.jail,
            cwd: config.cwd,
            cwd_name,
            encoding: config.encoding,
            cache: Mutex::new(Cache::new(config.cache_bytes)),
            verified: Mutex::new(HashMap::new()),
            archives: Mutex::new(HashMap::new()),
        }
    }

    /// Bytes and files held by the contents cache.
    pub fn cache_usage(&self) -> (usize, usize) {
        let cache = self.cache.lock().expect("cache lock");
        (cache.used(), cache.len())
    }

    /// Why the roots are not watched though the configuration asked for it, if they are not.
    pub fn watch_error(&self) -> Option<&WatchError> {
        self.watch.as_ref().err().and_then(Option::as_ref)
    }

    /// The absolute path a wire name stands for, before resolution.
    fn path(&self, name: &str) -> Result<PathBuf, FileError> {
        if name.is_empty() {
            return Err(FileError::NoEntry);
        }
        let name = PathBuf::from(self.encoding.to_disk(name)?);
        Ok(if name.is_absolute() {
            name
        } else {
            self.cwd.join(name)
        })
    }

    /// A path to open for `name` inside the jail, and the file's metadata.
    fn open(&self, name: &str, follow: Follow) -> Result<(PathBuf, Metadata), FileError> {
        let path = self.path(name)?;
        let follow_links = follow == Follow::Links;
        let stat = |p: &Path| match follow {
            Follow::Links => std::fs::metadata(p),
            Follow::NoLinks => std::fs::symlink_metadata(p),
        };
        let meta = match stat(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileError::NoEntry),
            // The error may concern a part of the path outside the jail: the jail decides
            // what the client may learn of it.
            Err(e) => {
                self.jail.resolve(&path, follow_links)?;
                return Err(e.into());
            }
        };
        if let Jail::Open = self.jail {
            return Ok((path, meta));
        }
        let file = (meta.dev(), meta.ino());
        let key = (path, follow_links);
        if self.verified.lock().expect("verified lock").get(&key) == Some(&file) {
            return Ok((key.0, meta));
        }
        let resolved = self.jail.resolve(&key.0, follow_links)?;
        let meta = stat(&resolved)?;
        if (meta.dev(), meta.ino()) == file && key.0.as_os_str().len() <= VERIFIED_NAME_LEN {
            let mut verified = self.verified.lock().expect("verified lock");
            if verified.len() >= VERIFIED_NAMES {
                verified.clear();
            }
            verified.insert(key, file);
        }
        Ok((resolved, meta))
    }

    fn read(&self, path: &Path, meta: &Metadata) -> Result<Bytes, FileError> {
        if meta.is_dir() {
            // OTP opens before it reads: a directory it may not open is `eacces`, only one
            // it may is `eisdir` (read(2) on it).
            std::fs::File::open(path)?;
            return Err(FileError::IsDirectory);
        }
        // Files that report no size (procfs and the like) are read but never cached: their
        // stat says nothing about their contents.
        if !meta.is_file() || meta.len() == 0 {
            return Ok(Bytes::from(std::fs::read(path)?));
        }
        let stamp = stamp(meta);
        if let Some(contents) = self.cache.lock().expect("cache lock").get(&stamp) {
            return Ok(contents);
        }
        let contents = Bytes::from(std::fs::read(path)?);
        // Cache only what was read under the stamp checked: a file written while it was read
        // is served as read, and read again next time.
        let after = std::fs::metadata(path)?;
        if stamp == self::stamp(&after) && contents.len() as u64 == stamp.size {
            self.cache
                .lock()
                .expect("cache lock")
                .insert(stamp, contents.clone());
        }
        Ok(contents)
    }

    /// The archive a name splits into, parsed (and kept while its file is unchanged), with the
    /// archive file's path and metadata.
    fn archive(&self, name: &str) -> Result<(Arc<Archive>, PathBuf, Metadata), FileError> {
        let (path, meta) = self.open(name, Follow::Links)?;
        if meta.is_dir() {
            return Err(FileError::IsDirectory);
        }
        let stamp = stamp(&meta);
        if let Some((cached, archive)) = self
            .archives
            .lock()
            .expect("archives lock")
            .get(&stamp.file())
        {
            if *cached == stamp {
                return Ok((Arc::clone(archive), path, meta));
            }
        }
        if meta.len() > MAX_ARCHIVE_BYTES {
            return Err(FileError::NoMemory);
        }
        let archive = Arc::new(Archive::parse(self.read(&path, &meta)?)?);
        let mut archives = self.archives.lock().expect("archives lock");
        if archives.len() >= ARCHIVES {
            archives.clear();
        }
        archives.insert(stamp.file(), (stamp, Arc::clone(&archive)));
        Ok((archive, path, meta))
    }
}

/// Names inside `.ez` archives are answered as OTP's `erl_prim_loader` answers them (see
/// [`archive`]): through [`FileSource::find`], as the client's release reads DOS seconds and in
/// the walk of its connection's first or later read of the archive; through the plain
/// methods, in the later-request walk with OTP 25's seconds.
impl FileSource for DiskSource {
    fn find(&self, question: &FileQuestion) -> Result<Found, FileError> {
        // Only a walk of an archive's entries depends on the client: its release's reading of
        // DOS seconds, and whether the connection opens the archive now.
        let pass = match question.first_in_archive {
            true => Pass::Opening,
            false => Pass::Cached,
        };
        match &question.question {
            Question::Get(name) => {
                if let Some((archive, inner)) = archive::split(name) {
                    let (zip, ..) = self.archive(archive)?;
                    return zip.get_in(pass, inner).map(Found::Contents);
                }
            }
            Question::FileInfo(name, _) => {
                // The archive itself is described without a walk, as a plain name is.
                let split = archive::split(name).filter(|(_, inner)| !inner.is_empty());
                if let Some((archive, inner)) = split {
                    let (zip, path, meta) = self.archive(archive)?;
                    let seconds = DosSeconds::of(question.profile);
                    return zip
                        .file_info_as(pass, seconds, inner, &file_info(&path, &meta))
                        .map(Found::Info);
                }
            }
            Question::ListDir(_) | Question::Cwd => {}
        }
        find_plain(self, &question.question)
    }

    fn get(&self, name: &str) -> Result<Bytes, FileError> {
        if let Some((archive, inner)) = archive::split(name) {
            return self.archive(archive)?.0.get(inner);
        }
        let (path, meta) = self.open(name, Follow::Links)?;
        self.read(&path, &meta)
    }

    fn list_dir(&self, name: &str) -> Result<Vec<String>, FileError> {
        if let Some((archive, inner)) = archive::split(name) {
            // Whatever keeps OTP from listing inside an archive, it answers `enotdir`.
            return match self.archive(archive) {
                Ok((archive, ..)) => archive.list_dir(inner),
                Err(_) => Err(FileError::NotDirectory),
            };
        }
        let (path, _) = self.open(name, Follow::Links)?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            match self.encoding.from_disk(&entry.file_name()) {
                Some(name) => names.push(name),
                None => tracing::warn!(
                    dir = %path.display(),
                    name = ?entry.file_name(),
                    "non-unicode file name left out of a directory listing"
                ),
            }
        }
        Ok(names)
    }

    fn file_info(&self, name: &str, follow: Follow) -> Result<FileInfo, FileError> {
        if let Some((archive, inner)) = archive::split(name) {
            // The archive itself is described without being opened: even a file that is not
            // a zip is a directory to OTP here.
            if inner.is_empty() {
                let (path, meta) = self.open(archive, Follow::Links)?;
                return Ok(Archive::directory_info(&file_info(&path, &meta)));
            }
            let (archive, path, meta) = self.archive(archive)?;
            return archive.file_info(inner, &file_info(&path, &meta));
        }
        let (path, meta) = self.open(name, follow)?;
        Ok(file_info(&path, &meta))
    }

    fn cwd(&self) -> Result<String, FileError> {
        self.cwd_name.clone()
    }

    fn version(&self) -> Option<Version> {
        self.watch.as_ref().ok()?.settled_version()
    }

    fn current_version(&self) -> Option<Version> {
        self.watch.as_ref().ok()?.version()
    }

    fn reuse(&self, question: &Question, info: Option<&FileInfo>) -> Reuse {
        let Ok(watch) = &self.watch else {
            return Reuse::Never;
        };
        let (name, follow) = match question {
            Question::Cwd => return Reuse::For(Duration::MAX),
            Question::Get(name) | Question::ListDir(name) => (name.as_str(), Follow::Links),
            Question::FileInfo(name, follow) => (name.as_str(), *follow),
        };
        // Inside an archive every answer comes from the archive file.
        let (name, follow, in_archive) = match archive::split(name) {
            Some((archive, _)) => (archive, Follow::Links, true),
            None => (name, follow, false),
        };
        // A trailing slash makes the kernel follow a final link.
        let follow = if name.ends_with('/') {
            Follow::Links
        } else {
            follow
        };
        let Ok(path) = self.path(name) else {
            // Names that cannot be file names are refused whatever the disk holds.
            return Reuse::For(Duration::MAX);
        };
        let Some(path) = normal(&path) else {
            return Reuse::Never;
        };
        if !watch.covers(&path) || !symlink_free(&path, follow) {
            return Reuse::Never;
        }
        let meta = match follow {
            Follow::Links => std::fs::metadata(&path),
            Follow::NoLinks => std::fs::symlink_metadata(&path),
        };
        let Ok(meta) = meta else {
            // Whatever makes it fail (absence, permissions) is a change the watch sees.
            return Reuse::For(Duration::MAX);
        };
        let kind = meta.file_type();
        if kind.is_file() && meta.nlink() > 1 {
            // A change made through another link outside the roots raises no event here.
            return Reuse::Never;
        }
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            // Devices and pipes change without writes to the file system.
            return Reuse::Never;
        }
        if in_archive && !matches!(question, Question::ListDir(_)) {
            // Read from an archive that exists: OTP's first and later walks of it on a
            // connection may answer differently, so the answer is this connection's alone.
            // (Inside a missing archive nothing depends on the connection.)
            return Reuse::Never;
        }
        match info {
            None => Reuse::For(Duration::MAX),
            // The answer must be what the disk says now, and stay so.
            Some(answer) if *answer == file_info(&path, &meta) => steady_access_time(&path, &meta),
            Some(_) => Reuse::NotYet,
        }
    }
}

/// `path` without `.` components, or `None` if it has `..` ones (which a kernel resolves
/// through the directory a link led to, not lexically).
fn normal(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => return None,
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    Some(normal)
}

/// Whether resolving `path` (absolute, normal) meets no symbolic link but, with
/// [`Follow::NoLinks`], a final one: then every directory the kernel consults for it is one of
/// its own ancestors.
fn symlink_free(path: &Path, follow: Follow) -> bool {
    let path = match follow {
        Follow::Links => path,
        Follow::NoLinks => match path.parent() {
            Some(parent) => parent,
            None => path,
        },
    };
    let absent =
        |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR));
    // The shallowest part of the path that does not resolve must not exist at all: a dangling
    // link there would lead somewhere unwatched.
    let mut missing = None;
    for ancestor in path.ancestors() {
        match std::fs::canonicalize(ancestor) {
            Ok(real) => {
                return real == ancestor
                    && missing.map_or(true, |m: &Path| {
                        std::fs::symlink_metadata(m).is_err_and(|e| absent(&e))
                    })
            }
            Err(e) if absent(&e) => missing = Some(ancestor),
            Err(_) => return false,
        }
    }
    false
}

/// How long a file info stays true while nothing changes the file: reading a file or listing
/// a directory may move its access time without any event. Under `noatime` it never moves;
/// under `relatime` it moves only while it is not later than the modification and change
/// times, or once it is a day old (the kernel's `relatime_need_update`).
fn steady_access_time(path: &Path, meta: &Metadata) -> Reuse {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return Reuse::Never;
    };
    // SAFETY: `stat` is plain data that statvfs fills; both pointers are valid for the call.
    let flags = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return Reuse::Never;
        }
        stat.f_flag
    };
    if flags & libc::ST_NOATIME != 0 || (meta.is_dir() && flags & libc::ST_NODIRATIME != 0) {
        return Reuse::For(Duration::MAX);
    }
    if flags & libc::ST_RELATIME == 0 {
        return Reuse::Never;
    }
    let atime = (meta.atime(), meta.atime_nsec());
    if atime <= (meta.mtime(), meta.mtime_nsec()) || atime <= (meta.ctime(), meta.ctime_nsec()) {
        return Reuse::NotYet;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // A second of margin for the kernel's coarser clock.
    match u64::try_from(meta.atime() + 24 * 60 * 60 - 1 - now) {
        Ok(left) if left > 0 => Reuse::For(Duration::from_secs(left)),
        _ => Reuse::NotYet,
    }
}

fn stamp(meta: &Metadata) -> Stamp {
    let ns = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
    Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
    }
}

/// `#file_info{}` as `prim_file:read_file_info/1` fills it from `stat`: times in local time,
/// `major_device` from `st_dev`, `minor_device` from `st_rdev`, access from `access(2)`.
pub fn file_info(path: &Path, meta: &Metadata) -> FileInfo {
    let mode = meta.mode();
    let file_type = match mode & libc::S_IFMT {
        libc::S_IFREG => FileType::Regular,
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFCHR | libc::S_IFBLK => FileType::Device,
        _ => FileType::Other,
    };
    FileInfo {
        size: meta.size(),
        file_type,
        access: access(path),
        atime: local_time(meta.atime()),
        mtime: local_time(meta.mtime()),
        ctime: local_time(meta.ctime()),
        mode,
        links: meta.nlink(),
        major_device: meta.dev(),
        minor_device: meta.rdev(),
        inode: meta.ino(),
        uid: meta.uid(),
        gid: meta.gid(),
    }
}

fn access(path: &Path) -> Access {
    let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
        return Access::None;
    };
    let check = |mode| {
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        unsafe { libc::access(path.as_ptr(), mode) == 0 }
    };
    // Both at once first: the common answer costs one system call.
    if check(libc::R_OK | libc::W_OK) {
        return Access::ReadWrite;
    }
    match (check(libc::R_OK), check(libc::W_OK)) {
        (true, true) => Access::ReadWrite,
        (true, false) => Access::Read,
        (false, true) => Access::Write,
        (false, false) => Access::None,
    }
}

/// Seconds since the Unix epoch as the server's local calendar time (the `TZ` of the process).
pub fn local_time(secs: i64) -> DateTime {
    let time = secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid for the call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&time, &mut tm).is_null() {
            return DateTime {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
            };
        }
        tm
    };
    DateTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
        minute: tm.tm_min as u8,
        second: tm.tm_sec as u8,
    }
}
