//! erlboot's simulator: thousands of booting nodes and their boot servers on turmoil's
//! simulated network and clock, with faults as data, invariants checked on every run, and a
//! seed that reproduces it.
//!
//! - [`Scenario`]: the world, its faults and limits, from a TOML file (`sim/scenarios/`);
//! - [`Workload`]: the requests of a real recorded boot and the file tree its capture holds;
//! - [`run`]: builds the world and runs it to a [`Report`];
//! - [`TurmoilRuntime`]: the socket seam ([`erlboot::net::Runtime`]) on turmoil, which the
//!   shipping drivers run on;
//! - [`FaultyFiles`]: a file answerer that serves a tree in memory, late or failing where a
//!   fault says so, queued on a server's [`Capacity`].
//!
//! What is shipping code and what is not is in `sim/README.md`.

/// Whether this build can reproduce a run from its seed: tokio's scheduler and `select!` draw
/// from turmoil's seed only when built with `--cfg tokio_unstable`, which the workspace's
/// `.cargo/config.toml` sets (a `RUSTFLAGS` variable replaces it).
pub fn reproducible() -> bool {
    cfg!(tokio_unstable)
}

mod baseline;
mod capacity;
mod chaos;
mod fault;
mod files;
mod report;
mod runtime;
mod scenario;
mod wakeups;
mod workload;
mod world;

pub use capacity::{Capacity, Costs, Preset, RTO_MIN};
pub use chaos::with_chaos;
pub use fault::Fault;
pub use files::{FaultyFiles, FileFault};
pub use report::{Applied, FirstConnection, Percentiles, Report, Violation};
pub use runtime::{
    TurmoilListener, TurmoilRuntime, TurmoilStream, TurmoilUdp, UdpLoss, WholeFrames,
};
pub use scenario::{
    builtin_names, Behaviour, ClientGroup, Limits, Link, Network, Planted, Scenario, ScenarioError,
    ServerSpec, Start, Timed, Timings, BUILTIN,
};
pub use wakeups::{Registration, SimTimer, Wakeups};
pub use workload::{Workload, WorkloadError, DEFAULT_CAPTURE};
pub use world::{liveness_bound, run, Baseline, Progress, RunOptions, SimError};
