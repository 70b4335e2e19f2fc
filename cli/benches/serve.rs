//! Boot-server benchmark: `erlboot serve` against OTP's `erl_boot_server` and against a minimal
//! server that replays the recorded replies from memory (the machine's ceiling), side by side.
//!
//! ```text
//! cargo bench --bench serve                  # full run (a few minutes)
//! cargo bench --bench serve -- --quick       # well under a minute
//! cargo bench --bench serve -- --help        # every option
//! ```
//!
//! Needs root, `ip` and `erl` (OTP 25, whose boot is in captures/otp25-boot.pcap). The program
//! re-executes itself inside a fresh network namespace (only its loopback is up), because OTP's
//! server binds UDP 4368; the namespace is deleted afterwards.
//!
//! Part 1, throughput: each client connection replays the whole request sequence of the
//! recorded boot on a fresh TCP connection, one request outstanding, again and again; replies
//! are validated (see tests/support/load.rs). Rounds interleave the servers (A B C A B C ...)
//! and the table shows medians; the ratios are medians of the per-round ratios.
//!
//! Part 2, idle nodes: a fresh server of each kind, N connections opened in bursts, each sends
//! `get_cwd` and must get its reply; the time until all are answered, and the server's VmRSS
//! before and with all of them open.
//!
//! Run without `--bench` (as `cargo test --benches` does) it only checks that the workload
//! builds.

use erlboot_support::capture;
use erlboot_support::load;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use erlboot::proto::Request;
use load::{RunStats, Workload};

/// Set (to the namespace's name) in the re-executed process.
const NETNS_ENV: &str = "ERLBOOT_BENCH_NETNS";
/// Set to `ceiling` in the process that runs the ceiling server.
const ROLE_ENV: &str = "ERLBOOT_BENCH_ROLE";
const CAPTURE: &str = "captures/otp25-boot.pcap";
const ERLBOOT: &str = env!("CARGO_BIN_EXE_erlboot");

const HELP: &str = "\
cargo bench --bench serve -- [OPTIONS]
  --quick               1 round of 1 s, 1000 idle connections (8 s at most)
  --rounds N            rounds per concurrency (default 5)
  --duration SECS       length of one run (default 3)
  --concurrency LIST    e.g. 1,8,64 (default)
  --servers LIST        any of erlboot,otp,ceiling (default all three)
  --parts LIST          any of throughput,idle (default both)
  --idle N              idle connections (default 10000)
  --burst N             connections per burst (default 250)
  --burst-interval MS   time between bursts (default 10; 0: a burst starts once the
                        previous one is answered)
  --idle-timeout SECS   give up on the idle test after this (default 60)
  --serve-arg ARG       extra argument for `erlboot serve` (repeatable)
environment: ERLBOOT_BENCH_BIN=PATH runs that erlboot binary instead of this build's";

#[derive(Clone, Debug)]
struct Options {
    rounds: usize,
    duration: Duration,
    concurrency: Vec<usize>,
    servers: Vec<Kind>,
    throughput: bool,
    idle: bool,
    idle_connections: usize,
    burst: usize,
    burst_interval: Duration,
    idle_timeout: Duration,
    serve_args: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Erlboot,
    Otp,
    Ceiling,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Erlboot => "erlboot",
            Kind::Otp => "otp",
            Kind::Ceiling => "ceiling",
        }
    }
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            rounds: 5,
            duration: Duration::from_secs(3),
            concurrency: vec![1, 8, 64],
            servers: vec![Kind::Erlboot, Kind::Otp, Kind::Ceiling],
            throughput: true,
            idle: true,
            idle_connections: 10_000,
            burst: 250,
            burst_interval: Duration::from_millis(10),
            idle_timeout: Duration::from_secs(60),
            serve_args: Vec::new(),
        };
        let mut args = args.iter();
        fn value<'a>(
            flag: &str,
            args: &mut impl Iterator<Item = &'a String>,
        ) -> Result<&'a str, String> {
            args.next()
                .map(String::as_str)
                .ok_or(format!("{flag} needs a value"))
        }
        fn num<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T, String> {
            s.parse().map_err(|_| format!("{flag}: not a number: {s}"))
        }
        fn secs(flag: &str, s: &str) -> Result<Duration, String> {
            Duration::try_from_secs_f64(num(flag, s)?).map_err(|e| format!("{flag}: {e}"))
        }
        while let Some(arg) = args.next() {
            let flag = arg.as_str();
            match flag {
                "--bench" => {}
                "--quick" => {
                    o.rounds = 1;
                    o.duration = Duration::from_secs(1);
                    o.idle_connections = 1000;
                    o.idle_timeout = Duration::from_secs(8);
                }
                "--rounds" => o.rounds = num(flag, value(flag, &mut args)?)?,
                "--duration" => o.duration = secs(flag, value(flag, &mut args)?)?,
                "--idle-timeout" => o.idle_timeout = secs(flag, value(flag, &mut args)?)?,
                "--idle" => o.idle_connections = num(flag, value(flag, &mut args)?)?,
                "--burst" => o.burst = num(flag, value(flag, &mut args)?)?,
                "--burst-interval" => {
                    o.burst_interval = Duration::from_millis(num(flag, value(flag, &mut args)?)?)
                }
                "--concurrency" => {
                    o.concurrency = value(flag, &mut args)?
                        .split(',')
                        .map(|c| num(flag, c))
                        .collect::<Result<_, _>>()?
                }
                "--servers" => {
                    o.servers = value(flag, &mut args)?
                        .split(',')
                        .map(|s| match s {
                            "erlboot" => Ok(Kind::Erlboot),
                            "otp" => Ok(Kind::Otp),
                            "ceiling" => Ok(Kind::Ceiling),
                            _ => Err(format!("--servers: unknown server {s}")),
                        })
                        .collect::<Result<_, _>>()?
                }
                "--parts" => {
                    let parts = value(flag, &mut args)?;
                    o.throughput = false;
                    o.idle = false;
                    for part in parts.split(',') {
                        match part {
                            "throughput" => o.throughput = true,
                            "idle" => o.idle = true,
                            _ => return Err(format!("--parts: unknown part {part}")),
                        }
                    }
                }
                "--serve-arg" => o.serve_args.push(value(flag, &mut args)?.to_string()),
                "-h" | "--help" => return Err(HELP.to_string()),
                // cargo passes filters and its own flags through; ignore what is not ours.
                _ => {}
            }
        }
        if o.rounds == 0 || o.burst == 0 || o.concurrency.contains(&0) {
            return Err("--rounds, --burst and --concurrency must be positive".into());
        }
        Ok(o)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var(ROLE_ENV).as_deref() == Ok("ceiling") {
        ceiling_main();
        return ExitCode::SUCCESS;
    }
    if !args.iter().any(|a| a == "--bench") {
        let workload = workload();
        println!(
            "serve bench: workload of {} requests builds; run it with `cargo bench --bench serve`",
            workload.exchanges.len()
        );
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(&args) {
        Ok(o) => o,
        Err(msg) if msg == HELP => {
            println!("{msg}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{msg}\n\n{HELP}");
            return ExitCode::FAILURE;
        }
    };
    require_tool("ip", "iproute2");
    require_tool("erl", "erlang-base (OTP 25)");
    match std::env::var(NETNS_ENV) {
        Ok(_) => run(&options),
        Err(_) => reexec_in_netns(&args),
    }
}

fn require_tool(name: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "the serve bench needs `{name}` on PATH (Debian package {package}); it is missing"
    );
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(
        status.success(),
        "`ip {}` failed ({status}); the serve bench must run as root",
        args.join(" ")
    );
}

/// Deletes the namespace when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn reexec_in_netns(args: &[String]) -> ExitCode {
    let name = format!("erlboot-bench-{}", std::process::id());
    ip(&["netns", "add", &name]);
    let netns = Netns(name);
    ip(&["-n", &netns.0, "link", "set", "lo", "up"]);
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &netns.0])
        .arg(exe)
        .args(args)
        .env(NETNS_ENV, &netns.0)
        .spawn()
        .expect("run ip netns exec");
    // Ctrl-C reaches the child too; this process stays to delete the namespace.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let status = child.wait().expect("wait for the bench");
    drop(netns);
    if status.success() {
        ExitCode::SUCCESS
    } else {
        eprintln!("serve bench failed: {status}");
        ExitCode::FAILURE
    }
}

fn manifest_path(rel: &str) -> PathBuf {
    erlboot_support::repository().join(rel)
}

fn workload() -> Workload {
    let mut capture = capture::read(&manifest_path(CAPTURE));
    assert_eq!(capture.streams.len(), 1, "{CAPTURE}: one TCP stream");
    let stream = capture.streams.remove(0);
    assert_eq!(
        stream.to_server_frames.len(),
        stream.to_client_frames.len(),
        "{CAPTURE}: one reply per request"
    );
    let pairs = stream
        .to_server_frames
        .iter()
        .zip(&stream.to_client_frames)
        .map(|(q, r)| (q.payload.as_slice(), r.payload.as_slice()));
    Workload::from_pairs(pairs).unwrap_or_else(|e| panic!("{CAPTURE}: {e}"))
}

/// The client's root (`-root`), from its first request `{get,"ROOT/bin/start.boot"}`.
fn otp_root(workload: &Workload) -> String {
    let first = &workload.exchanges[0].request[4..];
    let decoder = erlboot::etf::Decoder::new(erlboot::etf::Limits::request());
    match Request::decode(first, &decoder) {
        Ok(Request::Get(path)) if path.ends_with("/bin/start.boot") => {
            path.trim_end_matches("/bin/start.boot").to_string()
        }
        other => panic!("{CAPTURE}: the first request is not the boot script: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Servers

struct Server {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    /// The process whose memory is measured.
    pid: u32,
    stderr_log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server in `cwd` (empty, shared by all) with its standard error in `log`.
    fn start(
        kind: Kind,
        cwd: &Path,
        log: &Path,
        root: &str,
        extra: &[String],
    ) -> Result<Server, String> {
        let mut cmd = match kind {
            Kind::Erlboot => {
                // ERLBOOT_BENCH_BIN measures another build (e.g. a copy of an older one).
                let bin = std::env::var_os("ERLBOOT_BENCH_BIN").unwrap_or(ERLBOOT.into());
                let mut cmd = Command::new(bin);
                cmd.args(["serve", "--root", root, "--allow", "127.0.0.1"])
                    .args(["--bind", "127.0.0.1", "--port", "0"])
                    // OTP holds UDP 4368 in this namespace.
                    .args(["--udp-port", "0", "--any-version"])
                    .arg("--cwd")
                    .arg(cwd)
                    .args(["--max-connections", "20000", "--max-per-ip", "20000"])
                    .args(extra);
                cmd
            }
            Kind::Otp => {
                let mut cmd = Command::new("erl");
                cmd.args([
                    "-noshell",
                    "-eval",
                    "{ok, _} = erl_boot_server:start([\"127.0.0.1\"]), \
                     Port = element(7, sys:get_state(boot_server)), \
                     io:format(\"listening tcp=127.0.0.1:~w udp=0.0.0.0:4368~n\", [Port]), \
                     receive after infinity -> ok end.",
                ]);
                cmd
            }
            Kind::Ceiling => {
                let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
                cmd.env(ROLE_ENV, "ceiling");
                cmd
            }
        };
        let stderr_log = log.to_path_buf();
        let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
        cmd.current_dir(cwd)
            .env("HOME", stderr_log.parent().expect("a log directory"))
            .env("TZ", "UTC")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // Children die with the bench, even on Ctrl-C (they are spawned from the main thread).
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", kind.name()))?;
        let pid = child.id();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {} // keep the pipe drained
        });
        let fail = |why: String, child: &mut Child| {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Ok(mut f) = std::fs::File::open(&stderr_log) {
                let _ = f.read_to_string(&mut err);
            }
            let err: String = err.lines().take(5).collect::<Vec<_>>().join("\n    ");
            Err(format!("{} {why}; stderr:\n    {err}", kind.name()))
        };
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => return fail("exited without a listening line".into(), &mut child),
            Err(_) => return fail("printed no listening line in 20 s".into(), &mut child),
        };
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("tcp="))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        let Some(addr) = addr else {
            return fail(
                format!("printed an unexpected first line: {line:?}"),
                &mut child,
            );
        };
        Ok(Server {
            kind,
            child,
            addr,
            pid: beam_pid(pid),
            stderr_log,
        })
    }

    fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn stderr_bytes(&self) -> u64 {
        std::fs::metadata(&self.stderr_log)
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

/// `erl` is a script that execs `erlexec`, which execs `beam.smp`, so the pid is normally the
/// emulator's already; if some wrapper forked instead, use its only child.
fn beam_pid(pid: u32) -> u32 {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    match children.split_whitespace().collect::<Vec<_>>()[..] {
        [only] if !comm.starts_with("beam") && comm.trim() != "erlboot" => {
            only.parse().unwrap_or(pid)
        }
        _ => pid,
    }
}

/// The ceiling's process: the recorded replies from memory.
fn ceiling_main() {
    let replies = Arc::new(workload().reply_map());
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("listening tcp={}", listener.local_addr().unwrap());
        load::serve_recorded(listener, replies).await
    });
}

// ---------------------------------------------------------------------------------------
// The run

/// One server's run at one concurrency.
#[derive(Clone)]
struct Round {
    stats: RunStats,
    boots_per_sec: f64,
    /// CPU time per boot of the server, and of this process (the client).
    server_ms: f64,
    client_ms: f64,
    /// SYNs dropped on a full accept queue during the run.
    overflows: u64,
}

/// User plus system CPU time of a process, all threads, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // Fields 14 (utime) and 15 (stime); `fields` starts at field 3.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// `TcpExt: ListenOverflows` of this network namespace: SYNs dropped because a listener's
/// accept queue was full (each costs the client a 1 s, then 3 s, ... SYN retransmission).
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("erlboot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn run(o: &Options) -> ExitCode {
    let nofile = erlboot::net::raise_open_files_limit();
    let workload = Arc::new(workload());
    let root = otp_root(&workload);
    let (up, down) = workload.bytes();
    let base = scratch();
    // One empty cwd for every server, so that `./Mod.beam` requests fail alike on all of them
    // and get_cwd answers the same.
    let cwd = base.join("cwd");
    std::fs::create_dir_all(&cwd).expect("cwd");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    println!(
        "serve bench in netns {}: {} requests per boot ({} KB up, {} KB down), root {root}, \
         RLIMIT_NOFILE {nofile}, {} cores",
        std::env::var(NETNS_ENV).unwrap_or_default(),
        workload.exchanges.len(),
        up / 1024,
        down / 1024,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut unusable = Vec::new();
    if o.throughput {
        throughput(o, &rt, &workload, &root, &base, &cwd, &mut unusable);
    }
    if o.idle {
        idle(o, &rt, &workload, &root, &base, &cwd, &mut unusable);
    }
    let _ = std::fs::remove_dir_all(&base);
    if unusable.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("\nNOT MEASURED:");
        for u in &unusable {
            println!("  {u}");
        }
        // OTP and the ceiling are the reference: without them the run says nothing.
        if unusable
            .iter()
            .any(|u| !u.starts_with(Kind::Erlboot.name()))
        {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

fn throughput(
    o: &Options,
    rt: &tokio::runtime::Runtime,
    workload: &Arc<Workload>,
    root: &str,
    base: &Path,
    cwd: &Path,
    unusable: &mut Vec<String>,
) {
    let mut servers = Vec::new();
    for &kind in &o.servers {
        let log = base.join(format!("{}.stderr", kind.name()));
        let server = match Server::start(kind, cwd, &log, root, &o.serve_args) {
            Ok(s) => s,
            Err(e) => {
                unusable.push(e);
                continue;
            }
        };
        // Warm-up (page cache, lazily loaded code) and a check that the server boots a node.
        let check = rt.block_on(load::one_boot(server.addr, workload.clone()));
        if check.boots != 1 {
            unusable.push(format!(
                "{}: a single boot failed: {}",
                kind.name(),
                check.first_error.unwrap_or_default()
            ));
            continue;
        }
        println!(
            "{:>8} on {} (pid {}): one boot in {:.1} ms, {} replies ok/error unlike the recording",
            kind.name(),
            server.addr,
            server.pid,
            check.elapsed.as_secs_f64() * 1e3,
            check.mismatches
        );
        for &i in &check.mismatched {
            let e = &workload.exchanges[i];
            let decoder = erlboot::etf::Decoder::new(erlboot::etf::Limits::request());
            println!(
                "         request {i} {:?}: recorded {}, now {}",
                Request::decode(&e.request[4..], &decoder),
                if e.ok { "ok" } else { "error" },
                if e.ok { "error" } else { "ok" },
            );
        }
        servers.push(server);
    }
    if servers.is_empty() {
        return;
    }
    println!(
        "\nthroughput: {} round(s) of {:.1} s per server and concurrency, interleaved",
        o.rounds,
        o.duration.as_secs_f64()
    );
    let mut rows = Vec::new();
    for &conc in &o.concurrency {
        // results[server][round]
        let mut results: Vec<Vec<Round>> = vec![Vec::new(); servers.len()];
        for _ in 0..o.rounds {
            for (i, s) in servers.iter().enumerate() {
                let (overflows, server_cpu, client_cpu) = (
                    listen_overflows(),
                    cpu_time(s.pid),
                    cpu_time(std::process::id()),
                );
                let stats =
                    rt.block_on(load::run_boots(s.addr, workload.clone(), conc, o.duration));
                let boots = stats.exchanges as f64 / workload.exchanges.len() as f64;
                let per_boot = |d: Duration| d.as_secs_f64() * 1e3 / boots;
                results[i].push(Round {
                    boots_per_sec: stats.boots_per_sec(workload),
                    server_ms: per_boot(cpu_time(s.pid) - server_cpu),
                    client_ms: per_boot(cpu_time(std::process::id()) - client_cpu),
                    overflows: listen_overflows() - overflows,
                    stats,
                });
            }
        }
        rows.push((conc, results));
    }

    let name_of = |k: Kind| servers.iter().position(|s| s.kind == k);
    let (e, otp, ceil) = (
        name_of(Kind::Erlboot),
        name_of(Kind::Otp),
        name_of(Kind::Ceiling),
    );
    let col = |what: &str| {
        print!("\n{:>5}", "conns");
        for s in &servers {
            print!(" {:>19}", format!("{} {what}", s.kind.name()));
        }
    };
    col("boots/s");
    println!(
        " {:>12} {:>16}   (median; min-max)",
        "erlboot/otp", "erlboot/ceiling"
    );
    for (conc, results) in &rows {
        print!("{conc:>5}");
        for per_round in results {
            print!(
                " {:>19.1}",
                median(per_round.iter().map(|r| r.boots_per_sec).collect())
            );
        }
        let ratio = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => {
                let rs: Vec<f64> = (0..o.rounds)
                    .map(|i| results[a][i].boots_per_sec / results[b][i].boots_per_sec)
                    .collect();
                format!("{:.2}", median(rs))
            }
            _ => "-".into(),
        };
        print!(" {:>12} {:>16}", ratio(e, otp), ratio(e, ceil));
        let spread: Vec<String> = results
            .iter()
            .map(|per_round| {
                let rates = per_round.iter().map(|r| r.boots_per_sec);
                let min = rates.clone().fold(f64::INFINITY, f64::min);
                let max = rates.fold(0.0, f64::max);
                format!("{min:.0}-{max:.0}")
            })
            .collect();
        println!("   ({})", spread.join(", "));
    }
    // CPU time per boot is steadier than throughput on a shared machine, and says whether
    // the client (this process) or the server is the bottleneck.
    col("CPU ms");
    println!("   (per boot, median; client = this process while driving that server)");
    for (conc, results) in &rows {
        print!("{conc:>5}");
        for per_round in results {
            let server = median(per_round.iter().map(|r| r.server_ms).collect());
            let client = median(per_round.iter().map(|r| r.client_ms).collect());
            print!(" {:>19}", format!("{server:.2} (client {client:.2})"));
        }
        println!();
    }
    let mut trouble = false;
    for (conc, results) in &rows {
        for (s, per_round) in servers.iter().zip(results) {
            let overflows: u64 = per_round.iter().map(|r| r.overflows).sum();
            if overflows > 0 {
                println!(
                    "  during {}'s runs at {conc} conns: {overflows} SYNs dropped on a full \
                     accept queue (counted for the whole namespace: a server's late \
                     SYN-ACK retries can land in the next server's run)",
                    s.kind.name()
                );
            }
            let failed: u64 = per_round.iter().map(|r| r.stats.failed_boots).sum();
            let refused: u64 = per_round.iter().map(|r| r.stats.connect_errors).sum();
            if failed + refused > 0 {
                trouble = true;
                let err = per_round.iter().find_map(|r| r.stats.first_error.clone());
                println!(
                    "  {} at {conc} conns: {failed} failed boots, {refused} failed connects; first: {}",
                    s.kind.name(),
                    err.unwrap_or_default()
                );
            }
        }
    }
    if !trouble {
        println!("  every reply of every boot was valid");
    }
    for s in &servers {
        println!(
            "  {}: RSS {} KB after the runs, {} bytes on stderr",
            s.kind.name(),
            s.rss_kb().unwrap_or(0),
            s.stderr_bytes()
        );
    }
}

fn idle(
    o: &Options,
    rt: &tokio::runtime::Runtime,
    workload: &Arc<Workload>,
    root: &str,
    base: &Path,
    cwd: &Path,
    unusable: &mut Vec<String>,
) {
    let probe = workload
        .find(erlboot::proto::Command::GetCwd)
        .expect("the boot asks get_cwd")
        .clone();
    let pace = if o.burst_interval.is_zero() {
        "each once the previous one is answered".to_string()
    } else {
        format!("every {} ms", o.burst_interval.as_millis())
    };
    println!(
        "\nidle nodes: {} connections in bursts of {} {pace}, each sends get_cwd and stays open",
        o.idle_connections, o.burst
    );
    println!(
        "{:>8} {:>9} {:>7} {:>16} {:>13} {:>13}",
        "server", "answered", "failed", "all answered in", "RSS before", "RSS open"
    );
    for &kind in o.servers.iter().filter(|k| **k != Kind::Ceiling) {
        let log = base.join(format!("{}-idle.stderr", kind.name()));
        let server = match Server::start(kind, cwd, &log, root, &o.serve_args) {
            Ok(s) => s,
            Err(e) => {
                if !unusable.contains(&e) {
                    unusable.push(e);
                }
                continue;
            }
        };
        let before = server.rss_kb().unwrap_or(0);
        let overflows = listen_overflows();
        let started = Instant::now();
        let (stats, streams) = rt.block_on(load::open_idle(
            server.addr,
            o.idle_connections,
            o.burst,
            o.burst_interval,
            probe.clone(),
            o.idle_timeout,
        ));
        let open_rss = server.rss_kb().unwrap_or(0);
        let overflows = listen_overflows() - overflows;
        let answered_in = if stats.failed == 0 {
            format!("{:.2} s", stats.last_answer.as_secs_f64())
        } else {
            format!("> {:.1} s", started.elapsed().as_secs_f64())
        };
        println!(
            "{:>8} {:>9} {:>7} {:>16} {:>10.1} MB {:>10.1} MB",
            kind.name(),
            stats.answered,
            stats.failed,
            answered_in,
            before as f64 / 1024.0,
            open_rss as f64 / 1024.0
        );
        if overflows > 0 {
            println!("         {overflows} SYNs dropped on a full accept queue");
        }
        if let Some(err) = &stats.first_error {
            println!("         first failure: {err}");
        }
        rt.block_on(async move { drop(streams) });
        drop(server);
    }
    println!("  goals for erlboot: all answered within 2 s, RSS with them open <= 40 MB");
}
