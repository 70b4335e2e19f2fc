//! Why a capture could not be read.

use std::path::PathBuf;

use pcap_file::PcapError;
use thiserror::Error;

/// A capture file that cannot be read at all. Problems with single packets (truncated by the
/// snapshot length, IP fragments, malformed headers) are not errors: they are counted in
/// [`ReadStats`](crate::capture::ReadStats) with their packet numbers.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be read from disk.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The bytes start with neither a pcap nor a pcapng magic number.
    #[error("not a capture file: it starts with {magic:02x?}, which is neither pcap nor pcapng")]
    NotACapture {
        /// The first bytes of the file (at most 4).
        magic: Vec<u8>,
    },
    /// The file header (pcap) or section header (pcapng) is malformed.
    #[error("the capture's file header cannot be read: {0}")]
    Header(#[source] PcapError),
    /// A record in the middle of the file is malformed (a partial record at the very end, as a
    /// killed tcpdump leaves, is not an error).
    #[error("record {number} cannot be read: {source}")]
    Record {
        /// The 1-based number of the record (packet or pcapng block).
        number: u64,
        /// What the parser said.
        source: PcapError,
    },
}

impl CaptureError {
    /// Attaches the file name to an error that came from parsing bytes.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> CaptureError {
        CaptureError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
