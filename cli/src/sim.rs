//! `erlboot sim`: a scenario of booting nodes and boot servers, simulated, checked and
//! reported.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use erlboot_sim::{
    Baseline, Progress, Report, RunOptions, Scenario, ScenarioError, SimError, Workload,
};
use erlboot_sim::{WorkloadError, BUILTIN};
use indicatif::{ProgressBar, ProgressStyle};

/// Simulate nodes booting from boot servers (erlboot's own server and client code on a
/// simulated network), with partitions, latency, loss and crashes; check that every node
/// gets the server's bytes and finishes once the faults heal. Deterministic: the seed,
/// printed first, and the scenario reproduce a run exactly.
///
/// Scenarios built in: default, steady-1000, herd-10000, rolling-partitions, flapping-link,
/// lossy-discovery, server-restart, failover, denied-subnet, mixed-versions, slow-disk,
/// lossy-tcp; or a TOML file (see sim/README.md).
///
/// Examples:
///
///   erlboot sim
///   erlboot sim herd-10000 --clients 2000 --seed 7
///   erlboot sim my-rack.toml --capture my-release-boot.pcap --json report.json
///   erlboot sim server-restart --check-determinism
///   erlboot sim default --chaos 8 --seed 1234
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct SimArgs {
    /// A built-in scenario's name or a scenario file.
    #[arg(value_name = "SCENARIO|FILE", default_value = "default")]
    scenario: String,

    /// The seed (the scenario's unless given).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,

    /// About this many nodes, each group keeping its share.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    clients: Option<u64>,

    /// Write the report as JSON to this file.
    #[arg(long, value_name = "F")]
    json: Option<PathBuf>,

    /// Run twice and compare the hashes of the event traces.
    #[arg(long)]
    check_determinism: bool,

    /// Take the requests and the file tree from this capture of one real boot (`tcpdump` of
    /// `erl -loader inet`) instead of the built-in OTP 25 boot.
    #[arg(long, value_name = "F.pcap")]
    capture: Option<PathBuf>,

    /// Add this many faults drawn from the seed (partitions, crashes, losses, latency), each
    /// healed a while later.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "5")]
    chaos: Option<usize>,

    /// Also run the same world with pre-built frames in place of the protocol code, its
    /// nodes connecting when and where the real run's did, and report the wall time ratio.
    #[arg(long)]
    baseline: bool,
}

/// Why `erlboot sim` failed.
#[derive(Debug, thiserror::Error)]
pub enum SimCliError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("cannot write {path}: {source}")]
    Json {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{count} invariant violation(s) in scenario {scenario} with seed {seed}")]
    Violations {
        count: usize,
        scenario: String,
        seed: u64,
    },
    #[error(
        "not deterministic: scenario {scenario} with seed {seed} gave trace {first} then {second}"
    )]
    Nondeterministic {
        scenario: String,
        seed: u64,
        first: String,
        second: String,
    },
}

fn load(name: &str) -> Result<Scenario, SimCliError> {
    if BUILTIN.iter().any(|(n, _)| *n == name) {
        return Ok(Scenario::builtin(name)?);
    }
    let path = Path::new(name);
    if path.exists() || name.ends_with(".toml") {
        let text = std::fs::read_to_string(path).map_err(|source| SimCliError::Read {
            path: path.to_owned(),
            source,
        })?;
        return Ok(Scenario::from_toml(name, &text)?);
    }
    Err(ScenarioError::Unknown(name.to_owned()).into())
}

/// Runs `erlboot sim`.
pub fn run(args: SimArgs) -> Result<(), SimCliError> {
    let mut scenario = load(&args.scenario)?;
    if let Some(n) = args.clients {
        scenario = scenario.scaled_to(n as usize);
    }
    let seed = args.seed.unwrap_or(scenario.seed);
    println!("seed        {seed}");
    if !erlboot_sim::reproducible() {
        eprintln!(
            "erlboot: warning: built without --cfg tokio_unstable (is RUSTFLAGS set?): \
             the same seed need not repeat the run"
        );
    }
    if let Some(count) = args.chaos {
        scenario = erlboot_sim::with_chaos(&scenario, seed, count);
    }
    let workload = Arc::new(match &args.capture {
        Some(path) => Workload::from_capture(path)?,
        None => Workload::otp25(),
    });
    let options = RunOptions {
        seed: Some(seed),
        baseline: None,
        ..RunOptions::default()
    };
    let report = run_once(&scenario, &workload, &options)?;
    println!("{report}");
    if args.check_determinism {
        let again = run_once(&scenario, &workload, &options)?;
        if again.trace_hash != report.trace_hash {
            return Err(SimCliError::Nondeterministic {
                scenario: scenario.name.clone(),
                seed,
                first: report.trace_hash,
                second: again.trace_hash,
            });
        }
        println!("determinism the same trace hash twice");
    }
    let mut json = serde_json::to_value(&report).expect("a report is JSON");
    if args.baseline {
        let baseline = run_once(
            &scenario,
            &workload,
            &RunOptions {
                baseline: Some(Baseline::Following(report.first_connections.clone().into())),
                ..options
            },
        )?;
        let ratio = report.wall_seconds / baseline.wall_seconds.max(1e-9);
        // Per simulated second too: the two worlds need not take equally long.
        let rate = |r: &Report| r.sim_seconds / r.wall_seconds.max(1e-9);
        let per_sim = rate(&baseline) / rate(&report).max(1e-9);
        println!(
            "baseline    {:.2} s wall for {:.1} s simulated with pre-built frames \
             ({:.1} sim-s per wall-s); real/baseline {ratio:.2} in wall time, {per_sim:.2} per simulated second",
            baseline.wall_seconds,
            baseline.sim_seconds,
            rate(&baseline)
        );
        json["baseline"] = serde_json::json!({
            "wall_seconds": baseline.wall_seconds,
            "sim_seconds": baseline.sim_seconds,
            "booted": baseline.booted,
            "ratio": ratio,
            "ratio_per_sim_second": per_sim,
        });
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json).expect("a report is JSON");
        std::fs::write(path, text + "\n").map_err(|source| SimCliError::Json {
            path: path.clone(),
            source,
        })?;
    }
    if !report.passed() {
        return Err(SimCliError::Violations {
            count: report.failures(),
            scenario: scenario.name,
            seed,
        });
    }
    Ok(())
}

fn run_once(
    scenario: &Scenario,
    workload: &Arc<Workload>,
    options: &RunOptions,
) -> Result<Report, SimCliError> {
    let started = Instant::now();
    let bar = ProgressBar::hidden();
    let terminal = std::io::stderr().is_terminal();
    let mut shown = false;
    let mut progress = |p: &Progress| {
        if !terminal {
            return;
        }
        if !shown && started.elapsed() > Duration::from_secs(1) {
            shown = true;
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(p.clients as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} booted {msg} [{elapsed}]")
                    .expect("a valid template"),
            );
        }
        bar.set_position(p.booted as u64);
        bar.set_message(format!(
            "at {:.1} s simulated, {} violations",
            p.sim.as_secs_f64(),
            p.violations
        ));
    };
    let mut report = erlboot_sim::run(scenario, Arc::clone(workload), options, &mut progress)?;
    bar.finish_and_clear();
    report.wall_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
