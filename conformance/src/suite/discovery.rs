//! Discovery cases: each captured EBOOTQ sent to erlboot's responder, which must answer with
//! OTP's EBOOTR bytes, or stay silent where OTP stayed silent.
//!
//! A capture tells which port and which versions each server announced (its EBOOTR answers),
//! not its allow list: a query from the version a server answers elsewhere that got no answer
//! was refused for its address, or sent where no server listened, and is shown as Info. A query
//! for a version no server in the capture answers must get silence.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use erlboot::proto::discovery::{Answer, DiscoveryError, Query};
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

/// The discovery cases of a recording, judged against erlboot's responder.
pub fn judge(recording: &Recording) -> Vec<Verdict> {
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
            let answers: Vec<(SocketAddrV4, &Vec<u8>)> = messages[i + 1..]
                .iter()
                .take_while(|m| !matches!(m.body, Body::Query { .. }))
                .filter_map(|m| match &m.body {
                    Body::Answer {
                        from: server,
                        to,
                        payload,
                        ..
                    } if to == from => Some((*server, payload)),
                    _ => None,
                })
                .collect();
            let id = |number: usize| CaseId {
                capture: recording.name.clone(),
                kind: Kind::Discovery,
                number: number as u32 + 1,
            };
            let summary = payload_text(payload);
            if answers.is_empty() {
                out.push(judge_silence(
                    id(out.len()),
                    summary.clone(),
                    payload,
                    query,
                    &servers,
                    *from,
                ));
            }
            for (server, expected) in answers {
                // The port this answer announced: a server restarted on the same address
                // announces another.
                let mut announced = servers.get(server.ip()).cloned().unwrap_or_default();
                if let Ok(answer) = Answer::parse(expected) {
                    announced.port = answer.port;
                }
                let actual = respond(&announced, *from, payload);
                let exchange = Exchange {
                    sent: payload.clone(),
                    expected: Some(expected.clone()),
                    actual,
                };
                let (outcome, detail) = match exchange.first_difference() {
                    None => (Outcome::Pass, String::new()),
                    Some(at) => (
                        Outcome::Fail,
                        format!("the answer differs from OTP's at byte {at}"),
                    ),
                };
                out.push(Verdict {
                    id: id(out.len()),
                    target: IN_PROCESS.into(),
                    outcome,
                    summary: format!("{summary} to {server}"),
                    detail,
                    exchange: Some(exchange),
                });
            }
        }
    }
    out
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

fn judge_silence(
    id: CaseId,
    summary: String,
    payload: &[u8],
    query: &Result<Query, DiscoveryError>,
    servers: &BTreeMap<Ipv4Addr, Announced>,
    client: SocketAddrV4,
) -> Verdict {
    let answered_elsewhere = match query {
        Ok(q) => servers.values().any(|s| s.versions.contains(&q.version)),
        Err(_) => false,
    };
    // Judged against every server the capture shows: none may answer.
    let answers: Vec<Vec<u8>> = servers
        .values()
        .filter_map(|s| respond(s, client, payload))
        .collect();
    let exchange = Exchange {
        sent: payload.to_vec(),
        expected: None,
        actual: answers.first().cloned(),
    };
    let (outcome, detail) = if servers.is_empty() {
        (
            Outcome::Info,
            "no server answered anything in this capture".to_owned(),
        )
    } else if answered_elsewhere {
        (
            Outcome::Info,
            "OTP stayed silent for a version it answers: the client was not on its allow list, \
             or no server listened where the query went (the capture does not carry the list)"
                .to_owned(),
        )
    } else if answers.is_empty() {
        (Outcome::Pass, String::new())
    } else {
        let version = match query {
            Ok(q) => String::from_utf8_lossy(&q.version).into_owned(),
            Err(e) => e.to_string(),
        };
        (
            Outcome::Fail,
            format!("OTP stayed silent for {version}; erlboot answered"),
        )
    };
    Verdict {
        id,
        target: IN_PROCESS.into(),
        outcome,
        summary,
        detail,
        exchange: Some(exchange),
    }
}

/// Every IPv4 address: the capture does not carry the server's allow list.
fn everyone() -> AllowList {
    AllowList::new(Cidr::new(Ipv4Addr::UNSPECIFIED, 0))
}
