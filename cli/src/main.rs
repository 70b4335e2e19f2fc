//! The `erlboot` command line: a thin layer over the library crates. One module per
//! subcommand; each parses its arguments and calls the libraries.

mod bench;
mod boot;
mod client;
mod conformance;
mod decode;
mod dissector;
mod fetch;
mod release;
mod serve;
mod sim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// A simulation or a loaded server allocates and frees a read buffer per read on every
// connection: glibc's allocator spends a sixth of a 4,000-node simulation in itself.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same slot of `mi_option_e` in its v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for the next allocation rather than giving it back to the system after
/// 10 ms, as mimalloc does by default: the buffers freed by one burst of replies are needed by
/// the next, and giving them back and faulting them in again cost a simulation a third of its
/// time in the kernel.
fn keep_freed_memory() {
    // SAFETY: sets an option, which mimalloc reads whenever it would purge; no memory is
    // touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
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
    Serve(serve::ServeArgs),
    Fetch(fetch::FetchArgs),
    Boot(boot::BootArgs),
    Decode(decode::DecodeArgs),
    Conformance(conformance::ConformanceArgs),
    Dissector(dissector::DissectorArgs),
    Bench(bench::BenchArgs),
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    keep_freed_memory();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve::run(args).map_err(|e| e.to_string()),
        Command::Fetch(args) => fetch::run(args).map_err(|e| e.to_string()),
        Command::Boot(args) => boot::run(args).map_err(|e| e.to_string()),
        Command::Decode(args) => decode::run(args).map_err(|e| e.to_string()),
        Command::Conformance(args) => conformance::run(args).map_err(|e| e.to_string()),
        Command::Dissector(args) => dissector::run(args).map_err(|e| e.to_string()),
        Command::Bench(args) => bench::run(args).map_err(|e| e.to_string()),
        Command::Sim(args) => sim::run(args).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("erlboot: {message}");
            ExitCode::FAILURE
        }
    }
}
