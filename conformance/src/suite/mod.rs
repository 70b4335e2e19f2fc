//! The conformance suite: captures of real nodes in, every case judged against a target out.
//!
//! A [`Recording`] is one capture read back: its transcript and the file tree it carries
//! ([`CapturedFiles`]). Its cases come from its traffic alone, so a capture runs on any machine:
//! - [`server`]: every captured request against erlboot's server session;
//! - [`discovery`]: every captured EBOOTQ against erlboot's responder;
//! - [`client`]: erlboot's loader replayed on what each captured client received (client and
//!   timing cases).
//!
//! [`Selection`] picks cases by id (`otp25-boot/server/0042`) or by any leading part of one
//! (`otp25-boot/server`, `otp25-boot`).

pub mod client;
pub mod discovery;
pub mod server;

use std::path::{Path, PathBuf};

use crate::case::{Kind, Verdict};
use crate::rebuild::CapturedFiles;
use crate::transcript::{Transcript, TranscriptOptions};
use crate::CaptureError;

/// The target name of erlboot's sans-IO server, client and responder run in this process.
pub const IN_PROCESS: &str = "in-process";

/// A capture read back for the suite.
#[derive(Clone, Debug)]
pub struct Recording {
    /// The capture's file name without its extension: the first part of its case ids.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Its boot traffic.
    pub transcript: Transcript,
    /// The file tree its server's answers describe.
    pub files: CapturedFiles,
}

impl Recording {
    /// Reads a capture file.
    pub fn read(path: &Path, options: &TranscriptOptions) -> Result<Recording, CaptureError> {
        let transcript = Transcript::read(path, options)?;
        Ok(Recording::of(name_of(path), path.to_owned(), transcript))
    }

    /// A recording of a transcript already read.
    pub fn of(name: String, path: PathBuf, transcript: Transcript) -> Recording {
        let files = CapturedFiles::of(&transcript);
        Recording {
            name,
            path,
            transcript,
            files,
        }
    }
}

/// A capture's name in case ids: its file name without `.pcap` or `.pcapng`.
pub fn name_of(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    for extension in [".pcapng", ".pcap", ".cap"] {
        if let Some(stem) = file.strip_suffix(extension) {
            return stem.to_owned();
        }
    }
    file
}

/// The capture files a path names: the file itself, or every `.pcap`/`.pcapng` in a directory
/// (not its subdirectories), in name order.
pub fn capture_files(path: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| CaptureError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.to_string_lossy();
            p.is_file() && (name.ends_with(".pcap") || name.ends_with(".pcapng"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Which cases to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Case ids or leading parts of ids (whole `/`-separated parts); empty selects every case.
    pub patterns: Vec<String>,
    /// Only these kinds; empty selects every kind.
    pub kinds: Vec<Kind>,
}

impl Selection {
    /// Whether a case belongs to the selection.
    pub fn selects(&self, verdict: &Verdict) -> bool {
        let id = verdict.id.to_string();
        let kind_ok = self.kinds.is_empty() || self.kinds.contains(&verdict.id.kind);
        let pattern_ok = self.patterns.is_empty()
            || self.patterns.iter().any(|p| {
                let p = p.trim_end_matches('/');
                id == p || id.starts_with(&format!("{p}/"))
            });
        kind_ok && pattern_ok
    }
}

/// Every selected case of the recordings, judged in process, in case-id order per recording.
pub fn judge(recordings: &[Recording], selection: &Selection) -> Vec<Verdict> {
    let mut out = Vec::new();
    for recording in recordings {
        let mut verdicts = server::judge(recording);
        verdicts.extend(client::judge(recording));
        verdicts.extend(discovery::judge(recording));
        verdicts.retain(|v| selection.selects(v));
        out.extend(verdicts);
    }
    out
}
