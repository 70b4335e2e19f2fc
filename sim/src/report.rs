//! What a run found: boot times, the loaders' retries, the faults applied, the violations, and
//! the hash of the event trace — as text and as JSON.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Boot time percentiles, in milliseconds (an HDR histogram over the booted nodes).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// The slowest.
    pub max: u64,
}

/// A node's first connection: when the discovery round that led to it ended, and the server
/// it reached. A baseline of the same world connects its nodes so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstConnection {
    /// When the node began to connect (the end of its discovery).
    pub at: Duration,
    /// The server, as indexed in the scenario.
    pub server: usize,
}

/// A fault as applied, for the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Applied {
    /// Milliseconds into the run.
    pub at_ms: u64,
    /// What happened.
    pub fault: String,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// Milliseconds into the run.
    pub at_ms: u64,
    /// `safety`, `liveness`, `resources`, or `otp-defect`: a node of OTP's loader behaviour
    /// that never finished (OTP's flaw reproduced, not erlboot's failure).
    pub invariant: &'static str,
    /// The host and node, or the server.
    pub who: String,
    /// What broke it.
    pub event: String,
}

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The seed: with the scenario, the run again.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// Where the requests and files came from.
    pub workload: String,
    /// Whether the protocol code was replaced by pre-built frames.
    pub baseline: bool,
    /// Nodes.
    pub clients: usize,
    /// Nodes that finished their boot.
    pub booted: usize,
    /// Nodes no server would serve (outside every allow list, or of a version none answers):
    /// not expected to boot.
    pub refused: usize,
    /// Boot times of the booted nodes.
    pub boot_ms: Percentiles,
    /// Discovery rounds, answered or not.
    pub discovery_rounds: u64,
    /// Rounds nobody answered.
    pub empty_rounds: u64,
    /// Connections opened after a node's first.
    pub reconnects: u64,
    /// Requests sent again (after a reply timeout or a lost connection).
    pub resends: u64,
    /// Requests an OTP-faithful node sent on a connection it already knew was closed (OTP 25's
    /// `get_modules` restart hang): each waits out the whole reply timeout.
    pub stranded: u64,
    /// Nodes that sent such a request.
    pub stranded_nodes: usize,
    /// Times a node went 10 s or more without a reply.
    pub stalls: u64,
    /// The longest such time.
    pub longest_stall_ms: u64,
    /// Nodes expected to boot that never finished (the liveness bound passed).
    pub hung: usize,
    /// Reply bytes the nodes received.
    pub bytes: u64,
    /// UDP datagrams lost.
    pub datagrams_lost: u64,
    /// TCP segments retransmitted.
    pub retransmissions: u64,
    /// The faults, as applied.
    pub faults: Vec<Applied>,
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// Simulated seconds run.
    pub sim_seconds: f64,
    /// Steps of the simulation: ticks, and stretches stepped over in one.
    pub steps: u64,
    /// Wall-clock seconds the run took (set by the caller, which owns the clock).
    pub wall_seconds: f64,
    /// A hash of every event of the run, in order.
    pub trace_hash: String,
    /// Each node's first connection, if it made one.
    #[serde(skip)]
    pub first_connections: Vec<Option<FirstConnection>>,
}

impl Report {
    /// Whether every invariant held (OTP's defects reproduced are findings, not failures).
    pub fn passed(&self) -> bool {
        self.violations.iter().all(|v| v.invariant == "otp-defect")
    }

    /// The broken invariants that are failures.
    pub fn failures(&self) -> usize {
        self.violations
            .iter()
            .filter(|v| v.invariant != "otp-defect")
            .count()
    }
}

/// The report as text, but for the seed, which a run prints before it starts.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario    {}", self.scenario)?;
        writeln!(
            f,
            "workload    {}{}",
            self.workload,
            if self.baseline {
                " (baseline: pre-built frames)"
            } else {
                ""
            }
        )?;
        let share = |n: usize| 100.0 * n as f64 / self.clients.max(1) as f64;
        writeln!(
            f,
            "booted      {} of {} ({:.1} %)",
            self.booted,
            self.clients,
            share(self.booted)
        )?;
        if self.refused > 0 {
            writeln!(f, "refused     {} (no server serves them)", self.refused)?;
        }
        if self.hung > 0 {
            writeln!(
                f,
                "hung        {} ({:.1} %) never finished",
                self.hung,
                share(self.hung)
            )?;
        }
        let b = &self.boot_ms;
        writeln!(
            f,
            "boot time   p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
            b.p50, b.p90, b.p99, b.max
        )?;
        writeln!(
            f,
            "discovery   {} rounds, {} unanswered",
            self.discovery_rounds, self.empty_rounds
        )?;
        writeln!(
            f,
            "retries     {} reconnects, {} resends",
            self.reconnects, self.resends
        )?;
        if self.stranded > 0 {
            writeln!(
                f,
                "stranded    {} requests by {} nodes sent on a dead connection, each waiting out the reply timeout (OTP 25's get_modules restart hang)",
                self.stranded, self.stranded_nodes
            )?;
        }
        writeln!(
            f,
            "stalls      {} (>= 10 s without a reply), longest {} ms",
            self.stalls, self.longest_stall_ms
        )?;
        writeln!(
            f,
            "bytes       {} ({:.1} MB)",
            self.bytes,
            self.bytes as f64 / 1e6
        )?;
        if self.datagrams_lost > 0 || self.retransmissions > 0 {
            writeln!(
                f,
                "losses      {} datagrams, {} segments retransmitted",
                self.datagrams_lost, self.retransmissions
            )?;
        }
        if self.faults.is_empty() {
            writeln!(f, "faults      none")?;
        } else {
            writeln!(f, "faults")?;
            for applied in &self.faults {
                writeln!(
                    f,
                    "  {:>9.3} s  {}",
                    applied.at_ms as f64 / 1000.0,
                    applied.fault
                )?;
            }
        }
        if self.violations.is_empty() {
            writeln!(f, "violations  none")?;
        } else {
            writeln!(f, "violations  {}", self.violations.len())?;
            for v in self.violations.iter().take(20) {
                writeln!(
                    f,
                    "  {:>9.3} s  {} {}: {}",
                    v.at_ms as f64 / 1000.0,
                    v.invariant,
                    v.who,
                    v.event
                )?;
            }
            if self.violations.len() > 20 {
                writeln!(f, "  ... and {} more", self.violations.len() - 20)?;
            }
        }
        let rate = if self.wall_seconds > 0.0 {
            self.sim_seconds / self.wall_seconds
        } else {
            0.0
        };
        writeln!(
            f,
            "time        {:.1} s simulated in {} steps, {:.2} s wall ({:.1} sim-s per wall-s)",
            self.sim_seconds, self.steps, self.wall_seconds, rate
        )?;
        write!(f, "trace hash  {}", self.trace_hash)
    }
}
