//! The network side: the drivers that put the sans-IO server and client on sockets, and the
//! clock they read.
//!
//! - [`Server`]: the boot server (discovery and file service) on sockets;
//! - [`Client`]: the inet loader on sockets;
//! - [`Clock`]: tokio's time read as core [`Instant`](crate::time::Instant)s.

mod client;
mod clock;
mod server;

pub use client::{CallError, Client};
pub use clock::Clock;
pub use server::{ServeError, Server, ServerConfig};
