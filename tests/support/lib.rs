//! Helpers shared by erlboot's integration tests and benches.
//!
//! - [`capture`]: the committed pcaps read into streams and frames;
//! - [`json`]: scratch JSON reports for the CLI tests;
//! - [`netns`]: private network namespaces for live tests (root);
//! - [`otp`]: the installed OTP releases run as oracles;
//! - [`terms`]: proptest strategies for Erlang terms;
//! - [`zip`]: zip archives written byte by byte, odd ones included.

pub mod capture;
pub mod json;
pub mod netns;
pub mod otp;
pub mod terms;
pub mod zip;

/// The repository's root directory (this crate lives in `tests/support`).
pub fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Bytes written as hexadecimal pairs separated by white space (`"83 68 02"`), as the
/// protocol notes and the golden vectors write them.
pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("a hexadecimal byte"))
        .collect()
}
