//! Faults as data: what can go wrong in a simulated world, as a scenario file writes it.
//!
//! Hosts are named as in the scenario: a server's name, a client group's name (all its hosts),
//! one host of a group (`NAME-3`), `servers` (every server) or `clients` (every client host).

use serde::{Deserialize, Serialize};

use crate::scenario::{parse_block, Scenario};

/// One thing that goes wrong (or is put right).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Nothing passes between `a` and `b` (from `a` to `b` only, if `oneway`); what is in
    /// flight is lost.
    Partition {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
        /// Only messages from `a` to `b` are cut.
        #[serde(default)]
        oneway: bool,
    },
    /// A partition ends.
    Repair {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
        /// Only the way from `a` to `b` is repaired.
        #[serde(default)]
        oneway: bool,
    },
    /// Messages between `a` and `b` are held, not lost, until released.
    Hold {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
    },
    /// Held messages are delivered, and new ones flow again.
    Release {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
    },
    /// The latency between `a` and `b` changes.
    Latency {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
        /// The new range, in milliseconds.
        ms: [f64; 2],
    },
    /// The link between `a` and `b` goes down and up: down for `down_s`, up for `up_s`, from
    /// the fault's time until `until_s`, and up after.
    Flap {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
        /// Seconds down each time.
        down_s: f64,
        /// Seconds up between.
        up_s: f64,
        /// When flapping stops (seconds into the run).
        until_s: f64,
    },
    /// From now on this share of UDP datagrams is lost.
    UdpLoss {
        /// 0 to 0.5.
        rate: f64,
    },
    /// From now on this share of TCP segments is lost (and retransmitted late).
    TcpLoss {
        /// 0 to 0.5.
        rate: f64,
    },
    /// The server's software stops: its connections die, its sockets close.
    Crash {
        /// The server.
        server: String,
    },
    /// The server starts again (after a crash, or restarts at once), on `port` if given.
    Restart {
        /// The server.
        server: String,
        /// A new TCP port.
        #[serde(default)]
        port: Option<u16>,
    },
    /// Answers about a file come this much later.
    SlowFile {
        /// The server.
        server: String,
        /// The file's name, as clients ask for it.
        path: String,
        /// The extra delay, in milliseconds.
        delay_ms: u64,
    },
    /// Answers about a file fail with `eio`.
    FailFile {
        /// The server.
        server: String,
        /// The file's name, as clients ask for it.
        path: String,
    },
    /// Every file fault of the server ends.
    HealFiles {
        /// The server.
        server: String,
    },
    /// The server's allow list changes (discovery and new connections; open ones stay).
    Allow {
        /// The server.
        server: String,
        /// The new list, as in the scenario's servers.
        allow: Vec<String>,
    },
}

impl Fault {
    /// Whether the fault makes sense in `scenario`.
    pub(crate) fn check(&self, scenario: &Scenario) -> Result<(), String> {
        let hosts = |names: &[String]| -> Result<(), String> {
            if names.is_empty() {
                return Err(format!("{}: a side with no hosts", self.kind()));
            }
            match names.iter().find(|n| !scenario.knows(n)) {
                Some(unknown) => Err(format!(
                    "{}: no host or group named {unknown:?}",
                    self.kind()
                )),
                None => Ok(()),
            }
        };
        let server = |name: &String| -> Result<(), String> {
            if scenario.servers.iter().any(|s| &s.name == name) {
                Ok(())
            } else {
                Err(format!("{}: no server named {name:?}", self.kind()))
            }
        };
        let rate = |rate: f64| -> Result<(), String> {
            if (0.0..=0.5).contains(&rate) {
                Ok(())
            } else {
                Err(format!("{}: rate must be in [0, 0.5]", self.kind()))
            }
        };
        match self {
            Fault::Partition { a, b, .. }
            | Fault::Repair { a, b, .. }
            | Fault::Hold { a, b }
            | Fault::Release { a, b } => hosts(a).and(hosts(b)),
            Fault::Latency { a, b, ms } => {
                hosts(a)?;
                hosts(b)?;
                if ms[0] >= 0.0 && ms[0] <= ms[1] && ms[1].is_finite() {
                    Ok(())
                } else {
                    Err("latency: ms must be [low, high] with 0 <= low <= high".to_owned())
                }
            }
            Fault::Flap {
                a,
                b,
                down_s,
                up_s,
                until_s,
            } => {
                hosts(a)?;
                hosts(b)?;
                if *down_s > 0.0 && *up_s > 0.0 && until_s.is_finite() {
                    Ok(())
                } else {
                    Err("flap: down_s and up_s must be > 0".to_owned())
                }
            }
            Fault::UdpLoss { rate: r } | Fault::TcpLoss { rate: r } => rate(*r),
            Fault::Crash { server: s }
            | Fault::Restart { server: s, .. }
            | Fault::HealFiles { server: s } => server(s),
            Fault::SlowFile { server: s, .. } | Fault::FailFile { server: s, .. } => server(s),
            Fault::Allow { server: s, allow } => {
                server(s)?;
                match allow
                    .iter()
                    .find(|e| !scenario.knows(e) && parse_block(e).is_none())
                {
                    Some(bad) => Err(format!("allow: {bad:?} is neither a block nor a host")),
                    None => Ok(()),
                }
            }
        }
    }

    /// The fault's name in scenario files.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Repair { .. } => "repair",
            Fault::Hold { .. } => "hold",
            Fault::Release { .. } => "release",
            Fault::Latency { .. } => "latency",
            Fault::Flap { .. } => "flap",
            Fault::UdpLoss { .. } => "udp-loss",
            Fault::TcpLoss { .. } => "tcp-loss",
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::SlowFile { .. } => "slow-file",
            Fault::FailFile { .. } => "fail-file",
            Fault::HealFiles { .. } => "heal-files",
            Fault::Allow { .. } => "allow",
        }
    }

    /// One line for the report's timeline.
    pub fn describe(&self) -> String {
        let side = |names: &[String]| names.join(",");
        match self {
            Fault::Partition { a, b, oneway } => format!(
                "partition {} {} {}",
                side(a),
                if *oneway { "->" } else { "<->" },
                side(b)
            ),
            Fault::Repair { a, b, oneway } => format!(
                "repair {} {} {}",
                side(a),
                if *oneway { "->" } else { "<->" },
                side(b)
            ),
            Fault::Hold { a, b } => format!("hold {} <-> {}", side(a), side(b)),
            Fault::Release { a, b } => format!("release {} <-> {}", side(a), side(b)),
            Fault::Latency { a, b, ms } => format!(
                "latency {} <-> {}: {}-{} ms",
                side(a),
                side(b),
                ms[0],
                ms[1]
            ),
            Fault::Flap {
                a,
                b,
                down_s,
                up_s,
                until_s,
            } => format!(
                "flap {} <-> {}: {down_s} s down, {up_s} s up, until {until_s} s",
                side(a),
                side(b)
            ),
            Fault::UdpLoss { rate } => format!("udp loss {:.1} %", rate * 100.0),
            Fault::TcpLoss { rate } => format!("tcp segment loss {:.1} %", rate * 100.0),
            Fault::Crash { server } => format!("crash {server}"),
            Fault::Restart {
                server,
                port: Some(port),
            } => format!("restart {server} on port {port}"),
            Fault::Restart { server, port: None } => format!("restart {server}"),
            Fault::SlowFile {
                server,
                path,
                delay_ms,
            } => format!("{server}: {path} answered {delay_ms} ms late"),
            Fault::FailFile { server, path } => format!("{server}: {path} fails with eio"),
            Fault::HealFiles { server } => format!("{server}: file faults healed"),
            Fault::Allow { server, allow } => format!("{server}: allow {}", allow.join(",")),
        }
    }
}
