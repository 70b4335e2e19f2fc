//! erlboot: the Erlang/OTP network boot protocol in Rust.
//!
//! An Erlang node started with `-loader inet -hosts H` finds a boot server over UDP and loads
//! every file it needs (boot script, `.app`, `.beam`) from it over TCP. This crate holds the
//! protocol as sans-IO code: no sockets, clocks or randomness inside, so the same code runs under
//! tokio, under a simulator, against recorded captures and under a fuzzer.
//!
//! - [`etf`]: the bounded External Term Format codec;
//! - [`proto`]: discovery datagrams, framing, and the typed requests and replies;
//! - [`server`]: the boot server's session, file sources, policy and tokio driver;
//! - [`bench`]: `erlboot bench`, the boot-server benchmark (load generator, ceiling, herd);
//! - [`client`]: the inet loader (`erl_prim_loader -loader inet`) as a sans-IO state machine;
//! - [`time`]: the driver-supplied clock every state machine runs on.

pub mod bench;
pub mod client;
pub mod clock;
pub mod etf;
pub mod proto;
pub mod server;
pub mod time;

#[doc(hidden)]
pub mod fuzz_checks;
