//! What `erlboot fetch` and `erlboot boot` share: where to look for a boot server, as whom,
//! and for how long.

use std::net::{Ipv4Addr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use clap::Args;
use erlboot::client::{LoaderConfig, ProfileError, ReplyError, Response};
use erlboot::disk::{erts_versions, profile_of};
use erlboot::etf::Term;
use erlboot::net::{CallError, Client, TokioRuntime};
use erlboot::proto::Request;
use erlboot::time::Instant;
use thiserror::Error;

/// The Erlang installation whose ERTS version is announced when none is given.
const LOCAL_ERLANG: &str = "/usr/lib/erlang";

/// Options naming the boot server.
#[derive(Args)]
pub struct ServerArgs {
    /// Boot servers to ask: IPv4 addresses (broadcast addresses too) or host names, separated
    /// by commas or given again. OTP's `-hosts` drops host names silently; these are resolved.
    #[arg(long, value_name = "HOST", required = true, value_delimiter = ',')]
    hosts: Vec<String>,

    /// The ERTS version to announce (servers answer only their own). Default: the version of
    /// the local Erlang installation (/usr/lib/erlang/erts-*).
    #[arg(long, value_name = "V")]
    erts_version: Option<String>,

    /// Encode requests as this OTP release does (25: Latin-1 atoms; 26: UTF-8 atoms).
    /// Default: the release of the ERTS version.
    #[arg(long, value_enum)]
    otp: Option<crate::release::OtpRelease>,

    /// Give up after this many seconds without an answer. The inet loader itself never gives
    /// up: it retries every 10 s, then every 60 s, for ever.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

/// Why a client command failed.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("{0:?} is not an IPv4 address or a host name with one")]
    Host(String),
    #[error(
        "no ERTS version to announce: none installed at /usr/lib/erlang; give --erts-version V"
    )]
    NoVersion,
    #[error("no boot server answered {request} within {timeout:?} (asked {hosts} as ERTS {version}); is the server running, does its --allow list hold this address, and does it serve ERTS {version}?")]
    NoAnswer {
        request: String,
        timeout: Duration,
        hosts: String,
        version: String,
    },
    #[error("{name}: {}", describe(reason))]
    Server { name: String, reason: Term },
    #[error("{name}: the reply could not be read: {error}")]
    Reply { name: String, error: ReplyError },
    #[error("{0}")]
    Output(String),
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Call(CallError),
}

impl ServerArgs {
    /// The loader's configuration.
    pub fn config(&self) -> Result<LoaderConfig, ClientError> {
        let mut hosts = Vec::new();
        for host in &self.hosts {
            hosts.extend(resolve(host)?);
        }
        let version = match &self.erts_version {
            Some(v) => v.clone(),
            None => erts_versions(Path::new(LOCAL_ERLANG))
                .pop()
                .ok_or(ClientError::NoVersion)?,
        };
        let mut config = LoaderConfig::new(hosts, version.clone());
        config.profile = match self.otp {
            Some(release) => release.profile(),
            None => profile_of(&version),
        };
        Ok(config)
    }

    /// The overall time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

fn resolve(host: &str) -> Result<Vec<Ipv4Addr>, ClientError> {
    if let Ok(addr) = host.parse::<Ipv4Addr>() {
        return Ok(vec![addr]);
    }
    let addrs: Vec<Ipv4Addr> = (host, 0)
        .to_socket_addrs()
        .map_err(|_| ClientError::Host(host.to_owned()))?
        .filter_map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    if addrs.is_empty() {
        return Err(ClientError::Host(host.to_owned()));
    }
    Ok(addrs)
}

/// Asks one thing, within the deadline; a server error becomes a [`ClientError::Server`].
pub async fn ask(
    client: &mut Client<TokioRuntime>,
    config: &LoaderConfig,
    request: &Request,
    deadline: Instant,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let name = request.file_name().unwrap_or("get_cwd").to_owned();
    match client.call(request, Some(deadline)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(ReplyError::Server(reason))) => Err(ClientError::Server { name, reason }),
        Ok(Err(error)) => Err(ClientError::Reply { name, error }),
        Err(CallError::Deadline) => Err(ClientError::NoAnswer {
            request: request.to_term().to_string(),
            timeout,
            hosts: config
                .hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            version: String::from_utf8_lossy(&config.version).into_owned(),
        }),
        Err(e) => Err(ClientError::Call(e)),
    }
}

fn describe(reason: &Term) -> String {
    let meaning = match reason.as_atom() {
        Some("enoent") => "no such file on the server (or outside what it serves)",
        Some("enotdir") => "not a directory",
        Some("eisdir") => "is a directory",
        Some("eacces") => "permission denied on the server",
        _ => return reason.to_string(),
    };
    format!("{reason} ({meaning})")
}

/// The runtime a client command runs on: one thread is all a serial loader needs.
pub fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)
}
