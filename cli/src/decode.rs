//! `erlboot decode`: boot-protocol bytes printed as Erlang terms.

use std::io::Read;
use std::path::PathBuf;

use bytes::BytesMut;
use clap::{Args, ValueEnum};
use erlboot::etf::{DecodeError, Decoder, Limits};
use erlboot::proto::discovery::{Answer, DiscoveryError, Query};
use erlboot::proto::{FrameDecoder, FrameError, Reply, Request};
use thiserror::Error;

/// Decode boot-protocol bytes and print them as Erlang terms.
///
/// The input is one External Term Format term (starting with byte 131), a sequence of
/// {packet,4} frames (--as frames), or an EBOOTQ/EBOOTR datagram (--as datagram).
#[derive(Args)]
pub struct DecodeArgs {
    /// Read the bytes from this file ("-" for standard input).
    #[arg(conflicts_with = "hex")]
    file: Option<PathBuf>,
    /// Take the bytes from hex digits instead (spaces and colons are ignored).
    #[arg(long)]
    hex: Option<String>,
    /// What the bytes are.
    #[arg(long = "as", value_enum, default_value_t = Kind::Term)]
    kind: Kind,
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
    decode(&bytes, args.kind)
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
