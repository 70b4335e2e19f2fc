//! The private network namespace the bench runs in when it can: only a loopback interface,
//! so OTP's boot server may bind UDP 4368, a herd's discovery reaches nothing else, and the
//! accept-queue counters are the bench's own.
//!
//! The bench re-executes itself under `ip netns exec` (which needs root and iproute2) with
//! [`INSIDE_ENV`] set; the outer process waits and deletes the namespace afterwards.

use std::ffi::OsString;
use std::process::{Command, ExitStatus, Stdio};

use thiserror::Error;

/// Set, to the namespace's name, in the re-executed process.
pub const INSIDE_ENV: &str = "ERLBOOT_BENCH_NETNS";

/// Why the namespace could not be made or used.
#[derive(Debug, Error)]
pub enum NamespaceError {
    #[error("`ip {args}` failed: {stderr}")]
    Ip { args: String, stderr: String },
    #[error("cannot run `ip` (iproute2): {0}")]
    NoIp(std::io::Error),
    #[error("cannot find this program's own binary: {0}")]
    CurrentExe(std::io::Error),
    #[error("cannot run the bench inside the namespace: {0}")]
    Exec(std::io::Error),
}

/// The namespace this process runs in, if the bench made it.
pub fn inside() -> Option<String> {
    std::env::var(INSIDE_ENV).ok()
}

/// Whether this process may make namespaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A namespace with loopback up; deleted when dropped.
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Makes `erlboot-bench-<pid>` and brings its loopback up.
    pub fn create() -> Result<Namespace, NamespaceError> {
        let name = format!("erlboot-bench-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let namespace = Namespace { name };
        ip(&["-n", &namespace.name, "link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs this program again inside the namespace with `args`, and waits for it.
    pub fn run_self(&self, args: &[OsString]) -> Result<ExitStatus, NamespaceError> {
        let exe = std::env::current_exe().map_err(NamespaceError::CurrentExe)?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(exe)
            .args(args)
            .env(INSIDE_ENV, &self.name)
            .spawn()
            .map_err(NamespaceError::Exec)?;
        // Ctrl-C reaches the child too (same process group); this process stays to delete
        // the namespace.
        // SAFETY: setting a signal disposition to SIG_IGN.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
        child.wait().map_err(NamespaceError::Exec)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), NamespaceError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(NamespaceError::NoIp)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NamespaceError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}
