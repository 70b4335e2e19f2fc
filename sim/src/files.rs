//! File answers in a simulation: a tree in memory, answered after a simulated delay, and late
//! or failing where a fault names the file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use erlboot::net::FileAnswerer;
use erlboot::server::{FileAnswer, FileError, FileQuestion, FileSource, MemorySource, Version};

/// What happens to the answers about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileFault {
    /// Answered, but this much later.
    Slow(Duration),
    /// Answered with this error (`eio` for a failing disk).
    Fail(FileError),
}

/// A [`MemorySource`] behind a simulated disk: every answer takes `latency`, and the faults
/// set for a name apply to every question about it.
#[derive(Debug)]
pub struct FaultyFiles {
    source: Arc<MemorySource>,
    latency: Duration,
    faults: Mutex<Vec<(String, FileFault)>>,
}

impl FaultyFiles {
    /// Answers from `source`, each after `latency`.
    pub fn new(source: Arc<MemorySource>, latency: Duration) -> FaultyFiles {
        FaultyFiles {
            source,
            latency,
            faults: Mutex::new(Vec::new()),
        }
    }

    /// Sets the fault for `name` (replacing any), from now on.
    pub fn set_fault(&self, name: &str, fault: FileFault) {
        let mut faults = self.faults.lock().expect("faults lock");
        faults.retain(|(n, _)| n != name);
        faults.push((name.to_owned(), fault));
    }

    /// Clears every fault.
    pub fn heal(&self) {
        self.faults.lock().expect("faults lock").clear();
    }

    fn fault(&self, question: &FileQuestion) -> Option<FileFault> {
        let name = question.question.name()?;
        let faults = self.faults.lock().expect("faults lock");
        faults
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, fault)| fault.clone())
    }
}

impl FileAnswerer for FaultyFiles {
    fn version(&self) -> Option<Version> {
        self.source.version()
    }

    async fn answer(&self, question: FileQuestion) -> FileAnswer {
        let fault = self.fault(&question);
        let delay = match &fault {
            Some(FileFault::Slow(extra)) => self.latency + *extra,
            _ => self.latency,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match fault {
            Some(FileFault::Fail(error)) => FileAnswer::failed(error),
            _ => self.source.answer(&question),
        }
    }
}
