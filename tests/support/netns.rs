//! Private network namespaces for live tests, and the processes that run inside them.
//!
//! Every live test gets its own namespace, `erlboot-<pid>-<n>`, with only a loopback interface,
//! so tests can run in parallel, each with its own UDP port 4368 and epmd, and nothing ever
//! reaches a real network. The namespace is deleted when the [`Netns`] is dropped, also when the
//! test panics.
//!
//! Two ways in:
//! - **Child processes** (servers, Erlang nodes, epmd) run under `ip netns exec NAME ...`. Each
//!   is a [`Proc`] in a process group of its own; dropping it SIGKILLs the whole group, which
//!   takes down `erl`'s shell wrapper, `beam.smp` and any child nodes with it. (A booting node
//!   ignores SIGTERM, so nothing gentler would do.)
//! - **The test's own sockets** are made by [`Netns::enter`], which runs a closure on a fresh
//!   thread that has called `setns(2)` on `/run/netns/NAME`. `setns` changes the namespace of
//!   the calling thread only, so the test process stays where it is, and the thread is thrown
//!   away afterwards. A socket belongs to the namespace it was created in for its whole life,
//!   so the closure can return sockets and the test can use them from any thread. This avoids
//!   re-running the test binary under `ip netns exec` in a helper mode.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Panics with a clear message unless `program` can be found on PATH.
pub fn require(program: &str, why: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "this live test needs `{program}` on PATH ({why}); it was not found. \
         Install it with `bash .ci/install-otp` (as root)."
    );
}

/// A network namespace with loopback up; deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Makes `erlboot-<pid>-<n>` and brings its loopback up. Needs root and `ip`.
    #[allow(clippy::new_without_default)] // makes a namespace: not a default value
    pub fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        require("ip", "iproute2 makes the network namespaces");
        let name = format!(
            "erlboot-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds another loopback address, e.g. `127.0.0.2`, to `lo`. Linux already routes all of
    /// 127.0.0.0/8 to `lo`; this makes the address explicit in `ip addr`.
    pub fn add_loopback_address(&self, addr: &str) {
        ip(&[
            "-n",
            &self.name,
            "addr",
            "add",
            &format!("{addr}/8"),
            "dev",
            "lo",
        ]);
    }

    /// `ip netns exec NAME program`, ready for arguments.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `command` (made by [`Netns::command`]) to completion, killing it after `timeout`.
    pub fn run(&self, command: Command, timeout: Duration) -> Finished {
        let mut proc = Proc::spawn(command);
        let status = proc.wait_timeout(timeout);
        let finished = Finished {
            status,
            stdout: proc.stdout(),
            stderr: proc.stderr(),
            elapsed: proc.started.elapsed(),
        };
        drop(proc);
        finished
    }

    /// Runs `f` on a thread inside the namespace and returns its result. Sockets made by `f`
    /// stay in the namespace wherever they are used afterwards.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = Path::new("/run/netns").join(&self.name);
        thread::scope(|scope| {
            scope
                .spawn(move || {
                    let file = File::open(&path)
                        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                    // SAFETY: setns on a valid namespace fd; it affects this thread only.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(
                        rc,
                        0,
                        "setns({}): {}",
                        path.display(),
                        std::io::Error::last_os_error()
                    );
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` could not be started");
    assert!(
        out.status.success(),
        "ip {}: {} (live tests need root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// How a process ended: `None` if it was killed for running too long.
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// Panics with everything known unless the process exited with status 0.
    pub fn assert_success(&self, what: &str) {
        match self.status {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "{what} failed ({status}) after {:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.elapsed, self.stdout, self.stderr
            ),
            None => panic!(
                "{what} did not finish, killed after {:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.elapsed, self.stdout, self.stderr
            ),
        }
    }
}

/// A running child process in its own process group, with its output collected in the
/// background. Dropping it SIGKILLs the group and reaps the child.
pub struct Proc {
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    lines: mpsc::Receiver<String>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts `command` with piped stdout and stderr, in a new process group.
    pub fn spawn(mut command: Command) -> Proc {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {command:?}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let readers = vec![
            {
                let stdout = stdout.clone();
                thread::spawn(move || {
                    let mut reader = BufReader::new(out);
                    let mut line = Vec::new();
                    while let Ok(n) = reader.read_until(b'\n', &mut line) {
                        if n == 0 {
                            break;
                        }
                        stdout.lock().unwrap().extend_from_slice(&line);
                        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                        line.clear();
                    }
                })
            },
            {
                let stderr = stderr.clone();
                thread::spawn(move || {
                    let mut err = err;
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = err.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        stderr.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                })
            },
        ];
        Proc {
            child,
            started: Instant::now(),
            stdout,
            stderr,
            lines,
            readers,
        }
    }

    /// The process id (also the process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line of stdout, waiting at most `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waitpid")
    }

    /// Waits at most `timeout` for the process to exit; `None` if it is still running. Once it
    /// has exited, waits a little for its output to be read to the end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                self.drain_output();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn drain_output(&mut self) {
        // The pipes close when the last process holding them exits; a grandchild that outlived
        // the child would keep them open, so do not wait for it forever.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to the process itself (not its group).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// SIGKILLs the whole process group and reaps the child.
    pub fn kill(&mut self) {
        // SAFETY: kill(2) on the process group this Proc created (pgid = the child's pid).
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
