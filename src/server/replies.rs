//! The reply cache: whole reply frames remembered by the bytes of their request, shared by the
//! sessions of a server, valid while the file source stays at one version.
//!
//! A boot asks the same few hundred questions as every other boot of the same release, so a
//! server that remembers its answers sends most replies straight from memory: no decoding, no
//! file system, no encoding. The source says which answers may be remembered and for how long
//! ([`FileSource::reuse`](super::FileSource::reuse)); the whole cache is dropped as soon as the
//! source's version moves on. It is bounded in bytes and forgets its oldest entries first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::time::Instant;

use super::files::Version;
use super::session::{Served, Transmit};

/// Bytes an entry is counted for beyond its request and reply.
const ENTRY_OVERHEAD: usize = 96;

/// How long a question whose answer could not be remembered yet is answered afresh before the
/// source is asked again whether it can be.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the cache knows of a request.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// The reply, and what serving it means for the logs.
    Hit(Transmit, Arc<Served>),
    /// Answer it afresh and do not offer the answer to the cache.
    Skip,
    /// Answer it afresh, then offer the answer.
    Miss,
}

/// Reply frames by request bytes.
pub struct ReplyCache {
    capacity: usize,
    /// The source's version as its driver last read it, plus one; 0 while unknown.
    observed: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    version: Version,
    used: usize,
    /// Hashed with foldhash, seeded per map: every request is looked up, and SipHash over its
    /// bytes cost more than the rest of the lookup. The seed keeps clients from choosing keys
    /// that collide.
    entries: HashMap<Bytes, Remembered, foldhash::fast::RandomState>,
    /// Requests in the order they were remembered, for forgetting the oldest first.
    order: VecDeque<Bytes>,
}

enum Remembered {
    Reply {
        transmit: Transmit,
        served: Arc<Served>,
        until: Instant,
    },
    Skip {
        until: Instant,
    },
}

impl Remembered {
    fn until(&self) -> Instant {
        match self {
            Remembered::Reply { until, .. } | Remembered::Skip { until } => *until,
        }
    }
}

impl ReplyCache {
    /// A cache of at most `capacity` bytes (requests and replies); 0 remembers nothing.
    pub fn new(capacity: usize) -> ReplyCache {
        ReplyCache {
            capacity,
            observed: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Tells the cache the source's version, read by the driver after a request arrived and
    /// before it is looked up; `None` when the source cannot tell (nothing is then served from
    /// the cache). Versions only move on: an older one read late by another connection is
    /// ignored.
    pub fn observe(&self, version: Option<Version>) {
        match version {
            Some(version) => {
                // Read first: the version is nearly always the one observed already, and a
                // read leaves the line shared where a read-modify-write would take it.
                let observed = version.saturating_add(1);
                if self.observed.load(Ordering::Acquire) < observed {
                    self.observed.fetch_max(observed, Ordering::AcqRel);
                }
            }
            None => self.observed.store(0, Ordering::Release),
        }
    }

    /// The version last observed, if any.
    pub fn observed(&self) -> Option<Version> {
        self.observed.load(Ordering::Acquire).checked_sub(1)
    }

    /// What is known of `request` (a frame's payload) at `version` and `now`.
    pub fn lookup(&self, request: &[u8], version: Version, now: Instant) -> Lookup {
        let mut inner = self.inner.lock().expect("reply cache lock");
        inner.move_to(version);
        match inner.entries.get(request) {
            Some(entry) if entry.until() <= now => Lookup::Miss,
            Some(Remembered::Reply {
                transmit, served, ..
            }) => Lookup::Hit(transmit.clone(), Arc::clone(served)),
            Some(Remembered::Skip { .. }) => Lookup::Skip,
            None => Lookup::Miss,
        }
    }

    /// Remembers the reply to `request`, given at `version`, until `until`.
    pub fn insert(
        &self,
        request: Bytes,
        version: Version,
        transmit: Transmit,
        served: Arc<Served>,
        until: Instant,
    ) {
        let cost = request.len() + transmit.len() + ENTRY_OVERHEAD;
        self.remember(
            request,
            version,
            cost,
            Remembered::Reply {
                transmit,
                served,
                until,
            },
        );
    }

    /// Remembers that `request` is to be answered afresh at `version` until `until`.
    pub fn skip(&self, request: Bytes, version: Version, until: Instant) {
        let cost = request.len() + ENTRY_OVERHEAD;
        self.remember(request, version, cost, Remembered::Skip { until });
    }

    /// Bytes and entries held.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.inner.lock().expect("reply cache lock");
        (inner.used, inner.entries.len())
    }

    fn remember(&self, request: Bytes, version: Version, cost: usize, entry: Remembered) {
        if cost > self.capacity {
            return;
        }
        // A key of its own: the request may share a larger buffer (a client's frames are
        // cut from one), which a key kept for the cache's life would keep alive.
        let request = Bytes::copy_from_slice(&request);
        let mut inner = self.inner.lock().expect("reply cache lock");
        inner.move_to(version);
        if inner.version != version {
            // Answered at a version already left behind.
            return;
        }
        if let Some(old) = inner.entries.remove(&request) {
            inner.used -= cost_of(&request, &old);
            inner.order.retain(|r| r != &request);
        }
        while inner.used + cost > self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.entries.remove(&oldest) {
                inner.used -= cost_of(&oldest, &old);
            }
        }
        inner.used += cost;
        inner.order.push_back(request.clone());
        inner.entries.insert(request, entry);
    }
}

impl Inner {
    /// Forgets everything when the source has moved to a newer version.
    fn move_to(&mut self, version: Version) {
        if version > self.version {
            self.version = version;
            self.used = 0;
            self.entries.clear();
            self.order.clear();
        }
    }
}

fn cost_of(request: &[u8], entry: &Remembered) -> usize {
    match entry {
        Remembered::Reply { transmit, .. } => request.len() + transmit.len() + ENTRY_OVERHEAD,
        Remembered::Skip { .. } => request.len() + ENTRY_OVERHEAD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(bytes: &'static [u8]) -> (Transmit, Arc<Served>) {
        let transmit = Transmit {
            head: Bytes::from_static(bytes),
            body: Bytes::new(),
        };
        let served = Arc::new(Served {
            command: None,
            name: None,
            error: None,
            reply_len: bytes.len(),
        });
        (transmit, served)
    }

    const T0: Instant = Instant::ZERO;
    const FOREVER: Instant = Instant::from_epoch(Duration::MAX);

    fn hit(cache: &ReplyCache, request: &[u8], version: Version, now: Instant) -> Option<Bytes> {
        match cache.lookup(request, version, now) {
            Lookup::Hit(transmit, _) => Some(transmit.head),
            _ => None,
        }
    }

    /// A request cut from a larger buffer is remembered as a key of its own: the cache
    /// keeps none of that buffer alive.
    #[test]
    fn a_key_holds_only_its_own_bytes() {
        let cache = ReplyCache::new(1 << 20);
        let block = Bytes::from((0..4096).map(|i| i as u8).collect::<Vec<u8>>());
        let (t, s) = reply(b"one");
        cache.insert(block.slice(..20), 1, t, s, FOREVER);
        cache.skip(block.slice(20..40), 1, FOREVER);
        assert!(block.is_unique(), "the cache holds the request's buffer");
        assert_eq!(
            hit(&cache, &block[..20], 1, T0).as_deref(),
            Some(&b"one"[..])
        );
        assert!(matches!(cache.lookup(&block[20..40], 1, T0), Lookup::Skip));
    }

    #[test]
    fn replies_hold_until_the_version_moves_or_they_expire() {
        let cache = ReplyCache::new(1 << 20);
        let (t, s) = reply(b"one");
        cache.insert(Bytes::from_static(b"q1"), 1, t.clone(), s.clone(), FOREVER);
        let until = T0 + Duration::from_secs(5);
        cache.insert(Bytes::from_static(b"q2"), 1, t, s, until);
        assert_eq!(hit(&cache, b"q1", 1, T0).as_deref(), Some(&b"one"[..]));
        assert_eq!(hit(&cache, b"q2", 1, T0).as_deref(), Some(&b"one"[..]));
        assert!(matches!(cache.lookup(b"q2", 1, until), Lookup::Miss));
        assert!(matches!(cache.lookup(b"q3", 1, T0), Lookup::Miss));
        // A newer version forgets everything.
        assert!(matches!(cache.lookup(b"q1", 2, T0), Lookup::Miss));
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn answers_from_an_older_version_are_not_remembered() {
        let cache = ReplyCache::new(1 << 20);
        assert!(matches!(cache.lookup(b"q", 3, T0), Lookup::Miss));
        let (t, s) = reply(b"stale");
        cache.insert(Bytes::from_static(b"q"), 2, t, s, FOREVER);
        assert!(matches!(cache.lookup(b"q", 3, T0), Lookup::Miss));
        assert_eq!(cache.usage(), (0, 0));
    }

    /// The observed version only moves on (a connection that read an older one late does not
    /// take it back), and a source that cannot tell turns the cache off until it can again.
    #[test]
    fn the_observed_version_only_moves_on() {
        let cache = ReplyCache::new(1 << 20);
        assert_eq!(cache.observed(), None);
        cache.observe(Some(0));
        assert_eq!(cache.observed(), Some(0));
        cache.observe(Some(5));
        assert_eq!(cache.observed(), Some(5));
        cache.observe(Some(5));
        cache.observe(Some(3));
        assert_eq!(cache.observed(), Some(5));
        cache.observe(Some(6));
        assert_eq!(cache.observed(), Some(6));
        cache.observe(None);
        assert_eq!(cache.observed(), None);
        cache.observe(Some(2));
        assert_eq!(cache.observed(), Some(2));
    }

    #[test]
    fn skips_expire_into_misses() {
        let cache = ReplyCache::new(1 << 20);
        cache.skip(Bytes::from_static(b"q"), 0, T0 + RETRY_AFTER);
        assert!(matches!(cache.lookup(b"q", 0, T0), Lookup::Skip));
        assert!(matches!(
            cache.lookup(b"q", 0, T0 + RETRY_AFTER),
            Lookup::Miss
        ));
    }

    #[test]
    fn the_oldest_entries_go_first_and_the_bound_holds() {
        let cost = 2 + 3 + ENTRY_OVERHEAD;
        let cache = ReplyCache::new(3 * cost);
        for (i, request) in [b"q1", b"q2", b"q3", b"q4"].into_iter().enumerate() {
            let (t, s) = reply(b"abc");
            cache.insert(Bytes::from_static(request), 0, t, s, FOREVER);
            assert!(cache.usage().0 <= 3 * cost, "after {i}");
        }
        assert!(hit(&cache, b"q1", 0, T0).is_none());
        assert!(hit(&cache, b"q4", 0, T0).is_some());
        assert_eq!(cache.usage(), (3 * cost, 3));
        // Replacing an entry does not count it twice.
        let (t, s) = reply(b"abc");
        cache.insert(Bytes::from_static(b"q4"), 0, t, s, FOREVER);
        assert_eq!(cache.usage(), (3 * cost, 3));
        // A replaced entry is the newest: the next to go is the oldest of the others.
        let (t, s) = reply(b"abc");
        cache.insert(Bytes::from_static(b"q2"), 0, t, s, FOREVER);
        let (t, s) = reply(b"abc");
        cache.insert(Bytes::from_static(b"q5"), 0, t, s, FOREVER);
        assert!(hit(&cache, b"q3", 0, T0).is_none(), "the oldest stayed");
        assert!(hit(&cache, b"q2", 0, T0).is_some(), "the replaced one went");
        assert_eq!(cache.usage(), (3 * cost, 3));
        // An entry larger than the whole cache is not kept; one as large as it is.
        let tiny = ReplyCache::new(10);
        let (t, s) = reply(b"abc");
        tiny.insert(Bytes::from_static(b"q"), 0, t, s, FOREVER);
        assert_eq!(tiny.usage(), (0, 0));
        let exact = ReplyCache::new(cost);
        let (t, s) = reply(b"abc");
        exact.insert(Bytes::from_static(b"q1"), 0, t, s, FOREVER);
        assert_eq!(exact.usage(), (cost, 1));
    }
}
