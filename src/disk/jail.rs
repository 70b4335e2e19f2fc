//! The path jail: which paths on disk a client may reach.
//!
//! A name is resolved as the kernel would resolve it (relative names against the server's
//! working directory, `..` and symbolic links followed), and the result must lie under one of
//! the roots. Anything else is reported as absent (`enoent`), so a client learns nothing about
//! the file system outside the roots: not even that a path exists.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::server::FileError;

/// The roots a server serves, or none (OTP's "any readable file").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jail {
    /// Only paths under these directories, each already resolved (no symbolic links).
    Roots(Vec<PathBuf>),
    /// Any path the server's user can read.
    Open,
}

impl Jail {
    /// A jail of the given roots, resolved now. A root that does not exist is an error: the
    /// server would otherwise start serving nothing from it without a word.
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> std::io::Result<Jail> {
        let mut resolved = Vec::new();
        for root in roots {
            let root = std::fs::canonicalize(&root).map_err(|e| {
                std::io::Error::new(e.kind(), format!("root {}: {e}", root.display()))
            })?;
            if !resolved.contains(&root) {
                resolved.push(root);
            }
        }
        Ok(Jail::Roots(resolved))
    }

    /// Whether a resolved path lies in the jail.
    pub fn contains(&self, resolved: &Path) -> bool {
        match self {
            Jail::Roots(roots) => roots.iter().any(|root| resolved.starts_with(root)),
            Jail::Open => true,
        }
    }

    /// The path to open for `path` (absolute): resolved through every symbolic link, or every
    /// link but the last one when `follow_last` is false (`read_link_info`).
    pub fn resolve(&self, path: &Path, follow_last: bool) -> Result<PathBuf, FileError> {
        if let Jail::Open = self {
            return Ok(path.to_owned());
        }
        let resolved = if follow_last {
            std::fs::canonicalize(path)
        } else {
            match split_last(path) {
                Some((parent, last)) => std::fs::canonicalize(parent).map(|p| p.join(last)),
                None => std::fs::canonicalize(path),
            }
        };
        match resolved {
            Ok(resolved) if self.contains(&resolved) => Ok(resolved),
            Ok(_) => Err(FileError::NoEntry),
            Err(e) => Err(self.resolution_error(path, e.into())),
        }
    }

    /// An error met while resolving `path` is the client's to see only when the deepest part
    /// of the path that does resolve is inside the jail; otherwise the path is "absent".
    fn resolution_error(&self, path: &Path, error: FileError) -> FileError {
        if error == FileError::NoEntry {
            return error;
        }
        // Components drop a trailing slash, so that a link named with one is judged by where
        // the link itself leads.
        let path: PathBuf = path.components().collect();
        for ancestor in path.ancestors() {
            if let Ok(resolved) = std::fs::canonicalize(ancestor) {
                return if self.contains(&resolved) {
                    error
                } else {
                    FileError::NoEntry
                };
            }
        }
        FileError::NoEntry
    }
}

/// The parent and last component of a path whose last component is a name (not `.`, `..` or
/// the root), which is where `read_link_info` must stop following links.
fn split_last(path: &Path) -> Option<(&Path, &OsStr)> {
    match path.components().next_back()? {
        Component::Normal(last) => {
            // `Path::parent` ignores a trailing slash; a trailing slash makes the kernel follow
            // the link, so such a path is resolved whole.
            if path.as_os_str().as_bytes().ends_with(b"/") {
                return None;
            }
            Some((path.parent()?, last))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Tree {
            let dir =
                std::env::temp_dir().join(format!("erlboot-jail-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("root/sub")).unwrap();
            std::fs::create_dir_all(dir.join("outside")).unwrap();
            std::fs::write(dir.join("root/sub/file"), b"in").unwrap();
            std::fs::write(dir.join("outside/secret"), b"out").unwrap();
            symlink(dir.join("outside/secret"), dir.join("root/escape")).unwrap();
            symlink("sub/file", dir.join("root/inner")).unwrap();
            symlink(dir.join("outside"), dir.join("root/escape_dir")).unwrap();
            Tree(dir)
        }

        fn jail(&self) -> Jail {
            Jail::new([self.0.join("root")]).unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn paths_inside_resolve_and_paths_outside_are_absent() {
        let tree = Tree::new("basic");
        let jail = tree.jail();
        let root = tree.0.join("root");
        let real_root = std::fs::canonicalize(&root).unwrap();
        assert_eq!(
            jail.resolve(&root.join("sub/file"), true),
            Ok(real_root.join("sub/file"))
        );
        assert_eq!(
            jail.resolve(&root.join("sub/../sub/file"), true),
            Ok(real_root.join("sub/file"))
        );
        assert_eq!(
            jail.resolve(&root.join("inner"), true),
            Ok(real_root.join("sub/file"))
        );
        assert_eq!(
            jail.resolve(&root.join("inner"), false),
            Ok(real_root.join("inner"))
        );
        assert_eq!(
            jail.resolve(&root.join("../outside/secret"), true),
            Err(FileError::NoEntry)
        );
        assert_eq!(
            jail.resolve(&root.join("escape"), true),
            Err(FileError::NoEntry)
        );
        assert_eq!(
            jail.resolve(&root.join("escape_dir/secret"), true),
            Err(FileError::NoEntry)
        );
        assert_eq!(
            jail.resolve(Path::new("/etc/hostname"), true),
            Err(FileError::NoEntry)
        );
        assert_eq!(
            jail.resolve(&root.join("missing"), true),
            Err(FileError::NoEntry)
        );
    }

    #[test]
    fn a_link_out_is_still_described_as_a_link_inside() {
        let tree = Tree::new("link");
        let jail = tree.jail();
        let root = std::fs::canonicalize(tree.0.join("root")).unwrap();
        assert_eq!(
            jail.resolve(&root.join("escape"), false),
            Ok(root.join("escape"))
        );
        assert_eq!(
            jail.resolve(&root.join("escape/"), false),
            Err(FileError::NoEntry)
        );
    }

    #[test]
    fn errors_show_only_when_their_cause_is_inside() {
        let tree = Tree::new("errors");
        let jail = tree.jail();
        let root = tree.0.join("root");
        assert_eq!(
            jail.resolve(&root.join("sub/file/x"), true),
            Err(FileError::NotDirectory)
        );
        assert_eq!(
            jail.resolve(&tree.0.join("outside/secret/x"), true),
            Err(FileError::NoEntry)
        );
        assert_eq!(
            jail.resolve(&root.join("escape/x"), true),
            Err(FileError::NoEntry)
        );
    }

    #[test]
    fn an_open_jail_passes_paths_unchanged() {
        assert_eq!(
            Jail::Open.resolve(Path::new("/a/../b"), true),
            Ok(PathBuf::from("/a/../b"))
        );
        assert!(Jail::new([PathBuf::from("/nonexistent/erlboot")]).is_err());
    }
}
