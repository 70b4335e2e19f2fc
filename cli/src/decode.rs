//! `erlboot decode`: boot-protocol bytes printed as Erlang terms.
//!
//! A pcap or pcapng file (told by its magic number) is read by the conformance crate.

use std::io::{Read, Write};
use std::path::PathBuf;

use bytes::BytesMut;
use clap::{Args, ValueEnum};
use erlboot::etf::{DecodeError, Decoder, Limits};
use erlboot::proto::discovery::{Answer, DiscoveryError, Query};
use erlboot::proto::frame::{FrameDecoder, FrameError};
use erlboot::proto::{Reply, Request};
use erlboot_conformance::decode::DecodeError as CaptureDecodeError;
use erlboot_conformance::render::Format;
use erlboot_conformance::transcript::TranscriptOptions;
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
    #[error(transparent)]
    Capture(#[from] CaptureDecodeError),
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
    let bytes = input(args.file, args.hex)?;
    if is_capture(&bytes) {
        return decode_capture(&bytes, args.json, &args.ports);
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

/// Prints a capture's transcript (the conformance crate reads it); notes on what it skipped go
/// to standard error.
fn decode_capture(bytes: &[u8], json: bool, ports: &[u16]) -> Result<(), DecodeCliError> {
    let format = if json { Format::Json } else { Format::Text };
    let options = TranscriptOptions {
        ports: ports.to_vec(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match erlboot_conformance::decode::decode_bytes(bytes, &options, format, &mut out) {
        Ok(notes) => {
            match out.flush() {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(CaptureDecodeError::Write(e).into())
                }
                _ => {}
            }
            drop(out);
            for note in notes {
                eprintln!("erlboot: note: {note}");
            }
            Ok(())
        }
        Err(e) if e.is_closed_output() => Ok(()),
        Err(e) => Err(e.into()),
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
