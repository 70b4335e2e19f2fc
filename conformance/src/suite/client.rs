//! Client and timing cases: erlboot's loader replayed in virtual time on what a captured
//! client received, its output held to what the captured client sent.
//!
//! For each captured session the loader starts at the session's first query (OTP's loader
//! queries as it starts) and is fed the session's inputs at their captured times: discovery
//! answers, the connection's opening, replies, the server's close. It is asked for each
//! captured request when the captured client could have asked for it: at once when it is
//! connected and idle, else at the last input before (the first request waits for discovery).
//! Its timers run between inputs. What it sends is then set against what the client sent:
//! - **client** cases, one per captured request: the same request frame byte for byte, and the
//!   captured reply read to the value OTP's client reads (`{get,{ok,B}}` a file, any other
//!   `{_,{ok,V}}` the value `V`, `{_,{error,E}}` and `{error,E}` the error `E`);
//! - **timing** cases, one per timer-driven thing the client sent (a query after the first,
//!   the connect after the collect window, a close): its delay after the last thing before it
//!   in the capture, within 5 % (and at least 2 ms, the capture's own jitter) of the captured
//!   delay.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use erlboot::client::{Action, ConnId, Event, Loader, LoaderConfig, ReplyError, Response};
use erlboot::etf::{Decoder, Limits, Profile, Term};
use erlboot::proto::frame::{encode_frame, HEADER_LEN};
use erlboot::proto::{Reply, Request};
use erlboot::server::request_profile;
use erlboot::time::Instant;

use crate::case::{payload_text, CaseId, Exchange, Kind, Outcome, Verdict};
use crate::pairing::{self, Unanswered};
use crate::reassembly::Direction;
use crate::render::term_text;
use crate::transcript::{Body, Close, Session};

use super::{Recording, IN_PROCESS};

/// How far a timer-driven send may be from the captured one, as a share of the captured delay.
pub const TIMING_TOLERANCE: f64 = 0.05;

/// The least tolerance: the capture's timestamps carry the kernel's and the node's scheduling.
pub const TIMING_FLOOR: Duration = Duration::from_millis(2);

/// Why cases after a capture gap are not judged.
const AFTER_GAP: &str = "after a gap in the capture: the loader was not given what was lost";

/// Bounds the loader's timers run between two inputs (a loader that never gets what it
/// waits for would otherwise run on for ever).
const MAX_TIMERS: usize = 10_000;

/// The client and timing cases of a recording.
pub fn judge(recording: &Recording) -> Vec<Verdict> {
    let mut client = Vec::new();
    let mut timing = Vec::new();
    for session in &recording.transcript.sessions {
        let Some(replay) = Replay::run(session) else {
            continue;
        };
        for (exchange, outcome, summary, detail) in replay.client_cases() {
            client.push(verdict(
                recording,
                Kind::Client,
                client.len(),
                outcome,
                summary,
                detail,
                exchange,
            ));
        }
        for (exchange, outcome, summary, detail) in replay.timing_cases() {
            timing.push(verdict(
                recording,
                Kind::Timing,
                timing.len(),
                outcome,
                summary,
                detail,
                exchange,
            ));
        }
    }
    client.extend(timing);
    client
}

fn verdict(
    recording: &Recording,
    kind: Kind,
    index: usize,
    outcome: Outcome,
    summary: String,
    detail: String,
    exchange: Option<Exchange>,
) -> Verdict {
    Verdict {
        id: CaseId {
            capture: recording.name.clone(),
            kind,
            number: index as u32 + 1,
        },
        target: IN_PROCESS.into(),
        outcome,
        summary,
        detail,
        exchange,
    }
}

/// What a client sends, as the capture or the loader shows it.
#[derive(Clone, Debug, PartialEq)]
enum Sent {
    Query { to: SocketAddrV4, datagram: Vec<u8> },
    Connect,
    Request(Vec<u8>),
    Close,
}

impl Sent {
    fn is_timed(&self) -> bool {
        !matches!(self, Sent::Request(_))
    }

    fn name(&self) -> String {
        match self {
            Sent::Query { to, datagram } => format!("query {} to {to}", payload_text(datagram)),
            Sent::Connect => "connect".into(),
            Sent::Request(payload) => payload_text(payload),
            Sent::Close => "close".into(),
        }
    }
}

/// A captured reply and how the loader read it (or why it did not).
type Reading = (Vec<u8>, Result<String, String>);

/// One thing sent, when, and the last input before it.
#[derive(Clone, Debug)]
struct Output {
    at: Duration,
    after: Duration,
    sent: Sent,
}

/// A session replayed through the loader.
struct Replay {
    /// Why the captured client is not an OTP loader, if it is not: nothing it did can be
    /// held against the loader then.
    foreign: Option<String>,
    /// When the capture first missed bytes of the session: the loader is not fed what was
    /// lost, so from then on it cannot be held to what the client did.
    gap: Option<Duration>,
    captured: Vec<Output>,
    loader: Vec<Output>,
    /// Per captured request: the reply captured for it and how the loader read it.
    readings: Vec<Option<Reading>>,
}

impl Replay {
    /// Replays a session that has a discovery or a connection; `None` for one with neither.
    fn run(session: &Session) -> Option<Replay> {
        let first = session.messages.first()?;
        let mut hosts: Vec<Ipv4Addr> = Vec::new();
        let mut version = None;
        let mut profile = None;
        for message in &session.messages {
            match &message.body {
                Body::Query { to, query, .. } => {
                    if !hosts.contains(to.ip()) {
                        hosts.push(*to.ip());
                    }
                    if let (None, Ok(q)) = (&version, query) {
                        version = Some(q.version.clone());
                    }
                }
                Body::Request { payload, .. } if profile.is_none() => {
                    profile = request_profile(payload);
                }
                _ => {}
            }
        }
        if hosts.is_empty() {
            // No discovery captured: the loader cannot be started where the client was.
            return None;
        }
        let foreign = foreign_client(session);
        let mut config = LoaderConfig::new(hosts, version.unwrap_or_default());
        config.profile = profile.unwrap_or(Profile::Otp25);
        let start = first.at;
        let mut driver = Driver {
            loader: Loader::new(config, at(start)),
            clock: start,
            last_input: start,
            conn: None,
            out: Vec::new(),
            reading: None,
        };
        driver.drain();
        let mut captured = Vec::new();
        let mut readings = Vec::new();
        let mut requests: VecDeque<(usize, &[u8])> = VecDeque::new();
        let mut last_captured = start;
        let mut gap = None;
        for message in &session.messages {
            let t = message.at;
            let sent = match (&message.body, message.direction) {
                (Body::Query { to, payload, .. }, _) => Some(Sent::Query {
                    to: *to,
                    datagram: payload.clone(),
                }),
                (
                    Body::Open {
                        handshake: true, ..
                    },
                    _,
                ) => Some(Sent::Connect),
                (Body::Request { payload, .. }, _) => Some(Sent::Request(payload.clone())),
                (Body::Close(_), Direction::ToServer) => Some(Sent::Close),
                _ => None,
            };
            if let Some(sent) = sent {
                captured.push(Output {
                    at: t,
                    after: last_captured,
                    sent: sent.clone(),
                });
                let previous = last_captured;
                last_captured = t;
                match (&message.body, sent) {
                    (Body::Open { .. }, _) => driver.connected(t),
                    (
                        Body::Request {
                            payload, request, ..
                        },
                        _,
                    ) => {
                        readings.push(None);
                        if let Some(request) = request {
                            driver.call(t, request);
                        }
                        requests.push_back((readings.len() - 1, payload));
                    }
                    // A timed send may come from the loader a little after the captured one.
                    _ => driver.advance(t + tolerance(t.saturating_sub(previous))),
                }
                continue;
            }
            last_captured = t;
            if matches!(message.body, Body::Gap(_) | Body::Unfinished(_)) && gap.is_none() {
                gap = Some(t);
            }
            match &message.body {
                Body::Answer { from, payload, .. } => {
                    driver.advance(t);
                    driver.input(t);
                    driver.loader.handle_datagram(at(t), *from, payload);
                    driver.drain();
                }
                Body::Reply { payload, .. } => {
                    driver.advance(t);
                    driver.input(t);
                    if let Some((index, _)) = requests.pop_front() {
                        let reading = driver.reply(t, payload);
                        readings[index] = Some((payload.clone(), reading));
                    }
                }
                Body::Close(how) if message.direction == Direction::ToClient => {
                    driver.advance(t);
                    driver.input(t);
                    if let Some(conn) = driver.conn {
                        if *how == Close::Rst || *how == Close::Fin {
                            driver.loader.handle_closed(at(t), conn);
                            driver.drain();
                        }
                    }
                }
                _ => {}
            }
        }
        // The gap shows at the first packet after it, maybe after the client's next request:
        // the pairing tells which request's reply was lost, and the cases stop before it.
        for pair in pairing::pairs(session) {
            let lost = match (&pair.request, &pair.reply, pair.unanswered) {
                (Some(request), _, Some(Unanswered::LostInGap)) => Some(request.at),
                (None, Some(reply), _) => Some(reply.at),
                _ => None,
            };
            if let Some(lost) = lost {
                gap = Some(gap.map_or(lost, |g: Duration| g.min(lost)));
            }
        }
        // What the loader's timers do after the capture's last message is not in the capture.
        Some(Replay {
            foreign,
            gap,
            captured,
            loader: driver.out,
            readings,
        })
    }

    fn client_cases(&self) -> Vec<(Option<Exchange>, Outcome, String, String)> {
        if let Some(why) = &self.foreign {
            return self
                .captured
                .iter()
                .filter(|o| matches!(o.sent, Sent::Request(_)))
                .map(|o| (None, Outcome::Info, o.sent.name(), why.clone()))
                .collect();
        }
        let captured: Vec<(&Vec<u8>, Duration)> = self
            .captured
            .iter()
            .filter_map(|o| match &o.sent {
                Sent::Request(p) => Some((p, o.at)),
                _ => None,
            })
            .collect();
        let sent: Vec<&Vec<u8>> = self
            .loader
            .iter()
            .filter_map(|o| match &o.sent {
                Sent::Request(p) => Some(p),
                _ => None,
            })
            .collect();
        captured
            .iter()
            .enumerate()
            .map(|(i, (expected, sent_at))| {
                let summary = payload_text(expected);
                if self.gap.is_some_and(|gap| *sent_at >= gap) {
                    return (None, Outcome::Unsupported, summary, AFTER_GAP.into());
                }
                let actual = sent.get(i).map(|p| p.to_vec());
                let exchange = Exchange {
                    sent: expected.to_vec(),
                    expected: Some(expected.to_vec()),
                    actual,
                };
                if let Some(at) = exchange.first_difference() {
                    let detail = match &exchange.actual {
                        Some(_) => format!("the request differs from OTP's at byte {at}"),
                        None => "the loader did not send it".into(),
                    };
                    return (Some(exchange), Outcome::Fail, summary, detail);
                }
                match self.readings.get(i).cloned().flatten() {
                    None => (
                        Some(exchange),
                        Outcome::Pass,
                        summary,
                        "no reply captured to read".into(),
                    ),
                    Some((reply, reading)) => {
                        let expected = otp_reading(&reply);
                        match reading {
                            Ok(value) if value == expected => {
                                (Some(exchange), Outcome::Pass, summary, String::new())
                            }
                            Ok(value) | Err(value) => (
                                Some(exchange),
                                Outcome::Fail,
                                summary,
                                format!(
                                    "the reply reads as {value}; OTP's client reads {expected}"
                                ),
                            ),
                        }
                    }
                }
            })
            .collect()
    }

    fn timing_cases(&self) -> Vec<(Option<Exchange>, Outcome, String, String)> {
        if let Some(why) = &self.foreign {
            return self
                .captured
                .iter()
                .filter(|o| o.sent.is_timed())
                .skip(1)
                .map(|o| (None, Outcome::Info, o.sent.name(), why.clone()))
                .collect();
        }
        let timed = |outputs: &[Output]| -> Vec<Output> {
            outputs
                .iter()
                .filter(|o| o.sent.is_timed())
                .cloned()
                .collect()
        };
        let captured = timed(&self.captured);
        let loader = timed(&self.loader);
        // The first query starts both: nothing to time.
        captured
            .iter()
            .zip(loader.iter().map(Some).chain(std::iter::repeat(None)))
            .skip(1)
            .map(|(expected, actual)| {
                let want = expected.at.saturating_sub(expected.after);
                let summary = format!("{} after {}", expected.sent.name(), seconds(want));
                if self.gap.is_some_and(|gap| expected.at > gap) {
                    return (None, Outcome::Unsupported, summary, AFTER_GAP.into());
                }
                let Some(actual) = actual else {
                    let (outcome, detail) = match expected.sent {
                        Sent::Close => (
                            Outcome::Info,
                            "the loader closes only on its timers (reply and idle timeouts): \
                             this close is the node's own, as it stopped",
                        ),
                        _ => (Outcome::Fail, "the loader never sent it"),
                    };
                    return (None, outcome, summary, detail.into());
                };
                let got = actual.at.saturating_sub(expected.after);
                let off = if got > want { got - want } else { want - got };
                let same_kind =
                    std::mem::discriminant(&expected.sent) == std::mem::discriminant(&actual.sent);
                if !same_kind {
                    let detail = format!("the loader sent {} instead", actual.sent.name());
                    return (None, Outcome::Fail, summary, detail);
                }
                let detail = format!("the loader: {} (OTP: {})", seconds(got), seconds(want));
                let outcome = if off <= tolerance(want) {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                };
                (None, outcome, summary, detail)
            })
            .collect()
    }
}

/// Why a session's client is not `erl_prim_loader`, if it sent what that never sends: a
/// frame that is not a request it makes, or a request before the reply to the previous one.
fn foreign_client(session: &Session) -> Option<String> {
    // A reply lost in a gap looks like a request sent before its reply: where the capture has
    // gaps, only what was sent can tell.
    let gaps = session
        .messages
        .iter()
        .any(|m| matches!(m.body, Body::Gap(_) | Body::Unfinished(_)));
    let mut waiting = false;
    for message in &session.messages {
        match &message.body {
            Body::Request {
                payload, request, ..
            } => {
                let sendable = matches!(
                    request,
                    Some(
                        Request::Get(_)
                            | Request::ListDir(_)
                            | Request::ReadFileInfo(_)
                            | Request::ReadLinkInfo(_)
                            | Request::GetCwd
                            | Request::GetCwdDrive(_)
                    )
                );
                let what = if !sendable {
                    Some(format!("it sent {}", payload_text(payload)))
                } else if waiting && !gaps {
                    Some("it sent a request before the reply to the previous one".to_owned())
                } else {
                    None
                };
                if let Some(what) = what {
                    return Some(format!(
                        "the captured client is not erl_prim_loader ({what}, which \
                         erl_prim_loader never does)"
                    ));
                }
                waiting = true;
            }
            Body::Reply { .. } => waiting = false,
            _ => {}
        }
    }
    None
}

/// The loader, fed at captured times, its sends recorded.
struct Driver {
    loader: Loader,
    clock: Duration,
    last_input: Duration,
    conn: Option<ConnId>,
    out: Vec<Output>,
    reading: Option<Result<String, String>>,
}

impl Driver {
    fn input(&mut self, t: Duration) {
        self.last_input = t;
    }

    /// Runs the loader's timers due up to `t`.
    fn advance(&mut self, t: Duration) {
        for _ in 0..MAX_TIMERS {
            match self.loader.poll_timeout() {
                Some(due) if due <= at(t) => {
                    self.clock = due.since_epoch().max(self.clock);
                    self.loader.handle_timeout(due);
                    self.drain();
                }
                _ => break,
            }
        }
        self.clock = t.max(self.clock);
    }

    /// The captured client opened its connection at `t`: the loader's connect, if it has asked
    /// for one by then (or, late, by its next timer), succeeds.
    fn connected(&mut self, t: Duration) {
        self.advance(t);
        if self.conn.is_none() {
            // The loader has not asked to connect yet: run its timers until it does.
            for _ in 0..MAX_TIMERS {
                let Some(due) = self.loader.poll_timeout() else {
                    break;
                };
                self.clock = due.since_epoch();
                self.loader.handle_timeout(due);
                self.drain();
                if self.conn.is_some() {
                    break;
                }
            }
        }
        if let Some(conn) = self.conn {
            let when = self.clock.max(t);
            self.loader.handle_connected(at(when), conn);
            self.input(when);
            self.drain();
        }
    }

    /// The captured client sent `request` at `t`: the loader is asked for it now if it is
    /// idle on a connection, else it was asked at the last input.
    fn call(&mut self, t: Duration, request: &Request) {
        if self.loader.is_busy() {
            self.advance(t);
            return;
        }
        let connected_and_idle = self.conn.is_some() && self.loader.poll_timeout().is_some();
        let when = if connected_and_idle {
            self.advance(t);
            t
        } else {
            self.clock
        };
        if self.loader.request(at(when), request).is_ok() {
            self.drain();
        }
        self.advance(t);
    }

    /// A reply frame arrived at `t`: how the loader read it.
    fn reply(&mut self, t: Duration, payload: &[u8]) -> Result<String, String> {
        let Some(conn) = self.conn else {
            return Err("no connection to read it on".into());
        };
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        encode_frame(payload, &mut frame).expect("a captured frame's payload fits a frame");
        self.reading = None;
        self.loader.handle_data(at(t), conn, frame.into());
        self.drain();
        self.reading
            .take()
            .unwrap_or_else(|| Err("the loader did not take it as a reply".into()))
    }

    fn drain(&mut self) {
        let at = self.clock;
        while let Some(action) = self.loader.poll_action() {
            let sent = match action {
                Action::Query { to, datagram } => Some(Sent::Query {
                    to,
                    datagram: datagram.to_vec(),
                }),
                Action::Connect { conn, .. } => {
                    self.conn = Some(conn);
                    Some(Sent::Connect)
                }
                Action::Send { frame, .. } => Some(Sent::Request(frame[HEADER_LEN..].to_vec())),
                Action::Close { conn } => {
                    if self.conn == Some(conn) {
                        self.conn = None;
                    }
                    Some(Sent::Close)
                }
                Action::OpenDiscovery | Action::CloseDiscovery => None,
            };
            if let Some(sent) = sent {
                self.out.push(Output {
                    at,
                    after: self.last_input,
                    sent,
                });
            }
        }
        while let Some(event) = self.loader.poll_event() {
            if let Event::Reply(result) = event {
                self.reading = Some(match result {
                    Ok(response) => Ok(response_text(&response)),
                    Err(error) => Ok(error_text(&error)),
                });
            }
        }
    }
}

/// How far a timed send may be from one captured `delay` after what came before it.
fn tolerance(delay: Duration) -> Duration {
    delay.mul_f64(TIMING_TOLERANCE).max(TIMING_FLOOR)
}

fn at(t: Duration) -> Instant {
    Instant::from_epoch(t)
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn response_text(response: &Response) -> String {
    match response {
        Response::File(contents) => format!("file {}", term_text(&contents.term())),
        Response::Ok(value) => format!("ok {}", term_text(&value.term())),
    }
}

fn error_text(error: &ReplyError) -> String {
    match error {
        ReplyError::Server(reason) => format!("error {}", term_text(reason)),
        ReplyError::Undecodable(_) => "error undecodable".into(),
        ReplyError::Unexpected(term) => format!("unexpected {}", term_text(term)),
        other => format!("error {other}"),
    }
}

/// How OTP's client reads a reply (`inet_send_and_rcv`, erl_prim_loader.erl:749–763), worked
/// out from the server's side of the protocol: the reply's typed reading.
fn otp_reading(payload: &[u8]) -> String {
    let Ok((term, _)) = Decoder::new(Limits::reply()).decode_prefix(payload) else {
        return "error undecodable".into();
    };
    match Reply::from_term(term.clone()) {
        Reply::Get(Ok(contents)) => format!("file {}", term_text(&Term::Binary(contents))),
        Reply::Get(Err(reason))
        | Reply::ListDir(Err(reason))
        | Reply::ReadFileInfo(Err(reason))
        | Reply::ReadLinkInfo(Err(reason))
        | Reply::GetCwd(Err(reason))
        | Reply::Error(reason) => format!("error {}", term_text(&reason.0)),
        _ => match &term {
            Term::Tuple(elems) if elems.len() == 2 => match &elems[1] {
                Term::Tuple(inner) if inner.len() == 2 && inner[0].as_atom() == Some("ok") => {
                    format!("ok {}", term_text(&inner[1]))
                }
                _ => format!("unexpected {}", term_text(&term)),
            },
            _ => format!("unexpected {}", term_text(&term)),
        },
    }
}
