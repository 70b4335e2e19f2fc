//! The workload: the requests of one recorded boot, read from a profile and framed once.
//!
//! A profile is a [`BootProfile`]'s text. The default is a real OTP 25 boot, embedded so that an installed `erlboot`
//! needs no source tree.

use bytes::Bytes;
use thiserror::Error;

use crate::client::BootProfile;
use crate::etf::{EncodeError, Profile};
use crate::proto::frame::encode_frame;
use crate::proto::{Command, Request};

/// The requests of a real OTP 25 boot (`captures/otp25-boot.pcap`), 386 of them.
pub const DEFAULT_PROFILE: &str = include_str!("../../captures/otp25-boot.requests");

/// Where an OTP installation lives when the profile does not say.
pub const DEFAULT_ROOT: &str = "/usr/lib/erlang";

/// Why a profile cannot be used.
#[derive(Debug, Error)]
pub enum ProfileError {
    #[error(transparent)]
    Read(#[from] crate::client::ProfileError),
    #[error("the profile holds no request")]
    Empty,
    #[error("profile line {line}: the request cannot be encoded: {source}")]
    Encode { line: usize, source: EncodeError },
}

/// Reads a profile ([`BootProfile`]) into its requests, in order (phases are not needed to
/// load a server).
pub fn parse_profile(text: &str) -> Result<Vec<Request>, ProfileError> {
    let requests: Vec<Request> = BootProfile::parse(text)?.requests().cloned().collect();
    if requests.is_empty() {
        return Err(ProfileError::Empty);
    }
    Ok(requests)
}

/// One request of the boot, ready to send.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The request frame, 4-byte length header included.
    pub request: Bytes,
    /// The command the reply must be tagged with; `None`: the reply must be `{error,_}`.
    pub command: Option<Command>,
    /// Whether the recorded reply was `{_, {ok, _}}`, once a boot has been recorded.
    pub recorded_ok: Option<bool>,
}

/// The requests of one boot, in order.
#[derive(Clone, Debug)]
pub struct Workload {
    pub requests: Vec<Request>,
    pub exchanges: Vec<Exchange>,
}

impl Workload {
    /// Encodes the requests as the profile's release does (a recorded OTP 25 boot: `Otp25`,
    /// which gives the very bytes the node sent).
    pub fn new(requests: Vec<Request>, profile: Profile) -> Result<Workload, ProfileError> {
        if requests.is_empty() {
            return Err(ProfileError::Empty);
        }
        let mut exchanges = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            let encode_error = |source| ProfileError::Encode {
                line: index + 1,
                source,
            };
            let payload = request.encode(profile).map_err(encode_error)?;
            let mut frame = Vec::with_capacity(payload.len() + 4);
            encode_frame(&payload, &mut frame).map_err(encode_error)?;
            exchanges.push(Exchange {
                request: frame.into(),
                command: request.command(),
                recorded_ok: None,
            });
        }
        Ok(Workload {
            requests,
            exchanges,
        })
    }

    /// The embedded OTP 25 boot.
    pub fn default_boot() -> Workload {
        Workload::from_profile(DEFAULT_PROFILE).expect("the embedded profile is valid")
    }

    /// A profile's requests, encoded as OTP 25 encodes them.
    pub fn from_profile(text: &str) -> Result<Workload, ProfileError> {
        Workload::new(parse_profile(text)?, Profile::Otp25)
    }

    /// The installation the boot reads from: what precedes `/bin/start.boot` in the first
    /// request, as a node started with `-root R` asks for `R/bin/start.boot` first.
    pub fn root(&self) -> String {
        match self.requests.first() {
            Some(Request::Get(path)) if path.ends_with("/bin/start.boot") => {
                path.trim_end_matches("/bin/start.boot").to_owned()
            }
            _ => DEFAULT_ROOT.to_owned(),
        }
    }

    /// Notes which replies of a recorded boot were `ok`, so that later boots can be compared.
    pub fn remember_outcomes(&mut self, outcomes: &[bool]) {
        for (exchange, &ok) in self.exchanges.iter_mut().zip(outcomes) {
            exchange.recorded_ok = Some(ok);
        }
    }

    /// Bytes a boot sends.
    pub fn request_bytes(&self) -> usize {
        self.exchanges.iter().map(|e| e.request.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::{Decoder, Limits};

    #[test]
    fn the_embedded_profile_is_a_whole_otp25_boot() {
        let workload = Workload::default_boot();
        assert_eq!(workload.exchanges.len(), 386);
        assert_eq!(workload.root(), "/usr/lib/erlang");
        assert_eq!(
            workload.requests[0],
            Request::Get("/usr/lib/erlang/bin/start.boot".into())
        );
        // Every frame carries its request back.
        let decoder = Decoder::new(Limits::request());
        for (request, exchange) in workload.requests.iter().zip(&workload.exchanges) {
            let len = u32::from_be_bytes(exchange.request[..4].try_into().unwrap()) as usize;
            assert_eq!(len, exchange.request.len() - 4);
            let back = Request::decode(&exchange.request[4..], &decoder).unwrap();
            assert_eq!(&back, request);
            assert_eq!(exchange.command, request.command());
        }
    }

    #[test]
    fn profile_lines_become_requests() {
        let text = "# phase one\nget /a/bin/start.boot\nlist_dir /a/lib\n\n# a comment\n\
                    read_file_info /a\nread_link_info /a/x\nget_cwd\nget_cwd c:\n";
        let requests = parse_profile(text).unwrap();
        assert_eq!(
            requests,
            [
                Request::Get("/a/bin/start.boot".into()),
                Request::ListDir("/a/lib".into()),
                Request::ReadFileInfo("/a".into()),
                Request::ReadLinkInfo("/a/x".into()),
                Request::GetCwd,
                Request::GetCwdDrive("c:".into()),
            ]
        );
        assert_eq!(Workload::from_profile(text).unwrap().root(), "/a");
        assert_eq!(
            Workload::from_profile("get_cwd").unwrap().root(),
            DEFAULT_ROOT
        );
    }

    #[test]
    fn bad_profiles_are_typed_errors() {
        assert!(matches!(
            parse_profile("get /x\nfetch /y"),
            Err(ProfileError::Read(crate::client::ProfileError::NotACommand { line: 2, ref word })) if word == "fetch"
        ));
        assert!(matches!(
            parse_profile("get"),
            Err(ProfileError::Read(
                crate::client::ProfileError::MissingName { line: 1, .. }
            ))
        ));
        assert!(matches!(
            parse_profile("# only\n\n"),
            Err(ProfileError::Empty)
        ));
        let err = parse_profile("bogus x").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("bogus"), "{err}");
    }

    #[test]
    fn recorded_outcomes_are_kept_per_request() {
        let mut workload = Workload::from_profile("get /a\nget /b").unwrap();
        workload.remember_outcomes(&[true, false]);
        let outcomes: Vec<_> = workload.exchanges.iter().map(|e| e.recorded_ok).collect();
        assert_eq!(outcomes, [Some(true), Some(false)]);
    }
}
