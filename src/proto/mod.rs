//! The boot protocol's messages: discovery datagrams, framing, requests and replies.
//!
//! Everything here is a pure function of bytes. The protocol facts each type follows, with
//! where each was read in OTP's source or seen on a real node, are in `src/proto/PROTOCOL.md`
//! (cited below and in the tests as "PROTOCOL.md §N").

mod command;
pub mod discovery;
mod file_info;
pub mod frame;
mod reply;
mod request;

pub use command::Command;
pub use file_info::{Access, DateTime, FileInfo, FileType};
pub use reply::{Reason, Reply};
pub use request::{EncodedRequest, Request};
