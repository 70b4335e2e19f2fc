//! The boot server: what `erl_boot_server` does, as a sans-IO session over a file source, plus
//! the policy that guards it and the tokio driver that runs it on sockets.
//!
//! - [`Session`]: one connection, request frames in, reply frames out;
//! - [`Responder`]: discovery, `EBOOTQ` in, `EBOOTR` out;
//! - [`FileSource`]: where files come from — [`DiskSource`] (jailed, cached) or
//!   [`MemorySource`];
//! - [`ReplyCache`]: reply frames remembered while the source stays unchanged ([`watch`]
//!   tells when a tree on disk changes);
//! - [`policy`]: the allow list and the limits;
//! - [`driver`]: the tokio server that puts these on sockets.

pub mod archive;
mod cache;
pub mod disk;
pub mod driver;
pub mod files;
pub mod installation;
pub mod jail;
pub mod memory;
pub mod policy;
pub mod replies;
pub mod responder;
pub mod session;
pub mod watch;

pub use disk::{DiskConfig, DiskSource, NameEncoding};
pub use files::{FileError, FileSource, Follow, Question, Reuse, Version};
pub use jail::Jail;
pub use memory::MemorySource;
pub use policy::{AllowList, Cidr, ConnectionLimits, SessionLimits};
pub use replies::ReplyCache;
pub use responder::{Responder, Verdict, Versions};
pub use session::{CloseReason, ReplyEncoding, Served, Session, SessionConfig, Transmit};
