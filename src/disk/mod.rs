//! The operating system's files, as a [`FileSource`](crate::server::FileSource): names
//! resolved and confined by a [`Jail`], contents cached, trees watched with inotify so that
//! answers can be remembered, `.ez` archives read from disk.
//!
//! - [`DiskSource`]: the real file system, jailed, cached and watched;
//! - [`Jail`]: which paths a client may reach;
//! - [`Watch`]: inotify on the served trees, as a version that moves with every change;
//! - [`erts_versions`] and [`profile_of`]: what an installation under a root is.

mod cache;
mod installation;
mod jail;
mod source;
mod watch;

pub use installation::{erts_versions, profile_of};
pub use jail::Jail;
pub use source::{DiskConfig, DiskSource, NameEncoding};
pub use watch::{Watch, WatchError};
