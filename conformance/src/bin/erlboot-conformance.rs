//! `erlboot-conformance`: the conformance suite's command line (`erlboot decode FILE.pcap`
//! forwards to `erlboot-conformance decode`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use erlboot_conformance::render::Format;
use erlboot_conformance::TranscriptOptions;

/// Captures of real Erlang/OTP network boots, read back.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the boot traffic of a pcap or pcapng file, one message per line.
    Decode {
        /// The capture ("-" for standard input).
        file: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// A TCP port to read as a boot server's, besides those EBOOTR answers announce
        /// (repeatable).
        #[arg(long = "port")]
        ports: Vec<u16>,
    },
}

fn main() -> ExitCode {
    let Command::Decode { file, json, ports } = Cli::parse().command;
    let format = if json { Format::Json } else { Format::Text };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match erlboot_conformance::decode::decode(&file, &TranscriptOptions { ports }, format, &mut out)
    {
        Ok(notes) => {
            drop(out);
            for note in notes {
                eprintln!("erlboot: note: {note}");
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.is_closed_output() => ExitCode::SUCCESS,
        Err(e) => {
            drop(out);
            eprintln!("erlboot: {e}");
            ExitCode::FAILURE
        }
    }
}
