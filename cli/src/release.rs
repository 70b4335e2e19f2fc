//! `--otp`: the OTP release whose encoding to use.

use erlboot::etf::Profile;

/// An OTP release as `--otp` names it: how its `term_to_binary/1` writes atoms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OtpRelease {
    /// OTP 25 and earlier: Latin-1 atoms (`ATOM_EXT`).
    #[value(name = "25")]
    Otp25,
    /// OTP 26 and later: UTF-8 atoms (`SMALL_ATOM_UTF8_EXT`).
    #[value(name = "26")]
    Otp26,
}

impl OtpRelease {
    /// The encoding profile of the release.
    pub fn profile(self) -> Profile {
        match self {
            OtpRelease::Otp25 => Profile::Otp25,
            OtpRelease::Otp26 => Profile::Otp26,
        }
    }
}
