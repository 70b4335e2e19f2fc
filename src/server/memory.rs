//! A file tree held in memory as a [`FileSource`]: what the simulator and the replay of
//! captures serve from, with no disk and no clock.
//!
//! ```
//! use erlboot::server::{FileSource, MemorySource};
//!
//! let tree = MemorySource::new("/srv")
//!     .with_file("/usr/lib/erlang/bin/start.boot", &b"boot"[..])
//!     .with_symlink("/usr/lib/erlang/latest", "bin");
//! assert_eq!(&tree.get("/usr/lib/erlang/latest/start.boot").unwrap()[..], b"boot");
//! assert_eq!(tree.list_dir("/usr/lib/erlang").unwrap(), ["bin", "latest"]);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use crate::proto::{Access, DateTime, FileInfo, FileType};

use super::files::{FileError, FileSource, Follow, Question, Reuse, Version};

/// Symbolic links followed at most, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

#[derive(Clone, Debug)]
enum Node {
    File(Bytes),
    Dir(Vec<String>),
    Symlink(String),
}

#[derive(Clone, Debug)]
struct TreeEntry {
    node: Node,
    inode: u64,
}

/// A file tree in memory. Directories list their entries in the order they were added.
#[derive(Clone, Debug)]
pub struct MemorySource {
    entries: BTreeMap<String, TreeEntry>,
    cwd: String,
    time: DateTime,
    next_inode: u64,
}

impl MemorySource {
    /// An empty tree (just `/`) whose working directory is `cwd`.
    pub fn new(cwd: &str) -> MemorySource {
        let mut tree = MemorySource {
            entries: BTreeMap::new(),
            cwd: cwd.to_owned(),
            time: DateTime {
                year: 2024,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
            },
            next_inode: 1,
        };
        tree.insert("/".to_owned(), Node::Dir(Vec::new()));
        tree
    }

    /// Adds a file at an absolute path, creating its directories.
    pub fn with_file(mut self, path: &str, contents: impl Into<Bytes>) -> MemorySource {
        self.add(path, Node::File(contents.into()));
        self
    }

    /// Adds an (empty) directory at an absolute path.
    pub fn with_dir(mut self, path: &str) -> MemorySource {
        self.add(path, Node::Dir(Vec::new()));
        self
    }

    /// Adds a symbolic link at an absolute path to `target` (absolute, or relative to the
    /// link's directory).
    pub fn with_symlink(mut self, path: &str, target: &str) -> MemorySource {
        self.add(path, Node::Symlink(target.to_owned()));
        self
    }

    /// Sets the time every file reports.
    pub fn with_time(mut self, time: DateTime) -> MemorySource {
        self.time = time;
        self
    }

    fn insert(&mut self, path: String, node: Node) {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.entries.insert(path, TreeEntry { node, inode });
    }

    fn add(&mut self, path: &str, node: Node) {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut dir = "/".to_owned();
        for (i, part) in parts.iter().enumerate() {
            let child = join(&dir, part);
            let last = i + 1 == parts.len();
            if !self.entries.contains_key(&child) {
                if let Some(TreeEntry {
                    node: Node::Dir(names),
                    ..
                }) = self.entries.get_mut(&dir)
                {
                    names.push((*part).to_owned());
                }
                let node = if last {
                    node.clone()
                } else {
                    Node::Dir(Vec::new())
                };
                self.insert(child.clone(), node);
            } else if last {
                self.entries.get_mut(&child).expect("present").node = node.clone();
            }
            dir = child;
        }
    }

    /// The canonical path of `name`, following links (all, or all but the last).
    fn resolve(&self, name: &str, follow_last: bool) -> Result<String, FileError> {
        if name.is_empty() {
            return Err(FileError::NoEntry);
        }
        if name.contains('\0') {
            return Err(FileError::BadName);
        }
        let start = if name.starts_with('/') {
            name.to_owned()
        } else {
            join(&self.cwd, name)
        };
        let mut pending: Vec<String> = components(&start);
        pending.reverse();
        let mut at = "/".to_owned();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            match self.entries.get(&at).map(|e| &e.node) {
                Some(Node::Dir(_)) => {}
                Some(_) => return Err(FileError::NotDirectory),
                None => return Err(FileError::NoEntry),
            }
            match part.as_str() {
                "." => continue,
                ".." => {
                    at = parent(&at);
                    continue;
                }
                _ => {}
            }
            let next = join(&at, &part);
            let is_last = pending.is_empty();
            match self.entries.get(&next).map(|e| &e.node) {
                Some(Node::Symlink(target)) if follow_last || !is_last => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(FileError::Loop);
                    }
                    if target.starts_with('/') {
                        at = "/".to_owned();
                    }
                    pending.extend(components(target).into_iter().rev());
                }
                Some(_) => at = next,
                None => return Err(FileError::NoEntry),
            }
        }
        Ok(at)
    }

    fn entry(&self, name: &str, follow: Follow) -> Result<(&String, &TreeEntry), FileError> {
        let path = self.resolve(name, follow == Follow::Links)?;
        self.entries.get_key_value(&path).ok_or(FileError::NoEntry)
    }
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

impl FileSource for MemorySource {
    fn get(&self, name: &str) -> Result<Bytes, FileError> {
        match &self.entry(name, Follow::Links)?.1.node {
            Node::File(contents) => Ok(contents.clone()),
            Node::Dir(_) => Err(FileError::IsDirectory),
            Node::Symlink(_) => Err(FileError::NoEntry),
        }
    }

    fn list_dir(&self, name: &str) -> Result<Vec<String>, FileError> {
        match &self.entry(name, Follow::Links)?.1.node {
            Node::Dir(names) => Ok(names.clone()),
            _ => Err(FileError::NotDirectory),
        }
    }

    fn file_info(&self, name: &str, follow: Follow) -> Result<FileInfo, FileError> {
        let (_, entry) = self.entry(name, follow)?;
        let (size, file_type, mode) = match &entry.node {
            Node::File(contents) => (contents.len() as u64, FileType::Regular, 0o100644),
            Node::Dir(_) => (4096, FileType::Directory, 0o40755),
            Node::Symlink(target) => (target.len() as u64, FileType::Symlink, 0o120777),
        };
        Ok(FileInfo {
            size,
            file_type,
            access: Access::Read,
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            mode,
            links: 1,
            major_device: 0,
            minor_device: 0,
            inode: entry.inode,
            uid: 0,
            gid: 0,
        })
    }

    fn cwd(&self) -> Result<String, FileError> {
        Ok(self.cwd.clone())
    }

    /// A tree in memory never changes once built.
    fn version(&self) -> Option<Version> {
        Some(0)
    }

    fn reuse(&self, _: &Question, _: Option<&FileInfo>) -> Reuse {
        Reuse::For(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> MemorySource {
        MemorySource::new("/cwd")
            .with_file("/cwd/mod.beam", &b"local"[..])
            .with_file("/lib/a/ebin/a.beam", &b"a"[..])
            .with_symlink("/lib/current", "a")
            .with_symlink("/lib/abs", "/lib/a/ebin/a.beam")
            .with_symlink("/lib/loop", "loop")
    }

    #[test]
    fn names_resolve_like_a_file_system() {
        let t = tree();
        assert_eq!(&t.get("./mod.beam").unwrap()[..], b"local");
        assert_eq!(
            &t.get("/lib/current/ebin/../ebin/a.beam").unwrap()[..],
            b"a"
        );
        assert_eq!(&t.get("/lib/abs").unwrap()[..], b"a");
        assert_eq!(t.get("/lib/a"), Err(FileError::IsDirectory));
        assert_eq!(t.get("/lib/a/ebin/a.beam/x"), Err(FileError::NotDirectory));
        assert_eq!(t.get("/lib/missing"), Err(FileError::NoEntry));
        assert_eq!(t.get("/lib/loop"), Err(FileError::Loop));
        assert_eq!(t.get(""), Err(FileError::NoEntry));
        assert_eq!(t.list_dir("/lib").unwrap(), ["a", "current", "abs", "loop"]);
        assert_eq!(t.list_dir("/lib/abs"), Err(FileError::NotDirectory));
    }

    #[test]
    fn link_info_describes_the_link_and_file_info_its_target() {
        let t = tree();
        let link = t.file_info("/lib/abs", Follow::NoLinks).unwrap();
        let target = t.file_info("/lib/abs", Follow::Links).unwrap();
        assert_eq!(link.file_type, FileType::Symlink);
        assert_eq!((target.file_type, target.size), (FileType::Regular, 1));
        assert_eq!(
            t.file_info("/lib/loop", Follow::NoLinks).unwrap().file_type,
            FileType::Symlink
        );
        assert_eq!(t.cwd().unwrap(), "/cwd");
    }
}
