//! How a driver answers its sessions' file questions: off the async workers for a source that
//! may block (the disk), on the spot for one that never does (memory). A simulation brings its
//! own, to delay or fail any answer.

use std::future::Future;
use std::sync::Arc;

use crate::server::{FileAnswer, FileError, FileQuestion, FileSource, Version};

/// The file side of a server driver.
pub trait FileAnswerer: Send + Sync + 'static {
    /// The source's version now: read after a request arrives, before the reply cache is
    /// consulted. Must not block for long.
    fn version(&self) -> Option<Version>;

    /// The answer to one question.
    fn answer(&self, question: FileQuestion) -> impl Future<Output = FileAnswer> + Send;
}

/// Answers on tokio's blocking pool, so that a slow or hung file system stalls only the
/// connections waiting on it.
#[derive(Debug)]
pub struct Blocking<S: ?Sized>(pub Arc<S>);

impl<S: FileSource + ?Sized + 'static> FileAnswerer for Blocking<S> {
    fn version(&self) -> Option<Version> {
        self.0.current_version()
    }

    async fn answer(&self, question: FileQuestion) -> FileAnswer {
        let source = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || source.answer(&question))
            .await
            .unwrap_or_else(|_| FileAnswer::failed(FileError::Io))
    }
}

/// Answers on the connection's own task: for sources that never block (memory).
#[derive(Debug)]
pub struct Immediate<S: ?Sized>(pub Arc<S>);

impl<S: FileSource + ?Sized + 'static> FileAnswerer for Immediate<S> {
    fn version(&self) -> Option<Version> {
        self.0.current_version()
    }

    fn answer(&self, question: FileQuestion) -> impl Future<Output = FileAnswer> + Send {
        std::future::ready(self.0.answer(&question))
    }
}
