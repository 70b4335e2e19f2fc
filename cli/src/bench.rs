//! `erlboot bench`: boots per second of erlboot serve, OTP's erl_boot_server and the ceiling,
//! side by side, or a herd of nodes booting at once.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use clap::Args;
use erlboot::bench::ceiling::{self, CeilingError};
use erlboot::bench::herd::{self, HerdError, HerdPlan};
use erlboot::bench::idle::{self, IdleError, IdlePlan};
use erlboot::bench::namespace::{self, Namespace, NamespaceError};
use erlboot::bench::report::{goals, herd_table, idle_table, table};
use erlboot::bench::servers::{Kind, UnknownKind};
use erlboot::bench::throughput::{self, Plan, Targets, ThroughputError};
use erlboot::bench::workload::{ProfileError, Workload};
use thiserror::Error;

/// How many nodes per second a boot server boots, and how that compares with OTP's
/// erl_boot_server and with a server that replays replies from memory (the ceiling).
///
/// Each connection replays a whole recorded boot (386 requests of a real OTP 25 node, embedded
/// in this binary) on a new TCP connection, one request outstanding, again and again; every
/// reply is checked. The servers are started on loopback and measured in turn, round by round.
/// As root the bench runs in a network namespace of its own. The ceiling replays the replies
/// of one boot recorded from erlboot serve at the start of the run.
///
/// Examples:
///
///   erlboot bench                                   # erlboot, OTP and the ceiling at 1, 8, 64
///   erlboot bench --spawn erlboot,ceiling --rounds 3 --json out.json
///   erlboot bench --target 10.0.0.1:4711 --concurrency 16
///   erlboot bench --herd 1000                       # 1,000 nodes at once, with discovery
///   erlboot bench --idle 10000                      # 10,000 booted nodes holding on
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct BenchArgs {
    /// Servers to start and measure: erlboot, otp, ceiling or all, separated by commas.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "LIST"
    )]
    spawn: Vec<SpawnArg>,

    /// Measure a server already running at HOST:PORT instead of starting any.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "spawn")]
    target: Option<String>,

    /// Connections at once, each a node booting again and again; one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64", value_name = "LIST",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: Vec<u32>,

    /// The boot to replay: one request per line (`get NAME`, `list_dir NAME`,
    /// `read_file_info NAME`, `read_link_info NAME`, `get_cwd`), `#` lines ignored.
    /// Default: a recorded OTP 25 boot.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,

    /// Seconds of one run (one server, one concurrency, one round).
    #[arg(long, default_value_t = 3.0, value_name = "SECS", value_parser = positive_seconds)]
    duration: f64,

    /// Rounds; each round runs every server once at each concurrency.
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: u32,

    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Herd mode: start N nodes at once, each with full discovery (UDP 4368) and OTP's
    /// timings, and report the time until all are booted and each node's boot time.
    #[arg(long, value_name = "N", conflicts_with = "target",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    herd: Option<u32>,

    /// Herd mode: a node not booted after this many seconds counts as not booted.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    herd_timeout: u64,

    /// Idle mode: open N connections in bursts of 250 every 10 ms, each asks get_cwd once
    /// and stays open; report the time until all are answered and the server's RSS.
    #[arg(long, value_name = "N", conflicts_with_all = ["target", "herd"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    idle: Option<u32>,

    /// Idle mode: a connection not answered after this many seconds counts as failed.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    idle_timeout: u64,

    /// Run the ceiling server on this recording (the bench starts it so).
    #[arg(long, value_name = "RECORDING", hide = true, exclusive = true)]
    ceiling: Option<PathBuf>,
}

/// One `--spawn` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpawnArg {
    All,
    One(Kind),
}

impl std::str::FromStr for SpawnArg {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<SpawnArg, UnknownKind> {
        match s {
            "all" => Ok(SpawnArg::All),
            other => other.parse().map(SpawnArg::One),
        }
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

/// Why `erlboot bench` failed.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    ProfileFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Profile { path: String, source: ProfileError },
    #[error("--target {0:?} is not HOST:PORT with a host that resolves")]
    Target(String),
    #[error(transparent)]
    Throughput(#[from] ThroughputError),
    #[error(transparent)]
    Herd(#[from] HerdError),
    #[error(transparent)]
    Idle(#[from] IdleError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Ceiling(#[from] CeilingError),
    #[error("cannot write {path}: {source}")]
    Json {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the bench inside the network namespace failed ({0})")]
    Inside(ExitStatus),
}

/// What the arguments ask for.
#[derive(Debug, PartialEq)]
enum Mode {
    Throughput(Plan),
    Herd(HerdPlan),
    Idle(IdlePlan),
}

impl BenchArgs {
    /// The servers `--spawn` names, each once, in the order given.
    fn kinds(&self) -> Vec<Kind> {
        let mut kinds = Vec::new();
        for arg in &self.spawn {
            let add = match arg {
                SpawnArg::All => Kind::ALL.to_vec(),
                SpawnArg::One(kind) => vec![*kind],
            };
            for kind in add {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        kinds
    }

    fn mode(&self) -> Result<Mode, BenchError> {
        if let Some(nodes) = self.herd {
            return Ok(Mode::Herd(HerdPlan {
                kinds: self.kinds(),
                nodes: nodes as usize,
                timeout: Duration::from_secs(self.herd_timeout),
            }));
        }
        if let Some(connections) = self.idle {
            return Ok(Mode::Idle(IdlePlan {
                kinds: self.kinds(),
                connections: connections as usize,
                timeout: Duration::from_secs(self.idle_timeout),
            }));
        }
        let targets = match &self.target {
            Some(target) => Targets::Remote(resolve(target)?),
            None => Targets::Spawn(self.kinds()),
        };
        let mut concurrency: Vec<usize> = self.concurrency.iter().map(|&c| c as usize).collect();
        concurrency.dedup();
        Ok(Mode::Throughput(Plan {
            targets,
            concurrency,
            duration: Duration::from_secs_f64(self.duration),
            rounds: self.rounds as usize,
        }))
    }

    fn workload(&self) -> Result<Workload, BenchError> {
        match &self.profile {
            None => Ok(Workload::default_boot()),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| BenchError::ProfileFile {
                        path: path.clone(),
                        source,
                    })?;
                Workload::from_profile(&text).map_err(|source| BenchError::Profile {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
}

fn resolve(target: &str) -> Result<SocketAddr, BenchError> {
    target
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| BenchError::Target(target.to_owned()))
}

/// Runs `erlboot bench`.
pub fn run(args: BenchArgs) -> Result<(), BenchError> {
    if let Some(recording) = &args.ceiling {
        return Ok(ceiling::run(recording)?);
    }
    let mode = args.mode()?;
    let workload = args.workload()?;
    let spawns = matches!(
        mode,
        Mode::Herd(_)
            | Mode::Idle(_)
            | Mode::Throughput(Plan {
                targets: Targets::Spawn(_),
                ..
            })
    );
    if spawns && namespace::inside().is_none() && namespace::is_root() {
        let namespace = Namespace::create()?;
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        let status = namespace.run_self(&args)?;
        return if status.success() {
            Ok(())
        } else {
            Err(BenchError::Inside(status))
        };
    }
    let place = match namespace::inside() {
        Some(name) => format!("in network namespace {name}"),
        None if spawns => "on this machine's loopback (not root: no namespace of its own)".into(),
        None => "from this machine".into(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    match mode {
        Mode::Throughput(plan) => {
            println!(
                "erlboot bench {place}: {} requests per boot ({} KB sent), {} round(s) of {} s \
                 per server and concurrency, interleaved; {cores} cores",
                workload.exchanges.len(),
                workload.request_bytes() / 1024,
                plan.rounds,
                plan.duration.as_secs_f64(),
            );
            let outcome = throughput::run(&plan, workload)?;
            for (kind, why) in &outcome.skipped {
                println!("{kind} skipped: {why}");
            }
            for note in &outcome.notes {
                println!("note: {note}");
            }
            println!();
            print!("{}", table(&outcome.report, &outcome.details));
            let noisiest = outcome
                .report
                .results
                .iter()
                .zip(&outcome.details)
                .map(|(row, detail)| (detail.percent_of(row.boots_per_s), row))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((percent, row)) = noisiest.filter(|_| plan.rounds > 1) {
                println!(
                    "noise: boots/s varied by up to {percent:.0}% between rounds \
                     ({} at {} conns)",
                    row.target, row.concurrency
                );
            }
            for line in goals(&outcome.report) {
                println!("{line}");
            }
            if let Some(path) = &args.json {
                write_json(path, &outcome.report)?;
            }
        }
        Mode::Herd(plan) => {
            println!(
                "erlboot bench {place}: a herd of {} nodes at once, each with full discovery and \
                 OTP's timings, {} requests per boot",
                plan.nodes,
                workload.exchanges.len()
            );
            let herd::HerdOutcome {
                report,
                skipped,
                notes,
            } = herd::run(&plan, &workload)?;
            for (kind, why) in &skipped {
                println!("{kind} skipped: {why}");
            }
            for note in &notes {
                println!("note: {note}");
            }
            println!();
            print!("{}", herd_table(&report));
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
        }
        Mode::Idle(plan) => {
            println!(
                "erlboot bench {place}: {} idle connections, in bursts of {} every {} ms, each \
                 asks get_cwd and stays open",
                plan.connections,
                idle::BURST,
                idle::BURST_INTERVAL.as_millis()
            );
            let outcome = idle::run(&plan, &workload)?;
            for (kind, why) in &outcome.skipped {
                println!("{kind} skipped: {why}");
            }
            for note in &outcome.notes {
                println!("note: {note}");
            }
            println!();
            print!("{}", idle_table(&outcome.report));
            if let Some(path) = &args.json {
                write_json(path, &outcome.report)?;
            }
        }
    }
    Ok(())
}

fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(value).expect("reports serialise");
    std::fs::write(path, text + "\n").map_err(|source| BenchError::Json {
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.args)
    }

    fn plan(args: &[&str]) -> Plan {
        match parse(args).unwrap().mode().unwrap() {
            Mode::Throughput(plan) => plan,
            other => panic!("not a throughput run: {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_all_servers_at_1_8_64_for_5_rounds_of_3_s() {
        assert_eq!(
            plan(&[]),
            Plan {
                targets: Targets::Spawn(vec![Kind::Erlboot, Kind::Otp, Kind::Ceiling]),
                concurrency: vec![1, 8, 64],
                duration: Duration::from_secs(3),
                rounds: 5,
            }
        );
    }

    #[test]
    fn spawn_lists_keep_their_order_once_each() {
        let p = plan(&[
            "--spawn",
            "ceiling,erlboot,ceiling",
            "--concurrency",
            "2,16",
        ]);
        assert_eq!(
            p.targets,
            Targets::Spawn(vec![Kind::Ceiling, Kind::Erlboot])
        );
        assert_eq!(p.concurrency, [2, 16]);
        let p = plan(&["--spawn", "otp", "--spawn", "all"]);
        assert_eq!(
            p.targets,
            Targets::Spawn(vec![Kind::Otp, Kind::Erlboot, Kind::Ceiling])
        );
        let p = plan(&["--duration", "0.5", "--rounds", "2"]);
        assert_eq!((p.duration, p.rounds), (Duration::from_millis(500), 2));
    }

    #[test]
    fn a_target_is_measured_instead_of_spawning() {
        let p = plan(&["--target", "127.0.0.1:4711"]);
        assert_eq!(
            p.targets,
            Targets::Remote("127.0.0.1:4711".parse().unwrap())
        );
        assert!(matches!(
            parse(&["--target", "127.0.0.1"]).unwrap().mode(),
            Err(BenchError::Target(_))
        ));
    }

    #[test]
    fn herd_mode_takes_the_servers_and_a_timeout() {
        let args = parse(&["--herd", "1000", "--spawn", "erlboot,otp"]).unwrap();
        assert_eq!(
            args.mode().unwrap(),
            Mode::Herd(HerdPlan {
                kinds: vec![Kind::Erlboot, Kind::Otp],
                nodes: 1000,
                timeout: Duration::from_secs(300),
            })
        );
    }

    #[test]
    fn idle_mode_takes_the_servers_and_a_timeout() {
        let args = parse(&["--idle", "10000", "--idle-timeout", "8"]).unwrap();
        assert_eq!(
            args.mode().unwrap(),
            Mode::Idle(IdlePlan {
                kinds: Kind::ALL.to_vec(),
                connections: 10_000,
                timeout: Duration::from_secs(8),
            })
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        for bad in [
            &["--spawn", "erl"][..],
            &["--concurrency", "0"],
            &["--concurrency", "1,x"],
            &["--duration", "0"],
            &["--duration", "-1"],
            &["--duration", "nan"],
            &["--rounds", "0"],
            &["--herd", "0"],
            &["--target", "h:1", "--spawn", "otp"],
            &["--target", "h:1", "--herd", "5"],
            &["--idle", "5", "--herd", "5"],
            &["--idle", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn profiles_are_read_from_files_with_clear_errors() {
        let args = parse(&["--profile", "/nonexistent/profile"]).unwrap();
        let err = args.workload().unwrap_err().to_string();
        assert!(err.starts_with("/nonexistent/profile:"), "{err}");
        let path = std::env::temp_dir().join(format!("erlboot-profile-{}", std::process::id()));
        std::fs::write(&path, "get /r/bin/start.boot\nlist_dir /r/lib\n").unwrap();
        let args = parse(&["--profile", path.to_str().unwrap()]).unwrap();
        let workload = args.workload().unwrap();
        assert_eq!(
            (workload.exchanges.len(), workload.root().as_str()),
            (2, "/r")
        );
        std::fs::write(&path, "put /x\n").unwrap();
        let err = args.workload().unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("put"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(parse(&[]).unwrap().workload().unwrap().exchanges.len(), 386);
    }
}
