//! What every simulated node does: the requests of one real recorded boot, in order, against
//! the file tree that boot's capture holds, and what the server must answer to each.
//!
//! The default is `captures/otp25-boot.pcap` (386 requests, 4.05 MB of replies), compiled in;
//! [`Workload::from_capture`] takes both from a user's own capture.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use erlboot::client::{read_reply, ReplyError, Response};
use erlboot::etf::{Decoder, Limits, Profile, Term};
use erlboot::proto::{EncodedRequest, Request};
use erlboot::server::{FileSource, Session, SessionConfig};
use erlboot::time::Instant;
use erlboot_conformance::capture::Capture;
use erlboot_conformance::rebuild::CapturedFiles;
use erlboot_conformance::transcript::{Body, Transcript};
use erlboot_conformance::CaptureError;

/// The capture the default workload comes from.
pub const DEFAULT_CAPTURE: &str = "otp25-boot.pcap";
static OTP25_BOOT: &[u8] = include_bytes!("../../captures/otp25-boot.pcap");

/// Why a capture gives no workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The file cannot be read as a capture.
    #[error("{name}: {source}")]
    Capture {
        /// The capture.
        name: String,
        /// Why.
        source: CaptureError,
    },
    /// The capture has no boot connection with requests.
    #[error("{0}: no boot requests in the capture (is it a capture of `erl -loader inet`?)")]
    NoRequests(String),
    /// A request the server's session cannot answer as a frame.
    #[error("{name}: request {index} ({request:?}) gets no reply from the rebuilt tree")]
    Unanswered {
        /// The capture.
        name: String,
        /// Which request.
        index: usize,
        /// The request.
        request: Request,
    },
}

/// One boot, and the answers a correct server gives.
pub struct Workload {
    /// Where it comes from.
    pub name: String,
    /// The requests, in the order the node sent them.
    pub requests: Vec<Request>,
    /// The file tree the server serves.
    pub source: Arc<dyn FileSource>,
    /// The requests as nodes send them, encoded once: as OTP 25's nodes encode them, then as
    /// OTP 26's and later (see [`Workload::encoded`]).
    encoded: [Vec<EncodedRequest>; 2],
    /// Each request's reply frame, length prefix included, as erlboot's session makes it from
    /// the tree.
    pub reply_frames: Vec<Bytes>,
    /// Each reply as the node's loader reads it.
    pub expected: Vec<Result<Response, ReplyError>>,
    /// How long the recorded node worked before each request, after the previous reply
    /// (loading modules, running the boot script): the capture's gaps.
    pub think: Vec<Duration>,
    /// The requests of each `erl_prim_loader:get_modules` call, by index: the `primLoad`s of
    /// the boot script the first request fetched, each module's path tries in a row (what
    /// OTP 25's loader mishandles when the server goes away inside one; see
    /// [`erlboot::client::DeadConnection`]).
    pub module_calls: Vec<Range<usize>>,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("requests", &self.requests.len())
            .field("reply_bytes", &self.reply_bytes())
            .finish_non_exhaustive()
    }
}

impl Workload {
    /// The boot of `captures/otp25-boot.pcap`.
    pub fn otp25() -> Workload {
        let capture = Capture::parse(OTP25_BOOT).expect("the committed capture reads");
        Workload::of(DEFAULT_CAPTURE, &capture).expect("the committed capture is a boot")
    }

    /// The boot in the capture at `path`: its first boot connection's requests, and the file
    /// tree its server's answers show ([`CapturedFiles`]: exactly what that server answered).
    pub fn from_capture(path: &Path) -> Result<Workload, WorkloadError> {
        let name = path.display().to_string();
        let capture = Capture::read(path).map_err(|source| WorkloadError::Capture {
            name: name.clone(),
            source,
        })?;
        Workload::of(&name, &capture)
    }

    fn of(name: &str, capture: &Capture) -> Result<Workload, WorkloadError> {
        let transcript = Transcript::of(capture, &Default::default());
        let session = transcript
            .sessions
            .iter()
            .find(|s| {
                s.messages.iter().any(|m| {
                    matches!(
                        m.body,
                        Body::Request {
                            request: Some(_),
                            ..
                        }
                    )
                })
            })
            .ok_or_else(|| WorkloadError::NoRequests(name.to_owned()))?;
        let mut requests = Vec::new();
        let mut think = Vec::new();
        let mut replied: Option<Duration> = None;
        for message in &session.messages {
            match &message.body {
                Body::Request {
                    request: Some(request),
                    ..
                } => {
                    requests.push(request.clone());
                    think.push(replied.map_or(Duration::ZERO, |r| message.at.saturating_sub(r)));
                }
                Body::Reply { .. } => replied = Some(message.at),
                _ => {}
            }
        }
        let mut tree = CapturedFiles::of(&transcript);
        let mut workload = Workload::new(name, requests, Arc::new(tree.clone()))?;
        workload.think = think;
        // One copy of each file's bytes: the tree's become those inside the expected replies,
        // so that a simulated server reads the very bytes its nodes' replies are checked
        // against (as the baseline's server sends the frames its nodes compare with), rather
        // than a second copy that competes for the same caches.
        for (request, expected) in workload.requests.iter().zip(&workload.expected) {
            if let (Request::Get(name), Ok(Response::File(value))) = (request, expected) {
                if let Some(contents) = value.binary() {
                    tree.share_contents(name, contents);
                }
            }
        }
        workload.source = Arc::new(tree);
        Ok(workload)
    }

    /// `requests` against `source`; the expected replies are what erlboot's session answers
    /// from it.
    pub fn new(
        name: &str,
        requests: Vec<Request>,
        source: Arc<dyn FileSource>,
    ) -> Result<Workload, WorkloadError> {
        let mut session = Session::new(SessionConfig::default(), Instant::ZERO);
        let decoder = Decoder::new(Limits::reply());
        let unanswered = |index: usize| WorkloadError::Unanswered {
            name: name.to_owned(),
            index,
            request: requests[index].clone(),
        };
        let encode = |profile| {
            EncodedRequest::all(&requests, profile).map_err(|_| {
                let index = requests
                    .iter()
                    .position(|request| request.frame(profile).is_err());
                unanswered(index.unwrap_or(0))
            })
        };
        let encoded = [encode(Profile::Otp25)?, encode(Profile::Otp26)?];
        let (mut reply_frames, mut expected) = (vec![], vec![]);
        for (index, request) in encoded[0].iter().enumerate() {
            let unanswered = || unanswered(index);
            session.handle_data(Instant::ZERO, request.frame());
            let reply = session
                .poll_transmit_from(source.as_ref())
                .ok_or_else(unanswered)?;
            let reply = Bytes::from(reply.to_vec());
            expected.push(read_reply(&reply.slice(4..), &decoder));
            reply_frames.push(reply);
        }
        let module_calls = module_calls(&requests, &expected);
        Ok(Workload {
            name: name.to_owned(),
            module_calls,
            think: vec![Duration::ZERO; requests.len()],
            requests,
            source,
            encoded,
            reply_frames,
            expected,
        })
    }

    /// The requests as a node of `profile` sends them.
    pub fn encoded(&self, profile: Profile) -> &[EncodedRequest] {
        match profile {
            Profile::Otp25 => &self.encoded[0],
            Profile::Otp26 => &self.encoded[1],
        }
    }

    /// The recorded node's own working time over the whole boot.
    pub fn think_time(&self) -> Duration {
        self.think.iter().sum()
    }

    /// Bytes of reply frames in one boot.
    pub fn reply_bytes(&self) -> u64 {
        self.reply_frames.iter().map(|f| f.len() as u64).sum()
    }
}

/// The `get_modules` calls of a boot: the boot script is the first `.boot` file fetched, and
/// each of its `{primLoad, Modules}` is one call, whose requests are the `get`s of those
/// modules' files that follow one another.
pub fn module_calls(
    requests: &[Request],
    replies: &[Result<Response, ReplyError>],
) -> Vec<Range<usize>> {
    let script = requests
        .iter()
        .zip(replies)
        .find_map(|(request, reply)| match (request, reply) {
            (Request::Get(name), Ok(Response::File(contents))) if name.ends_with(".boot") => {
                Decoder::new(Limits::reply())
                    .decode(&contents.binary()?)
                    .ok()
            }
            _ => None,
        });
    let Some(script) = script else {
        return Vec::new();
    };
    let mut loads = Vec::new();
    prim_loads(&script, &mut loads);
    let stem = |request: &Request| match request {
        Request::Get(name) => {
            let file = name.rsplit('/').next().unwrap_or(name);
            file.strip_suffix(".beam").map(str::to_owned)
        }
        _ => None,
    };
    let mut calls = Vec::new();
    let mut next = 0;
    for modules in loads {
        let Some(first) = modules.first() else {
            continue;
        };
        let Some(start) =
            (next..requests.len()).find(|&i| stem(&requests[i]).as_ref() == Some(first))
        else {
            continue;
        };
        let end = (start..requests.len())
            .find(|&i| !stem(&requests[i]).is_some_and(|m| modules.contains(&m)))
            .unwrap_or(requests.len());
        calls.push(start..end);
        next = end;
    }
    calls
}

/// The module lists of every `{primLoad, Modules}` in a boot script, in order.
fn prim_loads(term: &Term, out: &mut Vec<Vec<String>>) {
    match term {
        Term::Tuple(elems) if elems.len() == 2 && elems[0].as_atom() == Some("primLoad") => {
            if let Term::List(modules) = &elems[1] {
                out.push(
                    modules
                        .iter()
                        .filter_map(|m| m.as_atom().map(str::to_owned))
                        .collect(),
                );
            }
        }
        Term::Tuple(elems) | Term::List(elems) => {
            for elem in elems {
                prim_loads(elem, out);
            }
        }
        _ => {}
    }
}
