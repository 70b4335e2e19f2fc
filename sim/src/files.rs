//! File answers in a simulation: a tree in memory, answered after a simulated delay, and late
//! or failing where a fault names the file.
//!
//! A server's reply cache answers a question again without asking its files while their
//! version stands, as `erlboot serve`'s does; so that a fault is seen, setting or clearing one
//! moves the version on (the cache forgets everything, as it does when a file changes), and
//! an answer a fault touched is never remembered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use erlboot::net::FileAnswerer;
use erlboot::server::{
    FileAnswer, FileError, FileQuestion, FileSource, Found, Question, Reuse, Version,
};

use crate::wakeups::Wakeups;

/// What happens to the answers about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileFault {
    /// Answered, but this much later.
    Slow(Duration),
    /// Answered with this error (`eio` for a failing disk).
    Fail(FileError),
    /// Answered with these contents instead of the tree's: a server serving a stale copy
    /// (a planted bug, for the invariants to catch).
    Stale(Bytes),
}

/// A [`FileSource`] behind a simulated disk: every answer takes `latency`, and the faults set
/// for a name apply to every question about it. Clones share the faults.
#[derive(Clone)]
pub struct FaultyFiles {
    source: Arc<dyn FileSource>,
    latency: Duration,
    faults: Arc<Mutex<Faults>>,
    wakeups: Option<Arc<Wakeups>>,
}

/// The faults in force, and how many times they have changed.
#[derive(Debug, Default)]
struct Faults {
    by_name: Vec<(String, FileFault)>,
    changes: Version,
}

impl Faults {
    /// The fault set for `name`, if any.
    fn of(&self, name: &str) -> Option<&FileFault> {
        self.by_name
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, fault)| fault)
    }

    /// `source`'s version moved on by every change of the faults: a version counted from a
    /// source's own would have to be wider than [`Version`], so the two are summed (a source
    /// whose version moves as well may then come back to a version it had; the simulated
    /// tree's never moves).
    fn version_of(&self, source: &dyn FileSource) -> Option<Version> {
        source
            .version()
            .map(|version| version.wrapping_add(self.changes))
    }
}

impl std::fmt::Debug for FaultyFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyFiles")
            .field("latency", &self.latency)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl FaultyFiles {
    /// Answers from `source`, each after `latency`.
    pub fn new(source: Arc<dyn FileSource>, latency: Duration) -> FaultyFiles {
        FaultyFiles {
            source,
            latency,
            faults: Arc::new(Mutex::new(Faults::default())),
            wakeups: None,
        }
    }

    /// The same answerer, its waits registered in `wakeups`.
    pub fn with_wakeups(mut self, wakeups: Arc<Wakeups>) -> FaultyFiles {
        self.wakeups = Some(wakeups);
        self
    }

    /// Sets the fault for `name` (replacing any), from now on.
    pub fn set_fault(&self, name: &str, fault: FileFault) {
        let mut faults = self.faults.lock().expect("faults lock");
        faults.by_name.retain(|(n, _)| n != name);
        faults.by_name.push((name.to_owned(), fault));
        faults.changes += 1;
    }

    /// Clears every fault.
    pub fn heal(&self) {
        let mut faults = self.faults.lock().expect("faults lock");
        faults.by_name.clear();
        faults.changes += 1;
    }

    /// Whether questions about `name` are answered with an error now.
    pub fn fails(&self, name: &str) -> bool {
        let faults = self.faults.lock().expect("faults lock");
        matches!(faults.of(name), Some(FileFault::Fail(_)))
    }
}

impl FileAnswerer for FaultyFiles {
    /// The source's version, moved on by every change of the faults.
    fn version(&self) -> Option<Version> {
        let faults = self.faults.lock().expect("faults lock");
        faults.version_of(self.source.as_ref())
    }

    async fn answer(&self, question: FileQuestion) -> FileAnswer {
        // The version before the question is asked: the answer may be given again while the
        // faults stay as they were when it was looked at.
        let (fault, version) = {
            let faults = self.faults.lock().expect("faults lock");
            let fault = question
                .question
                .name()
                .and_then(|name| faults.of(name).cloned());
            (fault, faults.version_of(self.source.as_ref()))
        };
        let delay = match &fault {
            Some(FileFault::Slow(extra)) => self.latency + *extra,
            _ => self.latency,
        };
        if !delay.is_zero() {
            crate::wakeups::sleep(self.wakeups.as_ref(), delay).await;
        }
        match fault {
            Some(FileFault::Fail(error)) => FileAnswer::failed(error),
            Some(FileFault::Stale(bytes)) if matches!(question.question, Question::Get(_)) => {
                FileAnswer {
                    result: Ok(Found::Contents(bytes)),
                    ..FileAnswer::failed(FileError::Io)
                }
            }
            // Asked again every time, so that every answer is as late.
            Some(FileFault::Slow(_) | FileFault::Stale(_)) => FileAnswer {
                reuse: Reuse::Never,
                version,
                ..self.source.answer(&question)
            },
            None => FileAnswer {
                version,
                ..self.source.answer(&question)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erlboot::server::MemorySource;

    /// Only a file told to fail fails: not one told to be slow, nor any other.
    #[test]
    fn only_a_file_told_to_fail_fails() {
        let files = FaultyFiles::new(Arc::new(MemorySource::new("/")), Duration::ZERO);
        files.set_fault("/slow", FileFault::Slow(Duration::from_secs(1)));
        files.set_fault("/failing", FileFault::Fail(FileError::Io));
        assert!(files.fails("/failing"));
        assert!(!files.fails("/slow"));
        assert!(!files.fails("/other"));
        files.heal();
        assert!(!files.fails("/failing"));
    }
}
