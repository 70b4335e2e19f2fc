//! `erlboot serve`: a boot server for `erl -loader inet` nodes.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use erlboot::disk::{erts_versions, profile_of};
use erlboot::disk::{DiskConfig, DiskSource, Jail, NameEncoding};
use erlboot::etf::Profile;

use crate::release::OtpRelease;
use erlboot::net::{Blocking, ServeError, Server, ServerConfig, TokioRuntime};
use erlboot::proto::discovery;
use erlboot::server::{
    AllowList, Cidr, ConnectionLimits, ReplyEncoding, SessionConfig, SessionLimits, Versions,
};
use thiserror::Error;
use tracing::{info, warn};

/// The Erlang installation served when no --root is given.
const DEFAULT_ROOT: &str = "/usr/lib/erlang";

/// Serve files to Erlang nodes booting with `-loader inet -hosts <this host>`.
///
/// Nodes find the server by UDP broadcast or unicast to port 4368 and then fetch their boot
/// script and every module over TCP. Only addresses given with --allow may boot, and only files
/// under the local Erlang installation (/usr/lib/erlang) and the --root directories are
/// served. Discovery answers nodes of the ERTS versions installed there (erts-*/): a node
/// boots only from a server that answers its own ERTS version, so use --erts-version or
/// --any-version to boot nodes of other releases.
///
/// Example: boot this machine's own Erlang nodes:
///
///   erlboot serve --allow 127.0.0.1
///   erl -loader inet -hosts 127.0.0.1
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Who may boot: an IPv4 address or block (10.0.0.0/8); repeatable. Required: with no
    /// --allow nobody could boot (--allow 0.0.0.0/0 allows everyone).
    #[arg(long, value_name = "ADDR[/BITS]", required = true)]
    allow: Vec<Cidr>,

    /// Serve files under this directory too; repeatable. The local Erlang installation
    /// (/usr/lib/erlang) is always served when it exists. Paths leading outside every root
    /// (through `..` or symbolic links) are answered as absent.
    #[arg(long, value_name = "DIR")]
    root: Vec<PathBuf>,

    /// Serve any file this process can read, as OTP's boot server does. Unsafe.
    #[arg(long)]
    no_jail: bool,

    /// TCP port for boot connections (0: any free port, as OTP).
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Address to listen on, for TCP and UDP.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    bind: IpAddr,

    /// UDP port for discovery (EBOOTQ); the clients' is fixed at 4368.
    #[arg(long, default_value_t = discovery::PORT)]
    udp_port: u16,

    /// Answer discovery from nodes of this ERTS version (e.g. 13.1.5); repeatable. Default:
    /// the versions of the erts-* directories under the roots.
    #[arg(long, value_name = "V")]
    erts_version: Vec<String>,

    /// Answer discovery from nodes of any ERTS version.
    #[arg(long, conflicts_with = "erts_version")]
    any_version: bool,

    /// The working directory relative names (./mod.beam) resolve against and get_cwd reports.
    /// Default: this process's.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,

    /// Encode replies as this OTP release does (25: Latin-1 atoms; 26: UTF-8 atoms). Default:
    /// as each request is encoded, which is how a server of the client's release answers.
    #[arg(long, value_enum)]
    otp: Option<OtpRelease>,

    /// How file names on disk map to the code points on the wire.
    #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
    filename_encoding: Encoding,

    /// Open connections at most.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,

    /// Open connections from one address at most.
    #[arg(long, default_value_t = ConnectionLimits::default().max_per_ip)]
    max_per_ip: usize,

    /// Close a connection silent for this many seconds (0: never).
    #[arg(long, value_name = "SECS", default_value_t = default_secs(SessionLimits::default().idle_timeout))]
    idle_timeout: u64,

    /// Close a connection whose request stays incomplete this many seconds (0: never).
    #[arg(long, value_name = "SECS", default_value_t = default_secs(SessionLimits::default().frame_timeout))]
    frame_timeout: u64,

    /// Largest request frame accepted, in bytes; a larger one closes the connection.
    #[arg(long, value_name = "BYTES", default_value_t = SessionLimits::default().max_request)]
    max_request: u32,

    /// Bytes of file contents to keep in memory, and as many of reply frames.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::DEFAULT_CACHE_BYTES)]
    cache_size: usize,

    /// Log format, on standard error. RUST_LOG sets the level (default: info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum Encoding {
    Utf8,
    Latin1,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Why the server did not start.
#[derive(Debug, Error)]
pub enum ServeCliError {
    #[error("{0}")]
    Root(std::io::Error),
    #[error("nothing to serve: no Erlang installation at /usr/lib/erlang; give --root DIR")]
    NoRoot,
    #[error("the working directory: {0}")]
    Cwd(std::io::Error),
    #[error("no ERTS version to answer: no erts-* directory under the roots; give --erts-version V or --any-version")]
    NoVersion,
    #[error(transparent)]
    Bind(#[from] ServeError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs `erlboot serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<(), ServeCliError> {
    init_logging(args.log_format);
    erlboot::net::raise_open_files_limit();
    let default_root = Path::new(DEFAULT_ROOT);
    let roots: Vec<PathBuf> = default_root
        .is_dir()
        .then(|| default_root.to_owned())
        .into_iter()
        .chain(args.root.iter().cloned())
        .collect();
    if roots.is_empty() && !args.no_jail {
        return Err(ServeCliError::NoRoot);
    }
    let jail = if args.no_jail {
        warn!("--no-jail: serving any file this process can read");
        Jail::Open
    } else {
        Jail::new(roots.iter().cloned()).map_err(ServeCliError::Root)?
    };
    let found: Vec<String> = roots.iter().flat_map(|r| erts_versions(r)).collect();
    let versions = if args.any_version {
        Versions::Any
    } else if !args.erts_version.is_empty() {
        Versions::Exact(args.erts_version.clone())
    } else if !found.is_empty() {
        Versions::Exact(found.clone())
    } else {
        return Err(ServeCliError::NoVersion);
    };
    let encoding = match args.otp {
        Some(release) => ReplyEncoding::Fixed(release.profile()),
        None => ReplyEncoding::MirrorClient {
            fallback: found.first().map_or(Profile::Otp25, |v| profile_of(v)),
        },
    };
    let cwd = match args.cwd {
        Some(dir) => std::fs::canonicalize(dir).map_err(ServeCliError::Cwd)?,
        None => std::env::current_dir().map_err(ServeCliError::Cwd)?,
    };
    let source = DiskSource::new(DiskConfig {
        jail,
        cwd,
        encoding: match args.filename_encoding {
            Encoding::Utf8 => NameEncoding::Utf8,
            Encoding::Latin1 => NameEncoding::Latin1,
        },
        cache_bytes: args.cache_size,
        watch: true,
    });
    if let Some(error) = source.watch_error() {
        warn!(%error, "not watching the roots for changes: every request is checked on disk");
    }
    if (1..60).contains(&args.idle_timeout) {
        warn!(
            "--idle-timeout {} s: OTP nodes close their own connection after 60 s without a \
             request; one closed earlier by the server stalls the node's next request for 60 s",
            args.idle_timeout
        );
    }
    let seconds = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let config = ServerConfig {
        tcp: SocketAddr::new(args.bind, args.port),
        udp: Some(SocketAddr::new(args.bind, args.udp_port)),
        allow: AllowList::new(args.allow),
        versions,
        session: SessionConfig {
            limits: SessionLimits {
                max_request: args.max_request,
                idle_timeout: seconds(args.idle_timeout),
                frame_timeout: seconds(args.frame_timeout),
            },
            encoding,
        },
        connections: ConnectionLimits {
            max_connections: args.max_connections,
            max_per_ip: args.max_per_ip,
        },
        reply_cache_bytes: args.cache_size,
    };
    let runtime = tokio::runtime::Runtime::new().map_err(ServeCliError::Runtime)?;
    runtime.block_on(async {
        let files = Blocking(Arc::new(source));
        let server = Server::bind(TokioRuntime::new(), config.clone(), files).await?;
        let versions = match &config.versions {
            Versions::Any => "any".to_owned(),
            Versions::Exact(list) => list.join(","),
        };
        let udp = server.udp_addr().map_or("none".to_owned(), |a| a.to_string());
        // The one line on standard output, for scripts that need the chosen port.
        println!("listening tcp={} udp={udp} erts={versions}", server.tcp_addr());
        let _ = std::io::stdout().flush();
        info!(tcp = %server.tcp_addr(), %udp, erts = %versions, allow = ?config.allow.blocks().iter().map(ToString::to_string).collect::<Vec<_>>(), "boot server started");
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = int.recv() => info!("SIGINT"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A default timeout as the option's seconds (0: none).
fn default_secs(timeout: Option<std::time::Duration>) -> u64 {
    timeout.map_or(0, |t| t.as_secs())
}
