//! `erlboot boot`: replays the requests of a recorded boot against a boot server and reports
//! how long each part took.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use erlboot::client::{BootProfile, Event, Phase};
use erlboot::net::{Client, TokioRuntime};
use erlboot::time::Instant;

use super::client::{ClientError, ServerArgs};

/// The requests of a real OTP 25 boot, recorded from `erl -loader inet`.
const DEFAULT_PROFILE: &str = include_str!("../../captures/otp25-boot.requests");

/// Boot like a node would, without starting one: replay the requests of a recorded boot
/// against a boot server, and print how long discovery, connecting and each phase took.
///
/// The default profile is a real OTP 25 boot (386 requests); the files it names must exist on
/// the server (an OTP 25 installation at /usr/lib/erlang).
///
/// Example:
///
///   erlboot boot --hosts 10.0.0.1
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct BootArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// A boot profile: one request per line (`get NAME`, `list_dir NAME`,
    /// `read_file_info NAME`, `read_link_info NAME`, `get_cwd`), `# phase NAME` lines between
    /// phases, other `#` lines ignored. Default: a recorded OTP 25 boot.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
}

/// Runs `erlboot boot`.
pub fn run(args: BootArgs) -> Result<(), ClientError> {
    let text = match &args.profile {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ClientError::Read {
            path: path.clone(),
            source,
        })?,
        None => DEFAULT_PROFILE.to_owned(),
    };
    let phases = BootProfile::parse(&text)?.phases;
    let config = args.server.config()?;
    let timeout = args.server.timeout();
    let runtime = super::client::runtime()?;
    runtime.block_on(async {
        let mut client = Client::new(TokioRuntime::new(), config.clone());
        let clock = client.runtime().clock();
        let mut report = Vec::new();
        let (mut requests, mut errors, mut bytes) = (0usize, 0usize, 0usize);
        for phase in &phases {
            let start = clock.now();
            let (mut phase_errors, mut phase_bytes) = (0, 0);
            for request in &phase.requests {
                let deadline = client.now() + timeout;
                match super::client::ask(&mut client, &config, request, deadline, timeout).await {
                    Ok(response) => {
                        if let Some(contents) = response.value().binary() {
                            phase_bytes += contents.len();
                        }
                    }
                    Err(ClientError::Server { .. } | ClientError::Reply { .. }) => {
                        phase_errors += 1
                    }
                    Err(other) => return Err(other),
                }
            }
            requests += phase.requests.len();
            errors += phase_errors;
            bytes += phase_bytes;
            report.push((phase, start, clock.now(), phase_errors, phase_bytes));
        }
        let total = clock.now();
        let events = client.take_events();
        let connected = events.iter().find_map(|(at, e)| match e {
            Event::Connected { .. } => Some(*at),
            _ => None,
        });
        let discovered = events.iter().find_map(|(at, e)| match e {
            Event::Discovered { .. } => Some(*at),
            _ => None,
        });
        print_report(discovered, connected, &report, total);
        println!(
            "{requests} requests ({errors} answered with an error), {bytes} bytes of files, {} reconnects",
            events.iter().filter(|(_, e)| matches!(e, Event::Resending { .. })).count()
        );
        Ok(())
    })
}

fn print_report(
    discovered: Option<Instant>,
    connected: Option<Instant>,
    phases: &[(&Phase, Instant, Instant, usize, usize)],
    total: Instant,
) {
    let ms = |d: Duration| format!("{:>9.1} ms", d.as_secs_f64() * 1000.0);
    if let Some(at) = discovered {
        println!("{:<24}{}", "discovery", ms(at.since_epoch()));
    }
    if let (Some(d), Some(c)) = (discovered, connected) {
        println!("{:<24}{}", "connect", ms(c - d));
    }
    for (phase, start, end, errors, bytes) in phases {
        // The first request waits for discovery: its phase starts with the connection.
        let start = connected.map_or(*start, |c| c.max(*start));
        println!(
            "{:<24}{}  {:>4} requests, {errors:>3} errors, {bytes:>8} bytes",
            phase.name,
            ms(*end - start),
            phase.requests.len()
        );
    }
    println!("{:<24}{}", "total", ms(total.since_epoch()));
}

#[cfg(test)]
mod tests {
    use erlboot::proto::Request;

    use super::*;

    #[test]
    fn the_default_profile_reads_as_four_phases_of_a_real_boot() {
        let phases = BootProfile::parse(DEFAULT_PROFILE).unwrap().phases;
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "boot script",
                "boot script modules",
                "code path scan",
                "modules on demand"
            ]
        );
        assert_eq!(phases.iter().map(|p| p.requests.len()).sum::<usize>(), 386);
        assert_eq!(
            phases[0].requests[0],
            Request::Get("/usr/lib/erlang/bin/start.boot".into())
        );
    }
}
