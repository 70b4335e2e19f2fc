//! erlboot's simulator: the drivers that ship (`erlboot serve`'s server, `erlboot fetch`'s
//! client) on turmoil's simulated network and clock, with faults as data.
//!
//! - [`TurmoilRuntime`]: the socket seam ([`erlboot::net::Runtime`]) on turmoil;
//! - [`FaultyFiles`]: a file answerer that serves a tree in memory, late or failing where a
//!   fault says so.

mod files;
mod runtime;

pub use files::{FaultyFiles, FileFault};
pub use runtime::{TurmoilListener, TurmoilRuntime, TurmoilStream, TurmoilUdp};
