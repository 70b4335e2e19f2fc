//! The throughput run: every server at every concurrency, interleaved round by round (A B C,
//! A B C, ...) so that drift on a shared machine hits all servers alike.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use thiserror::Error;

use super::ceiling::encode_recording;
use super::load::{latency_histogram, record_boot, run_boots, ExchangeError, RunStats};
use super::procfs;
use super::report::{median, median_ratio, Detail, LatencySummary, Report, Row};
use super::servers::{prepare, Kind, Server, Setup, SetupError, SpawnError};
use super::workload::Workload;

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Servers started by the bench, in this order.
    Spawn(Vec<Kind>),
    /// A server running elsewhere; its CPU and memory are not seen.
    Remote(SocketAddr),
}

/// A throughput run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub targets: Targets,
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    pub rounds: usize,
}

/// Why the run could not be made.
#[derive(Debug, Error)]
pub enum ThroughputError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("erlboot serve, whose replies the ceiling replays, did not start: {0}")]
    Recorder(SpawnError),
    #[error("recording a boot from {server} failed at request {index}: {source}")]
    Record {
        server: String,
        index: usize,
        source: ExchangeError,
    },
    #[error("cannot write the ceiling's recording {path}: {source}")]
    Recording {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing could be measured: {0}")]
    NothingMeasured(String),
}

/// A server being measured.
struct Measured {
    name: String,
    addr: SocketAddr,
    /// `None` for a remote server.
    pid: Option<u32>,
    /// Keeps a spawned server running.
    _server: Option<Server>,
}

/// One server's run at one concurrency in one round.
struct RoundMeasure {
    stats: RunStats,
    boots: f64,
    /// The server's CPU time during the run.
    cpu: Option<Duration>,
    /// This process's (the load generator's) CPU time during the run.
    client_cpu: Option<Duration>,
}

/// What a run found.
pub struct Outcome {
    pub report: Report,
    /// The detail of boots/s over the rounds, one per row of the report.
    pub details: Vec<Detail>,
    /// Servers not measured, and why.
    pub skipped: Vec<(Kind, String)>,
    /// Things a reader of the numbers must know (failed boots, replies unlike the recording).
    pub notes: Vec<String>,
}

/// Runs the plan on `workload`.
pub fn run(plan: &Plan, mut workload: Workload) -> Result<Outcome, ThroughputError> {
    let (runtime, scratch) = prepare()?;
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let measured = match &plan.targets {
        Targets::Remote(addr) => {
            let answers =
                runtime
                    .block_on(record_boot(*addr, &workload))
                    .map_err(|(index, source)| ThroughputError::Record {
                        server: addr.to_string(),
                        index,
                        source,
                    })?;
            workload.remember_outcomes(&answers.iter().map(|a| a.ok).collect::<Vec<_>>());
            vec![Measured {
                name: addr.to_string(),
                addr: *addr,
                pid: None,
                _server: None,
            }]
        }
        Targets::Spawn(kinds) => {
            // OTP holds UDP 4368; throughput needs no discovery.
            let setup = Setup::in_scratch(&scratch, workload.root(), "ceiling.recording", 0)?;
            start_servers(
                kinds,
                &setup,
                &runtime,
                &mut workload,
                &mut skipped,
                &mut notes,
            )?
        }
    };
    if measured.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        return Err(ThroughputError::NothingMeasured(why.join("; ")));
    }
    let workload = Arc::new(workload);
    let runs = (plan.concurrency.len() * plan.rounds * measured.len()) as u64;
    let progress = progress_bar(runs);
    let mut report = Report::default();
    let mut details = Vec::new();
    for &conc in &plan.concurrency {
        for m in &measured {
            if let Some(pid) = m.pid {
                if let Err(e) = procfs::reset_peak_rss(pid) {
                    notes.push(format!(
                        "{}: peak RSS cannot be reset ({e}); it is the peak since start",
                        m.name
                    ));
                }
            }
        }
        // rounds[server][round]
        let mut rounds: Vec<Vec<RoundMeasure>> = measured.iter().map(|_| Vec::new()).collect();
        for round in 0..plan.rounds {
            for (m, per_round) in measured.iter().zip(&mut rounds) {
                progress.set_message(format!(
                    "{} at {conc} conns, round {}/{}",
                    m.name,
                    round + 1,
                    plan.rounds
                ));
                let cpu_before = m.pid.and_then(procfs::cpu_time);
                let client_before = procfs::cpu_time(std::process::id());
                let stats =
                    runtime.block_on(run_boots(m.addr, workload.clone(), conc, plan.duration));
                let cpu_after = m.pid.and_then(procfs::cpu_time);
                let client_after = procfs::cpu_time(std::process::id());
                per_round.push(RoundMeasure {
                    boots: stats.boots_done(&workload),
                    cpu: cpu_before.zip(cpu_after).map(|(a, b)| b.saturating_sub(a)),
                    client_cpu: client_before
                        .zip(client_after)
                        .map(|(a, b)| b.saturating_sub(a)),
                    stats,
                });
                progress.inc(1);
            }
        }
        for (m, per_round) in measured.iter().zip(&rounds) {
            let (row, detail) = summarise(&m.name, conc, per_round);
            let peak = m.pid.and_then(procfs::peak_rss_kb);
            report.results.push(Row {
                peak_rss_mb: peak.map(|kb| kb as f64 / 1024.0),
                ..row
            });
            details.push(detail);
            notes.extend(trouble(&m.name, conc, per_round));
        }
        let rates = |name: &str| {
            measured
                .iter()
                .position(|m| m.name == name)
                .map(|i| rounds[i].iter().map(rate).collect::<Vec<f64>>())
        };
        if let Some(erlboot) = rates(Kind::Erlboot.name()) {
            if let Some(r) = rates(Kind::Otp.name()).and_then(|otp| median_ratio(&erlboot, &otp)) {
                report.ratios.erlboot_otp.insert(conc, r);
            }
            if let Some(r) =
                rates(Kind::Ceiling.name()).and_then(|ceil| median_ratio(&erlboot, &ceil))
            {
                report.ratios.erlboot_ceiling.insert(conc, r);
            }
        }
    }
    progress.finish_and_clear();
    drop(measured);
    drop(scratch);
    Ok(Outcome {
        report,
        details,
        skipped,
        notes,
    })
}

fn rate(m: &RoundMeasure) -> f64 {
    m.boots / m.stats.elapsed.as_secs_f64()
}

/// Starts the servers; erlboot first, because one boot from it is recorded for the ceiling
/// and as the reference every server's replies are compared with.
fn start_servers(
    kinds: &[Kind],
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
    workload: &mut Workload,
    skipped: &mut Vec<(Kind, String)>,
    notes: &mut Vec<String>,
) -> Result<Vec<Measured>, ThroughputError> {
    let recorder = Server::start(Kind::Erlboot, setup).map_err(ThroughputError::Recorder)?;
    let answers = runtime
        .block_on(record_boot(recorder.addr, workload))
        .map_err(|(index, source)| ThroughputError::Record {
            server: Kind::Erlboot.name().into(),
            index,
            source,
        })?;
    workload.remember_outcomes(&answers.iter().map(|a| a.ok).collect::<Vec<_>>());
    let frames: Vec<Vec<u8>> = answers.iter().map(|a| a.frame()).collect();
    let recording = encode_recording(
        workload
            .exchanges
            .iter()
            .zip(&frames)
            .map(|(e, frame)| (&e.request[..], &frame[..])),
    );
    std::fs::write(&setup.recording, recording).map_err(|source| ThroughputError::Recording {
        path: setup.recording.clone(),
        source,
    })?;
    let mut recorder = Some(recorder);
    let mut measured = Vec::new();
    for &kind in kinds {
        let server = match (kind, recorder.take()) {
            (Kind::Erlboot, Some(server)) => server,
            (_, unused) => {
                recorder = unused;
                match Server::start(kind, setup) {
                    Ok(server) => server,
                    Err(e) => {
                        skipped.push((kind, e.to_string()));
                        continue;
                    }
                }
            }
        };
        // A whole boot first: it warms the page cache and lazily loaded code, and a server
        // that cannot boot a node is not measured.
        match runtime.block_on(record_boot(server.addr, workload)) {
            Ok(answers) => {
                let unlike: Vec<String> = workload
                    .exchanges
                    .iter()
                    .zip(&answers)
                    .zip(&workload.requests)
                    .filter(|((e, a), _)| e.recorded_ok != Some(a.ok))
                    .map(|((_, a), request)| {
                        let verdict = if a.ok { "ok" } else { "an error" };
                        format!("{} is {verdict}", request.to_term())
                    })
                    .collect();
                if !unlike.is_empty() {
                    notes.push(format!(
                        "{kind} answers {} of {} requests unlike erlboot: {}",
                        unlike.len(),
                        answers.len(),
                        unlike[..unlike.len().min(3)].join("; ")
                    ));
                }
            }
            Err((index, e)) => {
                skipped.push((
                    kind,
                    format!("a boot from it failed at request {index}: {e}"),
                ));
                continue;
            }
        }
        measured.push(Measured {
            name: kind.name().to_owned(),
            addr: server.addr,
            pid: Some(server.pid),
            _server: Some(server),
        });
    }
    Ok(measured)
}

/// A row from the rounds of one server at one concurrency (peak RSS left to the caller).
fn summarise(name: &str, concurrency: usize, rounds: &[RoundMeasure]) -> (Row, Detail) {
    let rates: Vec<f64> = rounds.iter().map(rate).collect();
    let mb: Vec<f64> = rounds
        .iter()
        .map(|m| m.stats.reply_bytes as f64 / 1e6 / m.stats.elapsed.as_secs_f64())
        .collect();
    let mut latency = latency_histogram();
    for m in rounds {
        latency
            .add(&m.stats.latency)
            .expect("histograms of the same bounds");
    }
    let latency = LatencySummary::of(&latency);
    let boots: f64 = rounds.iter().map(|m| m.boots).sum();
    let cpu: Option<Duration> = rounds.iter().map(|m| m.cpu).sum();
    let client_cpu: Option<Duration> = rounds.iter().map(|m| m.client_cpu).sum();
    let per_boot = |cpu: Option<Duration>| {
        cpu.filter(|_| boots > 0.0)
            .map(|cpu| cpu.as_secs_f64() * 1e3 / boots)
    };
    let row = Row {
        target: name.to_owned(),
        concurrency,
        boots_per_s: median(&rates).unwrap_or(0.0),
        mb_per_s: median(&mb).unwrap_or(0.0),
        p50_us: latency.p50_us,
        p99_us: latency.p99_us,
        p999_us: latency.p999_us,
        cpu_ms_per_boot: per_boot(cpu),
        peak_rss_mb: None,
    };
    (row, Detail::of(&rates, per_boot(client_cpu)))
}

/// Failed boots, failed connects and replies unlike the recording, in words.
fn trouble(name: &str, conc: usize, rounds: &[RoundMeasure]) -> Vec<String> {
    let mut notes = Vec::new();
    let failed: u64 = rounds.iter().map(|m| m.stats.failed_boots).sum();
    let refused: u64 = rounds.iter().map(|m| m.stats.connect_errors).sum();
    if failed + refused > 0 {
        let first = rounds
            .iter()
            .find_map(|m| m.stats.first_error.clone())
            .unwrap_or_default();
        notes.push(format!(
            "{name} at {conc} conns: {failed} failed boots, {refused} failed connects; \
             first: {first}"
        ));
    }
    let mismatches: u64 = rounds.iter().map(|m| m.stats.mismatches).sum();
    if mismatches > 0 {
        notes.push(format!(
            "{name} at {conc} conns: {mismatches} replies ok where the recording had an error \
             or the other way round"
        ));
    }
    notes
}

/// A progress bar on standard error, hidden when that is not a terminal.
pub fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
