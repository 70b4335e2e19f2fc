//! `erlboot conformance`: captures of real nodes replayed case by case against erlboot.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use erlboot_conformance::case::{Kind, Outcome, Verdict};
use erlboot_conformance::live::{self, Target};
use erlboot_conformance::materialise::{materialise, MaterialiseError, MaterialiseOptions};
use erlboot_conformance::render;
use erlboot_conformance::report::junit::JunitError;
use erlboot_conformance::report::{html, json, junit, table};
use erlboot_conformance::spawn::{enter_private_namespaces, ServerKind, SpawnError, Spawned};
use erlboot_conformance::suite::{self, Recording, Selection};
use erlboot_conformance::transcript::TranscriptOptions;
use erlboot_conformance::CaptureError;
use thiserror::Error;

/// Replay captures of real Erlang nodes and judge erlboot case by case.
///
/// Every capture (a pcap or pcapng file, or every one in a directory; `captures` by default)
/// carries its own file tree: each captured request goes to erlboot's server session, answered
/// from what the capture's server found, and the reply must be the captured bytes (server
/// cases); erlboot's loader is replayed on what the captured client received and must send
/// the same bytes (client cases) at the same times (timing cases); each captured EBOOTQ goes
/// to erlboot's responder (discovery cases). Case ids are CAPTURE/KIND/NNNN. The exit status
/// is non-zero when any case fails.
#[derive(Args)]
pub struct ConformanceArgs {
    /// Capture files, or directories of them.
    #[arg(default_value = "captures")]
    paths: Vec<PathBuf>,
    /// Print the ids of the selected cases and run nothing.
    #[arg(long)]
    list: bool,
    /// Run only this case, or the cases whose id starts with these whole parts
    /// (`otp25-boot`, `otp25-boot/server`); repeatable.
    #[arg(long = "case", value_name = "ID")]
    cases: Vec<String>,
    /// Run only cases of this kind; repeatable.
    #[arg(long = "kind", value_enum)]
    kinds: Vec<KindArg>,
    /// A TCP port to read as a boot server's, besides those the captures' EBOOTR answers
    /// announce (repeatable).
    #[arg(long = "port")]
    ports: Vec<u16>,
    /// Also replay every captured session against this server, started for each capture in
    /// a private network and mount namespace with the capture's file tree at the captured
    /// paths (needs root); repeatable.
    #[arg(long, value_enum)]
    spawn: Vec<SpawnArg>,
    /// Also replay every captured session against a running server's TCP address (its
    /// file tree is yours to provide: see --materialise); repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    target: Vec<SocketAddr>,
    /// Write each capture's file tree to DIR/CAPTURE and stop.
    #[arg(long, value_name = "DIR")]
    materialise: Option<PathBuf>,
    /// Print every case, not just those that did not pass.
    #[arg(long, short)]
    verbose: bool,
    /// Also write the verdicts as JSON (`summary`, and `cases`: id, capture, kind, target,
    /// outcome, summary, detail, ...).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the verdicts as JUnit XML (a testsuite per capture).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write a self-contained HTML page: cases down, targets across, each cell opening
    /// the request and both replies.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SpawnArg {
    /// OTP's erl_boot_server, from this machine's installation.
    Otp,
    /// erlboot serve, this executable.
    Erlboot,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Server,
    Client,
    Discovery,
    Timing,
}

impl From<KindArg> for Kind {
    fn from(kind: KindArg) -> Kind {
        match kind {
            KindArg::Server => Kind::Server,
            KindArg::Client => Kind::Client,
            KindArg::Discovery => Kind::Discovery,
            KindArg::Timing => Kind::Timing,
        }
    }
}

/// Why the command failed.
#[derive(Debug, Error)]
pub enum ConformanceError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("no capture files in {0}")]
    NoCaptures(String),
    #[error("no boot traffic in the captures, so no case to run (see the notes above)")]
    NoTraffic,
    #[error("no case matches {0}")]
    NoCase(String),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Materialise(#[from] MaterialiseError),
    #[error("writing the report: {0}")]
    Write(#[from] io::Error),
    #[error("{path}: {source}")]
    Report { path: String, source: io::Error },
    #[error(transparent)]
    Junit(#[from] JunitError),
    #[error("{failed} of {total} cases failed")]
    Failed { failed: usize, total: usize },
}

/// Runs `erlboot conformance`.
pub fn run(args: ConformanceArgs) -> Result<(), ConformanceError> {
    if !args.spawn.is_empty() && args.materialise.is_none() && !args.list {
        // Before any thread: the namespaces are per thread until a child inherits them.
        enter_private_namespaces()?;
    }
    let options = TranscriptOptions { ports: args.ports };
    let mut recordings = Vec::new();
    for path in &args.paths {
        let files = suite::capture_files(path)?;
        if files.is_empty() {
            return Err(ConformanceError::NoCaptures(path.display().to_string()));
        }
        for file in files {
            let recording = Recording::read(&file, &options)?;
            for note in render::notes(&recording.transcript) {
                eprintln!("erlboot: note: {}: {note}", recording.name);
            }
            recordings.push(recording);
        }
    }
    let selection = Selection {
        patterns: args.cases.clone(),
        kinds: args.kinds.iter().map(|&k| k.into()).collect(),
    };
    if let Some(dir) = &args.materialise {
        for recording in &recordings {
            let to = dir.join(&recording.name);
            let done = materialise(&recording.files, &to, MaterialiseOptions::default())?;
            println!(
                "{}: {} files ({} bytes), {} made-up files, {} directories, {} links, {} links written as their targets",
                to.display(),
                done.files,
                done.bytes,
                done.placeholders,
                done.dirs,
                done.links,
                done.links_flattened
            );
        }
        return Ok(());
    }
    let mut verdicts = suite::judge(&recordings, &selection);
    if !args.list {
        verdicts.extend(live_verdicts(
            &args.spawn,
            &args.target,
            &recordings,
            &selection,
        )?);
    }
    if verdicts.is_empty() {
        if recordings.iter().all(|r| r.transcript.sessions.is_empty()) {
            return Err(ConformanceError::NoTraffic);
        }
        let mut asked = args.cases.clone();
        asked.extend(selection.kinds.iter().map(|k| format!("kind {k}")));
        return Err(ConformanceError::NoCase(asked.join(", ")));
    }
    let printed = if args.list {
        list(&mut io::stdout().lock(), &verdicts)
    } else {
        let listing = if args.verbose {
            table::Listing::Every
        } else {
            table::Listing::Problems
        };
        io::stdout()
            .lock()
            .write_all(table::render(&verdicts, listing).as_bytes())
    };
    match printed {
        // A reader that stops early (`| head`) has all it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    if args.list {
        return Ok(());
    }
    let reports = [
        (&args.json, Some(json::render(&verdicts))),
        (&args.junit, Some(junit::render(&verdicts)?)),
        (&args.html, None),
    ];
    for (path, text) in reports {
        let Some(path) = path else { continue };
        let text = text.unwrap_or_else(|| html::render(&verdicts, "erlboot conformance"));
        std::fs::write(path, text).map_err(|source| ConformanceError::Report {
            path: path.display().to_string(),
            source,
        })?;
    }
    let failed = verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Fail)
        .count();
    if failed > 0 {
        return Err(ConformanceError::Failed {
            failed,
            total: verdicts.len(),
        });
    }
    Ok(())
}

fn list(out: &mut impl Write, verdicts: &[Verdict]) -> io::Result<()> {
    for verdict in verdicts {
        writeln!(out, "{}  {}", verdict.id, verdict.summary)?;
    }
    Ok(())
}

/// The server cases of every recording replayed against each live target.
fn live_verdicts(
    spawn: &[SpawnArg],
    targets: &[SocketAddr],
    recordings: &[Recording],
    selection: &Selection,
) -> Result<Vec<Verdict>, ConformanceError> {
    let mut out = Vec::new();
    let scratch = std::env::temp_dir().join(format!("erlboot-conformance-{}", std::process::id()));
    for kind in spawn {
        let kind = match kind {
            SpawnArg::Otp => ServerKind::Otp,
            SpawnArg::Erlboot => ServerKind::Erlboot {
                exe: std::env::current_exe()?,
            },
        };
        for recording in recordings {
            let dir = scratch
                .join(&recording.name)
                .join(kind.name().replace(' ', "-"));
            let mut verdicts = match Spawned::start(&kind, recording, &dir) {
                Ok(spawned) => live::judge(recording, &spawned.target),
                // No server of the capture's own release here: its cases cannot be judged.
                Err(why @ SpawnError::NoRelease { .. }) => unsupported(recording, &kind, &why),
                Err(e) => return Err(e.into()),
            };
            verdicts.retain(|v| selection.selects(v));
            out.extend(verdicts);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    for &tcp in targets {
        let target = Target {
            name: tcp.to_string(),
            tcp,
            udp: Some(SocketAddr::new(tcp.ip(), erlboot::proto::discovery::PORT)),
        };
        for recording in recordings {
            let mut verdicts = live::judge(recording, &target);
            verdicts.retain(|v| selection.selects(v));
            out.extend(verdicts);
        }
    }
    Ok(out)
}

/// The cases a live target would have been held to, each Unsupported for `why`.
fn unsupported(recording: &Recording, kind: &ServerKind, why: &SpawnError) -> Vec<Verdict> {
    let live = Selection {
        patterns: Vec::new(),
        kinds: vec![Kind::Server, Kind::Discovery],
    };
    suite::judge(std::slice::from_ref(recording), &live)
        .into_iter()
        .map(|v| Verdict {
            target: kind.name().to_owned(),
            outcome: Outcome::Unsupported,
            detail: why.to_string(),
            exchange: None,
            ..v
        })
        .collect()
}
