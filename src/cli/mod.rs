//! One module per subcommand; each parses its arguments and calls the library.

pub mod decode;
pub mod serve;
