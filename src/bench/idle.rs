//! Idle nodes: many connections opened in bursts, each asks `get_cwd` once and stays open, as
//! nodes that have booted keep their loader's connection; the time until all are answered and
//! the server's RSS before and with all of them open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::TcpStream;

use crate::etf::Profile;
use crate::proto::Request;

use super::load::{raise_open_files_limit, Conn};
use super::procfs;
use super::report::{IdleReport, IdleRow};
use super::servers::{prepare, Kind, Server, Setup, SetupError};
use super::workload::{Exchange, Workload};

/// Connections opened at once.
pub const BURST: usize = 250;
/// Time between bursts, whatever the server does, so every server gets the same offered load.
pub const BURST_INTERVAL: Duration = Duration::from_millis(10);

/// An idle run.
#[derive(Clone, Debug, PartialEq)]
pub struct IdlePlan {
    /// Servers to measure, one after the other, each fresh (the ceiling is left out).
    pub kinds: Vec<Kind>,
    pub connections: usize,
    /// A connection not answered by then counts as failed.
    pub timeout: Duration,
}

/// Why an idle run could not be made.
#[derive(Debug, Error)]
pub enum IdleError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("nothing could be measured: {0}")]
    NothingMeasured(String),
}

/// What an idle run found.
pub struct IdleOutcome {
    pub report: IdleReport,
    /// Servers not measured, and why.
    pub skipped: Vec<(Kind, String)>,
    /// The first failure per server, in words.
    pub notes: Vec<String>,
}

/// What opening the connections measured.
#[derive(Debug, Default)]
struct Opened {
    answered: usize,
    failed: usize,
    /// From the first connect until the last answer.
    last_answer: Duration,
    first_error: Option<String>,
}

/// Opens `total` connections in bursts and asks `probe` on each; returns once all are answered
/// or failed, or at `timeout`, with the answered connections still open.
async fn open_idle(
    addr: SocketAddr,
    total: usize,
    probe: Exchange,
    timeout: Duration,
) -> (Opened, Vec<TcpStream>) {
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + timeout);
    let probe = Arc::new(probe);
    let mut tasks = Vec::with_capacity(total);
    let mut next_burst = tokio::time::Instant::from_std(start);
    while tasks.len() < total {
        tokio::time::sleep_until(next_burst).await;
        next_burst += BURST_INTERVAL;
        for _ in 0..BURST.min(total - tasks.len()) {
            let probe = probe.clone();
            tasks.push(tokio::spawn(tokio::time::timeout_at(
                deadline,
                async move {
                    let mut conn = Conn::connect(addr).await?;
                    conn.exchange(&probe).await?;
                    Ok::<_, super::load::ExchangeError>((conn.into_stream(), Instant::now()))
                },
            )));
        }
    }
    let mut opened = Opened::default();
    let mut streams = Vec::with_capacity(total);
    for task in tasks {
        match task.await.expect("an idle task panicked") {
            Ok(Ok((stream, at))) => {
                opened.answered += 1;
                opened.last_answer = opened.last_answer.max(at - start);
                streams.push(stream);
            }
            Ok(Err(e)) => {
                opened.failed += 1;
                opened.first_error.get_or_insert(e.to_string());
            }
            Err(_) => {
                opened.failed += 1;
                opened
                    .first_error
                    .get_or_insert(format!("no answer within {} s", timeout.as_secs()));
            }
        }
    }
    (opened, streams)
}

/// Runs the idle test against each server in turn.
pub fn run(plan: &IdlePlan, workload: &Workload) -> Result<IdleOutcome, IdleError> {
    raise_open_files_limit();
    let (runtime, scratch) = prepare()?;
    let setup = Setup::in_scratch(&scratch, workload.root(), "unused", 0)?;
    let probe = Workload::new(vec![Request::GetCwd], Profile::Otp25)
        .expect("get_cwd encodes")
        .exchanges
        .remove(0);
    let mut outcome = IdleOutcome {
        report: IdleReport::default(),
        skipped: Vec::new(),
        notes: Vec::new(),
    };
    for &kind in &plan.kinds {
        if kind == Kind::Ceiling {
            outcome
                .skipped
                .push((kind, "the ceiling keeps nothing per connection".into()));
            continue;
        }
        let server = match Server::start(kind, &setup) {
            Ok(server) => server,
            Err(e) => {
                outcome.skipped.push((kind, e.to_string()));
                continue;
            }
        };
        let rss_before = procfs::rss_kb(server.pid);
        let drops_before = procfs::listen_overflows();
        let (opened, streams) = runtime.block_on(open_idle(
            server.addr,
            plan.connections,
            probe.clone(),
            plan.timeout,
        ));
        let rss_open = procfs::rss_kb(server.pid);
        let drops_after = procfs::listen_overflows();
        // The streams are tokio's: dropped inside the runtime.
        runtime.block_on(async move { drop(streams) });
        drop(server);
        if let Some(error) = &opened.first_error {
            outcome.notes.push(format!(
                "{kind}: {} of {} connections failed; first: {error}",
                opened.failed, plan.connections
            ));
        }
        let mb = |kb: Option<u64>| kb.map(|kb| kb as f64 / 1024.0);
        outcome.report.idle.push(IdleRow {
            target: kind.name().to_owned(),
            connections: plan.connections,
            answered: opened.answered,
            failed: opened.failed,
            all_answered_s: (opened.failed == 0).then_some(opened.last_answer.as_secs_f64()),
            rss_before_mb: mb(rss_before),
            rss_open_mb: mb(rss_open),
            syn_drops: drops_before
                .zip(drops_after)
                .map(|(a, b)| b.saturating_sub(a)),
        });
    }
    if outcome.report.idle.is_empty() {
        let why: Vec<String> = outcome
            .skipped
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        return Err(IdleError::NothingMeasured(why.join("; ")));
    }
    Ok(outcome)
}
