//! `erlboot dissector`: writes the boot protocol's Wireshark dissector (Lua).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use erlboot_conformance::dissector;
use thiserror::Error;

/// Write a Wireshark/tshark dissector for the boot protocol, in Lua.
///
/// It decodes EBOOTQ/EBOOTR on UDP 4368 and the {packet,4} requests and replies on the TCP
/// port each EBOOTR announces. Use it with `tshark -X lua_script:eboot.lua -2 -r FILE.pcap`,
/// or copy it into Wireshark's personal plugins folder (~/.local/lib/wireshark/plugins/).
#[derive(Args)]
pub struct DissectorArgs {
    /// Write it to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Why the dissector could not be written.
#[derive(Debug, Error)]
pub enum DissectorError {
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub fn run(args: DissectorArgs) -> Result<(), DissectorError> {
    match &args.output {
        Some(path) => {
            std::fs::write(path, dissector::LUA).map_err(|source| DissectorError::Write {
                path: path.display().to_string(),
                source,
            })
        }
        None => std::io::stdout()
            .lock()
            .write_all(dissector::LUA.as_bytes())
            .map_err(|source| DissectorError::Write {
                path: "standard output".into(),
                source,
            }),
    }
}
