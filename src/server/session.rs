//! One client connection of the boot server, sans-IO: request bytes in, reply frames out.
//!
//! The driver feeds what it reads with [`Session::handle_data`], writes every
//! [`Session::poll_transmit`] until it returns `None`, sleeps until [`Session::poll_timeout`]
//! and then calls [`Session::handle_timeout`], and closes the socket once
//! [`Session::close_reason`] is set. Requests are answered one at a time, in order, as OTP's
//! connection process answers them; a driver that reads only after draining the replies bounds
//! what a pipelining client can make the server hold.
//!
//! Where OTP's server crashes the connection or leaks its stack trace, the session answers a
//! short, defined error and keeps the connection (the list is in the README).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::etf::{tag, Decoder, Emitter, Limits, Profile, Term};
use crate::proto::frame::HEADER_LEN;
use crate::proto::{Command, FrameDecoder, FrameError, Reason, Reply, Request};
use crate::time::Instant;

use super::files::{FileSource, Follow, Question, Reuse};
use super::policy::SessionLimits;
use super::replies::{self, Lookup, ReplyCache};

/// How replies are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyEncoding {
    /// Encode each reply the way its request was encoded: OTP 25 clients write `ATOM_EXT`
    /// atoms and OTP 26+ clients `SMALL_ATOM_UTF8_EXT`, and a server of the client's own
    /// release answers in kind. Requests that show neither use the fallback.
    MirrorClient {
        /// The profile for requests that carry no atom to mirror.
        fallback: Profile,
    },
    /// Always this profile.
    Fixed(Profile),
}

impl ReplyEncoding {
    fn profile_for(self, payload: &[u8]) -> Profile {
        match self {
            ReplyEncoding::Fixed(profile) => profile,
            ReplyEncoding::MirrorClient { fallback } => {
                request_profile(payload).unwrap_or(fallback)
            }
        }
    }
}

/// The profile whose `term_to_binary/1` wrote a request: read from the encoding of its first
/// atom (the command tag).
pub fn request_profile(payload: &[u8]) -> Option<Profile> {
    let atom_tag = match payload {
        [tag::VERSION, tag::SMALL_TUPLE, _, atom, ..] => *atom,
        [tag::VERSION, atom, ..] => *atom,
        _ => return None,
    };
    match atom_tag {
        tag::ATOM | tag::SMALL_ATOM => Some(Profile::Otp25),
        tag::ATOM_UTF8 | tag::SMALL_ATOM_UTF8 => Some(Profile::Otp26),
        _ => None,
    }
}

/// How a session is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Frame size and timeouts.
    pub limits: SessionLimits,
    /// How replies are encoded.
    pub encoding: ReplyEncoding,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            limits: SessionLimits::default(),
            encoding: ReplyEncoding::MirrorClient {
                fallback: Profile::Otp25,
            },
        }
    }
}

/// A reply frame to send: a head and, for file contents, the file's bytes as they are held in
/// memory, so that serving a cached file copies nothing. Send `head` then `body`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The frame header and the encoded term, up to the file contents.
    pub head: Bytes,
    /// File contents that complete the frame, or empty.
    pub body: Bytes,
}

impl Transmit {
    /// Bytes in the frame, header included.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Whether the frame is empty (never, for a frame the session made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        [&self.head[..], &self.body[..]].concat()
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The client announced a frame larger than the limit.
    #[error("request frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The client sent nothing for the idle timeout.
    #[error("idle for {0:?}")]
    Idle(std::time::Duration),
    /// A request frame stayed incomplete for the frame timeout.
    #[error("request frame incomplete after {0:?}")]
    PartialFrame(std::time::Duration),
}

/// What a session did, for logs and for the simulator's invariants.
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    /// The command, if the request named one.
    pub command: Option<Command>,
    /// The file name, if the request had one.
    pub name: Option<String>,
    /// `None` when the reply was `ok`, else the error reason.
    pub error: Option<Reason>,
    /// Bytes in the reply frame.
    pub reply_len: usize,
}

/// One connection's protocol state.
pub struct Session<S: ?Sized> {
    source: Arc<S>,
    replies: Option<Arc<ReplyCache>>,
    config: SessionConfig,
    frames: FrameDecoder,
    terms: Decoder,
    input: BytesMut,
    requests: VecDeque<Bytes>,
    last_input: Instant,
    partial_since: Option<Instant>,
    served: VecDeque<Arc<Served>>,
    closed: Option<CloseReason>,
}

/// Above this much spare capacity an emptied input buffer is released, so that thousands of
/// idle connections hold almost nothing.
const IDLE_BUFFER_CAPACITY: usize = 4096;

impl<S: FileSource + ?Sized> Session<S> {
    /// A session that opened at `now` and answers from `source`.
    pub fn new(source: Arc<S>, config: SessionConfig, now: Instant) -> Session<S> {
        Session {
            source,
            replies: None,
            config,
            frames: FrameDecoder::new(config.limits.max_request),
            terms: Decoder::new(Limits::request()),
            input: BytesMut::new(),
            requests: VecDeque::new(),
            last_input: now,
            partial_since: None,
            served: VecDeque::new(),
            closed: None,
        }
    }

    /// The same session, answering from `replies` what the source allows to be remembered,
    /// and remembering there what it answers afresh. Sessions of one server share one cache.
    pub fn with_replies(mut self, replies: Arc<ReplyCache>) -> Session<S> {
        self.replies = Some(replies);
        self
    }

    /// Takes bytes the client sent. Complete frames queue as requests; a frame over the size
    /// limit closes the session.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        if self.closed.is_some() || data.is_empty() {
            return;
        }
        self.last_input = now;
        self.input.extend_from_slice(data);
        let mut completed = false;
        loop {
            match self.frames.decode(&mut self.input) {
                Ok(Some(payload)) => {
                    self.requests.push_back(payload);
                    completed = true;
                }
                Ok(None) => break,
                Err(FrameError::TooLarge { len, max }) => {
                    self.close(CloseReason::FrameTooLarge { len, max });
                    return;
                }
            }
        }
        if self.input.is_empty() {
            self.partial_since = None;
            if self.input.capacity() > IDLE_BUFFER_CAPACITY {
                self.input = BytesMut::new();
            }
        } else if completed || self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }

    /// The next reply frame to send, answering the next queued request.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.closed.is_some() {
            return None;
        }
        let payload = self.requests.pop_front()?;
        let (transmit, served) = match &self.replies {
            Some(replies) => self.reply_remembering(replies, payload),
            None => self.reply_to(&payload, false).0,
        };
        self.served.push_back(served);
        Some(transmit)
    }

    /// The reply from `replies` if it holds one for this request at the source's version;
    /// otherwise a fresh one, offered to `replies` as the source allows.
    fn reply_remembering(&self, replies: &ReplyCache, payload: Bytes) -> (Transmit, Arc<Served>) {
        let Some(version) = self.source.version() else {
            return self.reply_to(&payload, false).0;
        };
        // A request is as old as the input that completed it.
        let now = self.last_input;
        match replies.lookup(&payload, version, now) {
            Lookup::Hit(transmit, served) => (transmit, served),
            Lookup::Skip => self.reply_to(&payload, false).0,
            Lookup::Miss => {
                let ((transmit, served), reuse) = self.reply_to(&payload, true);
                match reuse {
                    Reuse::For(lifetime) => replies.insert(
                        payload,
                        version,
                        transmit.clone(),
                        Arc::clone(&served),
                        now + lifetime,
                    ),
                    Reuse::Never => replies.skip(payload, version, Instant::MAX),
                    Reuse::NotYet => replies.skip(payload, version, now + replies::RETRY_AFTER),
                }
                (transmit, served)
            }
        }
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let limits = &self.config.limits;
        let idle = limits.idle_timeout.map(|t| self.last_input + t);
        let partial = self
            .partial_since
            .zip(limits.frame_timeout)
            .map(|(since, t)| since + t);
        match (idle, partial) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Closes the session if a timeout has passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        let limits = self.config.limits;
        if let (Some(since), Some(timeout)) = (self.partial_since, limits.frame_timeout) {
            if now - since >= timeout {
                self.close(CloseReason::PartialFrame(timeout));
                return;
            }
        }
        if let Some(timeout) = limits.idle_timeout {
            if now - self.last_input >= timeout && self.requests.is_empty() {
                self.close(CloseReason::Idle(timeout));
            }
        }
    }

    /// What the session answered since the last call, oldest first.
    pub fn poll_served(&mut self) -> Option<Arc<Served>> {
        self.served.pop_front()
    }

    /// Why the session ended, once it has; the driver then closes the connection.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Bytes of an incomplete request frame held.
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    fn close(&mut self, reason: CloseReason) {
        self.closed = Some(reason);
        self.requests.clear();
        self.input = BytesMut::new();
        self.partial_since = None;
    }

    /// The reply to one request frame's payload.
    ///
    /// As OTP 25 for every well-formed request; the deliberate differences:
    /// - bytes that are not a term (or exceed the decoder's limits) get
    ///   `{error,{badarg,[]}}` where OTP sends `{error,{badarg,Stacktrace}}`;
    /// - a command whose argument is not a file name (`{get,<<"/x">>}`, `{list_dir,42}`) gets
    ///   `{Command,{error,badarg}}` where OTP crashes the connection;
    /// - `{'EXIT',X}` gets `{error,unknown_command}` where OTP answers `{error,X}`.
    ///
    /// With `ask_reuse`, also whether the source lets the reply be given again (replies that
    /// depend on the request alone always may be).
    fn reply_to(&self, payload: &[u8], ask_reuse: bool) -> ((Transmit, Arc<Served>), Reuse) {
        let always = Reuse::For(std::time::Duration::MAX);
        let profile = self.config.encoding.profile_for(payload);
        let request = match Request::decode(payload, &self.terms) {
            Ok(request) => request,
            Err(_) => {
                let reason = Reason(Term::tuple([Term::atom("badarg"), Term::List(Vec::new())]));
                return (
                    self.answer(None, None, Reply::Error(reason), profile),
                    always,
                );
            }
        };
        let command = request.command();
        let source = &*self.source;
        let reuse = |question, info| match ask_reuse {
            true => source.reuse(question, info),
            false => Reuse::Never,
        };
        // The name moves into the record of what was served once it has been used.
        let (reply, name, reuse) = match request {
            Request::Get(name) => {
                let contents = source.get(&name);
                let reuse = reuse(Question::Get(&name), None);
                match contents {
                    Ok(contents) => return (self.answer_get(Some(name), contents, profile), reuse),
                    Err(e) => (Reply::Get(Err(e.reason())), Some(name), reuse),
                }
            }
            Request::ListDir(name) => {
                let names = source.list_dir(&name).map_err(|e| e.reason());
                let reuse = reuse(Question::ListDir(&name), None);
                (Reply::ListDir(names), Some(name), reuse)
            }
            Request::ReadFileInfo(name) | Request::ReadLinkInfo(name) => {
                let follow = match command {
                    Some(Command::ReadLinkInfo) => Follow::NoLinks,
                    _ => Follow::Links,
                };
                let info = source.file_info(&name, follow);
                let reuse = reuse(Question::FileInfo(&name, follow), info.as_ref().ok());
                let info = info.map_err(|e| e.reason());
                let reply = match follow {
                    Follow::Links => Reply::ReadFileInfo(info),
                    Follow::NoLinks => Reply::ReadLinkInfo(info),
                };
                (reply, Some(name), reuse)
            }
            Request::GetCwd => {
                let cwd = source.cwd().map_err(|e| e.reason());
                (Reply::GetCwd(cwd), None, reuse(Question::Cwd, None))
            }
            Request::GetCwdDrive(drive) => (
                Reply::GetCwd(Err(Reason::atom(drive_cwd_error(&drive)))),
                Some(drive),
                always,
            ),
            Request::BadArgument { command, .. } => {
                (Reply::error(command, Reason::atom("badarg")), None, always)
            }
            Request::Unknown(_) => (Reply::Error(Reason::atom("unknown_command")), None, always),
        };
        (self.answer(command, name, reply, profile), reuse)
    }

    fn answer(
        &self,
        command: Option<Command>,
        name: Option<String>,
        reply: Reply,
        profile: Profile,
    ) -> (Transmit, Arc<Served>) {
        let error = match &reply {
            Reply::Get(Err(r))
            | Reply::ListDir(Err(r))
            | Reply::ReadFileInfo(Err(r))
            | Reply::ReadLinkInfo(Err(r))
            | Reply::GetCwd(Err(r))
            | Reply::Error(r) => Some(r.clone()),
            _ => None,
        };
        let mut frame = vec![0; HEADER_LEN];
        let encoded = reply.encode_into(profile, &mut frame);
        // Replies hold file names, file infos and error atoms, all within the format's limits;
        // should one ever not be, the client still gets an answer.
        let (mut frame, error) = match encoded {
            Ok(()) => (frame, error),
            Err(_) => {
                let reply = Reply::error(command.unwrap_or(Command::Get), Reason::atom("eio"));
                let mut frame = vec![0; HEADER_LEN];
                reply
                    .encode_into(profile, &mut frame)
                    .expect("an error reply");
                (frame, Some(Reason::atom("eio")))
            }
        };
        let len = (frame.len() - HEADER_LEN) as u32;
        frame[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        let served = Arc::new(Served {
            command,
            name,
            error,
            reply_len: frame.len(),
        });
        let transmit = Transmit {
            head: Bytes::from(frame),
            body: Bytes::new(),
        };
        (transmit, served)
    }

    /// `{get,{ok,Contents}}`: the head is encoded, the contents are sent as they are held.
    fn answer_get(
        &self,
        name: Option<String>,
        contents: Bytes,
        profile: Profile,
    ) -> (Transmit, Arc<Served>) {
        let mut head = vec![0; HEADER_LEN];
        let mut e = Emitter::new(profile, &mut head);
        e.tuple(2);
        e.atom("get");
        e.tuple(2);
        e.atom("ok");
        let fits = e.binary_header(contents.len()).is_ok();
        let frame_len = (head.len() - HEADER_LEN)
            .checked_add(contents.len())
            .and_then(|len| u32::try_from(len).ok());
        let (true, Some(frame_len)) = (fits, frame_len) else {
            // A file of 4 GiB or more cannot travel in one {packet,4} frame.
            return self.answer(
                Some(Command::Get),
                name,
                Reply::Get(Err(Reason::atom("enomem"))),
                profile,
            );
        };
        head[..HEADER_LEN].copy_from_slice(&frame_len.to_be_bytes());
        let transmit = Transmit {
            head: Bytes::from(head),
            body: contents,
        };
        let served = Arc::new(Served {
            command: Some(Command::Get),
            name,
            error: None,
            reply_len: transmit.len(),
        });
        (transmit, served)
    }
}

/// What `prim_file:get_cwd/1` answers on Unix: a drive letter is Windows-only, any other
/// non-empty string is invalid, and anything else is not an argument at all.
fn drive_cwd_error(drive: &str) -> &'static str {
    let mut chars = drive.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(letter), Some(':'), None) if letter.is_ascii_alphabetic() => "enotsup",
        (Some(_), _, _) => "einval",
        (None, _, _) => "badarg",
    }
}
