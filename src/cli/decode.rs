//! `erlboot decode`: boot-protocol bytes printed as Erlang terms.
//!
//! A pcap or pcapng file (told by its magic number) is read by the conformance crate's
//! `erlboot-conformance decode`, installed beside this binary: that crate depends on this
//! one's library, so this binary cannot link it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bytes::BytesMut;
use clap::{Args, ValueEnum};
use erlboot::etf::{DecodeError, Decoder, Limits};
use erlboot::proto::discovery::{Answer, DiscoveryError, Query};
use erlboot::proto::{FrameDecoder, FrameError, Reply, Request};
use thiserror::Error;

/// Decode boot-protocol bytes and print them as Erlang terms.
///
/// The input is one External Term Format term (starting with byte 131), a sequence of
/// {packet,4} frames (--as frames), an EBOOTQ/EBOOTR datagram (--as datagram), or a pcap or
/// pcapng capture (told by its magic number): its boot traffic is printed one message per
/// line, as `TIME sSESSION c2s|s2c KIND TERM`.
#[derive(Args)]
pub struct DecodeArgs {
    /// Read the bytes from this file ("-" for standard input).
    #[arg(conflicts_with = "hex")]
    file: Option<PathBuf>,
    /// Take the bytes from hex digits instead (spaces and colons are ignored).
    #[arg(long)]
    hex: Option<String>,
    /// What the bytes are (a capture file is recognised whatever this says).
    #[arg(long = "as", value_enum, default_value_t = Kind::Term)]
    kind: Kind,
    /// For a capture: one JSON object per message (time, session, dir, kind, term, ...).
    #[arg(long)]
    json: bool,
    /// For a capture: a TCP port to read as a boot server's, besides those its EBOOTR answers
    /// announce (repeatable).
    #[arg(long = "port")]
    ports: Vec<u16>,
}

/// Why a command failed.
#[derive(Debug, Error)]
pub enum DecodeCliError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not hex: {0}")]
    Hex(String),
    #[error(transparent)]
    Term(#[from] DecodeError),
    #[error("frame {index}: {source}")]
    Frame { index: usize, source: DecodeError },
    #[error(transparent)]
    Framing(#[from] FrameError),
    #[error("{0} bytes of an incomplete frame at the end")]
    PartialFrame(usize),
    #[error(transparent)]
    Datagram(#[from] DiscoveryError),
    #[error(
        "{path}: {source} (pcap and pcapng files are read by erlboot-conformance, \
         installed beside erlboot: cargo build -p erlboot-conformance)"
    )]
    CaptureReader {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the capture could not be decoded ({0})")]
    Capture(std::process::ExitStatus),
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// One term, printed as Erlang source.
    Term,
    /// {packet,4} frames; each is shown as a typed request or reply when it is one.
    Frames,
    /// One UDP discovery datagram.
    Datagram,
}

/// Runs `erlboot decode`.
pub fn run(args: DecodeArgs) -> Result<(), DecodeCliError> {
    let from_stdin = args.hex.is_none()
        && args
            .file
            .as_ref()
            .map_or(true, |path| path.as_os_str() == "-");
    let file = args.file.clone();
    let bytes = input(args.file, args.hex)?;
    if is_capture(&bytes) {
        let path = match file {
            Some(path) if !from_stdin => path,
            _ => PathBuf::from("-"),
        };
        return decode_capture(
            &path,
            from_stdin.then_some(&bytes[..]),
            args.json,
            &args.ports,
        );
    }
    decode(&bytes, args.kind)
}

/// Whether the bytes start with a pcap (either byte order, micro- or nanoseconds) or pcapng
/// magic number.
fn is_capture(bytes: &[u8]) -> bool {
    matches!(
        bytes.get(..4),
        Some(
            [0xA1, 0xB2, 0xC3, 0xD4]
                | [0xD4, 0xC3, 0xB2, 0xA1]
                | [0xA1, 0xB2, 0x3C, 0x4D]
                | [0x4D, 0x3C, 0xB2, 0xA1]
                | [0x0A, 0x0D, 0x0D, 0x0A]
        )
    )
}

/// Runs `erlboot-conformance decode` from this binary's directory on the capture.
fn decode_capture(
    path: &Path,
    stdin: Option<&[u8]>,
    json: bool,
    ports: &[u16],
) -> Result<(), DecodeCliError> {
    let reader = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("erlboot-conformance")))
        .unwrap_or_else(|| PathBuf::from("erlboot-conformance"));
    let mut command = Command::new(&reader);
    command.arg("decode").arg(path);
    if json {
        command.arg("--json");
    }
    for port in ports {
        command.arg("--port").arg(port.to_string());
    }
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let failed = |source| DecodeCliError::CaptureReader {
        path: reader.clone(),
        source,
    };
    let mut child = command.spawn().map_err(failed)?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes).map_err(failed)?;
    }
    let status = child.wait().map_err(failed)?;
    if status.success() {
        Ok(())
    } else {
        Err(DecodeCliError::Capture(status))
    }
}

fn input(file: Option<PathBuf>, hex: Option<String>) -> Result<Vec<u8>, DecodeCliError> {
    if let Some(hex) = hex {
        let digits: Vec<char> = hex
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        if digits.len() % 2 != 0 {
            return Err(DecodeCliError::Hex("an odd number of digits".into()));
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let pair: String = pair.iter().collect();
                u8::from_str_radix(&pair, 16).map_err(|_| DecodeCliError::Hex(pair))
            })
            .collect();
    }
    match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(&path).map_err(|source| DecodeCliError::Read {
                path: path.display().to_string(),
                source,
            })
        }
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|source| DecodeCliError::Read {
                    path: "standard input".into(),
                    source,
                })?;
            Ok(bytes)
        }
    }
}

fn decode(bytes: &[u8], kind: Kind) -> Result<(), DecodeCliError> {
    let decoder = Decoder::new(Limits::reply());
    match kind {
        Kind::Term => {
            let term = decoder.decode(bytes)?;
            println!("{term}");
        }
        Kind::Datagram => {
            if let Ok(query) = Query::parse(bytes) {
                println!(
                    "EBOOTQ version={:?}",
                    String::from_utf8_lossy(&query.version)
                );
            } else {
                let answer = Answer::parse(bytes)?;
                println!(
                    "EBOOTR priority={} port={} version={:?}",
                    answer.priority,
                    answer.port,
                    String::from_utf8_lossy(&answer.version)
                );
            }
        }
        Kind::Frames => {
            let frames = FrameDecoder::new(u32::MAX);
            let mut buf = BytesMut::from(bytes);
            let mut count = 0;
            while let Some(payload) = frames.decode(&mut buf)? {
                count += 1;
                let term = decoder
                    .decode_prefix(&payload)
                    .map_err(|source| DecodeCliError::Frame {
                        index: count,
                        source,
                    })?
                    .0;
                let label = match Reply::from_term(term.clone()) {
                    Reply::Other(_) => match Request::from_term(term.clone()) {
                        Request::Unknown(_) => "term",
                        _ => "request",
                    },
                    _ => "reply",
                };
                println!("{count:>5} {label:<7} {term}");
            }
            if !buf.is_empty() {
                return Err(DecodeCliError::PartialFrame(buf.len()));
            }
        }
    }
    Ok(())
}
