//! `erlboot bench`: how many nodes per second a boot server boots, side by side with OTP's
//! `erl_boot_server` and with a server that only replays replies from memory.
//!
//! - [`workload`]: the requests of a recorded boot (a profile), framed once;
//! - [`load`]: the load generator, connections each replaying whole boots;
//! - [`ceiling`]: the ceiling server, recorded replies from memory;
//! - [`servers`]: the servers the bench starts (`erlboot serve`, `erl_boot_server`, the ceiling);
//! - [`procfs`]: a server's CPU time and peak RSS, and the namespace's SYN drops, from /proc;
//! - [`throughput`]: interleaved rounds of every server at every concurrency;
//! - [`herd`]: many nodes booting at once, each with full discovery;
//! - [`idle`]: many booted nodes holding their connection open;
//! - [`report`]: summaries, ratios, the table and the JSON;
//! - [`namespace`]: the private network namespace the bench runs in when it can.

pub mod ceiling;
pub mod herd;
pub mod idle;
pub mod load;
pub mod namespace;
pub mod procfs;
pub mod report;
pub mod servers;
pub mod throughput;
pub mod workload;
