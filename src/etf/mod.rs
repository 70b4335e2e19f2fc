//! The External Term Format, bounded: decoding that hostile bytes cannot exhaust, and encoding
//! byte-identical to `term_to_binary/1` of a chosen OTP release.
//!
//! ```
//! use erlboot::etf::{self, Profile, Term};
//!
//! let request = Term::tuple([Term::atom("get"), Term::string("/tmp/x")]);
//! let bytes = etf::encode(&request, Profile::Otp25).unwrap();
//! assert_eq!(&bytes[..6], [131, 104, 2, 100, 0, 3]);
//! assert_eq!(etf::decode(&bytes).unwrap(), request);
//! ```

mod decode;
mod display;
mod encode;
mod lazy;
mod limits;
mod skim;
pub mod tag;
mod term;

pub use decode::{decode, DecodeError, Decoder};
pub use encode::{encode, encode_into, Emitter, EncodeError, Profile};
pub use lazy::LazyTerm;
pub use limits::Limits;
pub use term::{latin1_to_string, Atom, BigInt, NodeId, Term, MAX_ATOM_CHARS};
