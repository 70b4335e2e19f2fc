//! Real OTP releases for differential and live tests: the system's `erl` (OTP 25 on Debian
//! bookworm), and a newer release in a Debian chroot (made by `.ci/install-otp`).
//!
//! Missing OTP is a loud failure, never a silent pass.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::netns::Netns;

/// Where `.ci/install-otp` puts the OTP 27 chroot unless `ERLBOOT_OTP27_ROOT` says otherwise.
pub const DEFAULT_OTP27_ROOT: &str = "/var/lib/erlboot/otp27";

/// Where the OTP 29 tree is looked for unless `ERLBOOT_OTP29_ROOT` says otherwise. CI does not
/// make it; `captures/record.sh` names the command that does.
pub const DEFAULT_OTP29_ROOT: &str = "/var/lib/erlboot/otp29";

/// One installed OTP release.
pub struct Otp {
    /// The chroot it lives in, or `None` for the system's own.
    root: Option<PathBuf>,
}

impl Otp {
    /// The system's OTP (`erl` and `escript` on PATH).
    pub fn system() -> Otp {
        let found = Command::new("escript").arg("-h").output().is_ok()
            || Path::new("/usr/bin/escript").exists();
        assert!(
            found,
            "this test needs a real Erlang/OTP: `escript` is not on PATH.\n\
             Install it with `bash .ci/install-otp` (Debian: apt-get install -y erlang-base)."
        );
        Otp { root: None }
    }

    /// OTP 27 in its chroot.
    pub fn otp27() -> Otp {
        Otp::in_chroot(
            "OTP 27",
            "ERLBOOT_OTP27_ROOT",
            DEFAULT_OTP27_ROOT,
            "usr/bin/escript",
            "run `bash .ci/install-otp` as root to make it",
        )
    }

    /// OTP 29 in its chroot, a Debian sid tree made with
    /// `debootstrap --variant=minbase --include=erlang-base sid ROOT`.
    pub fn otp29() -> Otp {
        Otp::in_chroot(
            "OTP 29",
            "ERLBOOT_OTP29_ROOT",
            DEFAULT_OTP29_ROOT,
            "usr/bin/erl",
            "make it as root with `debootstrap --variant=minbase --include=erlang-base sid ROOT`",
        )
    }

    /// `release` in the chroot named by environment variable `var` (or at `default`), which
    /// must hold `probe`; the test fails where it does not, saying `how_to_make` it (`ROOT` in
    /// it is the chroot's path).
    fn in_chroot(release: &str, var: &str, default: &str, probe: &str, how_to_make: &str) -> Otp {
        let root = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default));
        let shown = root.display().to_string();
        assert!(
            root.join(probe).exists(),
            "this test needs {release} in a chroot at {shown} (or {var}): {}.",
            how_to_make.replace("ROOT", &shown)
        );
        Otp { root: Some(root) }
    }

    /// The chroot this release lives in, or `None` for the system's own.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `program` as this release sees it, run inside `ns` (through `chroot` for a release in
    /// one); ready for arguments.
    pub fn command(&self, ns: &Netns, program: impl AsRef<OsStr>) -> Command {
        match &self.root {
            Some(root) => {
                let mut command = ns.command("chroot");
                command.arg(root).arg(program);
                command
            }
            None => ns.command(program),
        }
    }

    /// `file` of the host made visible to this release: linked (or copied, across file
    /// systems) into a scratch directory of the chroot, which is removed when the [`Staged`]
    /// is dropped. The system's OTP sees the file where it is.
    pub fn stage(&self, file: &Path) -> Staged {
        if self.root.is_none() {
            return Staged {
                dir: None,
                path: file.to_owned(),
            };
        }
        let (host, inside) = self.scratch();
        let name = file.file_name().expect("a file name");
        let target = host.join(name);
        if std::fs::hard_link(file, &target).is_err() {
            std::fs::copy(file, &target)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", file.display(), target.display()));
        }
        Staged {
            dir: Some(host),
            path: inside.join(name),
        }
    }

    /// A fresh scratch directory that this OTP can see: the host path and the path inside.
    pub fn scratch(&self) -> (PathBuf, PathBuf) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "erlboot-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let inside = Path::new("/tmp").join(name);
        let host = match &self.root {
            Some(root) => root.join(inside.strip_prefix("/").unwrap()),
            None => inside.clone(),
        };
        std::fs::create_dir_all(&host).unwrap();
        (host, inside)
    }

    /// Runs `escript SCRIPT ARGS...`; the script must lie in a scratch directory of this OTP,
    /// given by its inside path. Panics with the script's output if it fails.
    pub fn escript(&self, script: &Path, args: &[&str]) -> Output {
        self.escript_env(script, args, &[])
    }

    /// As [`Otp::escript`], with extra environment variables (such as `TZ`).
    pub fn escript_env(&self, script: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = match &self.root {
            Some(root) => {
                let mut c = Command::new("chroot");
                c.arg(root).arg("escript");
                c
            }
            None => Command::new("escript"),
        };
        let output = command
            .arg(script)
            .args(args)
            .env("LANG", "C.UTF-8")
            .envs(env.iter().copied())
            .output()
            .expect("escript could not be started");
        assert!(
            output.status.success(),
            "escript {} {:?} failed: {}\n{}",
            script.display(),
            args,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The oracle script copied into a scratch directory: (scratch host dir, inside dir,
    /// inside script path).
    pub fn oracle(&self) -> (PathBuf, PathBuf, PathBuf) {
        let (host, inside) = self.scratch();
        let source = crate::repository().join("tests/oracle/etf_oracle.escript");
        std::fs::copy(source, host.join("etf_oracle.escript")).unwrap();
        let script = inside.join("etf_oracle.escript");
        (host, inside, script)
    }

    /// `(otp_release, erts_version)`, e.g. `("25", "13.1.5")`.
    pub fn versions(&self) -> (String, String) {
        let (_, _, script) = self.oracle();
        let out = self.escript(&script, &["info"]);
        let text = String::from_utf8(out.stdout).unwrap();
        let mut words = text.split_whitespace().map(str::to_owned);
        (words.next().unwrap(), words.next().unwrap())
    }
}

/// A host file made visible to a release by [`Otp::stage`].
pub struct Staged {
    /// The scratch directory on the host, removed on drop; `None` when nothing was copied.
    dir: Option<PathBuf>,
    path: PathBuf,
}

impl Staged {
    /// The file's path as the release sees it.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Records `<<Len:32, Bytes>>`, the oracle's file format.
pub fn write_records(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// Splits `<<Len:32, Bytes>>` records.
pub fn read_records(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        out.push(data[4..4 + len].to_vec());
        data = &data[4 + len..];
    }
    out
}
