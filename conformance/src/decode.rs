//! The `decode` command: a capture file's boot traffic printed as a transcript.

use std::io::{Read, Write};
use std::path::Path;

use crate::capture::Capture;
use crate::render::{self, Format};
use crate::transcript::{Transcript, TranscriptOptions};
use crate::CaptureError;

/// Reads a capture (`-` for standard input) and writes its transcript to `out`; returns the
/// notes on what reading skipped (truncated packets, fragments, gaps), for standard error.
pub fn decode(
    path: &Path,
    options: &TranscriptOptions,
    format: Format,
    out: &mut dyn Write,
) -> Result<Vec<String>, DecodeError> {
    let bytes = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| CaptureError::io(path, e))?;
        bytes
    } else {
        std::fs::read(path).map_err(|e| CaptureError::io(path, e))?
    };
    decode_bytes(&bytes, options, format, out)
}

/// The same for a capture already in memory.
pub fn decode_bytes(
    bytes: &[u8],
    options: &TranscriptOptions,
    format: Format,
    out: &mut dyn Write,
) -> Result<Vec<String>, DecodeError> {
    let transcript = Transcript::of(&Capture::parse(bytes)?, options);
    render::write(&transcript, format, out).map_err(DecodeError::Write)?;
    Ok(render::notes(&transcript))
}

/// Why `decode` failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The capture could not be read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The output could not be written (a closed pipe is not an error: see
    /// [`DecodeError::is_closed_output`]).
    #[error("cannot write the transcript: {0}")]
    Write(#[source] std::io::Error),
}

impl DecodeError {
    /// True when the reader of the output went away (`erlboot decode x.pcap | head`).
    pub fn is_closed_output(&self) -> bool {
        matches!(self, DecodeError::Write(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
