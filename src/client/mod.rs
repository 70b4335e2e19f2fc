//! The inet loader: what `erl_prim_loader -loader inet` does to find a boot server and ask it
//! for files, as sans-IO code with OTP's timings as data.
//!
//! - [`Loader`]: the state machine, requests in, [`Action`]s and [`Event`]s out;
//! - [`LoaderTimings`]: OTP's collect window, retries, sleeps and timeouts;
//! - [`parse_hosts`]: which addresses a `-hosts` flag names;
//! - [`read_reply`]: a reply frame as OTP's client reads it, and [`ReplyMemo`], its readings
//!   shared by the memory replies arrive in;
//! - [`BootProfile`]: the requests of a recorded boot, as text.
//!
//! The driver that puts the loader on sockets is [`crate::net::Client`].

mod hosts;
mod loader;
mod memo;
mod profile;
mod response;
mod timings;

pub use hosts::{parse_host, parse_hosts};
pub use loader::{
    Action, ConnId, DeadConnection, Discovered, Event, Ignored, Loader, LoaderConfig, LoaderError,
    ResendReason, MAX_ANSWERS,
};
pub use memo::ReplyMemo;
pub use profile::{BootProfile, Phase, ProfileError};
pub use response::{read_reply, ReplyError, Response};
pub use timings::LoaderTimings;

#[cfg(test)]
mod tests;
