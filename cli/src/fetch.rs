//! `erlboot fetch`: files, listings and file infos from a boot server, as a booting node asks.

use std::path::{Path, PathBuf};

use clap::Args;
use erlboot::etf::Term;
use erlboot::net::{Client, TokioRuntime};
use erlboot::proto::Request;

use super::client::{ask, ClientError, ServerArgs};

/// Fetch files from a boot server (OTP's erl_boot_server or erlboot serve) the way a node
/// booting with `-loader inet` does: discovery over UDP, then requests over TCP.
///
/// Examples:
///
///   erlboot fetch --hosts 10.0.0.1 /usr/lib/erlang/bin/start.boot -o /tmp
///   erlboot fetch --hosts 10.0.0.1 --list-dir /usr/lib/erlang/lib
///   erlboot fetch --hosts 10.0.0.1 --stat /usr/lib/erlang/lib/kernel-8.5.3/ebin
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct FetchArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// Files to get, by their path on the server.
    #[arg(value_name = "PATH", required_unless_present_any = ["list_dir", "stat"])]
    paths: Vec<String>,

    /// Write fetched files into this directory, each under its base name.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,

    /// Print the names in this directory on the server instead.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["paths", "stat"])]
    list_dir: Option<String>,

    /// Print this file's #file_info{} on the server instead (following symbolic links).
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    stat: Option<String>,
}

/// Runs `erlboot fetch`.
pub fn run(args: FetchArgs) -> Result<(), ClientError> {
    let config = args.server.config()?;
    let timeout = args.server.timeout();
    let runtime = super::client::runtime()?;
    runtime.block_on(async {
        let mut client = Client::new(TokioRuntime::new(), config.clone());
        let deadline = client.now() + timeout;
        if let Some(dir) = args.list_dir {
            let response = ask(
                &mut client,
                &config,
                &Request::ListDir(dir),
                deadline,
                timeout,
            )
            .await?;
            let Term::List(names) = response.value().term() else {
                return Err(ClientError::Output(format!(
                    "not a listing: {}",
                    response.value()
                )));
            };
            for name in names {
                println!("{}", name.as_string().unwrap_or_else(|| name.to_string()));
            }
            return Ok(());
        }
        if let Some(file) = args.stat {
            let response = ask(
                &mut client,
                &config,
                &Request::ReadFileInfo(file),
                deadline,
                timeout,
            )
            .await?;
            println!("{}", response.value());
            return Ok(());
        }
        for path in &args.paths {
            let response = ask(
                &mut client,
                &config,
                &Request::Get(path.clone()),
                deadline,
                timeout,
            )
            .await?;
            let Some(contents) = response.value().binary() else {
                return Err(ClientError::Output(format!(
                    "{path}: not file contents: {}",
                    response.value()
                )));
            };
            let name = Path::new(path)
                .file_name()
                .ok_or_else(|| ClientError::Output(format!("{path}: no file name to write")))?;
            let target = args.output.join(name);
            std::fs::write(&target, &contents)
                .map_err(|e| ClientError::Output(format!("{}: {e}", target.display())))?;
            println!("{path} -> {} ({} bytes)", target.display(), contents.len());
        }
        Ok(())
    })
}
