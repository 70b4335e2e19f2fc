//! `erl_prim_loader` in inet mode as a sans-IO state machine, faithful to OTP 25's code,
//! flaws included.
//!
//! # Driving it
//! The driver creates a [`Loader`] (which, like `start_inet`, starts discovering at once), then
//! repeatedly: performs every [`Loader::poll_action`], hands every [`Loader::poll_event`] to its
//! caller, sleeps until [`Loader::poll_timeout`] or until the network or the caller has
//! something, and feeds that in with `handle_*` or [`Loader::request`]. Every input carries
//! `now`; the loader never reads a clock.
//!
//! The driver owns one UDP socket at a time, opened on [`Action::OpenDiscovery`] (IPv4, bound to
//! `0.0.0.0:0`, broadcast allowed) and closed on [`Action::CloseDiscovery`], and delivers only
//! that socket's datagrams. TCP connections are named by the [`ConnId`] in
//! [`Action::Connect`]; the loader ignores reports about connections it has given up on, and a
//! driver drops actions for connections it no longer has ([`Action::Send`] included: OTP
//! ignores the result of a send, and the reply timeout recovers).
//!
//! # What it does (erl_prim_loader.erl, OTP 25.2.3)
//! - **Discovery** (`find_master`, 618–704): a round sends `EBOOTQ<version>` to every host, then
//!   collects answers in a window that starts over on every datagram, garbage included. Answers
//!   `{Priority, SourceIp, Port}` are kept once each, newest first. After a window, the round ends
//!   if an answer of priority 0 was collected or the sends are used up; otherwise it sends again.
//!   A round with no answer reports [`Event::NoServerFound`] and sleeps (10 s for the first 10
//!   consecutive empty rounds, 60 s after). Otherwise the servers are tried in the order
//!   collected, because OTP's `keysort` (1274) never reorders anything, minus those in the
//!   ignore list. Connects are tried one by one, each with its own timeout; if all fail, they join
//!   the ignore list (until a connect succeeds) and a new round starts at once, as it does when
//!   every answer was ignored. Datagrams that arrive while the loader sleeps or connects wait in
//!   OTP's mailbox for the next round's window; they wait here too.
//! - **Requests** (`inet_send_and_rcv`, 745–777): the request is sent on the connection and the
//!   first reply frame answers it ([`crate::client::read_reply`]). A reply timeout closes the
//!   connection; a reply timeout, a close or an error each lead to a new discovery and the same
//!   request bytes being sent again, without limit.
//! - **Idle** (`loop`, 347; `inet_timeout_handler`, 712): a connection unused for the idle timeout
//!   is closed, and the next request rediscovers. A connection the server closes while unused
//!   is forgotten; OTP's main loop drops the `tcp_closed` and keeps the dead port until the idle
//!   timeout, which [`DeadConnection::Kept`] does too.
//! - **`get_modules` calls** (`handle_get_modules`, 506–508; `gm_arch_get`, 590–596): the
//!   caller brackets a call's requests with [`Loader::begin_modules`] and
//!   [`Loader::end_modules`]. OTP drops the state each module's fetch returns, so after a
//!   reconnect inside the call every later module starts on the dead connection and waits out
//!   the reply timeout ([`DeadConnection::Kept`], [`Event::Stranded`]); erlboot keeps the new
//!   connection ([`DeadConnection::Forgotten`], the default).
//! - **Unexpected replies** (`?SAFE2`, 89): a reply term none of OTP's clauses match makes the
//!   request fail and puts back the loader state from before the request. If the request had to
//!   reconnect, the new connection is forgotten without being closed ([`Event::Abandoned`]),
//!   and the loader holds the old, dead one again, or none.
//!
//! # Requests are serial
//! OTP's loader is one process that serves one request at a time; its callers block. Here a
//! second [`Loader::request`] while one is outstanding is refused with [`LoaderError::Busy`].
//! (In OTP a second caller's message would wait in the mailbox, or be swallowed as garbage by
//! `find_collect` and never answered, if it arrived during discovery.) A request made during the
//! discovery that starts the loader is sent once that discovery connects; OTP cannot be asked
//! anything before then.
//!
//! Never does it give up: bounding the total time is the caller's business.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::etf::{Decoder, EncodeError, Limits, Profile};
use crate::proto::discovery::{Answer, Query, PORT};
use crate::proto::frame::{FrameDecoder, FrameError};
use crate::proto::{EncodedRequest, Request};
use crate::time::Instant;

use super::memo::ReplyMemo;
use super::response::{read_reply, ReplyError, Response};
use super::timings::LoaderTimings;

/// The most answers one round keeps (OTP keeps any number). Later distinct answers are
/// dropped; they still start the window over. Only a flood of forged answers gets this far.
pub const MAX_ANSWERS: usize = 1024;

/// How a loader is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    /// Where queries go, in order (port 4368 each): the parsed `-hosts`.
    pub hosts: Vec<Ipv4Addr>,
    /// The ERTS version announced after `EBOOTQ`, e.g. `b"13.1.5"`; OTP servers answer only
    /// their own.
    pub version: Vec<u8>,
    /// Whose `term_to_binary/1` encodes the requests.
    pub profile: Profile,
    /// OTP's timings unless changed.
    pub timings: LoaderTimings,
    /// Bounds on decoding a reply (OTP has none; the default admits 512 MiB).
    pub limits: Limits,
    /// The longest reply frame accepted (OTP has no limit; the default, `u32::MAX`, is none).
    pub max_reply: u32,
    /// Whether the loader stops using a connection once it is closed: erlboot's
    /// [`DeadConnection::Forgotten`] unless set to OTP 25's [`DeadConnection::Kept`].
    pub dead_connection: DeadConnection,
    /// How long servers whose connects all failed are passed over: OTP's
    /// [`Ignored::UntilConnected`] unless set to erlboot's [`Ignored::OneRound`].
    pub ignored: Ignored,
}

/// How long discovery passes over the servers whose connects all failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// OTP's `find_master` (erl_prim_loader.erl:629–643): they join an ignore list that only a
    /// successful connect clears, so a server that refused a connect while it restarted, and
    /// answers again from the same address and port, is passed over for good while it is the
    /// only one: the node rediscovers for ever.
    #[default]
    UntilConnected,
    /// erlboot's own: they are passed over in the next round only, then tried again.
    OneRound,
}

/// Whether the loader's state may go on naming a connection after it closed.
///
/// OTP 25's state does, in two ways (PROTOCOL.md §9, with traces and captures):
/// - a connection the server closes while unused: the main loop drops `tcp_closed`
///   (erl_prim_loader.erl:345) and no `'EXIT'` follows, so the state keeps the port until the
///   idle timeout; a request meanwhile goes to it;
/// - a reconnect inside a `get_modules` call (between [`Loader::begin_modules`] and
///   [`Loader::end_modules`]): `handle_get_modules` (506–508) and `gm_arch_get` (590–596) drop
///   the state a module's fetch returns, so every later module, and the loader after the call,
///   start from the connection the call began with.
///
/// A request sent on a dead connection goes nowhere and waits the whole reply timeout before
/// the loader rediscovers and sends it again: 60 s once for an idle close, and 60 s for every
/// module left in a `get_modules` call, each on a new connection, the previous one leaked: the
/// restart hang.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeadConnection {
    /// A closed connection is forgotten at once, and a reconnect serves every later request.
    /// erlboot's own behaviour.
    #[default]
    Forgotten,
    /// OTP 25's behaviour: an unused connection the server closes stays until the idle
    /// timeout; each module of a `get_modules` call, and the loader after the call, go back
    /// to the connection the call began with, and a newer one is forgotten, still open
    /// ([`Event::Abandoned`]). A request sent on a connection known to be closed is reported
    /// as [`Event::Stranded`].
    Kept,
}

impl LoaderConfig {
    /// OTP's behaviour for these hosts and this version, with the profile of OTP 25, except
    /// that a closed connection is never used again ([`DeadConnection::Forgotten`]).
    pub fn new(hosts: Vec<Ipv4Addr>, version: impl Into<Vec<u8>>) -> LoaderConfig {
        LoaderConfig {
            hosts,
            version: version.into(),
            profile: Profile::Otp25,
            timings: LoaderTimings::otp(),
            limits: Limits::reply(),
            max_reply: u32::MAX,
            dead_connection: DeadConnection::Forgotten,
            ignored: Ignored::UntilConnected,
        }
    }
}

/// A TCP connection the loader asked for; ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A boot server as discovery found it: `{Priority, IP, Port}` in OTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Discovered {
    /// The priority byte of its answer (always 0 from OTP servers).
    pub priority: u8,
    /// The answer's source address, with the TCP port the answer named.
    pub addr: SocketAddrV4,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open the discovery socket: UDP, IPv4, bound to `0.0.0.0:0`, broadcast allowed.
    OpenDiscovery,
    /// Send a query from the discovery socket; a failed send is ignored, as OTP ignores it.
    Query {
        /// A host's port 4368.
        to: SocketAddrV4,
        /// `EBOOTQ` and the version.
        datagram: Bytes,
    },
    /// Close the discovery socket.
    CloseDiscovery,
    /// Open a TCP connection (local address `0.0.0.0:0`) and report
    /// [`Loader::handle_connected`] or [`Loader::handle_connect_failed`]. The loader keeps the
    /// connect timeout itself and says [`Action::Close`] when it expires.
    Connect {
        /// The name of this connection.
        conn: ConnId,
        /// The server.
        to: SocketAddrV4,
    },
    /// Write a whole request frame.
    Send {
        /// The connection.
        conn: ConnId,
        /// Header and term.
        frame: Bytes,
    },
    /// Close a connection, or abandon its connect.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Why a request is being sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResendReason {
    /// No reply within the reply timeout; the loader closed the connection.
    ReplyTimeout,
    /// The connection closed or failed while the request waited.
    Closed,
}

/// What happened, for the caller and for logs.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A round got no answer; OTP prints `{erl_prim_loader,'no server found'}`. The loader
    /// sleeps for `sleep`.
    NoServerFound {
        /// The sleep before the next round.
        sleep: Duration,
    },
    /// A round ended with answers.
    Discovered {
        /// Every answer, newest first.
        answered: Vec<Discovered>,
        /// Those to try, in order: the answers not in the ignore list.
        to_try: Vec<Discovered>,
    },
    /// A connect failed or timed out; the next server is tried.
    ConnectFailed {
        /// The connection.
        conn: ConnId,
        /// The server.
        server: Discovered,
        /// Whether the loader gave up waiting rather than the driver reporting a failure.
        timed_out: bool,
    },
    /// A connection is up; discovery is over.
    Connected {
        /// The connection.
        conn: ConnId,
        /// The server.
        server: Discovered,
    },
    /// The outstanding request will be sent again after a new discovery.
    Resending {
        /// The connection given up.
        conn: ConnId,
        /// Why.
        reason: ResendReason,
    },
    /// The connection was unused for the idle timeout and is closed.
    IdleClosed {
        /// The connection.
        conn: ConnId,
    },
    /// The server closed the connection while no request was outstanding. The loader forgets
    /// it, or with [`DeadConnection::Kept`] holds it until the idle timeout, as OTP does.
    Lost {
        /// The connection.
        conn: ConnId,
    },
    /// An unexpected reply put back the state from before the request, so this connection is
    /// forgotten, still open: OTP leaks it. The driver may keep or close it; the loader ignores
    /// it from now on.
    Abandoned {
        /// The connection.
        conn: ConnId,
    },
    /// The request was sent on a connection the loader already knows is closed
    /// ([`DeadConnection::Kept`] only): nothing can answer it, so it waits the whole
    /// reply timeout, then rediscovers and resends. A client that reports this is the OTP 25
    /// restart hang: every later module of its `get_modules` call does the same.
    Stranded {
        /// The dead connection.
        conn: ConnId,
    },
    /// The answer to the request.
    Reply(Result<Response, ReplyError>),
}

/// A request the loader does not take.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LoaderError {
    /// A request is outstanding; the loader serves one at a time.
    #[error("a request is already outstanding")]
    Busy,
    /// The request cannot be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] EncodeError),
    /// The first discovery is under way; OTP takes no call before it connects.
    #[error("the loader is still looking for its first server")]
    Starting,
}

/// The inet loader.
///
/// Laid out for a simulation of thousands of nodes, each cold in the cache by its turn: what
/// every request and reply reads comes first, in this order (`repr(C)`), and discovery's
/// state, used once a boot, is held apart.
#[derive(Debug)]
#[repr(C)]
pub struct Loader {
    state: State,
    request: Option<Outstanding>,
    /// The `get_modules` call under way, if any.
    modules: Option<ModulesCall>,
    /// Bytes of a reply frame not complete yet; reset with each new connection.
    input: BytesMut,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    frames: FrameDecoder,
    terms: Decoder,
    /// Readings shared with other loaders, by the memory replies arrive in.
    memo: Option<Arc<ReplyMemo>>,
    next_conn: u64,
    /// Closed connections OTP's state may still name: a `get_modules` call's first one, and
    /// an unused one the server closed.
    closed_start: Option<ConnId>,
    closed_idle: Option<ConnId>,
    config: LoaderConfig,
    query: Bytes,
}

/// The request being served.
#[derive(Debug)]
struct Outstanding {
    frame: Bytes,
    /// The connection state when the request began, which `?SAFE2` restores.
    origin: Origin,
}

/// A `get_modules` call: the connection it began with, and the file name (after the last `/`)
/// of the module being fetched.
#[derive(Debug)]
struct ModulesCall {
    start: Option<ConnId>,
    module: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Made during the first discovery, which OTP does before it takes requests.
    Startup,
    /// No connection (`data = noport`).
    Detached,
    /// This connection.
    Connected(ConnId),
}

#[derive(Debug)]
enum State {
    /// No connection and nothing to do (`data = noport`, `timeout = infinity`).
    Detached,
    /// Connected, no request outstanding.
    Ready { conn: ConnId, idle_until: Instant },
    /// The request was sent on `conn`.
    Awaiting { conn: ConnId, until: Instant },
    /// `find_master`.
    Discovering(Box<Discovery>),
}

#[derive(Debug)]
struct Discovery {
    /// Exact triples whose connect failed, newest failures first (`Servers ++ Ignore`).
    ignore: Vec<Discovered>,
    /// Empty rounds left that sleep short (`Tries`).
    short_sleeps_left: u32,
    /// Answers that arrived while not collecting, as the next round's window reads them from
    /// OTP's mailbox: newest first, once each, at most [`MAX_ANSWERS`].
    mailbox: Vec<Discovered>,
    step: Step,
}

#[derive(Debug)]
enum Step {
    /// `find_collect`: answers so far (newest first), sends left, end of the window.
    Collect {
        answers: Vec<Discovered>,
        sends_left: u32,
        until: Instant,
    },
    /// `sleep/1` after an empty round.
    Sleep { until: Instant },
    /// `connect_master`: trying `servers[next]` as `conn`.
    Connect {
        servers: Vec<Discovered>,
        next: usize,
        conn: ConnId,
        until: Instant,
    },
}

impl Loader {
    /// A loader started at `now`; like `start_inet`, it begins discovering at once.
    pub fn new(config: LoaderConfig, now: Instant) -> Loader {
        let query = Bytes::from(Query::new(config.version.clone()).to_bytes());
        let mut loader = Loader {
            frames: FrameDecoder::new(config.max_reply),
            terms: Decoder::new(config.limits),
            memo: None,
            config,
            query,
            next_conn: 0,
            state: State::Detached,
            request: None,
            modules: None,
            closed_start: None,
            closed_idle: None,
            input: BytesMut::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        loader.discover(now);
        loader
    }

    /// The same loader, reading replies through `memo`, which other loaders may share: a
    /// reply arriving in memory the memo has read before is not read again. A memo made for
    /// other limits than the configuration's is not used.
    pub fn with_memo(mut self, memo: Arc<ReplyMemo>) -> Loader {
        if memo.decoder().limits() == self.config.limits {
            self.memo = Some(memo);
        }
        self
    }

    /// Whether replies are read through a shared memo ([`Loader::with_memo`]).
    pub fn memo_shared(&self) -> bool {
        self.memo.is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Asks for one thing; the answer comes as [`Event::Reply`]. Refused while a request is
    /// outstanding.
    pub fn request(&mut self, now: Instant, request: &Request) -> Result<(), LoaderError> {
        if self.request.is_some() {
            return Err(LoaderError::Busy);
        }
        let frame = request.frame_bytes(self.config.profile)?;
        self.begin_request(now, request, frame);
        Ok(())
    }

    /// [`Loader::request`] with the frame encoded beforehand, which is sent as it is; one
    /// encoded for another profile than the loader's is encoded afresh.
    pub fn request_encoded(
        &mut self,
        now: Instant,
        encoded: &EncodedRequest,
    ) -> Result<(), LoaderError> {
        if encoded.profile() != self.config.profile {
            return self.request(now, encoded.request());
        }
        if self.request.is_some() {
            return Err(LoaderError::Busy);
        }
        self.begin_request(now, encoded.request(), encoded.frame().clone());
        Ok(())
    }

    fn begin_request(&mut self, now: Instant, request: &Request, frame: Bytes) {
        self.next_module(now, request);
        let origin = match self.state {
            State::Detached => Origin::Detached,
            State::Ready { conn, .. } | State::Awaiting { conn, .. } => Origin::Connected(conn),
            State::Discovering(_) => Origin::Startup,
        };
        self.request = Some(Outstanding {
            frame: frame.clone(),
            origin,
        });
        match self.state {
            State::Detached => self.discover(now),
            State::Ready { conn, .. } => self.send(now, conn, frame),
            // The discovery under way sends it once it connects.
            State::Discovering(_) => {}
            State::Awaiting { .. } => unreachable!("awaiting implies a request"),
        }
    }

    /// Whether a request is outstanding.
    pub fn is_busy(&self) -> bool {
        self.request.is_some()
    }

    /// A `get_modules` call begins (`init`'s `primLoad`): the requests until
    /// [`Loader::end_modules`] are its `get`s, each module's path tries in a row; a `get` whose
    /// file name after the last `/` differs from the one before starts the next module. With
    /// [`DeadConnection::Kept`] each module after the first, and the loader after the
    /// call, go back to the connection held now. Refused while a request is outstanding or
    /// the first discovery runs.
    pub fn begin_modules(&mut self) -> Result<(), LoaderError> {
        if self.request.is_some() {
            return Err(LoaderError::Busy);
        }
        if matches!(self.state, State::Discovering(_)) {
            return Err(LoaderError::Starting);
        }
        self.modules = Some(ModulesCall {
            start: self.current(),
            module: None,
        });
        Ok(())
    }

    /// The `get_modules` call ends; with [`DeadConnection::Kept`] the loader goes back
    /// to the connection the call began with. Refused while a request is outstanding.
    pub fn end_modules(&mut self, now: Instant) -> Result<(), LoaderError> {
        if self.request.is_some() {
            return Err(LoaderError::Busy);
        }
        if self.modules.is_some() {
            self.restore_call_start(now);
            self.modules = None;
        }
        Ok(())
    }

    /// Whether the outstanding request waits on a connection known to be closed (see
    /// [`Event::Stranded`]).
    pub fn is_stranded(&self) -> bool {
        match self.state {
            State::Awaiting { conn, .. } => self.known_closed(conn),
            _ => false,
        }
    }

    /// A datagram that arrived on the discovery socket from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, datagram: &[u8]) {
        let State::Discovering(discovery) = &mut self.state else {
            return;
        };
        // OTP's pattern `[$E,$B,$O,$O,$T,$R,Priority,T1,T0 | _Version]`.
        let server = Answer::parse(datagram).ok().map(|answer| Discovered {
            priority: answer.priority,
            addr: SocketAddrV4::new(*from.ip(), answer.port),
        });
        match &mut discovery.step {
            Step::Collect { answers, until, .. } => {
                // Every message re-enters the receive, so its `after` starts over.
                *until = now + self.config.timings.collect_window;
                if let Some(server) = server {
                    collect(answers, server);
                }
            }
            Step::Sleep { .. } | Step::Connect { .. } => {
                if let Some(server) = server {
                    collect(&mut discovery.mailbox, server);
                }
            }
        }
    }

    /// The connect of `conn` succeeded.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        let State::Discovering(discovery) = &self.state else {
            return;
        };
        let Step::Connect {
            servers,
            next,
            conn: trying,
            ..
        } = &discovery.step
        else {
            return;
        };
        if *trying != conn {
            return;
        }
        let server = servers[*next];
        self.actions.push_back(Action::CloseDiscovery);
        self.events.push_back(Event::Connected { conn, server });
        self.input = BytesMut::new();
        match &self.request {
            Some(request) => {
                let frame = request.frame.clone();
                self.send(now, conn, frame);
            }
            None => self.ready(now, conn),
        }
    }

    /// The connect of `conn` failed.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId) {
        if self.connecting() == Some(conn) {
            self.connect_failed(now, false);
        }
    }

    /// Bytes arrived on `conn`. A read's own buffer, handed over whole, becomes the input
    /// buffer when nothing is left over from the last read, so a reply that arrives in one
    /// read reaches its caller without a copy.
    pub fn handle_data(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        if self.current() != Some(conn) {
            return;
        }
        if self.input.is_empty() {
            // A reply that arrives whole is read as it came, with no buffer around it.
            let data = match self.frames.decode_whole(data) {
                Ok(payload) => return self.frame(now, conn, &payload),
                Err(data) => data,
            };
            self.input = BytesMut::from(data);
        } else {
            self.input.extend_from_slice(&data);
        }
        // A frame can end the connection's tenure (an unexpected reply that restores the
        // state), so the connection is checked again before each one.
        while self.current() == Some(conn) {
            match self.frames.decode(&mut self.input) {
                Ok(Some(payload)) => self.frame(now, conn, &payload),
                Ok(None) => {
                    // Let go of the read's buffer once every frame in it is out: a client
                    // waiting for its next reply holds none.
                    if self.input.is_empty() {
                        self.input = BytesMut::new();
                    }
                    return;
                }
                Err(FrameError::TooLarge { len, max }) => {
                    self.actions.push_back(Action::Close { conn });
                    self.state = State::Detached;
                    if self.request.take().is_some() {
                        let error = ReplyError::FrameTooLarge { len, max };
                        self.events.push_back(Event::Reply(Err(error)));
                    } else {
                        self.events.push_back(Event::Lost { conn });
                    }
                }
            }
        }
        self.input = BytesMut::new();
    }

    /// `conn` closed or failed (`tcp_closed`, `tcp_error`). The driver has released it.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        if self.current() == Some(conn) {
            self.mark_closed(conn);
        }
        match self.state {
            State::Ready { conn: current, .. } if current == conn => {
                self.events.push_back(Event::Lost { conn });
                match self.config.dead_connection {
                    DeadConnection::Forgotten => self.state = State::Detached,
                    // OTP's main loop drops `tcp_closed`; the idle timeout closes the port.
                    DeadConnection::Kept => self.closed_idle = Some(conn),
                }
            }
            State::Awaiting { conn: current, .. } if current == conn => {
                self.events.push_back(Event::Resending {
                    conn,
                    reason: ResendReason::Closed,
                });
                self.discover(now);
            }
            // A connect that ends this way failed.
            State::Discovering(_) if self.connecting() == Some(conn) => {
                self.connect_failed(now, false);
            }
            _ => {}
        }
    }

    /// When [`Loader::handle_timeout`] must next be called; `None` while nothing is timed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Detached => None,
            State::Ready { idle_until, .. } => Some(*idle_until),
            State::Awaiting { until, .. } => Some(*until),
            State::Discovering(discovery) => Some(match discovery.step {
                Step::Collect { until, .. }
                | Step::Sleep { until }
                | Step::Connect { until, .. } => until,
            }),
        }
    }

    /// Acts on the timeout that is due by `now`, if any; at most one per call.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().map_or(true, |due| due > now) {
            return;
        }
        match &mut self.state {
            State::Detached => {}
            State::Ready { conn, .. } => {
                let conn = *conn;
                self.actions.push_back(Action::Close { conn });
                self.events.push_back(Event::IdleClosed { conn });
                self.mark_closed(conn);
                self.state = State::Detached;
            }
            State::Awaiting { conn, .. } => {
                let conn = *conn;
                self.actions.push_back(Action::Close { conn });
                self.mark_closed(conn);
                self.events.push_back(Event::Resending {
                    conn,
                    reason: ResendReason::ReplyTimeout,
                });
                self.discover(now);
            }
            State::Discovering(discovery) => match &mut discovery.step {
                Step::Collect {
                    answers,
                    sends_left,
                    ..
                } => {
                    let done = *sends_left == 0 || answers.iter().any(|s| s.priority == 0);
                    if done {
                        let answers = std::mem::take(answers);
                        self.end_round(now, answers);
                    } else {
                        self.send_queries(now);
                    }
                }
                Step::Sleep { .. } => self.start_round(now),
                Step::Connect { conn, .. } => {
                    let conn = *conn;
                    self.actions.push_back(Action::Close { conn });
                    self.connect_failed(now, true);
                }
            },
        }
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// `find_master`: a fresh socket, an empty ignore list, a first round now.
    fn discover(&mut self, now: Instant) {
        self.actions.push_back(Action::OpenDiscovery);
        self.state = State::Discovering(Box::new(Discovery {
            ignore: Vec::new(),
            short_sleeps_left: self.config.timings.short_sleeps,
            mailbox: Vec::new(),
            step: Step::Sleep { until: now },
        }));
        self.start_round(now);
    }

    /// `find_loop/5` with an empty accumulator: the first query of a round, then whatever
    /// waited in the mailbox, read at once.
    fn start_round(&mut self, now: Instant) {
        let sends = self.config.timings.sends_per_round;
        let State::Discovering(discovery) = &mut self.state else {
            unreachable!("rounds run while discovering")
        };
        let answers = std::mem::take(&mut discovery.mailbox);
        if sends == 0 {
            // `find_loop(_U, 0, …)` returns its accumulator without sending or waiting.
            self.end_round(now, answers);
            return;
        }
        discovery.step = Step::Collect {
            answers,
            sends_left: sends,
            until: now,
        };
        self.send_queries(now);
    }

    /// `send_all` and a new collect window.
    fn send_queries(&mut self, now: Instant) {
        for host in &self.config.hosts {
            self.actions.push_back(Action::Query {
                to: SocketAddrV4::new(*host, PORT),
                datagram: self.query.clone(),
            });
        }
        let window = self.config.timings.collect_window;
        if let State::Discovering(discovery) = &mut self.state {
            if let Step::Collect {
                sends_left, until, ..
            } = &mut discovery.step
            {
                *sends_left -= 1;
                *until = now + window;
            }
        }
    }

    /// `find_loop/8` after a round, and `find_master` on what it returns.
    fn end_round(&mut self, now: Instant, answers: Vec<Discovered>) {
        let timings = self.config.timings;
        let State::Discovering(discovery) = &mut self.state else {
            unreachable!("rounds run while discovering")
        };
        if answers.is_empty() {
            let sleep = if discovery.short_sleeps_left > 0 {
                discovery.short_sleeps_left -= 1;
                timings.short_sleep
            } else {
                timings.long_sleep
            };
            self.events.push_back(Event::NoServerFound { sleep });
            discovery.step = Step::Sleep { until: now + sleep };
            return;
        }
        // `keysort(1, Servers -- Ignore)`: the sort leaves the order alone (its guard compares a
        // tuple with an integer, which is never smaller), so newest first it stays.
        let to_try: Vec<Discovered> = answers
            .iter()
            .filter(|server| !discovery.ignore.contains(server))
            .copied()
            .collect();
        if self.config.ignored == Ignored::OneRound {
            discovery.ignore.clear();
        }
        // `find_master` calls `find_loop` again with the original count of short sleeps.
        discovery.short_sleeps_left = timings.short_sleeps;
        self.events.push_back(Event::Discovered {
            answered: answers,
            to_try: to_try.clone(),
        });
        if to_try.is_empty() {
            self.start_round(now);
        } else {
            self.connect(now, to_try, 0);
        }
    }

    /// `connect_master` trying `servers[next]`.
    fn connect(&mut self, now: Instant, servers: Vec<Discovered>, next: usize) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.actions.push_back(Action::Connect {
            conn,
            to: servers[next].addr,
        });
        let until = now + self.config.timings.connect_timeout;
        if let State::Discovering(discovery) = &mut self.state {
            discovery.step = Step::Connect {
                servers,
                next,
                conn,
                until,
            };
        }
    }

    /// The open connection, if any.
    fn current(&self) -> Option<ConnId> {
        match self.state {
            State::Ready { conn, .. } | State::Awaiting { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The connection being tried, if any.
    fn connecting(&self) -> Option<ConnId> {
        match &self.state {
            State::Discovering(discovery) => match discovery.step {
                Step::Connect { conn, .. } => Some(conn),
                _ => None,
            },
            _ => None,
        }
    }

    /// The next server, or, when none is left, all of them ignored and a new round.
    fn connect_failed(&mut self, now: Instant, timed_out: bool) {
        let State::Discovering(discovery) = &mut self.state else {
            return;
        };
        let Step::Connect {
            servers,
            next,
            conn,
            ..
        } = std::mem::replace(&mut discovery.step, Step::Sleep { until: now })
        else {
            return;
        };
        self.events.push_back(Event::ConnectFailed {
            conn,
            server: servers[next],
            timed_out,
        });
        if next + 1 < servers.len() {
            self.connect(now, servers, next + 1);
        } else {
            // `Servers ++ Ignore`.
            let mut ignore = servers;
            ignore.append(&mut discovery.ignore);
            discovery.ignore = ignore;
            discovery.short_sleeps_left = self.config.timings.short_sleeps;
            self.start_round(now);
        }
    }

    fn send(&mut self, now: Instant, conn: ConnId, frame: Bytes) {
        self.actions.push_back(Action::Send { conn, frame });
        if self.known_closed(conn) {
            self.events.push_back(Event::Stranded { conn });
        }
        self.state = State::Awaiting {
            conn,
            until: now + self.config.timings.reply_timeout,
        };
    }

    /// `conn` is closed: if a `get_modules` call began on it, OTP's state still names it.
    fn mark_closed(&mut self, conn: ConnId) {
        if matches!(&self.modules, Some(call) if call.start == Some(conn)) {
            self.closed_start = Some(conn);
        }
    }

    /// Before `request` is sent: inside a `get_modules` call, a `get` of another file name
    /// starts the next module, which OTP 25 begins from the call's first state.
    fn next_module(&mut self, now: Instant, request: &Request) {
        let Some(call) = &mut self.modules else {
            return;
        };
        let Request::Get(name) = request else {
            return;
        };
        let module = name.rsplit('/').next().unwrap_or(name);
        // A module's path tries name it again and again: kept, not copied again.
        let known = call.module.as_deref();
        if known == Some(module) {
            return;
        }
        let next = known.is_some();
        call.module = Some(module.to_owned());
        if next {
            self.restore_call_start(now);
        }
    }

    /// Whether `conn` is closed although OTP's state may name it.
    fn known_closed(&self, conn: ConnId) -> bool {
        self.closed_start == Some(conn) || self.closed_idle == Some(conn)
    }

    /// With [`DeadConnection::Kept`], the connection state the call began with.
    fn restore_call_start(&mut self, now: Instant) {
        if self.config.dead_connection != DeadConnection::Kept {
            return;
        }
        // Not while discovering: calls begin connected, and modules start between requests.
        let Some(call) = &self.modules else {
            return;
        };
        let start = call.start;
        let current = self.current();
        if current == start {
            return;
        }
        if let Some(conn) = current {
            self.events.push_back(Event::Abandoned { conn });
        }
        match start {
            Some(conn) => self.ready(now, conn),
            None => self.state = State::Detached,
        }
    }

    fn ready(&mut self, now: Instant, conn: ConnId) {
        self.state = State::Ready {
            conn,
            idle_until: now + self.config.timings.idle_timeout,
        };
    }

    /// One complete frame from the current connection. With `{packet,4}` OTP gets each frame
    /// as a message: the first while a request waits is its reply; any other reaches the main
    /// loop, which drops it and starts its idle wait over.
    fn frame(&mut self, now: Instant, conn: ConnId, payload: &Bytes) {
        if !matches!(self.state, State::Awaiting { .. }) {
            self.ready(now, conn);
            return;
        }
        let request = self.request.take().expect("awaiting implies a request");
        let reply = match &self.memo {
            Some(memo) => memo.read(payload),
            None => read_reply(payload, &self.terms),
        };
        match (&reply, request.origin) {
            (Err(ReplyError::Unexpected(_)), Origin::Detached) => {
                self.events.push_back(Event::Abandoned { conn });
                self.state = State::Detached;
            }
            (Err(ReplyError::Unexpected(_)), Origin::Connected(old)) if old != conn => {
                self.events.push_back(Event::Abandoned { conn });
                self.ready(now, old);
            }
            _ => self.ready(now, conn),
        }
        self.events.push_back(Event::Reply(reply));
    }
}

/// `find_collect`'s accumulator: a new answer goes in front, a known one is dropped.
fn collect(answers: &mut Vec<Discovered>, server: Discovered) {
    if !answers.contains(&server) && answers.len() < MAX_ANSWERS {
        answers.insert(0, server);
    }
}
