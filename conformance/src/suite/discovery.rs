//! Discovery cases: each captured EBOOTQ sent to erlboot's responder, which must answer with
//! OTP's EBOOTR bytes, or stay silent where OTP stayed silent.
//!
//! A capture tells which port and which versions each server announced (its EBOOTR answers),
//! not its allow list: a query from the version a server answers elsewhere that got no answer
//! was refused for its address, or sent where no server listened, and is shown as Info. A query
//! for a version no server in the capture answers must get silence. The same cases replay
//! against a live server ([`crate::live`]), whose port is its own.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use erlboot::proto::discovery::{Answer, Query};
use erlboot::server::{AllowList, Cidr, Responder, Versions};

use crate::case::{payload_text, CaseId, Exchange, Kind, Outcome, Verdict};
use crate::transcript::Body;

use super::{Recording, IN_PROCESS};

/// What the capture shows of one boot server's discovery: the versions it answers and the
/// last port it announced.
#[derive(Clone, Debug, Default)]
struct Announced {
    port: u16,
    versions: Vec<Vec<u8>>,
}

/// Why OTP stayed silent, as far as the capture tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// No server answered anything in the capture: nothing to hold a responder to.
    NoServer,
    /// A server answers this version elsewhere in the capture: the client was not on its
    /// allow list, or the query went where no server listened.
    NotForThisClient,
    /// No server in the capture answers this version: a responder must stay silent.
    OtherVersion,
}

impl Silence {
    /// Why the case is only shown, for the silences that judge nothing.
    pub fn info(self) -> Option<&'static str> {
        match self {
            Silence::NoServer => Some("no server answered anything in this capture"),
            Silence::NotForThisClient => Some(
                "OTP stayed silent for a version it answers: the client was not on its allow \
                 list, or no server listened where the query went (the capture does not carry \
                 the list)",
            ),
            Silence::OtherVersion => None,
        }
    }
}

/// One discovery case: a captured query and one answer OTP gave it, or its silence.
#[derive(Clone, Debug)]
pub struct DiscoveryCase {
    /// The case's id.
    pub id: CaseId,
    /// The client's socket.
    pub from: SocketAddrV4,
    /// The EBOOTQ datagram.
    pub sent: Vec<u8>,
    /// The answering server and its EBOOTR, or `None` for silence.
    pub answer: Option<(SocketAddrV4, Vec<u8>)>,
    /// Why OTP was silent, when it was.
    pub silence: Option<Silence>,
}

impl DiscoveryCase {
    /// The case in a few words.
    pub fn summary(&self) -> String {
        match &self.answer {
            Some((server, _)) => format!("{} to {server}", payload_text(&self.sent)),
            None => payload_text(&self.sent),
        }
    }
}

/// The discovery cases of a recording: per captured query, one per answer it got, or one for
/// its silence.
pub fn cases(recording: &Recording) -> Vec<DiscoveryCase> {
    let servers = announced(recording);
    let mut out = Vec::new();
    for session in &recording.transcript.sessions {
        let messages = &session.messages;
        for (i, message) in messages.iter().enumerate() {
            let Body::Query {
                from,
                payload,
                query,
                ..
            } = &message.body
            else {
                continue;
            };
            // The answers to this query: those to its socket before the next query.
            let answers: Vec<(SocketAddrV4, Vec<u8>)> = messages[i + 1..]
                .iter()
                .take_while(|m| !matches!(m.body, Body::Query { .. }))
                .filter_map(|m| match &m.body {
                    Body::Answer {
                        from: server,
                        to,
                        payload,
                        ..
                    } if to == from => Some((*server, payload.clone())),
                    _ => None,
                })
                .collect();
            let mut case = |answer, silence| {
                out.push(DiscoveryCase {
                    id: CaseId {
                        capture: recording.name.clone(),
                        kind: Kind::Discovery,
                        number: out.len() as u32 + 1,
                    },
                    from: *from,
                    sent: payload.clone(),
                    answer,
                    silence,
                })
            };
            if answers.is_empty() {
                let served = |q: &Query| servers.values().any(|s| s.versions.contains(&q.version));
                let silence = if servers.is_empty() {
                    Silence::NoServer
                } else if query.as_ref().is_ok_and(served) {
                    Silence::NotForThisClient
                } else {
                    Silence::OtherVersion
                };
                case(None, Some(silence));
            }
            for answer in answers {
                case(Some(answer), None);
            }
        }
    }
    out
}

/// The ERTS versions the capture's servers answered, in the order first seen.
pub fn server_versions(recording: &Recording) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for announced in announced(recording).values() {
        for version in &announced.versions {
            let version = String::from_utf8_lossy(version).into_owned();
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
    }
    versions
}

fn announced(recording: &Recording) -> BTreeMap<Ipv4Addr, Announced> {
    let mut servers: BTreeMap<Ipv4Addr, Announced> = BTreeMap::new();
    for session in &recording.transcript.sessions {
        for message in &session.messages {
            if let Body::Answer {
                from,
                answer: Ok(answer),
                ..
            } = &message.body
            {
                let server = servers.entry(*from.ip()).or_default();
                server.port = answer.port;
                if !server.versions.contains(&answer.version) {
                    server.versions.push(answer.version.clone());
                }
            }
        }
    }
    servers
}

/// Judges what a target answered (`None`: silence) to a case's query.
pub fn judge_answer(case: &DiscoveryCase, target: &str, actual: Option<Vec<u8>>) -> Verdict {
    let exchange = Exchange {
        sent: case.sent.clone(),
        expected: case.answer.as_ref().map(|(_, a)| a.clone()),
        actual,
    };
    let (outcome, detail) = match (
        case.silence.and_then(Silence::info),
        exchange.first_difference(),
    ) {
        (Some(info), _) => (Outcome::Info, info.to_owned()),
        (None, None) => (Outcome::Pass, String::new()),
        (None, Some(at)) => match (&exchange.expected, &exchange.actual) {
            (Some(_), None) => (
                Outcome::Fail,
                "OTP answered; the target stayed silent".into(),
            ),
            (None, Some(_)) => (
                Outcome::Fail,
                "OTP stayed silent; the target answered".into(),
            ),
            _ => (
                Outcome::Fail,
                format!("the answer differs from OTP's at byte {at}"),
            ),
        },
    };
    Verdict {
        id: case.id.clone(),
        target: target.to_owned(),
        outcome,
        summary: case.summary(),
        detail,
        exchange: Some(exchange),
    }
}

/// The discovery cases of a recording, judged against erlboot's responder serving what the
/// capture's servers served, on the port each answer announced (a server restarted on the
/// same address announces another).
pub fn judge(recording: &Recording) -> Vec<Verdict> {
    let servers = announced(recording);
    cases(recording)
        .iter()
        .map(|case| {
            let actual = match &case.answer {
                Some((server, expected)) => {
                    let mut announced = servers.get(server.ip()).cloned().unwrap_or_default();
                    if let Ok(answer) = Answer::parse(expected) {
                        announced.port = answer.port;
                    }
                    respond(&announced, case.from, &case.sent)
                }
                // Judged against every server the capture shows: none may answer.
                None => servers
                    .values()
                    .find_map(|s| respond(s, case.from, &case.sent)),
            };
            judge_answer(case, IN_PROCESS, actual)
        })
        .collect()
}

fn respond(server: &Announced, client: SocketAddrV4, datagram: &[u8]) -> Option<Vec<u8>> {
    let versions = server
        .versions
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let responder = Responder::new(everyone(), Versions::Exact(versions), server.port);
    match responder.handle_datagram((*client.ip()).into(), datagram) {
        erlboot::server::Verdict::Answer(bytes) => Some(bytes),
        _ => None,
    }
}

/// Every IPv4 address: the capture does not carry the server's allow list.
fn everyone() -> AllowList {
    AllowList::new(Cidr::new(Ipv4Addr::UNSPECIFIED, 0))
}
