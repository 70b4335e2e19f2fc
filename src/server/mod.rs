//! The boot server as sans-IO code: what `erl_boot_server` does, with the policy that guards it.
//!
//! - [`Session`]: one connection, request frames in, reply frames out;
//! - [`Responder`]: discovery, `EBOOTQ` in, `EBOOTR` out;
//! - [`FileSource`]: where files come from — [`MemorySource`] here, the disk in
//!   [`crate::disk`];
//! - [`ReplyCache`]: reply frames remembered while the source stays unchanged;
//! - [`Admission`]: the allow list and the connection limits at accept;
//! - [`AllowList`], [`ConnectionLimits`], [`SessionLimits`]: who may boot, and how much.
//!
//! The drivers that put these on sockets are in [`crate::net`].

mod admission;
mod files;
mod memory;
mod policy;
mod replies;
mod responder;
mod session;

pub use admission::{Admission, Refusal};
pub(crate) use files::find_plain;
pub use files::{
    FileAnswer, FileError, FileQuestion, FileSource, Follow, Found, Question, Reuse, Version,
};
pub use memory::MemorySource;
pub use policy::{AllowList, Cidr, CidrError, ConnectionLimits, SessionLimits};
pub use replies::ReplyCache;
pub use responder::{Responder, Verdict, Versions};
pub use session::{
    request_profile, CloseReason, ReplyEncoding, Served, Session, SessionConfig, Transmit,
};
