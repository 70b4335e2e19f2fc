//! The watch on the served trees: inotify on every directory under the roots, so that a change
//! anywhere below them is known before the next request is answered.
//!
//! The kernel queues an inotify event before the system call that made the change returns. So
//! draining the queue when a request arrives (one `read`, nearly always answered `EAGAIN`) sees
//! every change completed before the request was sent, and an answer remembered since the last
//! change is as good as a fresh one, for a fraction of the cost of a `stat` per request. Any
//! event moves the [`Watch::version`] on: remembered answers are then all asked again.
//!
//! Besides the trees, the watch covers the entries of the working directory (where a boot's
//! first tries, `./Mod.beam`, are looked up) and, for each root and the working directory, the
//! one entry of each ancestor that leads to it: renaming `/usr/lib` is a change too.
//!
//! What inotify cannot see, the watch does not vouch for: a root on a file system that other
//! machines change (NFS and the like) fails [`Watch::new`], and a directory that cannot be
//! watched later on (the user's watch limit) breaks the watch for good, so that its owner goes
//! back to checking every request. Neither can it see writes through a shared memory mapping,
//! nor changes made through a hard link that lies outside the roots; its users do not remember
//! answers about files with more than one link.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The changes that can alter an answer: contents, metadata, and names appearing, leaving or
/// moving. Reads (`IN_ACCESS`, `IN_OPEN`, `IN_CLOSE_NOWRITE`) are left out, since the server's
/// own reads would otherwise count as changes.
const CHANGES: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// Events that change which directories exist under the roots, after which the trees are
/// walked again to watch the new ones and learn the new paths of the moved ones.
const RESHAPED: u32 = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM;

/// Directories watched at most: a root bigger than this is not worth walking at every change.
const MAX_DIRECTORIES: usize = 50_000;

/// File systems whose every change, local or not, raises inotify events (`statfs`'s `f_type`).
const LOCAL_FILE_SYSTEMS: [(i64, &str); 14] = [
    (0xEF53, "ext2/3/4"),
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0x0102_1994, "tmpfs"),
    (0x858_458F6, "ramfs"),
    (0x794C_7630, "overlayfs"),
    (0x2FC1_2FC1, "zfs"),
    (0xF2F5_2010, "f2fs"),
    (0xCA45_1A4E, "bcachefs"),
    (0x5265_4973, "reiserfs"),
    (0x3153_464A, "jfs"),
    (0x7371_7368, "squashfs"),
    (0xE0F5_E1E2, "erofs"),
    (0x9660, "iso9660"),
];

/// Why a watch could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// inotify itself is unavailable.
    #[error("inotify: {0}")]
    Inotify(io::Error),
    /// A directory under a root could not be watched (often the user's inotify watch limit,
    /// `fs.inotify.max_user_watches`).
    #[error("cannot watch {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The roots hold more directories than are watched.
    #[error("more than {MAX_DIRECTORIES} directories under the roots")]
    TooLarge,
    /// A directory lies on a file system whose changes need not raise inotify events.
    #[error("{} is on a file system of type {kind:#x}, whose changes inotify may not see", path.display())]
    FileSystem {
        /// The directory.
        path: PathBuf,
        /// `statfs`'s `f_type`.
        kind: i64,
    },
}

/// A watch on every directory under a set of roots.
pub struct Watch {
    inner: Arc<Inner>,
}

/// The watch's state, shared with the thread that walks the trees again after a reshape.
struct Inner {
    fd: OwnedFd,
    roots: Vec<PathBuf>,
    /// Directories watched on their own, and the only names in them that matter (`None`: all).
    single: HashMap<PathBuf, Option<Vec<OsString>>>,
    /// The same, by watch descriptor, for telling which events matter.
    single_wds: HashMap<i32, Option<Vec<OsString>>>,
    state: Mutex<State>,
    /// Signalled when a walk of the trees ends.
    walked: Condvar,
}

struct State {
    version: u64,
    /// Watch descriptor → the directory's path, for naming the directories created in it.
    dirs: HashMap<i32, PathBuf>,
    /// Set once a change could not be followed: the watch no longer vouches for anything.
    broken: bool,
    /// Set while the trees are walked again (new or moved directories, a queue overflow): the
    /// watch vouches for nothing until the new directories are watched.
    walking: bool,
}

impl Watch {
    /// Watches every directory under `roots`, the entries of `cwd`, and the way to each
    /// (resolved paths).
    pub fn new(roots: &[PathBuf], cwd: &Path) -> Result<Watch, WatchError> {
        // SAFETY: inotify_init1 takes flags only; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(WatchError::Inotify(io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let under_root = |p: &Path| roots.iter().any(|root| p.starts_with(root));
        let mut single: HashMap<PathBuf, Option<Vec<OsString>>> = HashMap::new();
        if !under_root(cwd) {
            single.insert(cwd.to_owned(), None);
        }
        for end in roots.iter().map(PathBuf::as_path).chain([cwd]) {
            let mut child = end;
            while let Some(parent) = child.parent() {
                if let (Some(name), false) = (child.file_name(), under_root(parent)) {
                    if let Some(names) = single.entry(parent.to_owned()).or_insert(Some(Vec::new()))
                    {
                        names.push(name.to_owned());
                    }
                }
                child = parent;
            }
        }
        let mut single_wds = HashMap::new();
        for (dir, names) in &single {
            check_local(dir)?;
            let wd = add_watch(fd.as_raw_fd(), dir).map_err(|source| WatchError::Directory {
                path: dir.clone(),
                source,
            })?;
            single_wds.insert(wd, names.clone());
        }
        let inner = Inner {
            fd,
            roots: roots.to_vec(),
            single,
            single_wds,
            state: Mutex::new(State {
                version: 0,
                dirs: HashMap::new(),
                broken: false,
                walking: false,
            }),
            walked: Condvar::new(),
        };
        {
            let mut state = inner.lock();
            for root in &inner.roots {
                inner.add_tree(root, &mut state.dirs, true)?;
            }
        }
        Ok(Watch {
            inner: Arc::new(inner),
        })
    }

    /// Whether a change to `path` (absolute, without `.` or `..`) would be seen: it lies under
    /// a root, or is the working directory, an entry of it, or an ancestor's entry on the way
    /// to a root or to the working directory.
    pub fn covers(&self, path: &Path) -> bool {
        self.inner.covers(path)
    }

    /// Directories watched.
    pub fn directories(&self) -> usize {
        self.inner.lock().dirs.len()
    }

    /// The trees' current version: it moves on with every change under the roots completed
    /// before this call. `None` once the watch has broken (see the module documentation), and
    /// while the trees are walked again after directories appeared or moved: that walk runs
    /// on a thread of its own, so this never takes longer than draining the event queue.
    pub fn version(&self) -> Option<u64> {
        Inner::version(&self.inner, false)
    }

    /// The same, but waiting for a walk of the trees to end rather than answering `None`
    /// meanwhile: for callers that may block (a file answer on a blocking pool).
    pub fn settled_version(&self) -> Option<u64> {
        Inner::version(&self.inner, true)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is a single step that cannot panic half-way.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn covers(&self, path: &Path) -> bool {
        if self.roots.iter().any(|root| path.starts_with(root))
            || self.single.get(path) == Some(&None)
        {
            return true;
        }
        match (
            path.parent().and_then(|p| self.single.get(p)),
            path.file_name(),
        ) {
            (Some(None), _) => true,
            (Some(Some(names)), Some(name)) => names.iter().any(|n| n == name),
            _ => false,
        }
    }

    fn version(inner: &Arc<Inner>, wait: bool) -> Option<u64> {
        let mut state = inner.lock();
        while wait && state.walking {
            state = inner
                .walked
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if state.broken || state.walking {
            return None;
        }
        let this = &**inner;
        // The lock is held while draining: a caller that finds the queue empty must also find
        // the version moved by whoever drained the events before it.
        let mut buf = [0u8; 16 * 1024];
        let mut changed = false;
        let mut reshaped = false;
        loop {
            // SAFETY: `buf` is writable for its whole length.
            let n = unsafe { libc::read(this.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let error = io::Error::last_os_error();
                match error.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        tracing::warn!(%error, "file watch failed: checking every request from now on");
                        state.broken = true;
                        return None;
                    }
                }
            }
            let mut at = 0;
            while at + HEADER <= n as usize {
                // SAFETY: the kernel writes whole events; the header is read unaligned.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let name = &buf[at + HEADER..at + HEADER + event.len as usize];
                at += HEADER + event.len as usize;
                if event.mask & libc::IN_Q_OVERFLOW != 0 {
                    reshaped = true;
                    changed = true;
                    continue;
                }
                if !state.dirs.contains_key(&event.wd) {
                    match this.single_wds.get(&event.wd) {
                        // An ancestor's other entries do not matter.
                        Some(Some(names))
                            if !names.iter().any(|n| matters(n, name))
                                && event.mask & libc::IN_IGNORED == 0 =>
                        {
                            continue
                        }
                        Some(_) if event.mask & libc::IN_IGNORED != 0 => {
                            tracing::warn!(
                                "a watched directory is gone: checking every request from now on"
                            );
                            state.broken = true;
                            return None;
                        }
                        _ => {}
                    }
                }
                changed = true;
                if event.mask & libc::IN_IGNORED != 0 {
                    state.dirs.remove(&event.wd);
                } else if event.mask & libc::IN_ISDIR != 0 && event.mask & RESHAPED != 0 {
                    reshaped = true;
                }
            }
        }
        if changed {
            state.version += 1;
        }
        if reshaped {
            // Walk everything again, off this thread: new directories get watched, and moved
            // ones get their new path (a directory already watched keeps its descriptor).
            state.walking = true;
            let walker = Arc::clone(inner);
            let spawned = std::thread::Builder::new()
                .name("erlboot-watch".into())
                .spawn(move || walker.walk_again());
            if let Err(error) = spawned {
                tracing::warn!(%error, "file watch cannot walk: checking every request from now on");
                state.walking = false;
                state.broken = true;
                return None;
            }
            drop(state);
            return match wait {
                true => Inner::version(inner, true),
                false => None,
            };
        }
        Some(state.version)
    }

    /// Walks the trees again and watches what is new; the version moves on once it is done,
    /// so no answer given during the walk is remembered past it.
    fn walk_again(&self) {
        let mut dirs = HashMap::new();
        let walked = self
            .roots
            .iter()
            .try_for_each(|root| self.add_tree(root, &mut dirs, false));
        let mut state = self.lock();
        state.walking = false;
        match walked {
            Ok(()) => {
                state.dirs = dirs;
                state.version += 1;
            }
            Err(error) => {
                tracing::warn!(%error, "file watch incomplete: checking every request from now on");
                state.broken = true;
            }
        }
        drop(state);
        self.walked.notify_all();
    }

    /// Watches `dir` and every directory below it, not following symbolic links (a link's
    /// target is watched where it lies, or lies outside the roots).
    fn add_tree(
        &self,
        dir: &Path,
        dirs: &mut HashMap<i32, PathBuf>,
        check_file_system: bool,
    ) -> Result<(), WatchError> {
        let failed = |path: &Path, source| WatchError::Directory {
            path: path.to_owned(),
            source,
        };
        let mut pending = vec![dir.to_owned()];
        while let Some(dir) = pending.pop() {
            if check_file_system {
                check_local(&dir)?;
            }
            let wd = match add_watch(self.fd.as_raw_fd(), &dir) {
                Ok(wd) => wd,
                // Gone since it was listed: its removal is an event of its parent's.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed(&dir, e)),
            };
            dirs.insert(wd, dir.clone());
            if dirs.len() > MAX_DIRECTORIES {
                return Err(WatchError::TooLarge);
            }
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| failed(&dir, e))?;
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// Whether an event's name (NUL-padded; empty for an event on the directory itself) is `name`.
fn matters(name: &OsStr, event_name: &[u8]) -> bool {
    let end = event_name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(event_name.len());
    event_name.is_empty() || &event_name[..end] == name.as_bytes()
}

/// Bytes of an event before its name.
const HEADER: usize = std::mem::size_of::<libc::inotify_event>();

fn add_watch(fd: i32, dir: &Path) -> io::Result<i32> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mask = CHANGES | libc::IN_ONLYDIR | libc::IN_DONT_FOLLOW;
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}

fn check_local(dir: &Path) -> Result<(), WatchError> {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|_| WatchError::Directory {
        path: dir.to_owned(),
        source: io::ErrorKind::InvalidInput.into(),
    })?;
    // SAFETY: `stat` is plain data that statfs fills; both pointers are valid for the call.
    let kind = unsafe {
        let mut stat: libc::statfs = std::mem::zeroed();
        if libc::statfs(path.as_ptr(), &mut stat) != 0 {
            return Err(WatchError::Directory {
                path: dir.to_owned(),
                source: io::Error::last_os_error(),
            });
        }
        stat.f_type as i64
    };
    if LOCAL_FILE_SYSTEMS.iter().any(|&(known, _)| known == kind) {
        Ok(())
    } else {
        Err(WatchError::FileSystem {
            path: dir.to_owned(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("erlboot-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/file"), b"1").unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    #[test]
    fn a_new_directory_is_walked_off_the_caller_and_never_vouched_for_meanwhile() {
        let dir = tree("walk");
        let watch = Watch::new(std::slice::from_ref(&dir), &dir).unwrap();
        let v0 = watch.version().unwrap();
        for round in 0..20 {
            let new = dir.join(format!("a/new{round}"));
            std::fs::create_dir(&new).unwrap();
            // Right after the change: either the walk still runs (no version to vouch with),
            // or it is done and the version has moved; never the old version.
            let seen = watch.version();
            assert!(seen.is_none_or(|v| v > v0), "round {round}: {seen:?}");
            let settled = watch.settled_version().unwrap();
            assert!(settled > v0);
            // The walk watched the new directory: a file made in it moves the version.
            std::fs::write(new.join("f"), b"x").unwrap();
            assert!(watch.settled_version().unwrap() > settled, "round {round}");
        }
        assert_eq!(watch.directories(), 3 + 20);
        drop(watch);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_change_moves_the_version_and_reads_do_not() {
        let dir = tree("changes");
        let watch = Watch::new(std::slice::from_ref(&dir), &dir).unwrap();
        assert_eq!(watch.directories(), 3);
        let v0 = watch.settled_version().unwrap();
        assert_eq!(watch.settled_version(), Some(v0), "no change, same version");
        let _ = std::fs::read(dir.join("a/b/file")).unwrap();
        let _ = std::fs::read_dir(dir.join("a/b")).unwrap().count();
        assert_eq!(watch.settled_version(), Some(v0), "reads are not changes");

        let mut last = v0;
        let mut step = |what: &str, change: &dyn Fn()| {
            change();
            let now = watch.settled_version().unwrap();
            assert!(now > last, "{what} did not move the version");
            last = now;
        };
        step("a write", &|| {
            std::fs::write(dir.join("a/b/file"), b"2").unwrap()
        });
        step("a chmod", &|| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("a/b/file"), std::fs::Permissions::from_mode(0o600))
                .unwrap()
        });
        step("a new directory", &|| {
            std::fs::create_dir(dir.join("a/new")).unwrap()
        });
        // The new directory is watched from the version that reported it on.
        step("a file in the new directory", &|| {
            std::fs::write(dir.join("a/new/f"), b"x").unwrap()
        });
        step("a rename", &|| {
            std::fs::rename(dir.join("a/new"), dir.join("a/b/moved")).unwrap()
        });
        // The moved directory is watched under its new name.
        step("a write in the moved directory", &|| {
            std::fs::write(dir.join("a/b/moved/f"), b"y").unwrap()
        });
        step("a removal", &|| {
            std::fs::remove_dir_all(dir.join("a/b")).unwrap()
        });
        assert_eq!(watch.directories(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn covers_only_paths_under_its_roots() {
        let dir = tree("covers");
        let watch = Watch::new(&[dir.join("a")], &dir.join("a")).unwrap();
        assert!(watch.covers(&dir.join("a/b/file")));
        assert!(watch.covers(&dir.join("a/missing")));
        assert!(!watch.covers(&dir.join("ab")));
        assert!(!watch.covers(&dir.join("ab/x")));
        assert!(watch.covers(&dir), "on the way to the root");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_working_directory_and_the_ways_to_it_are_watched_but_not_their_neighbours() {
        let dir = tree("cwd");
        std::fs::create_dir_all(dir.join("work/cwd")).unwrap();
        let watch = Watch::new(&[dir.join("a")], &dir.join("work/cwd")).unwrap();
        assert!(watch.covers(&dir.join("work/cwd/mod.beam")));
        assert!(watch.covers(&dir.join("work/cwd")));
        assert!(watch.covers(&dir.join("work")));
        assert!(!watch.covers(&dir.join("work/other")));
        assert!(!watch.covers(&dir.join("work/cwd/sub/mod.beam")));
        let v0 = watch.settled_version().unwrap();
        std::fs::write(dir.join("work/other"), b"x").unwrap();
        std::fs::write(dir.join("unrelated"), b"x").unwrap();
        assert_eq!(
            watch.settled_version(),
            Some(v0),
            "neighbours of the way do not matter"
        );
        std::fs::write(dir.join("work/cwd/mod.beam"), b"x").unwrap();
        let v1 = watch.settled_version().unwrap();
        assert!(v1 > v0, "an entry of the working directory");
        std::fs::rename(dir.join("work"), dir.join("work2")).unwrap();
        assert!(
            watch.settled_version().unwrap() > v1,
            "the way to the working directory"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_systems_without_reliable_events_are_refused() {
        match Watch::new(&[PathBuf::from("/proc/self")], Path::new("/proc/self")) {
            Err(WatchError::FileSystem { kind, .. }) => assert_eq!(kind, 0x9fa0),
            Err(other) => panic!("procfs refused for another reason: {other}"),
            Ok(_) => panic!("procfs watched"),
        }
    }
}
