//! The `erlboot` command line: a thin layer over the library.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Erlang/OTP network boot protocol (`erl -loader inet`) in Rust.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(cli::serve::ServeArgs),
    Fetch(cli::fetch::FetchArgs),
    Boot(cli::boot::BootArgs),
    Decode(cli::decode::DecodeArgs),
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve(args) => cli::serve::run(args).map_err(|e| e.to_string()),
        Command::Fetch(args) => cli::fetch::run(args).map_err(|e| e.to_string()),
        Command::Boot(args) => cli::boot::run(args).map_err(|e| e.to_string()),
        Command::Decode(args) => cli::decode::run(args).map_err(|e| e.to_string()),
        Command::Bench(args) => cli::bench::run(args).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("erlboot: {message}");
            ExitCode::FAILURE
        }
    }
}
