//! The `erlboot` command line: a thin layer over the library.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::BytesMut;
use clap::{Parser, Subcommand, ValueEnum};
use erlboot::etf::{DecodeError, Decoder, Limits};
use erlboot::proto::discovery::{Answer, DiscoveryError, Query};
use erlboot::proto::{FrameDecoder, FrameError, Reply, Request};
use thiserror::Error;

/// Why a command failed.
#[derive(Debug, Error)]
enum CliError {
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

/// The Erlang/OTP network boot protocol (`erl -loader inet`) in Rust.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode boot-protocol bytes and print them as Erlang terms.
    ///
    /// The input is one External Term Format term (starting with byte 131), a sequence of
    /// {packet,4} frames (--frames), or an EBOOTQ/EBOOTR datagram (--datagram).
    Decode {
        /// Read the bytes from this file ("-" for standard input).
        #[arg(conflicts_with = "hex")]
        file: Option<PathBuf>,
        /// Take the bytes from hex digits instead (spaces and colons are ignored).
        #[arg(long)]
        hex: Option<String>,
        /// What the bytes are.
        #[arg(long = "as", value_enum, default_value_t = Kind::Term)]
        kind: Kind,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode { file, hex, kind } => {
            input(file, hex).and_then(|bytes| decode(&bytes, kind))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("erlboot: {message}");
            ExitCode::FAILURE
        }
    }
}

fn input(file: Option<PathBuf>, hex: Option<String>) -> Result<Vec<u8>, CliError> {
    if let Some(hex) = hex {
        let digits: Vec<char> = hex
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        if digits.len() % 2 != 0 {
            return Err(CliError::Hex("an odd number of digits".into()));
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let pair: String = pair.iter().collect();
                u8::from_str_radix(&pair, 16).map_err(|_| CliError::Hex(pair))
            })
            .collect();
    }
    match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(&path).map_err(|source| CliError::Read {
                path: path.display().to_string(),
                source,
            })
        }
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|source| CliError::Read {
                    path: "standard input".into(),
                    source,
                })?;
            Ok(bytes)
        }
    }
}

fn decode(bytes: &[u8], kind: Kind) -> Result<(), CliError> {
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
                    .map_err(|source| CliError::Frame {
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
                return Err(CliError::PartialFrame(buf.len()));
            }
        }
    }
    Ok(())
}
