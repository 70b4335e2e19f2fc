//! The boot protocol's messages: discovery datagrams, framing, requests and replies.
//!
//! Everything here is a pure function of bytes; see PROTOCOL.md in the design notes for the
//! facts each type follows.

mod command;
pub mod discovery;
mod file_info;
pub mod frame;
mod reply;
mod request;

pub use command::Command;
pub use file_info::{Access, DateTime, FileInfo, FileType};
pub use frame::{FrameDecoder, FrameError};
pub use reply::{Reason, Reply};
pub use request::Request;
