//! The boot server: what `erl_boot_server` does, as a sans-IO session over a file source, plus
//! the policy that guards it and the tokio driver that runs it on sockets.

pub mod archive;
pub mod files;

pub use files::{FileError, FileSource, Follow};
