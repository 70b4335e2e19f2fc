//! A scenario made a turmoil world and run: boot servers on erlboot's server driver, client
//! farms of nodes on erlboot's client driver, the fault schedule applied between steps, and
//! the invariants checked as the nodes report.
//!
//! # Hosts
//! Servers are hosts named after them; a group `G` of `H` hosts is hosts `G-1` ... `G-H`, each a
//! farm of nodes (tasks). turmoil's cost per step grows steeply with hosts and barely with
//! tasks, so a farm stands for a rack of nodes whose links are alike.
//!
//! # The liveness bound
//! Once the last fault has healed (at `healed`), a node expected to boot (one that some server
//! it queries allows and answers) has finished by
//!
//! ```text
//! max(healed, start) + reply_timeout + long_sleep + sends_per_round × collect_window
//!                    + connect_timeout + boot_seconds
//! ```
//!
//! — a request in flight on a dead connection is given up after the reply timeout; a node in
//! its longest sleep between discovery rounds wakes after `long_sleep`; a round lasts its sends'
//! collect windows; a connect to a server that vanished meanwhile takes the connect timeout;
//! and the boot itself needs `limits.boot_seconds` in this world under its load. With OTP's
//! timings and the default 60 s: 60 + 60 + 1.5 + 15 + 60 = 196.5 s.

use std::collections::BTreeSet;
use std::future::Future;
use std::hash::{DefaultHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use erlboot::client::{
    DeadConnection, Event, Ignored, LoaderConfig, ReplyError, ReplyMemo, Response,
};
use erlboot::etf::{Decoder, Profile};
use erlboot::net::{CallError, Client, Control, Runtime, Server, ServerConfig};
use erlboot::server::{AllowList, Cidr, ConnectionLimits, SessionConfig, Versions};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::capacity::{Capacity, RTO_MIN};
use crate::fault::Fault;
use crate::files::{FaultyFiles, FileFault};
use crate::report::{Applied, FirstConnection, Percentiles, Report, Violation};
use crate::runtime::{TurmoilRuntime, UdpLoss, WholeFrames};
use crate::scenario::{parse_block, Behaviour, Planted, Scenario};
use crate::wakeups::{SimTimer, Wakeups};
use crate::workload::Workload;

/// A run that could not be carried out (a broken invariant is not this: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Simulated software failed in a way that is not a finding (a bind failed, say).
    #[error("the simulation failed at {at:?}: {message}")]
    Host {
        /// Simulated time.
        at: Duration,
        /// turmoil's error.
        message: String,
    },
}

/// How to run a scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The seed (the scenario's unless set).
    pub seed: Option<u64>,
    /// Pre-built frames in place of the protocol code: the floor that moving the bytes
    /// through turmoil costs (no discovery, no faults).
    pub baseline: Option<Baseline>,
    /// Tick through stretches in which nothing is due, as turmoil does, rather than step over
    /// them, more slowly (to compare the two): events come when they would have, but tokio's
    /// scheduler draws its seeded order among tasks ready at once per step, so ties may fall
    /// otherwise.
    pub every_tick: bool,
}

/// Where a baseline run's nodes connect, and when.
#[derive(Clone, Debug, PartialEq)]
pub enum Baseline {
    /// Each node connects at its start, to the servers it would query in turn.
    Spread,
    /// Each node connects when and where it first did in a run of the protocol code (its
    /// report's [`Report::first_connections`]), so that the two runs share the simulated
    /// time discovery takes and the load its answers put on each server; a node that never
    /// connected there does not here.
    Following(Arc<[Option<FirstConnection>]>),
}

/// Where a run is, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Simulated time.
    pub sim: Duration,
    /// Nodes booted.
    pub booted: usize,
    /// Nodes.
    pub clients: usize,
    /// Violations so far.
    pub violations: usize,
}

/// The TCP port discovery answers on.
const DISCOVERY: u16 = erlboot::proto::discovery::PORT;
/// A node without a reply for this long has stalled.
const STALL: Duration = Duration::from_secs(10);
/// Steps between progress reports and resource checks.
const CHECK_EVERY: u64 = 200;

/// One node, as the world sees it.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Node {
    // First, together, what every reply updates: in a herd each node's record is out of the
    // cache by its next reply, and these then cost one line rather than several.
    pub(crate) last_progress: Duration,
    pub(crate) done: usize,
    /// Whether the node's current connection was to a server that allowed it when it
    /// connected.
    pub(crate) allowed: bool,
    /// Whether some server it queries serves it.
    pub(crate) expected: bool,
    pub(crate) host: usize,
    pub(crate) group: usize,
    /// Index within its host.
    pub(crate) index: usize,
    pub(crate) start: Duration,
    pub(crate) started: Option<Duration>,
    pub(crate) finished: Option<Duration>,
    pub(crate) connects: u64,
    /// When its last discovery round ended.
    pub(crate) discovered: Duration,
    pub(crate) first_connection: Option<FirstConnection>,
    /// Requests it sent on a connection already known to be closed.
    pub(crate) stranded: u64,
}

/// What the nodes and servers report, as they run.
pub(crate) struct Recorder {
    pub(crate) nodes: Vec<Node>,
    pub(crate) booted: usize,
    /// Nodes expected to boot that have not finished yet.
    pub(crate) waiting: usize,
    pub(crate) discovery_rounds: u64,
    pub(crate) empty_rounds: u64,
    pub(crate) reconnects: u64,
    pub(crate) resends: u64,
    pub(crate) stalls: u64,
    pub(crate) longest_stall: Duration,
    pub(crate) bytes: u64,
    pub(crate) violations: Vec<Violation>,
    pub(crate) trace: DefaultHasher,
}

impl Recorder {
    /// Node `id` finished its boot at `t`.
    pub(crate) fn finish(&mut self, t: Duration, id: usize) {
        self.nodes[id].finished = Some(t);
        self.booted += 1;
        if self.nodes[id].expected {
            self.waiting -= 1;
        }
        self.trace(t, id, 2);
    }

    pub(crate) fn violation(
        &mut self,
        at: Duration,
        invariant: &'static str,
        who: String,
        event: String,
    ) {
        self.trace.write_u64(0xdead);
        self.trace.write(event.as_bytes());
        self.violations.push(Violation {
            at_ms: at.as_millis() as u64,
            invariant,
            who,
            event,
        });
    }

    pub(crate) fn trace(&mut self, at: Duration, node: usize, what: u64) {
        self.trace.write_u64(at.as_nanos() as u64);
        self.trace.write_u64(node as u64);
        self.trace.write_u64(what);
    }
}

/// A server as the world holds it across restarts.
pub(crate) struct ServerState {
    pub(crate) name: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) port: Mutex<u16>,
    pub(crate) allow: Mutex<AllowList>,
    pub(crate) control: Mutex<Option<Control>>,
    /// Tells the running server to stop.
    pub(crate) stop: Mutex<Option<Arc<tokio::sync::Notify>>>,
    pub(crate) capacity: Mutex<Option<Arc<Mutex<Capacity>>>>,
    pub(crate) files: FaultyFiles,
    pub(crate) versions: Versions,
    pub(crate) limits: ConnectionLimits,
    pub(crate) incarnation: Mutex<u64>,
}

/// Everything the hosts share.
pub(crate) struct Shared {
    pub(crate) scenario: Scenario,
    pub(crate) workload: Arc<Workload>,
    pub(crate) seed: u64,
    pub(crate) recorder: Mutex<Recorder>,
    pub(crate) servers: Vec<ServerState>,
    /// Each farm host's address and name.
    pub(crate) hosts: Vec<(Ipv4Addr, String)>,
    pub(crate) udp_loss: Arc<UdpLoss>,
    pub(crate) tcp_loss: Mutex<f64>,
    pub(crate) retransmissions: Mutex<u64>,
    pub(crate) rtt: Duration,
    pub(crate) wakeups: Arc<Wakeups>,
    /// The workload's reply frames that carry file contents, for the servers' streams.
    pub(crate) whole_frames: Arc<WholeFrames>,
    /// The nodes' readings of replies, shared: the servers hand every node the replies they
    /// remember as the same memory, which one reading then covers.
    pub(crate) replies: Arc<ReplyMemo>,
}

impl Shared {
    pub(crate) fn recorder(&self) -> MutexGuard<'_, Recorder> {
        lock(&self.recorder)
    }

    /// Server `i`'s link and each node's, in Mbit/s, as its capacity takes them.
    pub(crate) fn links_mbit(&self, i: usize) -> [f64; 2] {
        let network = &self.scenario.network;
        [
            self.scenario.servers[i]
                .bandwidth_mbit
                .unwrap_or(network.bandwidth_mbit),
            network.node_bandwidth_mbit,
        ]
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // One thread runs a simulation; a poisoned lock means a panic that ends it anyway.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

/// Runs `scenario` with `workload`, reporting progress to `progress` now and then.
pub fn run(
    scenario: &Scenario,
    workload: Arc<Workload>,
    options: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report, SimError> {
    let seed = options.seed.unwrap_or(scenario.seed);
    let net = &scenario.network;
    let tick = Duration::from_secs_f64(net.tick_ms / 1000.0);
    let limit = Duration::from_secs_f64(scenario.limits.sim_seconds);
    let total = scenario.clients();
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .tick_duration(tick)
        .simulation_duration(limit + Duration::from_secs(1))
        .min_message_latency(Duration::from_secs_f64(net.latency_ms[0] / 1000.0))
        .max_message_latency(Duration::from_secs_f64(net.latency_ms[1] / 1000.0))
        // Every node of a herd may connect to one server in one tick.
        .tcp_capacity(total.max(64) * 2)
        .udp_capacity(total.max(64) * 4)
        // A farm's nodes each need ports for their discovery sockets and connections.
        .ephemeral_ports(1024..=65535);
    let mut sim = builder.build();
    // Addresses in order of first lookup: servers first, then the farms, as the scenario
    // lists them.
    let mut hosts = Vec::new();
    let mut server_ips = Vec::new();
    for server in &scenario.servers {
        server_ips.push(v4(sim.lookup(server.name.as_str())));
    }
    let mut nodes = Vec::new();
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5354_4152);
    for (g, group) in scenario.clients.iter().enumerate() {
        let count = group.hosts as usize * group.clients_per_host as usize;
        for h in 0..group.hosts as usize {
            let name = format!("{}-{}", group.name, h + 1);
            let ip = v4(sim.lookup(name.as_str()));
            hosts.push((ip, name));
            for index in 0..group.clients_per_host as usize {
                let ordinal = index * group.hosts as usize + h;
                nodes.push(Node {
                    host: hosts.len() - 1,
                    group: g,
                    index,
                    start: group.start.at(ordinal, count) + jitter(&mut rng, group.jitter_ms),
                    started: None,
                    finished: None,
                    last_progress: Duration::ZERO,
                    done: 0,
                    connects: 0,
                    discovered: Duration::ZERO,
                    first_connection: None,
                    stranded: 0,
                    expected: false,
                    allowed: false,
                });
            }
        }
    }
    let resolve_allow = |entries: &[String]| -> AllowList {
        AllowList::new(entries.iter().flat_map(|entry| {
            match parse_block(entry) {
                Some(block) => vec![block],
                None => resolve(scenario, &hosts, &server_ips, entry)
                    .into_iter()
                    .map(|ip| Cidr::new(ip, 32).expect("a /32"))
                    .collect(),
            }
        }))
    };
    let wakeups = Wakeups::new();
    let servers = scenario
        .servers
        .iter()
        .zip(&server_ips)
        .map(|(spec, &ip)| {
            let files = FaultyFiles::new(
                Arc::clone(&workload.source),
                Duration::from_secs_f64(spec.disk_ms / 1000.0),
            )
            .with_wakeups(Arc::clone(&wakeups));
            ServerState {
                name: spec.name.clone(),
                ip,
                port: Mutex::new(spec.port),
                allow: Mutex::new(resolve_allow(&spec.allow)),
                control: Mutex::new(None),
                stop: Mutex::new(None),
                capacity: Mutex::new(None),
                files,
                versions: if spec.erts.is_empty() {
                    Versions::Any
                } else {
                    Versions::Exact(spec.erts.clone())
                },
                limits: ConnectionLimits {
                    max_connections: spec
                        .max_connections
                        .unwrap_or(ConnectionLimits::default().max_connections),
                    // A farm is many nodes behind one address.
                    max_per_ip: usize::MAX,
                },
                incarnation: Mutex::new(0),
            }
        })
        .collect();
    let udp_loss = Arc::new(UdpLoss::new(seed ^ 0x5544_5000));
    udp_loss.set_rate(net.udp_loss);
    let mean_latency = Duration::from_secs_f64((net.latency_ms[0] + net.latency_ms[1]) / 2000.0);
    let whole_frames = Arc::new(WholeFrames::new(
        workload
            .reply_frames
            .iter()
            .zip(&workload.expected)
            .filter_map(|(frame, expected)| match expected {
                Ok(Response::File(value)) => Some((frame.clone(), value.binary()?)),
                _ => None,
            }),
    ));
    let shared = Arc::new(Shared {
        replies: Arc::new(ReplyMemo::new(Decoder::new(
            LoaderConfig::new(Vec::new(), b"").limits,
        ))),
        scenario: scenario.clone(),
        workload,
        seed,
        recorder: Mutex::new(Recorder {
            nodes,
            booted: 0,
            waiting: 0,
            discovery_rounds: 0,
            empty_rounds: 0,
            reconnects: 0,
            resends: 0,
            stalls: 0,
            longest_stall: Duration::ZERO,
            bytes: 0,
            violations: Vec::new(),
            trace: DefaultHasher::new(),
        }),
        servers,
        hosts,
        udp_loss,
        tcp_loss: Mutex::new(net.tcp_loss),
        retransmissions: Mutex::new(0),
        rtt: mean_latency * 2,
        wakeups,
        whole_frames,
    });

    for (i, _) in scenario.servers.iter().enumerate() {
        let shared = Arc::clone(&shared);
        let name = scenario.servers[i].name.clone();
        let baseline = options.baseline.is_some();
        sim.host(name.as_str(), move || {
            let shared = Arc::clone(&shared);
            async move {
                if baseline {
                    crate::baseline::serve_frames(shared, i).await
                } else {
                    serve(shared, i).await
                }
            }
        });
    }
    for (h, (_, name)) in shared.hosts.iter().enumerate() {
        let shared = Arc::clone(&shared);
        let baseline = options.baseline.clone();
        sim.client(name.as_str(), async move {
            let on_host: Vec<usize> = shared
                .recorder()
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.host == h)
                .map(|(i, _)| i)
                .collect();
            let mut tasks = tokio::task::JoinSet::new();
            for id in on_host {
                let shared = Arc::clone(&shared);
                if let Some(baseline) = &baseline {
                    tasks.spawn(crate::baseline::fetch_frames(shared, id, baseline.clone()));
                } else {
                    tasks.spawn(boot(shared, id));
                }
            }
            while tasks.join_next().await.is_some() {}
            Ok(())
        });
    }
    for link in &scenario.network.links {
        let a = resolve_all(scenario, &shared, &link.a);
        let b = resolve_all(scenario, &shared, &link.b);
        for &x in &a {
            for &y in &b {
                sim.set_link_latency(x, y, ms(link.latency_ms[1]));
                sim.set_link_max_message_latency(x, y, ms(link.latency_ms[1]));
            }
        }
    }

    let schedule = if options.baseline.is_some() {
        Vec::new()
    } else {
        expand(scenario)
    };
    let healed = healed_at(&schedule);
    let expected: Vec<bool> = {
        let recorder = shared.recorder();
        recorder
            .nodes
            .iter()
            .map(|n| expected_to_boot(&shared, n))
            .collect()
    };
    {
        let mut recorder = shared.recorder();
        for (node, &e) in recorder.nodes.iter_mut().zip(&expected) {
            node.expected = e;
        }
        recorder.waiting = expected.iter().filter(|e| **e).count();
    }
    let bound = liveness_bound(scenario);
    let deadline = {
        let recorder = shared.recorder();
        recorder
            .nodes
            .iter()
            .zip(&expected)
            .filter(|(_, e)| **e)
            .map(|(n, _)| healed.unwrap_or(limit).max(n.start) + bound)
            .max()
            .unwrap_or(Duration::ZERO)
            .min(limit)
    };
    let refused = expected.iter().filter(|e| !**e).count();

    let mut applied = Vec::new();
    // When each cut link was cut, and the releases of held segments still to come.
    let mut cut_since: std::collections::BTreeMap<(IpAddr, IpAddr), Duration> = Default::default();
    let mut releases: Vec<(Duration, IpAddr, IpAddr)> = Vec::new();
    let mut bounces: Vec<String> = Vec::new();
    let mut next = 0;
    let mut steps = 0u64;
    let mut bounced = false;
    loop {
        let at = sim.elapsed();
        while next < schedule.len() && schedule[next].0 <= at {
            let (_, fault) = &schedule[next];
            if let Fault::Partition { oneway: false, .. } = fault {
                for pair in link_pairs(&shared, fault) {
                    cut_since.entry(pair).or_insert(at);
                }
            }
            let effects = apply(&mut sim, &shared, fault);
            bounces.extend(effects.bounce);
            for (x, y) in effects.released {
                let since = cut_since.remove(&(x, y)).unwrap_or(at);
                let wait = retransmission_after(at - since, shared.rtt);
                releases.push((at + wait, x, y));
            }
            shared.recorder().trace(at, usize::MAX, next as u64);
            applied.push(Applied {
                at_ms: at.as_millis() as u64,
                fault: fault.describe(),
            });
            next += 1;
        }
        releases.retain(|&(when, x, y)| {
            if when > at {
                return true;
            }
            // Cut again meanwhile: the segments keep waiting.
            if !cut_since.contains_key(&(x, y)) {
                sim.release(x, y);
            }
            false
        });
        let (booted, violations, waiting) = {
            let r = shared.recorder();
            (r.booted, r.violations.len(), r.waiting)
        };
        let settled = next == schedule.len() && releases.is_empty();
        if settled && (waiting == 0 || at >= deadline.max(tick)) {
            break;
        }
        if at >= limit {
            break;
        }
        let mut by = tick;
        // A host's software starts, or starts again after a restart, in the step after: until
        // it has run, its wake-ups are not known.
        let started = steps > 0 && !bounced;
        if !options.every_tick && started && bounces.is_empty() && sim.is_network_idle() {
            // Step over what is quiet, up to the tick before the next thing due: a timer or
            // sleep of a host, a fault, a release of held segments, the end of the run.
            let due = [
                shared.wakeups.next_after(at.saturating_sub(tick)),
                schedule.get(next).map(|(when, _)| *when),
                releases.iter().map(|&(when, _, _)| when).min(),
                Some(if settled { deadline.min(limit) } else { limit }),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(limit);
            let ticks = (due.saturating_sub(at).as_nanos() / tick.as_nanos().max(1))
                .try_into()
                .unwrap_or(u32::MAX);
            // The tick that holds `due` (or ends on it) is an ordinary one.
            let ticks = if at + tick * ticks == due {
                ticks.saturating_sub(1)
            } else {
                ticks
            };
            if ticks >= 2 {
                by = tick * ticks;
            }
        }
        crate::wakeups::set_step_end(Some(at + by));
        let stepped = sim.step_by(by);
        crate::wakeups::set_step_end(None);
        if let Err(error) = stepped {
            return Err(SimError::Host {
                at,
                message: error.to_string(),
            });
        }
        if by > tick && !sim.is_network_idle() {
            // Nothing was due in the stretch stepped over, so nothing can have been sent: a
            // sleep or timer of the simulated code that is not in `wakeups` woke up.
            shared.recorder().violation(
                sim.elapsed(),
                "simulator",
                "world".into(),
                format!(
                    "a message was sent between {:.3} s and {:.3} s, a stretch in which no wake-up was due",
                    at.as_secs_f64(),
                    sim.elapsed().as_secs_f64()
                ),
            );
        }
        // The stopped servers' software has returned in that step; start it again.
        bounced = !bounces.is_empty();
        for name in bounces.drain(..) {
            sim.bounce(name.as_str());
        }
        steps += 1;
        if steps % CHECK_EVERY == 0 {
            check_resources(&shared, at);
            progress(&Progress {
                sim: at,
                booted,
                clients: total,
                violations,
            });
        }
    }
    let end = sim.elapsed();
    let mut recorder = shared.recorder();
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 86_400_000, 3).expect("bounds of a day in ms");
    let mut hung = 0;
    let mut unfinished = Vec::new();
    for (id, (node, expected)) in recorder.nodes.iter().zip(&expected).enumerate() {
        match (node.started, node.finished) {
            (Some(start), Some(finish)) => {
                histogram.saturating_record((finish - start).as_millis() as u64);
            }
            _ if *expected => {
                hung += 1;
                unfinished.push((id, node.done, node.last_progress));
            }
            _ => {}
        }
    }
    let mut stalls = recorder.stalls;
    let mut longest = recorder.longest_stall;
    for node in recorder.nodes.iter().filter(|n| n.finished.is_none()) {
        if let Some(start) = node.started {
            let quiet = end - node.last_progress.max(start);
            if quiet >= STALL {
                stalls += 1;
                longest = longest.max(quiet);
            }
        }
    }
    for (id, done, last) in unfinished {
        let who = node_name(&shared, &recorder.nodes[id]);
        let behaviour = shared.scenario.clients[recorder.nodes[id].group].behaviour;
        // A node of OTP's loader that never finishes shows one of OTP's own defects (a server
        // kept in find_master's ignore list for ever, say); erlboot's loader must not hang.
        let (invariant, what) = match behaviour {
            Behaviour::Otp => ("otp-defect", "OTP-faithful loader hung"),
            Behaviour::Erlboot => ("liveness", "erlboot loader"),
        };
        recorder.violation(
            end,
            invariant,
            who,
            format!(
                "{what}: {done} of {} requests answered, none since {:.3} s; the bound was {:.1} s after the last fault healed",
                shared.workload.requests.len(),
                last.as_secs_f64(),
                bound.as_secs_f64()
            ),
        );
    }
    let pct = |q: f64| histogram.value_at_quantile(q);
    let retransmissions = *lock(&shared.retransmissions)
        + shared
            .servers
            .iter()
            .filter_map(|s| lock(&s.capacity).clone())
            .map(|c| lock(&c).retransmissions)
            .sum::<u64>();
    let report = Report {
        seed,
        scenario: scenario.name.clone(),
        workload: shared.workload.name.clone(),
        baseline: options.baseline.is_some(),
        clients: total,
        booted: recorder.booted,
        refused,
        boot_ms: if histogram.is_empty() {
            Percentiles::default()
        } else {
            Percentiles {
                p50: pct(0.5),
                p90: pct(0.9),
                p99: pct(0.99),
                max: histogram.max(),
            }
        },
        discovery_rounds: recorder.discovery_rounds,
        empty_rounds: recorder.empty_rounds,
        reconnects: recorder.reconnects,
        resends: recorder.resends,
        stranded: recorder.nodes.iter().map(|n| n.stranded).sum(),
        stranded_nodes: recorder.nodes.iter().filter(|n| n.stranded > 0).count(),
        stalls,
        longest_stall_ms: longest.as_millis() as u64,
        hung,
        bytes: recorder.bytes,
        datagrams_lost: shared.udp_loss.lost(),
        retransmissions,
        faults: applied,
        violations: recorder.violations.clone(),
        sim_seconds: end.as_secs_f64(),
        steps,
        wall_seconds: 0.0,
        trace_hash: format!("{:016x}", recorder.trace.clone().finish()),
        first_connections: recorder.nodes.iter().map(|n| n.first_connection).collect(),
    };
    Ok(report)
}

/// A node's delay past its scheduled start: real nodes do not power on in step.
fn jitter(rng: &mut SmallRng, max_ms: f64) -> Duration {
    if max_ms <= 0.0 {
        return Duration::ZERO;
    }
    ms(rng.random_range(0.0..max_ms))
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1000.0)
}

/// The longest a node expected to boot may take after the last fault healed (see the
/// module's docs).
pub fn liveness_bound(scenario: &Scenario) -> Duration {
    scenario
        .clients
        .iter()
        .map(|g| {
            let t = g.timings.loader();
            t.reply_timeout
                + t.long_sleep
                + t.collect_window * t.sends_per_round
                + t.connect_timeout
                + Duration::from_secs_f64(scenario.limits.boot_seconds)
        })
        .max()
        .unwrap_or_default()
}

/// The addresses a name stands for.
fn resolve(
    scenario: &Scenario,
    hosts: &[(Ipv4Addr, String)],
    servers: &[Ipv4Addr],
    name: &str,
) -> Vec<Ipv4Addr> {
    if name == "servers" {
        return servers.to_vec();
    }
    if let Some(i) = scenario.servers.iter().position(|s| s.name == name) {
        return vec![servers[i]];
    }
    let group = |g: &str, host: &str| {
        host.strip_prefix(g)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| n.parse::<u32>().is_ok())
    };
    hosts
        .iter()
        .filter(|(_, host)| {
            name == "clients"
                || host == name
                || scenario
                    .clients
                    .iter()
                    .any(|g| g.name == name && group(name, host))
        })
        .map(|(ip, _)| *ip)
        .collect()
}

fn resolve_all(scenario: &Scenario, shared: &Shared, names: &[String]) -> Vec<IpAddr> {
    let servers: Vec<Ipv4Addr> = shared.servers.iter().map(|s| s.ip).collect();
    let mut all = BTreeSet::new();
    for name in names {
        all.extend(resolve(scenario, &shared.hosts, &servers, name));
    }
    all.into_iter().map(IpAddr::V4).collect()
}

/// Whether some server the node queries serves it, with the allow lists as they end.
fn expected_to_boot(shared: &Shared, node: &Node) -> bool {
    let group = &shared.scenario.clients[node.group];
    let ip = shared.hosts[node.host].0;
    let mut allows: Vec<AllowList> = shared
        .servers
        .iter()
        .map(|s| lock(&s.allow).clone())
        .collect();
    for timed in &shared.scenario.faults {
        if let Fault::Allow { server, allow } = &timed.fault {
            if let Some(i) = shared.servers.iter().position(|s| &s.name == server) {
                let servers: Vec<Ipv4Addr> = shared.servers.iter().map(|s| s.ip).collect();
                allows[i] = AllowList::new(allow.iter().flat_map(|e| {
                    match parse_block(e) {
                        Some(b) => vec![b],
                        None => resolve(&shared.scenario, &shared.hosts, &servers, e)
                            .into_iter()
                            .map(|ip| Cidr::new(ip, 32).expect("a /32"))
                            .collect(),
                    }
                }));
            }
        }
    }
    shared.servers.iter().zip(&allows).any(|(server, allow)| {
        let queried = group.servers.is_empty() || group.servers.contains(&server.name);
        let version = match &server.versions {
            Versions::Any => true,
            Versions::Exact(list) => list.contains(&group.erts),
        };
        queried && version && allow.allows(IpAddr::V4(ip))
    })
}

pub(crate) fn node_name(shared: &Shared, node: &Node) -> String {
    format!("{}#{}", shared.hosts[node.host].1, node.index + 1)
}

/// The schedule with flapping links unrolled, in time order (equal times keep file order).
fn expand(scenario: &Scenario) -> Vec<(Duration, Fault)> {
    let mut schedule = Vec::new();
    for timed in &scenario.faults {
        let at = Duration::from_secs_f64(timed.at_s);
        match &timed.fault {
            Fault::Flap {
                a,
                b,
                down_s,
                up_s,
                until_s,
            } => {
                let mut t = timed.at_s;
                while t < *until_s {
                    let (a, b) = (a.clone(), b.clone());
                    schedule.push((
                        Duration::from_secs_f64(t),
                        Fault::Partition {
                            a: a.clone(),
                            b: b.clone(),
                            oneway: false,
                        },
                    ));
                    let up = (t + down_s).min(*until_s);
                    schedule.push((
                        Duration::from_secs_f64(up),
                        Fault::Repair {
                            a,
                            b,
                            oneway: false,
                        },
                    ));
                    t = up + up_s;
                }
            }
            fault => schedule.push((at, fault.clone())),
        }
    }
    schedule.sort_by_key(|(at, _)| *at);
    schedule
}

/// When the last harm of the schedule is put right, if every one is.
fn healed_at(schedule: &[(Duration, Fault)]) -> Option<Duration> {
    let mut harms: BTreeSet<String> = BTreeSet::new();
    let mut last = Duration::ZERO;
    for (at, fault) in schedule {
        let key = |kind: &str, a: &[String], b: &[String]| format!("{kind}:{a:?}:{b:?}");
        match fault {
            Fault::Partition { a, b, oneway } => {
                harms.insert(key(if *oneway { "one" } else { "two" }, a, b));
            }
            Fault::Repair { a, b, oneway } => {
                harms.remove(&key(if *oneway { "one" } else { "two" }, a, b));
                if !oneway {
                    harms.remove(&key("one", a, b));
                    harms.remove(&key("one", b, a));
                }
            }
            Fault::Hold { a, b } => {
                harms.insert(key("hold", a, b));
            }
            Fault::Release { a, b } => {
                harms.remove(&key("hold", a, b));
            }
            Fault::Crash { server } => {
                harms.insert(format!("crash:{server}"));
            }
            Fault::Restart { server, .. } => {
                harms.remove(&format!("crash:{server}"));
            }
            Fault::SlowFile { server, .. } | Fault::FailFile { server, .. } => {
                harms.insert(format!("files:{server}"));
            }
            Fault::HealFiles { server } => {
                harms.remove(&format!("files:{server}"));
            }
            Fault::UdpLoss { rate } if *rate > 0.0 => {
                harms.insert("udp".to_owned());
            }
            Fault::UdpLoss { .. } => {
                harms.remove("udp");
            }
            Fault::TcpLoss { rate } if *rate > 0.0 => {
                harms.insert("tcp".to_owned());
            }
            Fault::TcpLoss { .. } => {
                harms.remove("tcp");
            }
            Fault::Latency { .. } | Fault::Allow { .. } | Fault::Flap { .. } => {}
        }
        last = *at;
    }
    harms.is_empty().then_some(last)
}

/// What applying a fault leaves to the run loop.
#[derive(Default)]
struct Effects {
    /// Links a repair put right, whose held TCP segments flow again at the next retransmission.
    released: Vec<(IpAddr, IpAddr)>,
    /// A server to start again once its software has stopped (after the next step).
    bounce: Option<String>,
}

/// Stops a server's software, as the death of its process does: the kernel closes its sockets.
/// Its driver is told to shut down rather than turmoil's runtime dropped, so that the
/// connections close in the driver's order, which the seed fixes, not in the order of tokio's
/// process-wide task ids.
fn stop(server: &ServerState) {
    if let Some(stop) = lock(&server.stop).take() {
        stop.notify_one();
    }
}

/// Applies `fault`, and says what the run loop must do next.
fn apply(sim: &mut turmoil::Sim<'_>, shared: &Shared, fault: &Fault) -> Effects {
    let scenario = &shared.scenario;
    let pairs = |a: &[String], b: &[String]| {
        let a = resolve_all(scenario, shared, a);
        let b = resolve_all(scenario, shared, b);
        let mut pairs = Vec::new();
        for &x in &a {
            for &y in &b {
                if x != y {
                    pairs.push((x, y));
                }
            }
        }
        pairs
    };
    let server = |name: &str| {
        shared
            .servers
            .iter()
            .find(|s| s.name == name)
            .expect("faults name known servers")
    };
    match fault {
        Fault::Partition { a, b, oneway } => {
            for (x, y) in pairs(a, b) {
                shared.udp_loss.set_cut(v4(x), v4(y), true);
                if *oneway {
                    sim.partition_oneway(x, y);
                } else {
                    shared.udp_loss.set_cut(v4(y), v4(x), true);
                    // TCP segments wait, as a real TCP retransmits them until the link is back.
                    sim.hold(x, y);
                }
            }
        }
        Fault::Repair { a, b, oneway } => {
            let mut released = Vec::new();
            for (x, y) in pairs(a, b) {
                shared.udp_loss.set_cut(v4(x), v4(y), false);
                if *oneway {
                    sim.repair_oneway(x, y);
                } else {
                    shared.udp_loss.set_cut(v4(y), v4(x), false);
                    released.push((x, y));
                }
            }
            return Effects {
                released,
                bounce: None,
            };
        }
        Fault::Hold { a, b } => {
            for (x, y) in pairs(a, b) {
                sim.hold(x, y);
            }
        }
        Fault::Release { a, b } => {
            for (x, y) in pairs(a, b) {
                sim.release(x, y);
            }
        }
        Fault::Latency { a, b, ms: range } => {
            for (x, y) in pairs(a, b) {
                sim.set_link_latency(x, y, ms(range[0]));
                sim.set_link_max_message_latency(x, y, ms(range[1]));
            }
        }
        Fault::Flap { .. } => unreachable!("flaps are unrolled into partitions and repairs"),
        Fault::UdpLoss { rate } => shared.udp_loss.set_rate(*rate),
        Fault::TcpLoss { rate } => {
            *lock(&shared.tcp_loss) = *rate;
            for s in &shared.servers {
                if let Some(capacity) = lock(&s.capacity).as_ref() {
                    lock(capacity).set_tcp_loss(*rate);
                }
            }
        }
        Fault::Crash { server: name } => {
            let s = server(name);
            *lock(&s.control) = None;
            stop(s);
        }
        Fault::Restart { server: name, port } => {
            let s = server(name);
            if let Some(port) = port {
                *lock(&s.port) = *port;
            }
            *lock(&s.control) = None;
            if let Some(Planted::StaleFileAfterRestart { server, path }) = &scenario.planted {
                if server == name {
                    let stale = stale_copy(shared, path);
                    s.files.set_fault(path, FileFault::Stale(stale));
                }
            }
            stop(s);
            return Effects {
                bounce: Some(name.clone()),
                ..Effects::default()
            };
        }
        Fault::SlowFile {
            server: name,
            path,
            delay_ms,
        } => server(name)
            .files
            .set_fault(path, FileFault::Slow(Duration::from_millis(*delay_ms))),
        Fault::FailFile { server: name, path } => server(name)
            .files
            .set_fault(path, FileFault::Fail(erlboot::server::FileError::Io)),
        Fault::HealFiles { server: name } => server(name).files.heal(),
        Fault::Allow {
            server: name,
            allow,
        } => {
            let s = server(name);
            let servers: Vec<Ipv4Addr> = shared.servers.iter().map(|s| s.ip).collect();
            let list = AllowList::new(allow.iter().flat_map(|e| {
                match parse_block(e) {
                    Some(b) => vec![b],
                    None => resolve(scenario, &shared.hosts, &servers, e)
                        .into_iter()
                        .map(|ip| Cidr::new(ip, 32).expect("a /32"))
                        .collect(),
                }
            }));
            *lock(&s.allow) = list.clone();
            if let Some(control) = lock(&s.control).as_ref() {
                control.set_allow(list);
            }
        }
    }
    Effects::default()
}

/// How long after a link is back a real TCP sends again: its retransmission timer, started at
/// the first lost segment, doubles from [`RTO_MIN`] (capped at 120 s, as Linux's `TCP_RTO_MAX`);
/// the first retransmission after an outage of `outage` comes at the first expiry past it.
pub fn retransmission_after(outage: Duration, rtt: Duration) -> Duration {
    let mut rto = RTO_MIN.max(rtt * 3);
    let mut at = rto;
    while at < outage {
        rto = (rto * 2).min(Duration::from_secs(120));
        at += rto;
    }
    at - outage
}

/// The links a two-way partition cuts, as [`apply`] orders them.
fn link_pairs(shared: &Shared, fault: &Fault) -> Vec<(IpAddr, IpAddr)> {
    let Fault::Partition { a, b, .. } = fault else {
        return Vec::new();
    };
    let a = resolve_all(&shared.scenario, shared, a);
    let b = resolve_all(&shared.scenario, shared, b);
    let mut pairs = Vec::new();
    for &x in &a {
        for &y in &b {
            if x != y {
                pairs.push((x, y));
            }
        }
    }
    pairs
}

/// An older version of a file: the same length, one byte changed in the middle.
fn stale_copy(shared: &Shared, path: &str) -> Bytes {
    let mut bytes = shared
        .workload
        .source
        .get(path)
        .unwrap_or_default()
        .to_vec();
    let middle = bytes.len() / 2;
    if let Some(middle) = bytes.get_mut(middle) {
        *middle ^= 0x5a;
    }
    Bytes::from(bytes)
}

fn check_resources(shared: &Shared, at: Duration) {
    for s in &shared.servers {
        let open = lock(&s.control).as_ref().map(Control::open_connections);
        if let Some(open) = open {
            if open > s.limits.max_connections {
                shared.recorder().violation(
                    at,
                    "resources",
                    s.name.clone(),
                    format!(
                        "{open} connections open, the limit is {}",
                        s.limits.max_connections
                    ),
                );
            }
        }
    }
}

/// A boot server's software: erlboot's server driver, as `erlboot serve` runs it.
async fn serve(shared: Arc<Shared>, i: usize) -> turmoil::Result {
    let state = &shared.servers[i];
    let spec = &shared.scenario.servers[i];
    let incarnation = {
        let mut n = lock(&state.incarnation);
        *n += 1;
        *n
    };
    let capacity = Arc::new(Mutex::new(Capacity::new(
        spec.capacity.costs(),
        shared.links_mbit(i),
        *lock(&shared.tcp_loss),
        shared.rtt,
        shared.seed ^ ((i as u64) << 32) ^ incarnation,
    )));
    if let Some(old) = lock(&state.capacity).replace(Arc::clone(&capacity)) {
        *lock(&shared.retransmissions) += lock(&old).retransmissions;
    }
    let files = state.files.clone();
    let config = ServerConfig {
        tcp: SocketAddr::from((Ipv4Addr::UNSPECIFIED, *lock(&state.port))),
        udp: Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, DISCOVERY))),
        allow: lock(&state.allow).clone(),
        versions: state.versions.clone(),
        session: SessionConfig::default(),
        connections: state.limits,
        // As `erlboot serve` runs: most replies come from the reply cache. Every reply, from
        // the cache or the files, is paid for on the capacity as it is written.
        reply_cache_bytes: ServerConfig::DEFAULT_CACHE_BYTES,
    };
    let runtime = TurmoilRuntime::new()
        .with_udp_loss(Arc::clone(&shared.udp_loss), state.ip)
        .with_wakeups(Arc::clone(&shared.wakeups))
        .with_capacity(capacity)
        .with_whole_frames(Arc::clone(&shared.whole_frames));
    let server = Server::bind(runtime, config, files).await?;
    *lock(&state.control) = Some(server.control());
    let stop = Arc::new(tokio::sync::Notify::new());
    *lock(&state.stop) = Some(Arc::clone(&stop));
    server.run(async move { stop.notified().await }).await;
    Ok(())
}

/// One node's boot: erlboot's client driver, as `erlboot fetch` runs it, asking the
/// workload's requests in order.
async fn boot(shared: Arc<Shared>, id: usize) {
    let (start, group, host) = {
        let r = shared.recorder();
        let n = &r.nodes[id];
        (n.start, n.group, n.host)
    };
    sleep(&shared, start.saturating_sub(now())).await;
    let spec = &shared.scenario.clients[group];
    let queried: Vec<Ipv4Addr> = shared
        .servers
        .iter()
        .filter(|s| spec.servers.is_empty() || spec.servers.contains(&s.name))
        .map(|s| s.ip)
        .collect();
    // OTP 25's flaws, or erlboot's own loader without them.
    let (dead_connection, ignored) = match spec.behaviour {
        Behaviour::Otp => (DeadConnection::Kept, Ignored::UntilConnected),
        Behaviour::Erlboot => (DeadConnection::Forgotten, Ignored::OneRound),
    };
    let config = LoaderConfig {
        timings: spec.timings.loader(),
        dead_connection,
        ignored,
        ..LoaderConfig::new(queried, spec.erts.as_bytes())
    };
    let runtime = TurmoilRuntime::new()
        .with_udp_loss(Arc::clone(&shared.udp_loss), shared.hosts[host].0)
        .with_wakeups(Arc::clone(&shared.wakeups));
    let profile = config.profile;
    let client = Client::new(runtime, config).with_memo(Arc::clone(&shared.replies));
    {
        let t = now();
        let mut r = shared.recorder();
        r.nodes[id].started = Some(t);
        r.nodes[id].last_progress = t;
        r.trace(t, id, 1);
    }
    let ip = IpAddr::V4(shared.hosts[host].0);
    Booting {
        index: 0,
        phase: Phase::Think,
        owed: Duration::ZERO,
        profile,
        workload: Arc::clone(&shared.workload),
        shared,
        id,
        ip,
        client,
        think: None,
    }
    .await;
}

/// A node's boot from its first request on: each request's think time slept, the request
/// asked through the client driver, the reply recorded and checked.
///
/// One flat state machine rather than a loop of nested async calls: a herd holds thousands
/// of nodes, each cold in the cache by its turn, and a wake-up then reads a few lines, the
/// loop's place first and then the client (`repr(C)`).
#[repr(C)]
struct Booting {
    index: usize,
    phase: Phase,
    owed: Duration,
    /// Whose encoding the node's requests have.
    profile: Profile,
    workload: Arc<Workload>,
    shared: Arc<Shared>,
    id: usize,
    ip: IpAddr,
    client: Client<TurmoilRuntime>,
    /// What the node sleeps its think time on, made at its first sleep and moved for each
    /// later one (only requests after a gap of a millisecond or more sleep at all).
    think: Option<SimTimer>,
}

/// Where a node is with its request `index`.
enum Phase {
    /// Its think time is still to be added to what is owed.
    Think,
    /// Sleeping what was owed, once it came to a millisecond or more.
    Thinking,
    /// Waiting for the client to finish its actions before the request is sent.
    Ready,
    /// Sent: waiting for the reply.
    Asked,
}

impl Future for Booting {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let b = self.get_mut();
        loop {
            let index = b.index;
            if index == b.workload.requests.len() {
                b.shared.recorder().finish(now(), b.id);
                return Poll::Ready(());
            }
            let reply = match &mut b.phase {
                Phase::Think => {
                    // As `think` adds it up and sleeps it.
                    b.owed += b.workload.think[index];
                    if b.owed >= THINK_MIN {
                        let now = b.client.now();
                        let at = now + std::mem::take(&mut b.owed);
                        SimTimer::arm(&mut b.think, at, now, || {
                            think_timer(&b.shared, b.client.runtime(), at)
                        });
                        b.phase = Phase::Thinking;
                    } else {
                        b.phase = Phase::Ready;
                        b.begin(index);
                    }
                    continue;
                }
                Phase::Thinking => {
                    let timer = b.think.as_mut().expect("a thinking node has its timer");
                    ready!(Pin::new(timer).poll(cx));
                    b.phase = Phase::Ready;
                    b.begin(index);
                    continue;
                }
                Phase::Ready => {
                    ready!(b.client.poll_ready(cx));
                    match b.client.send_encoded(&b.workload.encoded(b.profile)[index]) {
                        Ok(()) => {
                            b.phase = Phase::Asked;
                            continue;
                        }
                        Err(error) => Err(error),
                    }
                }
                Phase::Asked => ready!(b.client.poll_reply(cx, None)),
            };
            if !b.record(index, reply) {
                return Poll::Ready(());
            }
            b.index += 1;
            b.phase = Phase::Think;
        }
    }
}

impl Booting {
    /// Request `index` is about to be asked. A boot script's primLoad is one get_modules
    /// call (refused only before the first connection, when no call can have begun).
    fn begin(&mut self, index: usize) {
        if self.workload.module_calls.iter().any(|c| c.start == index) {
            let _ = self.client.begin_modules();
        }
    }

    /// Records the answer to request `index`: whether the boot goes on.
    fn record(
        &mut self,
        index: usize,
        reply: Result<Result<Response, ReplyError>, CallError>,
    ) -> bool {
        let Booting {
            workload,
            shared,
            id,
            ip,
            client,
            ..
        } = self;
        let (id, ip) = (*id, *ip);
        if workload.module_calls.iter().any(|c| c.end == index + 1) {
            let _ = client.end_modules();
        }
        let t = now();
        let events = client.take_events();
        let mut r = shared.recorder();
        for (_, event) in &events {
            note_event(shared, &mut r, id, ip, t, event);
        }
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                let who = node_name(shared, &r.nodes[id]);
                r.violation(
                    t,
                    "safety",
                    who,
                    format!("request {index} refused: {error}"),
                );
                return false;
            }
        };
        check_reply(shared, &mut r, id, index, t, &reply);
        true
    }
}

fn note_event(shared: &Shared, r: &mut Recorder, id: usize, ip: IpAddr, t: Duration, e: &Event) {
    let code = match e {
        Event::NoServerFound { .. } => {
            r.discovery_rounds += 1;
            r.empty_rounds += 1;
            10
        }
        Event::Discovered { .. } => {
            r.discovery_rounds += 1;
            r.nodes[id].discovered = t;
            11
        }
        Event::ConnectFailed { .. } => 12,
        Event::Connected { server, .. } => {
            let node = &mut r.nodes[id];
            node.connects += 1;
            let reconnect = node.connects > 1;
            let index = shared
                .servers
                .iter()
                .position(|s| s.ip == *server.addr.ip());
            node.allowed = index.is_some_and(|i| lock(&shared.servers[i].allow).allows(ip));
            if let (None, Some(server)) = (node.first_connection, index) {
                node.first_connection = Some(FirstConnection {
                    at: node.discovered,
                    server,
                });
            }
            if reconnect {
                r.reconnects += 1;
            }
            13
        }
        Event::Resending { .. } => {
            r.resends += 1;
            14
        }
        Event::IdleClosed { .. } => 15,
        Event::Lost { .. } => 16,
        Event::Abandoned { .. } => 17,
        Event::Reply(_) => 18,
        Event::Stranded { .. } => {
            r.nodes[id].stranded += 1;
            19
        }
    };
    r.trace(t, id, code);
}

/// The node works as long as the recorded one did before its next request. Gaps shorter than
/// a millisecond are added up, and slept once they make one, rather than each costing a timer:
/// on `timer`, made at the first sleep and moved for each later one, as a booting node's.
pub(crate) async fn think(
    shared: &Shared,
    runtime: &TurmoilRuntime,
    timer: &mut Option<SimTimer>,
    owed: &mut Duration,
    gap: Duration,
) {
    *owed += gap;
    if *owed >= THINK_MIN {
        let now = runtime.now();
        let at = now + std::mem::take(owed);
        SimTimer::arm(timer, at, now, || think_timer(shared, runtime, at)).await;
    }
}

/// The least think time slept; less is owed until it adds up to this.
const THINK_MIN: Duration = Duration::from_millis(1);

/// A node's timer for its think time, first due at `at`: due in the world's wake-ups unless
/// the planted defect hides it.
fn think_timer(shared: &Shared, runtime: &TurmoilRuntime, at: erlboot::time::Instant) -> SimTimer {
    match shared.scenario.planted {
        Some(Planted::UnregisteredSleep) => runtime.unregistered_timer(at),
        _ => runtime.timer(at),
    }
}

/// Sleeps `duration` of simulated time, due in the world's wake-ups.
pub(crate) async fn sleep(shared: &Shared, duration: Duration) {
    crate::wakeups::sleep(Some(&shared.wakeups), duration).await;
}

/// Safety: the reply is the server's answer to this very request, and reached an allowed
/// node.
fn check_reply(
    shared: &Shared,
    r: &mut Recorder,
    id: usize,
    index: usize,
    t: Duration,
    reply: &Result<Response, ReplyError>,
) {
    let expected = &shared.workload.expected[index];
    r.bytes += shared.workload.reply_frames[index].len() as u64;
    if reply != expected && !failed_read(shared, index, reply) {
        let who = node_name(shared, &r.nodes[id]);
        let request = &shared.workload.requests[index];
        let contents = |reply: &Result<Response, ReplyError>| match reply {
            Ok(Response::File(contents)) => contents.binary(),
            _ => None,
        };
        let event = match (contents(reply), contents(expected)) {
            (Some(got), Some(want)) => format!(
                "request {index} ({request:?}): {} bytes received differ from the server's file ({} bytes, hash {:016x} against {:016x})",
                got.len(),
                want.len(),
                quick_hash(&got),
                quick_hash(&want)
            ),
            _ => format!("request {index} ({request:?}) answered {reply:?}"),
        };
        r.violation(t, "safety", who, event);
    }
    if !r.nodes[id].allowed {
        let who = node_name(shared, &r.nodes[id]);
        r.violation(
            t,
            "safety",
            who,
            format!("request {index} answered on a connection its allow list refused"),
        );
    }
    let node = &mut r.nodes[id];
    let quiet = t.saturating_sub(node.last_progress);
    node.last_progress = t;
    node.done = index + 1;
    if quiet >= STALL {
        r.stalls += 1;
        r.longest_stall = r.longest_stall.max(quiet);
    }
    r.trace(t, id, 100 + index as u64);
}

/// Whether `reply` is the `eio` of a read some server is told to fail: the server's true
/// answer at the time.
fn failed_read(shared: &Shared, index: usize, reply: &Result<Response, ReplyError>) -> bool {
    let Err(ReplyError::Server(reason)) = reply else {
        return false;
    };
    let name = match &shared.workload.requests[index] {
        erlboot::proto::Request::Get(name)
        | erlboot::proto::Request::ListDir(name)
        | erlboot::proto::Request::ReadFileInfo(name)
        | erlboot::proto::Request::ReadLinkInfo(name) => name,
        _ => return false,
    };
    reason.as_atom() == Some("eio") && shared.servers.iter().any(|s| s.files.fails(name))
}

/// A hash of contents for messages: the length and 64 words spread over them.
fn quick_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write_usize(bytes.len());
    let step = (bytes.len() / 64).max(1);
    for chunk in bytes.iter().step_by(step) {
        h.write_u8(*chunk);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn after_an_outage_tcp_sends_again_at_its_next_doubled_timeout() {
        let rtt = Duration::from_millis(1);
        // Timeouts at 0.2, 0.6, 1.4, 3.0, 6.2 s after the first loss.
        assert_eq!(retransmission_after(s(0.1), rtt), s(0.1));
        assert_eq!(retransmission_after(s(1.0), rtt), s(0.4));
        assert_eq!(retransmission_after(s(5.0), rtt), s(1.2));
    }

    #[test]
    fn the_world_heals_when_every_harm_is_undone() {
        let link = |f: fn(Vec<String>, Vec<String>) -> Fault| f(vec!["a".into()], vec!["b".into()]);
        let cut = link(|a, b| Fault::Partition {
            a,
            b,
            oneway: false,
        });
        let mend = link(|a, b| Fault::Repair {
            a,
            b,
            oneway: false,
        });
        let crash = Fault::Crash { server: "x".into() };
        let back = Fault::Restart {
            server: "x".into(),
            port: None,
        };
        assert_eq!(
            healed_at(&[(s(1.0), cut.clone()), (s(5.0), mend.clone())]),
            Some(s(5.0))
        );
        assert_eq!(healed_at(&[(s(1.0), cut.clone())]), None);
        assert_eq!(
            healed_at(&[
                (s(1.0), cut),
                (s(2.0), crash),
                (s(3.0), mend),
                (s(4.0), back)
            ]),
            Some(s(4.0))
        );
    }

    #[test]
    fn the_liveness_bound_is_otps_timings_plus_a_boot() {
        let scenario = Scenario::builtin("default").unwrap();
        assert_eq!(liveness_bound(&scenario), s(196.5));
    }
}
