//! The herd: N nodes start booting at the same instant, each as `erl -loader inet` does (full
//! discovery over UDP to port 4368, OTP's timings), each doing the whole recorded boot; the
//! time until all are booted and each node's boot time. The simulator's herd scenario models
//! the same situation.
//!
//! A node here is the library's inet-loader client, not an Erlang VM: many fit in one process,
//! and what is measured is the server.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::client::{Event, LoaderConfig, LoaderTimings};
use crate::etf::Profile;
use crate::net::{CallError, Client, TokioRuntime};
use crate::proto::Request;

use super::load::{latency_histogram, raise_open_files_limit};
use super::procfs;
use super::report::{HerdReport, HerdRow};
use super::servers::{prepare, Kind, Server, Setup, SetupError};
use super::throughput::progress_bar;
use super::workload::Workload;

/// A herd run.
#[derive(Clone, Debug, PartialEq)]
pub struct HerdPlan {
    /// Servers to boot from, one after the other (the ceiling has no discovery).
    pub kinds: Vec<Kind>,
    pub nodes: usize,
    /// A node not booted by then is counted as not booted.
    pub timeout: Duration,
}

/// Why a herd could not be run.
#[derive(Debug, Error)]
pub enum HerdError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("no ERTS version to announce: no erts-* directory in {0}")]
    NoErtsVersion(String),
    #[error("nothing could be measured: {0}")]
    NothingMeasured(String),
}

/// What a herd run found.
pub struct HerdOutcome {
    pub report: HerdReport,
    /// Servers not measured, and why.
    pub skipped: Vec<(Kind, String)>,
    /// Nodes that did not boot, in words.
    pub notes: Vec<String>,
}

/// How one node's boot went.
#[derive(Debug, Default)]
pub struct NodeOutcome {
    /// When its last reply arrived; `None` if it did not boot.
    pub booted: Option<Instant>,
    pub empty_discovery_rounds: u64,
    pub resends: u64,
    pub error: Option<String>,
}

/// The herd's one use of the library's tokio client: a node's whole boot, discovery first.
async fn boot_node(
    config: LoaderConfig,
    requests: &[Request],
    deadline: tokio::time::Instant,
) -> NodeOutcome {
    let mut client = Client::new(TokioRuntime::new(), config);
    let deadline = client.now() + deadline.saturating_duration_since(tokio::time::Instant::now());
    let mut outcome = NodeOutcome::default();
    for request in requests {
        match client.call(request, Some(deadline)).await {
            // An error reply (`./Mod.beam` is not found) is part of the boot.
            Ok(_) => {}
            Err(CallError::Deadline) => {
                outcome.error = Some("not booted before the herd's timeout".into());
                break;
            }
            Err(e) => {
                outcome.error = Some(e.to_string());
                break;
            }
        }
    }
    if outcome.error.is_none() {
        outcome.booted = Some(Instant::now());
    }
    for (_, event) in client.take_events() {
        match event {
            Event::NoServerFound { .. } => outcome.empty_discovery_rounds += 1,
            Event::Resending { .. } => outcome.resends += 1,
            _ => {}
        }
    }
    outcome
}

/// The ERTS version of the installation at `root` (the newest `erts-*`), which the nodes
/// announce: OTP's server answers only its own.
pub fn erts_version(root: &Path) -> Option<String> {
    let numbers = |v: &str| -> Option<Vec<u32>> { v.split('.').map(|n| n.parse().ok()).collect() };
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let version = name.strip_prefix("erts-")?.to_owned();
            Some((numbers(&version)?, version))
        })
        .max()
        .map(|(_, version)| version)
}

/// Starts `nodes` nodes at once against the server answering discovery on 127.0.0.1:4368.
pub async fn herd(
    nodes: usize,
    config: LoaderConfig,
    requests: Arc<Vec<Request>>,
    timeout: Duration,
) -> (Instant, Vec<NodeOutcome>) {
    let (go, ready) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
    let tasks: Vec<_> = (0..nodes)
        .map(|_| {
            let config = config.clone();
            let requests = requests.clone();
            let mut ready = ready.clone();
            tokio::spawn(async move {
                let deadline = *ready
                    .wait_for(Option::is_some)
                    .await
                    .expect("the herd holds the sender");
                boot_node(config, &requests, deadline.expect("set")).await
            })
        })
        .collect();
    // Let the tasks reach the gate; one that has not yet run finds it open when it does, and
    // its boot time still counts from the common start.
    tokio::task::yield_now().await;
    let start = Instant::now();
    let _ = go.send(Some(tokio::time::Instant::from_std(start + timeout)));
    let mut outcomes = Vec::with_capacity(nodes);
    for task in tasks {
        outcomes.push(task.await.expect("a node task panicked"));
    }
    (start, outcomes)
}

/// Summarises one herd.
pub fn summarise(target: &str, start: Instant, outcomes: &[NodeOutcome]) -> HerdRow {
    let mut times = latency_histogram();
    for at in outcomes.iter().filter_map(|o| o.booted) {
        times.saturating_record((at - start).as_micros().max(1) as u64);
    }
    let booted = times.len() as usize;
    let ms = |us: u64| us as f64 / 1e3;
    HerdRow {
        target: target.to_owned(),
        nodes: outcomes.len(),
        booted,
        all_booted_s: (booted == outcomes.len() && booted > 0).then(|| ms(times.max()) / 1e3),
        p50_ms: ms(times.value_at_quantile(0.5)),
        p99_ms: ms(times.value_at_quantile(0.99)),
        max_ms: ms(times.max()),
        syn_drops: None,
        server_cpu_s: None,
        client_cpu_s: None,
        empty_discovery_rounds: outcomes.iter().map(|o| o.empty_discovery_rounds).sum(),
        resends: outcomes.iter().map(|o| o.resends).sum(),
    }
}

/// Runs a herd against each server in turn (each holds UDP 4368 while it runs).
pub fn run(plan: &HerdPlan, workload: &Workload) -> Result<HerdOutcome, HerdError> {
    raise_open_files_limit();
    let (runtime, scratch) = prepare()?;
    let root = workload.root();
    let version =
        erts_version(Path::new(&root)).ok_or_else(|| HerdError::NoErtsVersion(root.clone()))?;
    let setup = Setup::in_scratch(&scratch, root, "unused", crate::proto::discovery::PORT)?;
    let mut config = LoaderConfig::new(vec![Ipv4Addr::LOCALHOST], version);
    config.profile = Profile::Otp25;
    config.timings = LoaderTimings::otp();
    let requests = Arc::new(workload.requests.clone());
    let mut report = HerdReport::default();
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let progress = progress_bar(plan.kinds.len() as u64);
    for &kind in &plan.kinds {
        if kind == Kind::Ceiling {
            skipped.push((kind, "the ceiling answers no discovery".into()));
            progress.inc(1);
            continue;
        }
        progress.set_message(format!("{} nodes booting from {kind}", plan.nodes));
        let server = match Server::start(kind, &setup) {
            Ok(server) => server,
            Err(e) => {
                skipped.push((kind, e.to_string()));
                progress.inc(1);
                continue;
            }
        };
        let drops_before = procfs::listen_overflows();
        let cpu_before = procfs::cpu_time(server.pid);
        let client_before = procfs::cpu_time(std::process::id());
        let (start, outcomes) = runtime.block_on(herd(
            plan.nodes,
            config.clone(),
            requests.clone(),
            plan.timeout,
        ));
        let drops_after = procfs::listen_overflows();
        let cpu_after = procfs::cpu_time(server.pid);
        let client_after = procfs::cpu_time(std::process::id());
        drop(server);
        let mut row = summarise(kind.name(), start, &outcomes);
        row.syn_drops = drops_before
            .zip(drops_after)
            .map(|(a, b)| b.saturating_sub(a));
        let seconds = |(a, b): (Duration, Duration)| b.saturating_sub(a).as_secs_f64();
        row.server_cpu_s = cpu_before.zip(cpu_after).map(seconds);
        row.client_cpu_s = client_before.zip(client_after).map(seconds);
        if let Some(error) = outcomes.iter().find_map(|o| o.error.clone()) {
            notes.push(format!(
                "{kind}: {} of {} nodes not booted; first: {error}",
                row.nodes - row.booted,
                row.nodes
            ));
        }
        report.herd.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    if report.herd.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        return Err(HerdError::NothingMeasured(why.join("; ")));
    }
    Ok(HerdOutcome {
        report,
        skipped,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_herd_summary_reads_boot_times_from_the_common_start() {
        let start = Instant::now();
        let node = |ms: u64| NodeOutcome {
            booted: Some(start + Duration::from_millis(ms)),
            resends: 1,
            ..NodeOutcome::default()
        };
        let outcomes: Vec<NodeOutcome> = (1..=100).map(|i| node(i * 10)).collect();
        let row = summarise("erlboot", start, &outcomes);
        assert_eq!((row.nodes, row.booted, row.resends), (100, 100, 100));
        assert!((row.all_booted_s.unwrap() - 1.0).abs() < 0.001, "{row:?}");
        assert!((row.p50_ms - 500.0).abs() < 1.0, "{row:?}");
        assert!((row.p99_ms - 990.0).abs() < 1.0, "{row:?}");
        assert!((row.max_ms - 1000.0).abs() < 1.0, "{row:?}");

        let mut some_failed = outcomes;
        some_failed.push(NodeOutcome {
            error: Some("timeout".into()),
            empty_discovery_rounds: 3,
            ..NodeOutcome::default()
        });
        let row = summarise("otp", start, &some_failed);
        assert_eq!((row.nodes, row.booted), (101, 100));
        assert_eq!(row.all_booted_s, None);
        assert_eq!(row.empty_discovery_rounds, 3);
    }

    #[test]
    fn the_erts_version_is_the_newest_erts_directory() {
        let dir = std::env::temp_dir().join(format!("erlboot-herd-test-{}", std::process::id()));
        for sub in [
            "erts-13.1.5",
            "erts-13.10",
            "erts-13.2",
            "lib",
            "erts-notes",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        assert_eq!(erts_version(&dir).as_deref(), Some("13.10"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(erts_version(&dir), None);
    }
}
