//! The file tree a capture carries, written out to a directory, so a real server can serve it.
//!
//! Each name the capture's server answered for lands at the same path under the directory
//! (absolute names as they are, relative names under the captured working directory):
//! file contents from `get` replies, directories from `list_dir` and from file infos,
//! modes and modification times from file infos (read as UTC, as the captures are recorded).
//! What a capture does not carry is made up so that what it does carry still holds: a file
//! whose info was asked but not its contents gets that many zero bytes, a listed name of
//! unknown kind an empty file. For an overlayfs layer, a name the capture's server called
//! absent gets a whiteout and a directory it listed is made opaque, so the tree hides a
//! machine's own files there.
//!
//! No reply carries a symbolic link's target, but a link's info (`read_link_info`) gives the
//! target's length and the info through it (`read_file_info`) the target's inode: a link whose
//! target is another captured name with that inode points to it (by the relative or absolute
//! name, whichever has the link's length); a link through which nothing was found points to
//! a name of the link's length that does not exist; any other link is written as what it
//! pointed to, if that is known, and counted in [`Materialised::links_flattened`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, FileTimes};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use erlboot::proto::{DateTime, FileInfo, FileType};
use erlboot::server::{FileError, Follow, Found, Question};
use thiserror::Error;

use crate::rebuild::CapturedFiles;

/// How to write the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaterialiseOptions {
    /// Write overlayfs markers (which need root): a whiteout (a 0/0 character device) for
    /// every name the capture's server called absent, and the opaque attribute on every
    /// directory it listed; and give files their captured owners (root too), since what a
    /// server may do with a file depends on them.
    pub overlay: bool,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Materialised {
    /// Files written with their captured contents.
    pub files: usize,
    /// Files made up: zero bytes of a captured size, or empty for a listed name.
    pub placeholders: usize,
    /// Directories made.
    pub dirs: usize,
    /// Bytes of captured contents written.
    pub bytes: u64,
    /// Whiteouts made.
    pub whiteouts: usize,
    /// Symbolic links rebuilt.
    pub links: usize,
    /// Names that were symbolic links, written as what they pointed to.
    pub links_flattened: usize,
    /// Relative names the capture asked for without ever asking the working directory.
    pub unplaced: usize,
}

/// Why the tree could not be written.
#[derive(Debug, Error)]
pub enum MaterialiseError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MaterialiseError + '_ {
    move |source| MaterialiseError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes the tree the capture carries under `root`.
pub fn materialise(
    files: &CapturedFiles,
    root: &Path,
    options: MaterialiseOptions,
) -> Result<Materialised, MaterialiseError> {
    let mut done = Materialised::default();
    let cwd = match files.answers().find(|(q, _)| **q == Question::Cwd) {
        Some((_, Ok(Found::Cwd(cwd)))) => Some(cwd.clone()),
        _ => None,
    };
    let place = |name: &str| -> Option<PathBuf> {
        let absolute = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("{}/{name}", cwd.as_deref()?)
        };
        under(root, &absolute)
    };
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut contents: BTreeMap<PathBuf, &bytes::Bytes> = BTreeMap::new();
    let mut infos: BTreeMap<PathBuf, &FileInfo> = BTreeMap::new();
    let mut listed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut links: BTreeMap<PathBuf, &FileInfo> = BTreeMap::new();
    let mut followed: BTreeMap<PathBuf, &FileInfo> = BTreeMap::new();
    let mut names: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut absent: BTreeSet<PathBuf> = BTreeSet::new();
    if let Some(cwd) = cwd.as_deref().and_then(|c| under(root, c)) {
        dirs.insert(cwd);
    }
    for (question, answer) in files.answers() {
        let Some(name) = question.name() else {
            continue;
        };
        let Some(path) = place(name) else {
            done.unplaced += 1;
            continue;
        };
        match (question, answer) {
            (Question::Get(_), Ok(Found::Contents(bytes))) => {
                contents.insert(path, bytes);
            }
            (Question::Get(_), Err(FileError::IsDirectory)) => {
                dirs.insert(path);
            }
            (Question::ListDir(_), Ok(Found::Names(names))) => {
                for child in names {
                    listed.insert(path.join(child));
                }
                dirs.insert(path);
            }
            (Question::FileInfo(_, Follow::NoLinks), Ok(Found::Info(info)))
                if info.file_type == FileType::Symlink =>
            {
                names.insert(path.clone(), name.to_owned());
                links.insert(path, info);
            }
            (Question::FileInfo(_, follow), Ok(Found::Info(info))) => {
                names.insert(path.clone(), name.to_owned());
                if *follow == Follow::Links {
                    followed.insert(path.clone(), info);
                }
                if info.file_type == FileType::Directory {
                    dirs.insert(path.clone());
                }
                infos.entry(path).or_insert(info);
            }
            (Question::Get(_) | Question::FileInfo(_, Follow::Links), Err(FileError::NoEntry)) => {
                absent.insert(path);
            }
            _ => {}
        }
    }
    // What each link points to, where the capture tells.
    let mut targets: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (path, link) in &links {
        let through = followed.get(path);
        let target = match through {
            None if absent.contains(path) => Some(missing_name(path, link.size)),
            Some(info) => infos
                .iter()
                .filter(|(other, i)| {
                    *other != path && i.inode == info.inode && !links.contains_key(*other)
                })
                .find_map(|(other, _)| link_text(path, other, link.size, &names)),
            None => None,
        };
        if let Some(target) = target {
            targets.insert(path.clone(), target);
        }
    }
    // A rebuilt link is reached through, not written under: what the capture found inside it
    // belongs to its target.
    let through_link = |p: &PathBuf| targets.keys().any(|link| p.starts_with(link));
    contents.retain(|p, _| !through_link(p));
    infos.retain(|p, _| !through_link(p));
    dirs.retain(|p| !through_link(p));
    listed.retain(|p| !through_link(p));
    absent.retain(|p| !through_link(p));
    fs::create_dir_all(root).map_err(io_error(root))?;
    for dir in &dirs {
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
            done.dirs += 1;
        }
    }
    for (path, bytes) in &contents {
        make_parent(path, &mut done)?;
        fs::write(path, bytes).map_err(io_error(path))?;
        done.files += 1;
        done.bytes += bytes.len() as u64;
    }
    for (path, info) in &infos {
        if info.file_type == FileType::Regular && !path.exists() {
            make_parent(path, &mut done)?;
            let file = File::create(path).map_err(io_error(path))?;
            file.set_len(info.size).map_err(io_error(path))?;
            done.placeholders += 1;
        }
    }
    for (path, target) in &targets {
        make_parent(path, &mut done)?;
        std::os::unix::fs::symlink(target, path).map_err(io_error(path))?;
        done.links += 1;
    }
    for path in &listed {
        if path.symlink_metadata().is_err() {
            File::create(path).map_err(io_error(path))?;
            done.placeholders += 1;
        }
    }
    done.links_flattened = links
        .keys()
        .filter(|p| !targets.contains_key(*p) && p.exists())
        .count();
    if options.overlay {
        let listed_dirs: BTreeSet<PathBuf> = files
            .answers()
            .filter_map(|(question, answer)| match (question, answer) {
                (Question::ListDir(name), Ok(_)) => place(name).filter(|p| p.is_dir()),
                _ => None,
            })
            .collect();
        for path in &listed_dirs {
            opaque(path)?;
        }
        // An opaque directory hides the layers below already; a whiteout in it would be
        // listed (overlayfs reads a directory of one layer as it is).
        for path in &absent {
            let parent = path.parent();
            if path.symlink_metadata().is_err()
                && parent.is_some_and(Path::is_dir)
                && !parent.is_some_and(|p| listed_dirs.contains(p))
            {
                whiteout(path)?;
                done.whiteouts += 1;
            }
        }
    }
    // Directories last, deepest first, so writing into them does not move their times.
    let (dir_infos, file_infos): (Vec<_>, Vec<_>) = infos
        .iter()
        .partition(|(_, info)| info.file_type == FileType::Directory);
    for (path, info) in file_infos.into_iter().chain(dir_infos.into_iter().rev()) {
        if path.exists() && !links.contains_key(path) {
            if options.overlay {
                std::os::unix::fs::chown(path, Some(info.uid), Some(info.gid))
                    .map_err(io_error(path))?;
            }
            apply(path, info)?;
        }
    }
    Ok(done)
}

fn make_parent(path: &Path, done: &mut Materialised) -> Result<(), MaterialiseError> {
    if let Some(parent) = path.parent() {
        if !parent.is_dir() {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
            done.dirs += 1;
        }
    }
    Ok(())
}

/// `absolute` under `root`, `.` and `..` resolved by name; `None` if it leaves the root.
fn under(root: &Path, absolute: &str) -> Option<PathBuf> {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(absolute).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.iter().fold(root.to_owned(), |p, part| p.join(part)))
}

fn apply(path: &Path, info: &FileInfo) -> Result<(), MaterialiseError> {
    let mode = fs::Permissions::from_mode(info.mode & 0o7777);
    let times = FileTimes::new()
        .set_accessed(system_time(info.atime))
        .set_modified(system_time(info.mtime));
    let file = File::open(path).map_err(io_error(path))?;
    file.set_times(times).map_err(io_error(path))?;
    fs::set_permissions(path, mode).map_err(io_error(path))
}

/// The text of a link at `link` to `target` that is `size` bytes long: the name relative to
/// the link's directory, or the captured name.
fn link_text(
    link: &Path,
    target: &Path,
    size: u64,
    names: &BTreeMap<PathBuf, String>,
) -> Option<String> {
    let relative = target
        .strip_prefix(link.parent()?)
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let captured = names.get(target).cloned();
    [relative, captured]
        .into_iter()
        .flatten()
        .find(|text| text.len() as u64 == size)
}

/// A name `size` bytes long that is not in the link's directory (for a dangling link).
fn missing_name(link: &Path, size: u64) -> String {
    let size = size.max(1) as usize;
    let dir = link.parent().unwrap_or(Path::new("/"));
    (b'a'..=b'z')
        .map(|c| String::from_utf8(vec![c; size]).expect("ASCII"))
        .find(|name| dir.join(name).symlink_metadata().is_err())
        .unwrap_or_else(|| "~".repeat(size))
}

/// Marks a directory of an overlayfs layer opaque: the layers below it add nothing to it.
fn opaque(path: &Path) -> Result<(), MaterialiseError> {
    let c_path = c_path(path)?;
    // SAFETY: valid C strings and a one-byte value.
    let set = unsafe {
        libc::setxattr(
            c_path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if set != 0 {
        return Err(io_error(path)(io::Error::last_os_error()));
    }
    Ok(())
}

fn c_path(path: &Path) -> Result<std::ffi::CString, MaterialiseError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| MaterialiseError::Io {
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })
}

fn whiteout(path: &Path) -> Result<(), MaterialiseError> {
    let c_path = c_path(path)?;
    // SAFETY: a valid C string; mknod has no other memory effects.
    let made = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    if made != 0 {
        return Err(io_error(path)(io::Error::last_os_error()));
    }
    Ok(())
}

/// A UTC date and time as a system time (times before 1970 are taken as 1970).
fn system_time(t: DateTime) -> SystemTime {
    let days = days_from_civil(t.year, t.month as u32, t.day as u32);
    let seconds = days * 86_400 + t.hour as i64 * 3600 + t.minute as i64 * 60 + t.second as i64;
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_count_from_1970() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 1, 2), 19_724);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn names_stay_under_the_root() {
        let root = Path::new("/r");
        assert_eq!(under(root, "/a/./b/../c"), Some(PathBuf::from("/r/a/c")));
        assert_eq!(under(root, "/a/../../etc"), None);
        assert_eq!(under(root, "/"), Some(PathBuf::from("/r")));
    }
}
