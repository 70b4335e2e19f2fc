//! One client connection of the boot server, sans-IO: request bytes in, reply frames out.
//!
//! The driver feeds what it reads with [`Session::handle_data`], writes every
//! [`Session::poll_transmit`] until it returns `None`, answers the [`Session::poll_question`]
//! (a file to read, asked of its [`FileSource`] wherever the driver likes: a blocking pool, a
//! simulated disk) with [`Session::handle_answer`], sleeps until [`Session::poll_timeout`]
//! and then calls [`Session::handle_timeout`], and closes the socket once
//! [`Session::close_reason`] is set. The session never touches a file system itself: a reply
//! the [`ReplyCache`] remembers goes out at once, anything else waits for its answer.
//!
//! Requests are answered one at a time, in order, as OTP's connection process answers them;
//! a driver that reads only after draining the replies and answering the question bounds what
//! a pipelining client can make the server hold.
//!
//! Where OTP's server crashes the connection or leaks its stack trace, the session answers a
//! short, defined error and keeps the connection (the list is in the README).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::archive;
use crate::etf::{tag, Decoder, Emitter, Limits, Profile, Term};
use crate::proto::frame::{write_header, HEADER_LEN};
use crate::proto::frame::{FrameDecoder, FrameError};
use crate::proto::{Command, Reason, Reply, Request};
use crate::time::Instant;

use super::files::{
    FileAnswer, FileError, FileQuestion, FileSource, Follow, Found, Question, Reuse,
};
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

/// Why a connection ended: decided by the session (limits, timeouts) or seen by its driver
/// (the client, the network, shutdown).
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
    /// The client closed the connection.
    #[error("closed by the client")]
    ClosedByClient,
    /// Reading from the connection failed.
    #[error("read failed: {0}")]
    ReadFailed(std::io::ErrorKind),
    /// Writing to the connection failed.
    #[error("write failed: {0}")]
    WriteFailed(std::io::ErrorKind),
    /// The server shut down.
    #[error("server shutting down")]
    Shutdown,
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
///
/// Laid out for a server of thousands of connections, each cold in the cache by its turn:
/// what every poll reads comes first, in this order, in 96 bytes (`repr(C)`): a driver that
/// has written a reply and looks for more work reads nothing else. What a request reads when
/// it arrives follows; a question's request and the reason the session closed, rarely there,
/// are held apart.
#[repr(C)]
pub struct Session {
    closed: Option<Box<CloseReason>>,
    /// The request whose file question is out, answered before any later one.
    waiting: Option<Box<Waiting>>,
    /// When a timeout is next due, kept as the input it depends on changes (see
    /// [`Session::poll_timeout`]), so that a poll need not read the limits.
    deadline: Option<Instant>,
    requests: VecDeque<Bytes>,
    /// Replies made from answers, not yet taken.
    ready: VecDeque<Transmit>,
    served: VecDeque<Arc<Served>>,
    last_input: Instant,
    partial_since: Option<Instant>,
    replies: Option<Arc<ReplyCache>>,
    frames: FrameDecoder,
    input: BytesMut,
    config: SessionConfig,
    terms: Decoder,
    /// The `.ez` archives this connection has read from (OTP's connection process keeps each
    /// one open once read), at most [`MAX_OPENED_ARCHIVES`].
    opened_archives: Vec<String>,
}

/// Archives a session remembers having opened; past this, later ones count as first reads.
const MAX_OPENED_ARCHIVES: usize = 64;

/// A request waiting for its file answer.
struct Waiting {
    payload: Bytes,
    command: Option<Command>,
    question: FileQuestion,
    asked: bool,
}

/// Above this much spare capacity an emptied input buffer is released, so that thousands of
/// idle connections hold almost nothing.
const IDLE_BUFFER_CAPACITY: usize = 4096;

/// What the session makes of a request before asking its source.
enum Step {
    /// The reply, which depends on the request alone.
    Reply(Transmit, Arc<Served>),
    /// The source must be asked.
    Ask(Option<Command>, Question),
}

impl Session {
    /// A session that opened at `now`.
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        let mut session = Session {
            replies: None,
            config,
            frames: FrameDecoder::new(config.limits.max_request),
            terms: Decoder::new(Limits::request()),
            input: BytesMut::new(),
            requests: VecDeque::new(),
            waiting: None,
            ready: VecDeque::new(),
            last_input: now,
            partial_since: None,
            served: VecDeque::new(),
            closed: None,
            deadline: None,
            opened_archives: Vec::new(),
        };
        session.keep_deadline();
        session
    }

    /// The same session, answering from `replies` what the source allows to be remembered,
    /// and remembering there what it answers afresh. Sessions of one server share one cache;
    /// the driver tells it the source's version ([`ReplyCache::observe`]).
    pub fn with_replies(mut self, replies: Arc<ReplyCache>) -> Session {
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
        if self.input.is_empty() {
            // A request that arrives whole is taken out of the read as it is.
            if let Some(payload) = self.frames.whole(data) {
                self.requests.push_back(Bytes::copy_from_slice(payload));
                self.partial_since = None;
                self.keep_deadline();
                return;
            }
        }
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
        self.keep_deadline();
    }

    /// [`Session::handle_data`] for bytes held already, as a simulated network holds each
    /// segment: a request that arrives whole, alone in them, is kept as it came, sharing
    /// them, rather than copied.
    pub fn handle_bytes(&mut self, now: Instant, data: Bytes) {
        // A closed session takes nothing more, whole or not (`handle_data` says so).
        if self.closed.is_none() && self.input.is_empty() {
            match self.frames.decode_whole(data) {
                Ok(payload) => {
                    self.last_input = now;
                    self.requests.push_back(payload);
                    self.keep_deadline();
                }
                Err(data) => self.handle_data(now, &data),
            }
            return;
        }
        self.handle_data(now, &data);
    }

    /// The next reply frame to send. Replies go out in request order: once a request needs
    /// the file system, this returns `None` until [`Session::handle_answer`] has its answer
    /// (the question is in [`Session::poll_question`]).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.closed.is_some() {
            return None;
        }
        if let Some(transmit) = self.ready.pop_front() {
            return Some(transmit);
        }
        if self.waiting.is_some() {
            return None;
        }
        let payload = self.requests.pop_front()?;
        // A request is as old as the input that completed it.
        let now = self.last_input;
        let profile = self.config.encoding.profile_for(&payload);
        let mut remember = None;
        if let Some(replies) = &self.replies {
            if let Some(version) = replies.observed() {
                match replies.lookup(&payload, version, now) {
                    Lookup::Hit(transmit, served) => {
                        self.served.push_back(served);
                        return Some(transmit);
                    }
                    Lookup::Skip => {}
                    Lookup::Miss => remember = Some(version),
                }
            }
        }
        match self.step(&payload, profile) {
            Step::Reply(transmit, served) => {
                if let (Some(replies), Some(version)) = (&self.replies, remember) {
                    replies.insert(
                        payload,
                        version,
                        transmit.clone(),
                        Arc::clone(&served),
                        Instant::MAX,
                    );
                }
                self.served.push_back(served);
                Some(transmit)
            }
            Step::Ask(command, question) => {
                let first_in_archive = question
                    .name()
                    .and_then(archive::split)
                    .is_some_and(|(archive, _)| !self.opened_archives.iter().any(|a| a == archive));
                self.waiting = Some(Box::new(Waiting {
                    payload,
                    command,
                    question: FileQuestion {
                        question,
                        profile,
                        remember: remember.is_some(),
                        first_in_archive,
                    },
                    asked: false,
                }));
                None
            }
        }
    }

    /// What the session needs read from its source before it can answer, once per question.
    /// The driver answers it (from disk, memory, a simulated disk: at once or later) with
    /// [`Session::handle_answer`].
    pub fn poll_question(&mut self) -> Option<FileQuestion> {
        if self.closed.is_some() {
            return None;
        }
        // Requests whose replies need no file go out first; the next question, if any, is
        // then known. Replies made already go first in any case, so only a request with none
        // ahead of it can be the next question.
        if self.waiting.is_none() && self.ready.is_empty() && !self.requests.is_empty() {
            let transmit = self.poll_transmit();
            if let Some(transmit) = transmit {
                self.ready.push_front(transmit);
            }
        }
        let waiting = self.waiting.as_mut().filter(|w| !w.asked)?;
        waiting.asked = true;
        Some(waiting.question.clone())
    }

    /// Whether a question is out and its answer not yet handed in.
    pub fn is_waiting(&self) -> bool {
        self.waiting.as_ref().is_some_and(|w| w.asked)
    }

    /// Takes the answer to the question from [`Session::poll_question`], at `now`; its reply
    /// is then the next [`Session::poll_transmit`].
    pub fn handle_answer(&mut self, now: Instant, answer: FileAnswer) {
        let Some(waiting) = self.waiting.take().filter(|w| w.asked) else {
            return;
        };
        // The time spent waiting was the server's, not the client's.
        self.last_input = self.last_input.max(now);
        if self.partial_since.is_some() {
            self.partial_since = Some(now);
        }
        self.keep_deadline();
        if self.closed.is_some() {
            return;
        }
        let Waiting {
            payload,
            command,
            question,
            ..
        } = *waiting;
        let remember = question.remember;
        if answer.result.is_ok() {
            self.note_archive(&question.question);
        }
        let (transmit, served) = self.answer_from_source(command, question, answer.result);
        if let (Some(replies), true) = (&self.replies, remember) {
            if let Some(version) = answer.version {
                match answer.reuse {
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
            }
        }
        self.served.push_back(served);
        self.ready.push_back(transmit);
    }

    /// The next reply, answering any question at once from `source`: for replay, tests and
    /// benchmarks, where blocking the caller on the source is fine.
    pub fn poll_transmit_from<S: FileSource + ?Sized>(&mut self, source: &S) -> Option<Transmit> {
        if let Some(replies) = &self.replies {
            replies.observe(source.version());
        }
        loop {
            if let Some(transmit) = self.poll_transmit() {
                return Some(transmit);
            }
            let question = self.poll_question()?;
            let answer = source.answer(&question);
            self.handle_answer(self.last_input, answer);
        }
    }

    /// When [`Session::handle_timeout`] must next be called: never while a question is out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() || self.waiting.is_some() {
            return None;
        }
        self.deadline
    }

    /// Works out when a timeout is next due, after the input it depends on changed: the idle
    /// timeout from the last input, the frame timeout from when a partial frame began.
    fn keep_deadline(&mut self) {
        let limits = &self.config.limits;
        let idle = limits.idle_timeout.map(|t| self.last_input + t);
        let partial = self
            .partial_since
            .zip(limits.frame_timeout)
            .map(|(since, t)| since + t);
        self.deadline = match (idle, partial) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Closes the session if a timeout has passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() || self.waiting.is_some() {
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
            if now - self.last_input >= timeout && self.requests.is_empty() && self.ready.is_empty()
            {
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
        self.closed.as_deref()
    }

    /// Bytes of an incomplete request frame held.
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// Remembers that the archive `question` reads from is open on this connection: a
    /// successful answer inside it means OTP's connection opened and kept it.
    fn note_archive(&mut self, question: &Question) {
        let Some((archive, inner)) = question.name().and_then(archive::split) else {
            return;
        };
        // The archive itself is described without being opened.
        let described_only = inner.is_empty() && matches!(question, Question::FileInfo(..));
        if described_only
            || self.opened_archives.len() >= MAX_OPENED_ARCHIVES
            || self.opened_archives.iter().any(|a| a == archive)
        {
            return;
        }
        self.opened_archives.push(archive.to_owned());
    }

    fn close(&mut self, reason: CloseReason) {
        self.closed = Some(Box::new(reason));
        self.requests.clear();
        self.ready.clear();
        self.waiting = None;
        self.input = BytesMut::new();
        self.partial_since = None;
    }

    /// What one request frame's payload needs: a reply at once, or a question first.
    ///
    /// As OTP 25 for every well-formed request; the deliberate differences:
    /// - bytes that are not a term (or exceed the decoder's limits) get
    ///   `{error,{badarg,[]}}` where OTP sends `{error,{badarg,Stacktrace}}`;
    /// - a command whose argument is not a file name (`{get,<<"/x">>}`, `{list_dir,42}`) gets
    ///   `{Command,{error,badarg}}` where OTP crashes the connection;
    /// - `{'EXIT',X}` gets `{error,unknown_command}` where OTP answers `{error,X}`.
    fn step(&self, payload: &[u8], profile: Profile) -> Step {
        let request = match Request::decode(payload, &self.terms) {
            Ok(request) => request,
            Err(_) => {
                let reason = Reason(Term::tuple([Term::atom("badarg"), Term::List(Vec::new())]));
                let (t, s) = answer(None, None, Reply::Error(reason), profile);
                return Step::Reply(t, s);
            }
        };
        let command = request.command();
        let question = match request {
            Request::Get(name) => Question::Get(name),
            Request::ListDir(name) => Question::ListDir(name),
            Request::ReadFileInfo(name) => Question::FileInfo(name, Follow::Links),
            Request::ReadLinkInfo(name) => Question::FileInfo(name, Follow::NoLinks),
            Request::GetCwd => Question::Cwd,
            Request::GetCwdDrive(drive) => {
                let reply = Reply::GetCwd(Err(Reason::atom(drive_cwd_error(&drive))));
                let (t, s) = answer(command, Some(drive), reply, profile);
                return Step::Reply(t, s);
            }
            Request::BadArgument { command, .. } => {
                let reply = Reply::error(command, Reason::atom("badarg"));
                let (t, s) = answer(Some(command), None, reply, profile);
                return Step::Reply(t, s);
            }
            Request::Unknown(_) => {
                let reply = Reply::Error(Reason::atom("unknown_command"));
                let (t, s) = answer(None, None, reply, profile);
                return Step::Reply(t, s);
            }
        };
        Step::Ask(command, question)
    }

    /// The reply to a request from its source's answer.
    fn answer_from_source(
        &self,
        command: Option<Command>,
        question: FileQuestion,
        result: Result<Found, FileError>,
    ) -> (Transmit, Arc<Served>) {
        let profile = question.profile;
        let mismatch = || FileError::Io;
        // The name moves into the record of what was served once it has been used.
        match question.question {
            Question::Get(name) => match result {
                Ok(Found::Contents(contents)) => answer_get(Some(name), contents, profile),
                other => {
                    let error = other.err().unwrap_or_else(mismatch);
                    answer(
                        command,
                        Some(name),
                        Reply::Get(Err(error.reason())),
                        profile,
                    )
                }
            },
            Question::ListDir(name) => {
                let names = match result {
                    Ok(Found::Names(names)) => Ok(names),
                    other => Err(other.err().unwrap_or_else(mismatch).reason()),
                };
                answer(command, Some(name), Reply::ListDir(names), profile)
            }
            Question::FileInfo(name, follow) => {
                let info = match result {
                    Ok(Found::Info(info)) => Ok(info),
                    other => Err(other.err().unwrap_or_else(mismatch).reason()),
                };
                let reply = match follow {
                    Follow::Links => Reply::ReadFileInfo(info),
                    Follow::NoLinks => Reply::ReadLinkInfo(info),
                };
                answer(command, Some(name), reply, profile)
            }
            Question::Cwd => {
                let cwd = match result {
                    Ok(Found::Cwd(cwd)) => Ok(cwd),
                    other => Err(other.err().unwrap_or_else(mismatch).reason()),
                };
                answer(command, None, Reply::GetCwd(cwd), profile)
            }
        }
    }
}

fn answer(
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
    let mut frame = Vec::with_capacity(HEADER_LEN + reply.size_hint());
    frame.resize(HEADER_LEN, 0);
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
    let len = frame.len() - HEADER_LEN;
    write_header(&mut frame, len).expect("a reply term fits a frame");
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
fn answer_get(name: Option<String>, contents: Bytes, profile: Profile) -> (Transmit, Arc<Served>) {
    // Room for `{get,{ok,<<` and the binary's length, written without growing.
    let mut head = Vec::with_capacity(HEADER_LEN + 32);
    head.resize(HEADER_LEN, 0);
    let mut e = Emitter::new(profile, &mut head);
    e.tuple(2);
    e.atom("get");
    e.tuple(2);
    e.atom("ok");
    let fits = e.binary_header(contents.len()).is_ok();
    let payload_len = (head.len() - HEADER_LEN).checked_add(contents.len());
    let header = payload_len.and_then(|len| write_header(&mut head, len));
    let (true, Some(())) = (fits, header) else {
        // A file of 4 GiB or more cannot travel in one {packet,4} frame.
        return answer(
            Some(Command::Get),
            name,
            Reply::Get(Err(Reason::atom("enomem"))),
            profile,
        );
    };
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
