//! A boot server started for one capture: OTP's `erl_boot_server` or `erlboot serve`, in a
//! private network and mount namespace, serving the capture's file tree at the captured paths.
//!
//! [`enter_private_namespaces`] moves this process (before it starts any thread) into a new
//! network namespace, whose only interface is its own loopback, and a new mount namespace, so
//! nothing it binds or mounts is seen outside. [`Spawned::start`] then writes the capture's
//! tree to a tmpfs, lays it over the machine's root with overlayfs (the tree's files over the
//! machine's, the names the capture's server called absent hidden by whiteouts), and starts
//! the server chrooted there, in the captured working directory, with `TZ=UTC`, as `nobody`
//! when the capture's server was not root (its file infos and errors tell). OTP's server
//! runs from the machine's installation bound at `/run/erlboot/otp`, since the tree may hold
//! another release's files at `/usr/lib/erlang`. Linux only; needs root.

use std::ffi::CString;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use erlboot::proto::discovery::PORT;
use erlboot::proto::{Access, FileType};
use erlboot::server::{FileError, FileSource, Found};
use thiserror::Error;

use crate::live::{self, Target};
use crate::materialise::{materialise, MaterialiseError, MaterialiseOptions};
use crate::rebuild::CapturedFiles;
use crate::suite::discovery::server_versions;
use crate::suite::Recording;

/// Where an OTP installation is under a root, and where the spawned OTP server sees it.
const OTP_ROOT: &str = "usr/lib/erlang";
const OTP_INSIDE: &str = "run/erlboot/otp";

/// Where other releases' root file systems are looked for (`.ci/install-otp` puts OTP 27's
/// at `/var/lib/erlboot/otp27`).
const OTHER_ROOTS: &str = "/var/lib/erlboot";

/// Which server to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// OTP's `erl_boot_server`, from this machine's installation.
    Otp,
    /// `erlboot serve`, this executable.
    Erlboot {
        /// The `erlboot` executable.
        exe: PathBuf,
    },
}

impl ServerKind {
    /// `otp` or `erlboot`: the target's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Otp => "otp",
            ServerKind::Erlboot { .. } => "erlboot serve",
        }
    }
}

/// Why a server could not be started.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// The namespaces could not be made (not root, or no namespace support).
    #[error("cannot make a private network and mount namespace ({0}); --spawn needs root")]
    Namespace(io::Error),
    /// `ip link set lo up` failed.
    #[error("cannot bring up the private loopback: {0}")]
    Loopback(String),
    /// The tree could not be written.
    #[error(transparent)]
    Materialise(#[from] MaterialiseError),
    /// A mount failed.
    #[error("mount {target}: {source}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// No OTP installation to run.
    #[error("no OTP installation at /{OTP_ROOT} (no erts-* directory)")]
    NoOtp,
    /// No OTP installation of the release the capture's server ran (its ERTS version):
    /// another release would answer otherwise.
    #[error(
        "no OTP release with ERTS {version} on this machine (its own, or a root under \
         {OTHER_ROOTS})"
    )]
    NoRelease {
        /// The ERTS version the capture's server announced.
        version: String,
    },
    /// The server process could not be started.
    #[error("cannot start {what}: {source}")]
    Start {
        /// Which server.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The server never answered discovery.
    #[error("{what} did not answer discovery within {seconds} s{stderr}")]
    NoAnswer {
        /// Which server.
        what: &'static str,
        /// How long it was given.
        seconds: u64,
        /// What it printed on standard error, if anything.
        stderr: String,
    },
}

/// Moves this process into a new network namespace with its loopback up and a new mount
/// namespace whose mounts do not propagate out. Call it before starting any thread.
pub fn enter_private_namespaces() -> Result<(), SpawnError> {
    // SAFETY: unshare has no memory effects; it fails cleanly without privilege.
    if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) } != 0 {
        return Err(SpawnError::Namespace(io::Error::last_os_error()));
    }
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .map_err(|e| SpawnError::Loopback(e.to_string()))?;
    if !up.status.success() {
        return Err(SpawnError::Loopback(
            String::from_utf8_lossy(&up.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

/// A running server and the mounts it runs in; dropping it stops the server and unmounts.
pub struct Spawned {
    /// The server, once started (the mounts come first).
    child: Option<Child>,
    mounts: Vec<PathBuf>,
    /// Where to replay.
    pub target: Target,
}

impl Spawned {
    /// Starts `kind` serving `recording`'s tree, with `scratch` (a directory of its own) for
    /// the layers.
    pub fn start(
        kind: &ServerKind,
        recording: &Recording,
        scratch: &Path,
    ) -> Result<Spawned, SpawnError> {
        let fs_dir = scratch.join("fs");
        let merged = scratch.join("merged");
        for dir in [&fs_dir, &merged] {
            fs::create_dir_all(dir).map_err(|source| MaterialiseError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let mut spawned = Spawned {
            child: None,
            mounts: Vec::new(),
            target: Target {
                name: kind.name().to_owned(),
                tcp: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
                udp: Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT))),
            },
        };
        // The layers live on a tmpfs: overlayfs refuses layers inside one another, and the
        // machine's root is one of them. The upper layer makes the tree writable, as the
        // captured server's was (file infos report access), and is thrown away.
        spawned.mount(Some("tmpfs"), &fs_dir, Some("tmpfs"), 0, None)?;
        let (layer, upper, work) = (
            fs_dir.join("layer"),
            fs_dir.join("upper"),
            fs_dir.join("work"),
        );
        for dir in [&layer, &upper, &work] {
            fs::create_dir_all(dir).map_err(|source| MaterialiseError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        materialise(
            &recording.files,
            &layer,
            MaterialiseOptions { overlay: true },
        )?;
        let inside_otp = layer.join(OTP_INSIDE);
        fs::create_dir_all(&inside_otp).map_err(|source| MaterialiseError::Io {
            path: inside_otp.clone(),
            source,
        })?;
        // The server serves the versions the capture's servers served, or this machine's
        // own (a capture with no answer shows no server's version); OTP's server runs on a
        // root of that release when there is one.
        let versions = match server_versions(recording) {
            versions if !versions.is_empty() => versions,
            _ => erts_dir(Path::new("/"))
                .map(|e| vec![e.trim_start_matches("erts-").to_owned()])
                .unwrap_or_default(),
        };
        let (base, erts) = match kind {
            ServerKind::Otp => otp_root(versions.first().map(String::as_str))?,
            ServerKind::Erlboot { .. } => (PathBuf::from("/"), String::new()),
        };
        let layers = format!(
            "lowerdir={}:{},upperdir={},workdir={}",
            layer.display(),
            base.display(),
            upper.display(),
            work.display()
        );
        spawned.mount(Some("overlay"), &merged, Some("overlay"), 0, Some(&layers))?;
        spawned.mount(
            Some("/dev"),
            &merged.join("dev"),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?;
        spawned.mount(Some("proc"), &merged.join("proc"), Some("proc"), 0, None)?;
        let cwd = match recording.files.cwd() {
            Ok(cwd) => cwd,
            Err(_) => "/".to_owned(),
        };
        let (mut command, version) = match kind {
            ServerKind::Otp => {
                let installation = base.join(OTP_ROOT);
                spawned.mount(
                    installation.to_str(),
                    &merged.join(OTP_INSIDE),
                    None,
                    libc::MS_BIND,
                    None,
                )?;
                let version = erts.trim_start_matches("erts-").to_owned();
                (otp_command(&erts), version)
            }
            ServerKind::Erlboot { exe } => {
                let mut command = Command::new(exe);
                command.env_clear();
                command.args(["serve", "--allow", "127.0.0.1", "--no-jail"]);
                command.args(["--bind", "127.0.0.1"]);
                for version in &versions {
                    command.args(["--erts-version", version]);
                }
                (command, versions.first().cloned().unwrap_or_default())
            }
        };
        let unprivileged = ran_unprivileged(&recording.files);
        let root = CString::new(merged.as_os_str().as_bytes()).expect("a path without NUL");
        let dir = CString::new(cwd.as_bytes()).unwrap_or_else(|_| CString::new("/").unwrap());
        command
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/tmp")
            .env("TZ", "UTC")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: chroot and chdir are async-signal-safe; the strings were made before fork.
        unsafe {
            command.pre_exec(move || {
                if libc::chroot(root.as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::chdir(dir.as_ptr()) != 0 && libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if unprivileged
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(NOBODY) != 0
                        || libc::setuid(NOBODY) != 0)
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = spawned
            .child
            .insert(command.spawn().map_err(|source| SpawnError::Start {
                what: kind.name(),
                source,
            })?);
        let udp = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT));
        let port = live::discover(udp, &version).ok().flatten();
        let Some(port) = port.filter(|&p| p != 0) else {
            let _ = child.kill();
            let stderr = child
                .stderr
                .take()
                .and_then(|mut e| {
                    let mut text = String::new();
                    io::Read::read_to_string(&mut e, &mut text).ok()?;
                    Some(text)
                })
                .filter(|t| !t.trim().is_empty())
                .map(|t| format!(": {}", t.trim()))
                .unwrap_or_default();
            return Err(SpawnError::NoAnswer {
                what: kind.name(),
                seconds: live::TIMEOUT.as_secs(),
                stderr,
            });
        };
        spawned.target.tcp = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        Ok(spawned)
    }

    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> Result<(), SpawnError> {
        mount(source.map(Path::new), target, fstype, flags, data)?;
        self.mounts.push(target.to_owned());
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        for target in self.mounts.iter().rev() {
            if let Ok(path) = CString::new(target.as_os_str().as_bytes()) {
                // SAFETY: a valid C string; a failed unmount leaves the mount, which the
                // private namespace drops when this process ends.
                unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), SpawnError> {
    let c = |s: &[u8]| CString::new(s).expect("no NUL in a mount argument");
    let source = source.map(|s| c(s.as_os_str().as_bytes()));
    let target_c = c(target.as_os_str().as_bytes());
    let fstype = fstype.map(|s| c(s.as_bytes()));
    let data = data.map(|s| c(s.as_bytes()));
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: valid C strings or null, as mount(2) takes them.
    let rc = unsafe {
        libc::mount(
            ptr(&source),
            target_c.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    if rc != 0 {
        return Err(SpawnError::Mount {
            target: target.to_owned(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The user and group `nobody`.
const NOBODY: libc::uid_t = 65534;

/// Whether the capture's server ran as a user other than root: it was refused a file
/// (`eacces`), or it had only read access to something root owns and may write.
pub fn ran_unprivileged(files: &CapturedFiles) -> bool {
    files.answers().any(|(_, answer)| match answer {
        Err(FileError::Access) => true,
        Ok(Found::Info(info)) => {
            info.uid == 0
                && info.mode & 0o200 != 0
                && info.access == Access::Read
                && matches!(info.file_type, FileType::Regular | FileType::Directory)
        }
        _ => false,
    })
}

/// The `erts-*` directory name of the OTP installation under `root`, if there is one.
fn erts_dir(root: &Path) -> Option<String> {
    let entries = fs::read_dir(root.join(OTP_ROOT)).ok()?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("erts-"))
        .collect();
    names.sort();
    names.pop()
}

/// The root file system to run OTP's server on, and its `erts-*` directory: the machine's
/// own, or one under `/var/lib/erlboot` whose ERTS is `version`, if the machine's is not.
fn otp_root(version: Option<&str>) -> Result<(PathBuf, String), SpawnError> {
    let wanted = format!("erts-{}", version.unwrap_or_default());
    let own = erts_dir(Path::new("/"));
    if own.as_deref() == Some(wanted.as_str()) {
        return Ok((PathBuf::from("/"), wanted));
    }
    let mut others: Vec<PathBuf> = fs::read_dir(OTHER_ROOTS)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    others.sort();
    for root in others {
        if erts_dir(&root).as_deref() == Some(wanted.as_str()) {
            return Ok((root, wanted));
        }
    }
    match (own, version) {
        // A capture that shows no server's version is served by this machine's own release.
        (Some(erts), None) => Ok((PathBuf::from("/"), erts)),
        (None, _) => Err(SpawnError::NoOtp),
        (Some(_), Some(version)) => Err(SpawnError::NoRelease {
            version: version.to_owned(),
        }),
    }
}

/// OTP's boot server as `erl` would start it, from the installation seen at
/// `/run/erlboot/otp`.
fn otp_command(erts: &str) -> Command {
    let root = format!("/{OTP_INSIDE}");
    let bin = format!("{root}/{erts}/bin");
    let mut command = Command::new(format!("{bin}/erlexec"));
    command
        .env_clear()
        .env("ROOTDIR", &root)
        .env("BINDIR", &bin)
        .env("EMU", "beam")
        .env("PROGNAME", "erl")
        .args(["-noshell", "-eval"])
        .arg(
            "{ok,_} = erl_boot_server:start([\"127.0.0.1\"]), \
             receive after infinity -> ok end.",
        );
    command
}
