//! A scenario: the world to simulate (boot servers, client farms, the network), what goes wrong
//! in it and when, and how long to run — as a TOML file.
//!
//! The scenarios shipped in `sim/scenarios/` are compiled in and found by name
//! ([`Scenario::builtin`]); any other file is read with [`Scenario::from_toml`].

use std::net::Ipv4Addr;
use std::time::Duration;

use erlboot::client::LoaderTimings;
use erlboot::server::Cidr;
use serde::{Deserialize, Serialize};

use crate::capacity::Preset;
use crate::fault::Fault;

/// The scenarios in `sim/scenarios/`, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../scenarios/default.toml")),
    ("steady-1000", include_str!("../scenarios/steady-1000.toml")),
    ("herd-10000", include_str!("../scenarios/herd-10000.toml")),
    (
        "rolling-partitions",
        include_str!("../scenarios/rolling-partitions.toml"),
    ),
    (
        "flapping-link",
        include_str!("../scenarios/flapping-link.toml"),
    ),
    (
        "lossy-discovery",
        include_str!("../scenarios/lossy-discovery.toml"),
    ),
    (
        "server-restart",
        include_str!("../scenarios/server-restart.toml"),
    ),
    ("failover", include_str!("../scenarios/failover.toml")),
    (
        "denied-subnet",
        include_str!("../scenarios/denied-subnet.toml"),
    ),
    (
        "mixed-versions",
        include_str!("../scenarios/mixed-versions.toml"),
    ),
    ("slow-disk", include_str!("../scenarios/slow-disk.toml")),
    ("lossy-tcp", include_str!("../scenarios/lossy-tcp.toml")),
];

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not valid TOML, or not a scenario.
    #[error("scenario {name}: {source}")]
    Parse {
        /// The scenario's name or file.
        name: String,
        /// What the TOML reader found.
        source: Box<toml::de::Error>,
    },
    /// No scenario of that name is built in.
    #[error("no scenario named {0:?} (built in: {list})", list = builtin_names().join(", "))]
    Unknown(String),
    /// Well-formed, but it does not describe a world that can run.
    #[error("scenario {name}: {reason}")]
    Invalid {
        /// The scenario's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// The names of the built-in scenarios.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

/// A world, its faults and its limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the reports call it.
    pub name: String,
    /// What it shows, for the reader of the file.
    #[serde(default)]
    pub description: String,
    /// The seed a run uses unless told another.
    #[serde(default)]
    pub seed: u64,
    /// The boot servers.
    pub servers: Vec<ServerSpec>,
    /// The booting nodes.
    pub clients: Vec<ClientGroup>,
    /// Latencies, bandwidth, losses.
    #[serde(default)]
    pub network: Network,
    /// What goes wrong, and when.
    #[serde(default)]
    pub faults: Vec<Timed>,
    /// When to stop.
    #[serde(default)]
    pub limits: Limits,
    /// A server bug planted on purpose, so that tests see the invariants catch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted: Option<Planted>,
}

/// One boot server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Its host name (and the name faults use).
    pub name: String,
    /// Who may discover it and connect (`erl_boot_server:start/1`'s list): address blocks
    /// (`a.b.c.d/n`), hosts or groups by name, `clients` for every group.
    #[serde(default = "everyone")]
    pub allow: Vec<String>,
    /// ERTS versions whose queries it answers; empty: any.
    #[serde(default)]
    pub erts: Vec<String>,
    /// How fast it works.
    #[serde(default)]
    pub capacity: Preset,
    /// The TCP port it listens on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The time every file read takes, in milliseconds (a disk); a reply from the server's
    /// reply cache reads nothing.
    #[serde(default)]
    pub disk_ms: f64,
    /// Its link's bandwidth in Mbit/s, where it differs from the network's.
    #[serde(default)]
    pub bandwidth_mbit: Option<f64>,
    /// Open connections at most (erlboot's default unless set).
    #[serde(default)]
    pub max_connections: Option<usize>,
}

fn everyone() -> Vec<String> {
    vec!["0.0.0.0/0".to_owned()]
}

fn default_port() -> u16 {
    4369
}

/// Nodes alike, spread over `hosts` simulated hosts (client farms: turmoil's cost grows with
/// hosts, not with the tasks on them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientGroup {
    /// The group's name; its hosts are `NAME-1`, `NAME-2`, ...
    pub name: String,
    /// Simulated hosts.
    pub hosts: u32,
    /// Nodes on each host.
    pub clients_per_host: u32,
    /// The ERTS version the nodes announce in discovery.
    #[serde(default = "default_erts")]
    pub erts: String,
    /// Whose loader behaviour the nodes have.
    #[serde(default)]
    pub behaviour: Behaviour,
    /// Loader timings in milliseconds where they differ from OTP's.
    #[serde(default)]
    pub timings: Timings,
    /// When the nodes start.
    #[serde(default)]
    pub start: Start,
    /// Each node starts up to this many milliseconds after its time in `start`, drawn from
    /// the seed.
    #[serde(default = "default_jitter")]
    pub jitter_ms: f64,
    /// The servers the nodes query (`-hosts`); empty: every server.
    #[serde(default)]
    pub servers: Vec<String>,
}

fn default_jitter() -> f64 {
    20.0
}

fn default_erts() -> String {
    "13.1.5".to_owned()
}

/// Whose loader the simulated nodes run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// OTP 25's `erl_prim_loader`, flaws included (erlboot's `Loader` with OTP's timings).
    #[default]
    Otp,
    /// erlboot's own loader behaviour.
    Erlboot,
}

/// Loader timings that differ from OTP's, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    /// The discovery collect window.
    pub collect_window_ms: Option<u64>,
    /// The sleep after a round without an answer.
    pub short_sleep_ms: Option<u64>,
    /// The sleep after ten such rounds.
    pub long_sleep_ms: Option<u64>,
    /// How long a connect may take.
    pub connect_timeout_ms: Option<u64>,
    /// How long a reply may take.
    pub reply_timeout_ms: Option<u64>,
    /// How long a connection may stay unused.
    pub idle_timeout_ms: Option<u64>,
}

impl Timings {
    /// OTP's timings with these changes.
    pub fn loader(&self) -> LoaderTimings {
        let otp = LoaderTimings::otp();
        let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
        LoaderTimings {
            collect_window: ms(self.collect_window_ms, otp.collect_window),
            short_sleep: ms(self.short_sleep_ms, otp.short_sleep),
            long_sleep: ms(self.long_sleep_ms, otp.long_sleep),
            connect_timeout: ms(self.connect_timeout_ms, otp.connect_timeout),
            reply_timeout: ms(self.reply_timeout_ms, otp.reply_timeout),
            idle_timeout: ms(self.idle_timeout_ms, otp.idle_timeout),
            ..otp
        }
    }
}

/// When a group's nodes start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Start {
    /// All at the same instant.
    Once {
        /// Seconds into the run.
        #[serde(default)]
        at_s: f64,
    },
    /// Evenly spread over a time.
    Ramp {
        /// Seconds into the run the first starts.
        #[serde(default)]
        from_s: f64,
        /// Seconds until the last starts.
        over_s: f64,
    },
    /// In equal waves, each all at once.
    Waves {
        /// Seconds into the run the first wave starts.
        #[serde(default)]
        from_s: f64,
        /// How many waves.
        waves: u32,
        /// Seconds between waves.
        every_s: f64,
    },
}

impl Default for Start {
    fn default() -> Start {
        Start::Once { at_s: 0.0 }
    }
}

impl Start {
    /// When node `index` of `count` starts.
    pub fn at(&self, index: usize, count: usize) -> Duration {
        let secs = match *self {
            Start::Once { at_s } => at_s,
            Start::Ramp { from_s, over_s } => {
                from_s + over_s * index as f64 / count.saturating_sub(1).max(1) as f64
            }
            Start::Waves {
                from_s,
                waves,
                every_s,
            } => {
                let per_wave = count.div_ceil(waves.max(1) as usize).max(1);
                from_s + every_s * (index / per_wave) as f64
            }
        };
        Duration::from_secs_f64(secs.max(0.0))
    }
}

/// The network between the hosts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Each message's one-way latency is drawn from this range, in milliseconds (turmoil draws
    /// whole milliseconds above the low end, and delivers on ticks).
    #[serde(default = "default_latency")]
    pub latency_ms: [f64; 2],
    /// Latencies of particular links (between hosts or groups of hosts).
    #[serde(default)]
    pub links: Vec<Link>,
    /// The bandwidth of each server host's link, in Mbit/s.
    #[serde(default = "default_bandwidth")]
    pub bandwidth_mbit: f64,
    /// The bandwidth of each node's own link, in Mbit/s (a farm host stands for many nodes,
    /// each on a link of its own).
    #[serde(default = "default_bandwidth")]
    pub node_bandwidth_mbit: f64,
    /// The simulation's time step, in milliseconds.
    #[serde(default = "default_tick")]
    pub tick_ms: f64,
    /// The share of UDP datagrams lost, each drawn from the seed.
    #[serde(default)]
    pub udp_loss: f64,
    /// The share of TCP segments lost (each arrives late by a retransmission timeout).
    #[serde(default)]
    pub tcp_loss: f64,
}

/// turmoil draws latency as `low + whole ms of (high - low) × Exp(5)`: with this range two thirds
/// of the messages take the low end and the rest one or more milliseconds more, so that
/// answers racing each other arrive in either order.
fn default_latency() -> [f64; 2] {
    [0.5, 5.5]
}

fn default_bandwidth() -> f64 {
    1000.0
}

fn default_tick() -> f64 {
    1.0
}

impl Default for Network {
    fn default() -> Network {
        Network {
            latency_ms: default_latency(),
            links: Vec::new(),
            bandwidth_mbit: default_bandwidth(),
            node_bandwidth_mbit: default_bandwidth(),
            tick_ms: default_tick(),
            udp_loss: 0.0,
            tcp_loss: 0.0,
        }
    }
}

/// A link's own latency range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Hosts, groups or servers on one end.
    pub a: Vec<String>,
    /// Hosts, groups or servers on the other end.
    pub b: Vec<String>,
    /// The latency range, in milliseconds.
    pub latency_ms: [f64; 2],
}

/// A fault and when it happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    /// Seconds into the run.
    pub at_s: f64,
    /// What happens.
    #[serde(flatten)]
    pub fault: Fault,
}

/// When a run stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Simulated seconds at most.
    #[serde(default = "default_sim_seconds")]
    pub sim_seconds: f64,
    /// How long a boot may take in this world without faults, in seconds: the load-dependent
    /// part of the liveness bound.
    #[serde(default = "default_boot_seconds")]
    pub boot_seconds: f64,
}

fn default_sim_seconds() -> f64 {
    900.0
}

fn default_boot_seconds() -> f64 {
    60.0
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            sim_seconds: default_sim_seconds(),
            boot_seconds: default_boot_seconds(),
        }
    }
}

/// A server bug planted on purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "bug", deny_unknown_fields)]
pub enum Planted {
    /// After a restart the named server serves an older version of `path`.
    StaleFileAfterRestart {
        /// The server.
        server: String,
        /// The file.
        path: String,
    },
    /// The nodes sleep between requests without registering the wake-up with the world: a
    /// defect of the simulator itself, which stepping over quiet stretches must not hide.
    UnregisteredSleep,
}

impl Scenario {
    /// A built-in scenario by name.
    pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ScenarioError::Unknown(name.to_owned()))?;
        Scenario::from_toml(name, text)
    }

    /// A scenario from TOML text; `name` is what errors call it.
    pub fn from_toml(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            name: name.to_owned(),
            source: Box::new(e),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Nodes in all groups.
    pub fn clients(&self) -> usize {
        self.clients
            .iter()
            .map(|g| g.hosts as usize * g.clients_per_host as usize)
            .sum()
    }

    /// The same world with about `total` nodes: each group keeps its share, on no more hosts
    /// than it had (fewer when it has fewer nodes than hosts).
    pub fn scaled_to(&self, total: usize) -> Scenario {
        let mut scaled = self.clone();
        let now = self.clients().max(1);
        for group in &mut scaled.clients {
            let had = group.hosts as usize * group.clients_per_host as usize;
            let wanted = (had * total).div_ceil(now).max(1);
            let per_host = wanted.div_ceil(group.hosts as usize).max(1);
            group.clients_per_host = per_host as u32;
            group.hosts = wanted.div_ceil(per_host) as u32;
        }
        scaled
    }

    fn invalid(&self, reason: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            name: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if self.servers.is_empty() {
            return Err(self.invalid("no servers"));
        }
        if self.clients.is_empty() {
            return Err(self.invalid("no client groups"));
        }
        let mut names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        names.extend(self.clients.iter().map(|g| g.name.as_str()));
        let mut sorted = names.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(self.invalid(format!("the name {:?} is used twice", w[0])));
        }
        for name in &names {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.invalid(format!(
                    "name {name:?}: use letters, digits and _ (hosts are NAME-1, NAME-2, ...)"
                )));
            }
        }
        for server in &self.servers {
            for entry in &server.allow {
                if !self.knows(entry) && parse_block(entry).is_none() {
                    return Err(self.invalid(format!(
                        "server {}: allow entry {entry:?} is neither an address block (a.b.c.d/n) nor a host or group",
                        server.name
                    )));
                }
            }
            if server
                .bandwidth_mbit
                .is_some_and(|b| !(b > 0.0 && b.is_finite()))
            {
                return Err(self.invalid(format!(
                    "server {}: bandwidth_mbit must be > 0",
                    server.name
                )));
            }
            if !(server.disk_ms >= 0.0 && server.disk_ms.is_finite()) {
                return Err(self.invalid(format!("server {}: disk_ms must be >= 0", server.name)));
            }
        }
        for group in &self.clients {
            if !(group.jitter_ms >= 0.0 && group.jitter_ms <= 3_600_000.0) {
                return Err(self.invalid(format!("group {}: jitter_ms must be >= 0", group.name)));
            }
            if group.hosts == 0 || group.clients_per_host == 0 {
                return Err(self.invalid(format!("group {}: no clients", group.name)));
            }
            if group.clients_per_host > 10_000 {
                return Err(self.invalid(format!(
                    "group {}: at most 10,000 clients per host (each needs ephemeral ports)",
                    group.name
                )));
            }
            for server in &group.servers {
                if !self.servers.iter().any(|s| &s.name == server) {
                    return Err(
                        self.invalid(format!("group {}: no server named {server}", group.name))
                    );
                }
            }
        }
        let net = &self.network;
        let [lo, hi] = net.latency_ms;
        if !(lo >= 0.0 && lo <= hi && hi.is_finite()) {
            return Err(
                self.invalid("network.latency_ms must be [low, high] with 0 <= low <= high")
            );
        }
        if !(net.tick_ms > 0.0 && net.tick_ms <= 100.0) {
            return Err(self.invalid("network.tick_ms must be in (0, 100]"));
        }
        if !(net.bandwidth_mbit > 0.0 && net.bandwidth_mbit.is_finite()) {
            return Err(self.invalid("network.bandwidth_mbit must be > 0"));
        }
        if !(net.node_bandwidth_mbit > 0.0 && net.node_bandwidth_mbit.is_finite()) {
            return Err(self.invalid("network.node_bandwidth_mbit must be > 0"));
        }
        for (what, rate) in [("udp_loss", net.udp_loss), ("tcp_loss", net.tcp_loss)] {
            if !(0.0..=0.5).contains(&rate) {
                return Err(self.invalid(format!("network.{what} must be in [0, 0.5]")));
            }
        }
        if !(self.limits.sim_seconds > 0.0 && self.limits.sim_seconds <= 86_400.0) {
            return Err(self.invalid("limits.sim_seconds must be in (0, 86400]"));
        }
        for timed in &self.faults {
            if !(timed.at_s >= 0.0 && timed.at_s.is_finite()) {
                return Err(self.invalid("a fault's at_s must be >= 0"));
            }
            timed
                .fault
                .check(self)
                .map_err(|reason| self.invalid(reason))?;
        }
        Ok(())
    }

    /// Whether `name` is a server, a group or one group's host.
    pub fn knows(&self, name: &str) -> bool {
        self.servers.iter().any(|s| s.name == name)
            || self.clients.iter().any(|g| {
                g.name == name
                    || name
                        .strip_prefix(&g.name)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|n| n >= 1 && n <= g.hosts)
            })
            || name == "servers"
            || name == "clients"
    }
}

/// An address block from its text form: `a.b.c.d/n` or one address.
pub fn parse_block(text: &str) -> Option<Cidr> {
    text.parse::<Cidr>().ok().or_else(|| {
        text.parse::<Ipv4Addr>()
            .ok()
            .and_then(|ip| Cidr::new(ip, 32))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
name = "one"
[[servers]]
name = "boot"
[[clients]]
name = "rack"
hosts = 4
clients_per_host = 25
"#;

    fn reason(text: &str) -> String {
        match Scenario::from_toml("t", text) {
            Err(ScenarioError::Invalid { reason, .. }) => reason,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn every_builtin_scenario_reads() {
        for name in builtin_names() {
            let scenario = Scenario::builtin(name).unwrap();
            assert_eq!(scenario.name, name);
        }
        assert!(matches!(
            Scenario::builtin("nope"),
            Err(ScenarioError::Unknown(_))
        ));
    }

    #[test]
    fn starts_spread_as_the_schedule_says() {
        let s = |ms: u64| Duration::from_millis(ms);
        assert_eq!(Start::Once { at_s: 2.0 }.at(7, 10), s(2000));
        let ramp = Start::Ramp {
            from_s: 1.0,
            over_s: 9.0,
        };
        assert_eq!((ramp.at(0, 10), ramp.at(9, 10)), (s(1000), s(10_000)));
        let waves = Start::Waves {
            from_s: 0.0,
            waves: 3,
            every_s: 30.0,
        };
        let at: Vec<_> = (0..9).map(|i| waves.at(i, 9).as_secs()).collect();
        assert_eq!(at, [0, 0, 0, 30, 30, 30, 60, 60, 60]);
    }

    #[test]
    fn scaling_keeps_the_shares_and_the_farms() {
        let one = Scenario::from_toml("one", ONE).unwrap();
        assert_eq!(one.clients(), 100);
        let big = one.scaled_to(10_000);
        assert_eq!(
            (big.clients[0].hosts, big.clients[0].clients_per_host),
            (4, 2500)
        );
        let small = one.scaled_to(3);
        assert_eq!(
            (small.clients[0].hosts, small.clients[0].clients_per_host),
            (3, 1)
        );
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_reason() {
        assert!(reason(&ONE.replace("hosts = 4", "hosts = 0")).contains("no clients"));
        assert!(reason(&ONE.replace("name = \"rack\"", "name = \"boot\"")).contains("used twice"));
        assert!(reason(&format!("{ONE}[network]\nlatency_ms = [5.0, 1.0]\n")).contains("latency"));
        assert!(reason(&format!("{ONE}[network]\nudp_loss = 0.9\n")).contains("udp_loss"));
        assert!(
            reason(&format!("{ONE}[network]\nnode_bandwidth_mbit = 0.0\n"))
                .contains("node_bandwidth_mbit")
        );
        let fault =
            "[[faults]]\nat_s = 1.0\nfault = \"partition\"\na = [\"rack-9\"]\nb = [\"boot\"]\n";
        assert!(reason(&format!("{ONE}{fault}")).contains("rack-9"));
        let allow = ONE.replace(
            "name = \"boot\"",
            "name = \"boot\"\nallow = [\"10.0.0.0/33\"]",
        );
        assert!(reason(&allow).contains("10.0.0.0/33"));
        // Not TOML, or a field nobody knows.
        assert!(matches!(
            Scenario::from_toml("t", &format!("{ONE}colour = \"red\"\n")),
            Err(ScenarioError::Parse { .. })
        ));
    }
}
