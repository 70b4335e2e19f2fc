//! The servers the bench starts: `erlboot serve` (this very binary), OTP's `erl_boot_server`
//! and the ceiling, each a child process on loopback that says where it listens.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use thiserror::Error;

/// How long a server may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A kind of server the bench can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Erlboot,
    Otp,
    Ceiling,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Erlboot, Kind::Otp, Kind::Ceiling];

    /// The name in `--spawn`, the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Erlboot => "erlboot",
            Kind::Otp => "otp",
            Kind::Ceiling => "ceiling",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--spawn` name that is none of `erlboot`, `otp`, `ceiling`, `all`.
#[derive(Debug, Error)]
#[error("{0:?} is not a server to start (erlboot, otp, ceiling or all)")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Kind, UnknownKind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Why a server did not start.
#[derive(Debug, Error)]
pub enum SpawnError {
    #[error("`erl` is not installed (not on PATH), so OTP's erl_boot_server cannot run")]
    NoErl,
    #[error("cannot start {kind}: {source}")]
    Start { kind: Kind, source: std::io::Error },
    #[error("{kind} {why}; its standard error:\n{stderr}")]
    NotListening {
        kind: Kind,
        why: String,
        stderr: String,
    },
}

/// What every server is started with.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The `erlboot` binary (`erlboot serve`, and the ceiling as `erlboot bench --ceiling`).
    pub erlboot: PathBuf,
    /// The installation the boot reads (`--root` of erlboot serve).
    pub root: String,
    /// An empty directory, the working directory of every server, so that the boot's
    /// `./Mod.beam` requests fail alike everywhere.
    pub cwd: PathBuf,
    /// Where standard error logs go.
    pub logs: PathBuf,
    /// The ceiling's recording (see [`super::ceiling`]).
    pub recording: PathBuf,
    /// UDP port of erlboot serve: 0 (none) while OTP holds 4368, 4368 for discovery.
    pub erlboot_udp_port: u16,
}

/// A running server; killed when dropped.
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// The process whose CPU time and memory are measured.
    pub pid: u32,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `erl` on PATH, if any.
pub fn find_erl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("erl"))
        .find(|erl| erl.is_file())
}

/// OTP's boot server for `127.0.0.1`, printing its TCP port the way erlboot serve does.
const OTP_SERVER: &str = "{ok, _} = erl_boot_server:start([\"127.0.0.1\"]), \
     Port = element(7, sys:get_state(boot_server)), \
     io:format(\"listening tcp=127.0.0.1:~w udp=0.0.0.0:4368~n\", [Port]), \
     receive after infinity -> ok end.";

impl Server {
    /// Starts a server and waits for its `listening tcp=ADDR` line.
    pub fn start(kind: Kind, setup: &Setup) -> Result<Server, SpawnError> {
        let mut command = match kind {
            Kind::Erlboot => {
                let mut command = Command::new(&setup.erlboot);
                command
                    .args(["serve", "--root", &setup.root, "--allow", "127.0.0.1"])
                    .args(["--bind", "127.0.0.1", "--port", "0", "--udp-port"])
                    .arg(setup.erlboot_udp_port.to_string())
                    .arg("--cwd")
                    .arg(&setup.cwd)
                    // OTP serves its working directory; so does erlboot when it is a root.
                    .arg("--root")
                    .arg(&setup.cwd)
                    // A herd comes from one address.
                    .args(["--max-connections", "100000", "--max-per-ip", "100000"]);
                command
            }
            Kind::Otp => {
                let erl = find_erl().ok_or(SpawnError::NoErl)?;
                let mut command = Command::new(erl);
                command.args(["-noshell", "-eval", OTP_SERVER]);
                command
            }
            Kind::Ceiling => {
                let mut command = Command::new(&setup.erlboot);
                command.args(["bench", "--ceiling"]).arg(&setup.recording);
                command
            }
        };
        let log_path = setup.logs.join(format!("{kind}.stderr"));
        let log = std::fs::File::create(&log_path)
            .map_err(|source| SpawnError::Start { kind, source })?;
        command
            .current_dir(&setup.cwd)
            .env("HOME", &setup.logs)
            .env("TZ", "UTC")
            .env("LANG", "C.UTF-8")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // Servers die with the bench, Ctrl-C included.
        // SAFETY: prctl in the child between fork and exec; async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|source| SpawnError::Start { kind, source })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {} // keep the pipe drained
        });
        let not_listening = |why: String, child: &mut Child| {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
            let stderr: Vec<&str> = stderr.lines().take(8).collect();
            SpawnError::NotListening {
                kind,
                why,
                stderr: stderr.join("\n"),
            }
        };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => return Err(not_listening("exited before listening".into(), &mut child)),
            Err(_) => {
                return Err(not_listening(
                    format!("said nothing in {} s", START_TIMEOUT.as_secs()),
                    &mut child,
                ))
            }
        };
        let Some(addr) = listening_addr(&line) else {
            return Err(not_listening(
                format!("printed {line:?} instead of where it listens"),
                &mut child,
            ));
        };
        let pid = measured_pid(child.id());
        Ok(Server {
            kind,
            addr,
            pid,
            child,
        })
    }
}

/// The address in a `listening tcp=ADDR ...` line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("tcp="))?
        .parse()
        .ok()
}

/// `erl` is a script that execs `erlexec`, which execs `beam.smp`, so the pid is normally the
/// emulator's already; if a wrapper forked instead, its only child is the one to measure.
fn measured_pid(pid: u32) -> u32 {
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

/// Why a run could not be set up.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("cannot make a scratch directory: {0}")]
    Scratch(std::io::Error),
    #[error("cannot find this program's own binary: {0}")]
    CurrentExe(std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// What every run starts from: a runtime for the load and a scratch directory for the servers.
pub fn prepare() -> Result<(tokio::runtime::Runtime, Scratch), SetupError> {
    let runtime = tokio::runtime::Runtime::new().map_err(SetupError::Runtime)?;
    let scratch = Scratch::new().map_err(SetupError::Scratch)?;
    Ok((runtime, scratch))
}

impl Setup {
    /// Servers of this very binary reading `root`, with their cwd and logs in `scratch`, the
    /// ceiling's recording at `recording` inside it, and erlboot's discovery on `udp_port`.
    pub fn in_scratch(
        scratch: &Scratch,
        root: String,
        recording: &str,
        udp_port: u16,
    ) -> Result<Setup, SetupError> {
        Ok(Setup {
            erlboot: std::env::current_exe().map_err(SetupError::CurrentExe)?,
            root,
            cwd: scratch.path().join("cwd"),
            logs: scratch.path().to_path_buf(),
            recording: scratch.path().join(recording),
            erlboot_udp_port: udp_port,
        })
    }
}

/// A scratch directory for one run, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("erlboot-bench-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cwd"))?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>().unwrap(), kind);
        }
        assert!("erl".parse::<Kind>().is_err());
    }

    #[test]
    fn the_listening_line_names_the_tcp_address() {
        assert_eq!(
            listening_addr("listening tcp=127.0.0.1:4711 udp=0.0.0.0:4368 erts=13.1.5"),
            Some("127.0.0.1:4711".parse().unwrap())
        );
        assert_eq!(listening_addr("listening udp=0.0.0.0:4368"), None);
        assert_eq!(listening_addr("listening tcp=nowhere"), None);
    }
}
