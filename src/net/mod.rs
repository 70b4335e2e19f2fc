//! The network side: the socket seam, its tokio implementation, and the drivers that put the
//! sans-IO server and client on it.
//!
//! - [`Runtime`] (with [`UdpSocket`], [`TcpListener`], [`TcpStream`], [`Timer`]): the socket
//!   seam, the few operations the drivers need from a network and a clock;
//! - [`TokioRuntime`]: the seam on tokio's sockets and clock;
//! - [`Server`]: the boot server (discovery and file service) on a runtime;
//! - [`Client`]: the inet loader on a runtime;
//! - [`FileAnswerer`]: how a server driver answers its sessions' file questions —
//!   [`Blocking`] (off the async workers) or [`Immediate`];
//! - [`Clock`]: tokio's time read as core [`Instant`](crate::time::Instant)s;
//! - [`raise_open_files_limit`]: room for as many connections as the system allows.

mod client;
mod clock;
mod descriptors;
mod files;
mod runtime;
mod server;
mod tokio_runtime;

pub use client::{CallError, Client};
pub use clock::{Clock, TokioTimer};
pub use descriptors::raise_open_files_limit;
pub use files::{Blocking, FileAnswerer, Immediate};
pub use runtime::{Runtime, TcpListener, TcpStream, Timer, UdpSocket};
pub use server::{Control, ServeError, Server, ServerConfig};
pub use tokio_runtime::TokioRuntime;
