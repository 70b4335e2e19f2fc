//! The file-contents cache: whole files kept in memory by inode, each stamped with the `stat`
//! it was read under, bounded in bytes, evicting the least recently used.
//!
//! A lookup passes the file's current stamp; an entry whose stamp differs is dropped, so a file
//! changed on disk is read again rather than served stale. The stamp includes the change time
//! in nanoseconds, which every write to the file moves.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// What identifies one version of a file: enough of its `stat` that any write changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Status change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
}

struct CachedFile {
    stamp: Stamp,
    contents: Bytes,
    last_use: u64,
}

/// A file on disk, whatever the path it was reached by: `(st_dev, st_ino)`.
pub type FileId = (u64, u64);

impl Stamp {
    /// The file this stamp is of.
    pub fn file(&self) -> FileId {
        (self.dev, self.ino)
    }
}

/// A bounded map from files to their contents.
pub struct Cache {
    capacity: usize,
    used: usize,
    clock: u64,
    entries: HashMap<FileId, CachedFile>,
    by_use: BTreeMap<u64, FileId>,
}

impl Cache {
    /// A cache holding at most `capacity` bytes of contents; 0 disables it.
    pub fn new(capacity: usize) -> Cache {
        Cache {
            capacity,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// The contents of the file if they were cached under the same stamp.
    pub fn get(&mut self, stamp: &Stamp) -> Option<Bytes> {
        let file = stamp.file();
        let entry = self.entries.get_mut(&file)?;
        if entry.stamp != *stamp {
            self.remove(file);
            return None;
        }
        self.clock += 1;
        self.by_use.remove(&entry.last_use);
        entry.last_use = self.clock;
        self.by_use.insert(self.clock, file);
        Some(entry.contents.clone())
    }

    /// Keeps `contents` of `path` as of `stamp`, evicting older entries to make room. Files
    /// larger than a quarter of the capacity are not kept, so one huge file cannot flush
    /// everything else.
    pub fn insert(&mut self, stamp: Stamp, contents: Bytes) {
        if contents.len() > self.capacity / 4 {
            return;
        }
        let file = stamp.file();
        self.remove(file);
        while self.used + contents.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.used -= entry.contents.len();
            }
        }
        self.clock += 1;
        self.used += contents.len();
        self.by_use.insert(self.clock, file);
        self.entries.insert(
            file,
            CachedFile {
                stamp,
                contents,
                last_use: self.clock,
            },
        );
    }

    /// Bytes of contents held.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Files held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn remove(&mut self, file: FileId) {
        if let Some(entry) = self.entries.remove(&file) {
            self.used -= entry.contents.len();
            self.by_use.remove(&entry.last_use);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64, size: u64) -> Stamp {
        Stamp {
            dev: 1,
            ino,
            size,
            mtime_ns: 0,
            ctime_ns: 0,
        }
    }

    #[test]
    fn a_changed_stamp_misses_and_drops_the_entry() {
        let mut cache = Cache::new(100);
        cache.insert(stamp(1, 3), Bytes::from_static(b"abc"));
        assert_eq!(cache.get(&stamp(1, 3)), Some(Bytes::from_static(b"abc")));
        let touched = Stamp {
            ctime_ns: 1,
            ..stamp(1, 3)
        };
        assert_eq!(cache.get(&touched), None);
        assert_eq!((cache.len(), cache.used()), (0, 0));
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_bound_holds() {
        let mut cache = Cache::new(100);
        for ino in 0..4 {
            cache.insert(stamp(ino, 25), Bytes::from(vec![0; 25]));
        }
        assert!(cache.get(&stamp(0, 25)).is_some());
        cache.insert(stamp(9, 25), Bytes::from(vec![0; 25]));
        assert!(cache.used() <= 100);
        assert!(
            cache.get(&stamp(1, 25)).is_none(),
            "file 1 was least recent"
        );
        assert!(cache.get(&stamp(0, 25)).is_some());
        cache.insert(stamp(10, 26), Bytes::from(vec![0; 26]));
        assert!(cache.get(&stamp(10, 26)).is_none(), "over a quarter");
        let mut off = Cache::new(0);
        off.insert(stamp(0, 1), Bytes::from_static(b"a"));
        assert_eq!(off.len(), 0, "a zero capacity keeps nothing");
    }
}
