//! File answers in a simulation: a tree in memory, answered after a simulated delay and the
//! server's capacity, and late or failing where a fault names the file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use erlboot::net::FileAnswerer;
use erlboot::server::{FileAnswer, FileError, FileQuestion, FileSource, Found, Question, Version};

use crate::capacity::Capacity;
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

/// A [`FileSource`] behind a simulated disk: every answer takes `latency`, the faults set for
/// a name apply to every question about it, and with a [`Capacity`] the answer also waits for
/// a worker and the link. Clones share the faults and the capacity.
#[derive(Clone)]
pub struct FaultyFiles {
    source: Arc<dyn FileSource>,
    latency: Duration,
    faults: Arc<Mutex<Vec<(String, FileFault)>>>,
    capacity: Option<(tokio::time::Instant, Arc<Mutex<Capacity>>)>,
    wakeups: Option<Arc<Wakeups>>,
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
            faults: Arc::new(Mutex::new(Vec::new())),
            capacity: None,
            wakeups: None,
        }
    }

    /// The same answerer, its waits registered in `wakeups`.
    pub fn with_wakeups(mut self, wakeups: Arc<Wakeups>) -> FaultyFiles {
        self.wakeups = Some(wakeups);
        self
    }

    /// The same files with their answers also queued on `capacity`, whose times count from
    /// the simulated now (make it inside the host that uses it).
    pub fn with_capacity(mut self, capacity: Arc<Mutex<Capacity>>) -> FaultyFiles {
        self.capacity = Some((tokio::time::Instant::now(), capacity));
        self
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

    /// Whether questions about `name` are answered with an error now.
    pub fn fails(&self, name: &str) -> bool {
        let faults = self.faults.lock().expect("faults lock");
        faults
            .iter()
            .any(|(n, fault)| n == name && matches!(fault, FileFault::Fail(_)))
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

/// About how many bytes an answer puts on the wire.
fn wire_size(answer: &FileAnswer) -> usize {
    match &answer.result {
        Ok(Found::Contents(bytes)) => bytes.len() + 20,
        Ok(Found::Names(names)) => names.iter().map(|n| n.len() + 4).sum::<usize>() + 20,
        Ok(Found::Info(_)) => 100,
        Ok(Found::Cwd(cwd)) => cwd.len() + 20,
        Err(_) => 30,
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
            crate::wakeups::sleep(self.wakeups.as_ref(), delay).await;
        }
        let answer = match fault {
            Some(FileFault::Fail(error)) => FileAnswer::failed(error),
            Some(FileFault::Stale(bytes)) if matches!(question.question, Question::Get(_)) => {
                FileAnswer {
                    result: Ok(Found::Contents(bytes)),
                    ..FileAnswer::failed(FileError::Io)
                }
            }
            _ => self.source.answer(&question),
        };
        if let Some((epoch, capacity)) = &self.capacity {
            let now = tokio::time::Instant::now();
            let at = capacity
                .lock()
                .expect("capacity lock")
                .deliver(now - *epoch, wire_size(&answer));
            // The queues keep exact times; the answer waits for the first tick at or after
            // its time (an answer already due goes out now).
            if *epoch + at > now {
                crate::wakeups::sleep_until(self.wakeups.as_ref(), *epoch + at).await;
            }
        }
        answer
    }
}
