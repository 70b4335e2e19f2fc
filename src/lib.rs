//! erlboot: the Erlang/OTP network boot protocol in Rust.
//!
//! An Erlang node started with `-loader inet -hosts H` finds a boot server over UDP and loads
//! every file it needs (boot script, `.app`, `.beam`) from it over TCP. This crate holds the
//! protocol as sans-IO code: no sockets, clocks or randomness inside, so the same code runs under
//! tokio, under a simulator, against recorded captures and under a fuzzer.
//!
//! - [`etf`]: the bounded External Term Format codec;
//! - [`proto`]: discovery datagrams, framing, and the typed requests and replies;
//! - [`server`]: the boot server's session, responder, reply cache, memory source and policy;
//! - [`client`]: the inet loader (`erl_prim_loader -loader inet`) as a sans-IO state machine;
//! - [`archive`]: `.ez` archives read as OTP reads them, from bytes;
//! - [`time`]: the driver-supplied clock every state machine runs on;
//!
//! and the code that touches the operating system:
//! - [`disk`]: the real file system as a file source (jailed, cached, watched);
//! - [`net`]: the drivers that run the server and the client on sockets;
//! - [`bench`]: `erlboot bench`, the boot-server benchmark (load generator, ceiling, herd).

pub mod archive;
pub mod bench;
pub mod client;
pub mod disk;
pub mod etf;
pub mod net;
pub mod proto;
pub mod server;
pub mod time;

#[cfg(feature = "fuzzing")]
pub mod fuzz_checks;
