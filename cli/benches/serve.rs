//! The boot-server benchmark as `cargo bench --bench serve`: runs `erlboot bench` of this
//! build (the load generator, ceiling and herd live in `erlboot::bench`).
//!
//! ```text
//! cargo bench --bench serve                      # erlboot, OTP and the ceiling at 1, 8, 64
//! cargo bench --bench serve -- --rounds 1 --duration 1
//! cargo bench --bench serve -- --herd 1000
//! ```
//!
//! Every argument after `--` goes to `erlboot bench` (see `erlboot bench --help`). Run
//! without `--bench` (as `cargo test --benches` does) it only checks that the embedded
//! workload builds.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        let workload = erlboot::bench::workload::Workload::default_boot();
        println!(
            "serve bench: workload of {} requests builds; run it with `cargo bench --bench serve`",
            workload.exchanges.len()
        );
        return ExitCode::SUCCESS;
    }
    // cargo adds `--bench`; what else it passes is `erlboot bench`'s.
    let args = args.iter().filter(|a| *a != "--bench");
    match Command::new(env!("CARGO_BIN_EXE_erlboot"))
        .arg("bench")
        .args(args)
        .status()
    {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cannot run erlboot: {e}");
            ExitCode::FAILURE
        }
    }
}
