//! One module per subcommand; each parses its arguments and calls the library.

pub mod bench;
pub mod boot;
pub mod client;
pub mod decode;
pub mod fetch;
pub mod serve;
