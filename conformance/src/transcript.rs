//! The transcript of a capture's boot traffic: per session, typed messages with their times.

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use erlboot::etf::{DecodeError, Decoder, Limits, Term};
use erlboot::proto::discovery::{Answer, DiscoveryError, Query};
use erlboot::proto::{Reply, Request};

use crate::boot::{self, Role, Servers};
use crate::capture::{Capture, ReadStats};
use crate::framing::{self, FrameEvent, GapReport, Unfinished};
use crate::reassembly::{ByteStream, Connection, Direction, Mark};
use crate::CaptureError;

/// How to find the boot traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TranscriptOptions {
    /// TCP ports taken as boot-server ports on any address, besides those the capture's
    /// EBOOTR answers announce (for captures that start after discovery).
    pub ports: Vec<u16>,
}

/// A capture's boot traffic, session by session.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// Sessions in the order of their first message.
    pub sessions: Vec<Session>,
    /// What reading the file skipped.
    pub stats: ReadStats,
    /// Capture time (since the Unix epoch) of the first packet, which every time counts from.
    pub start: Duration,
    /// TCP connections that are not boot traffic (distribution, epmd, ...).
    pub other_connections: usize,
    /// UDP datagrams that are not discovery.
    pub other_datagrams: usize,
}

/// One client's discovery and the boot connection that followed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// 1-based, in the order of the sessions' first messages.
    pub id: usize,
    /// The client's UDP socket, when discovery was captured.
    pub discovery: Option<SocketAddrV4>,
    /// The boot connection's client and server sockets, when there was one.
    pub connection: Option<(SocketAddrV4, SocketAddrV4)>,
    /// The messages in capture order.
    pub messages: Vec<Message>,
}

/// One thing that happened in a session.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Time since the first packet of the capture.
    pub at: Duration,
    /// The packet that carried or completed it.
    pub number: u64,
    /// Which way it went.
    pub direction: Direction,
    /// What it was.
    pub body: Body,
}

/// How a direction of a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// FIN: the sender has nothing more to send (the other way may go on).
    Fin,
    /// RST: the connection was aborted.
    Rst,
}

/// What a message was.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// A discovery query (client to UDP 4368).
    Query {
        /// Client socket and the address queried.
        from: SocketAddrV4,
        /// The address queried (a server or a broadcast address), port 4368.
        to: SocketAddrV4,
        /// The datagram.
        payload: Vec<u8>,
        /// The query read from it.
        query: Result<Query, DiscoveryError>,
    },
    /// A discovery answer (UDP 4368 to the client).
    Answer {
        /// The server's address, port 4368.
        from: SocketAddrV4,
        /// The client socket.
        to: SocketAddrV4,
        /// The datagram.
        payload: Vec<u8>,
        /// The answer read from it.
        answer: Result<Answer, DiscoveryError>,
    },
    /// The boot connection's first captured packet.
    Open {
        /// Client socket.
        client: SocketAddrV4,
        /// Server socket.
        server: SocketAddrV4,
        /// False when the SYN was not captured (the connection was already open).
        handshake: bool,
    },
    /// One direction's end.
    Close(Close),
    /// A `{packet,4}` frame from the client.
    Request {
        /// Stream offset of the frame.
        offset: u64,
        /// The frame's payload (after the length prefix).
        payload: Vec<u8>,
        /// The term it holds.
        term: Result<Term, DecodeError>,
        /// The request, when the term decoded.
        request: Option<Request>,
    },
    /// A `{packet,4}` frame from the server.
    Reply {
        /// Stream offset of the frame.
        offset: u64,
        /// The frame's payload (after the length prefix).
        payload: Vec<u8>,
        /// The term it holds.
        term: Result<Term, DecodeError>,
        /// The reply, when the term decoded.
        reply: Option<Reply>,
    },
    /// Bytes the capture missed, and the frame they cut.
    Gap(GapReport),
    /// A frame the stream ended in the middle of.
    Unfinished(Unfinished),
}

impl Body {
    /// `query`, `answer`, `open`, `close`, `request`, `reply` or `gap` (an unfinished frame
    /// is a gap at the end of a stream).
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Query { .. } => "query",
            Body::Answer { .. } => "answer",
            Body::Open { .. } => "open",
            Body::Close(_) => "close",
            Body::Request { .. } => "request",
            Body::Reply { .. } => "reply",
            Body::Gap(_) | Body::Unfinished(_) => "gap",
        }
    }
}

/// Whether a payload found by search after a gap is a real frame of this direction: one
/// complete term of exactly the payload's length that reads as a request (client to server)
/// or a reply (server to client). See [`framing`] for why this makes resynchronisation safe.
pub fn plausible(direction: Direction) -> impl Fn(&[u8]) -> bool {
    move |payload: &[u8]| {
        // Every request and reply is a 2-tuple, except the bare atom get_cwd.
        let shaped = payload.starts_with(&[131, 104, 2])
            || (direction == Direction::ToServer
                && (payload == b"\x83d\x00\x07get_cwd" || payload == b"\x83w\x07get_cwd"));
        if !shaped {
            return false;
        }
        match Decoder::new(Limits::reply()).decode_prefix(payload) {
            Ok((term, used)) if used == payload.len() => match direction {
                Direction::ToServer => !matches!(Request::from_term(term), Request::Unknown(_)),
                Direction::ToClient => !matches!(Reply::from_term(term), Reply::Other(_)),
            },
            _ => false,
        }
    }
}

impl Transcript {
    /// Reads a capture file and transcribes its boot traffic.
    pub fn read(path: &Path, options: &TranscriptOptions) -> Result<Transcript, CaptureError> {
        Ok(Transcript::of(&Capture::read(path)?, options))
    }

    /// Transcribes a capture's boot traffic.
    pub fn of(capture: &Capture, options: &TranscriptOptions) -> Transcript {
        let servers = Servers::of(capture, &options.ports);
        let connections: Vec<Connection> = capture
            .streams
            .iter()
            .filter_map(|c| servers.boot_connection(c))
            .collect();
        let groups = boot::group(&capture.datagrams, &connections);
        let mut sessions: Vec<Session> = groups
            .into_iter()
            .map(|g| {
                let mut messages: Vec<Message> = g
                    .datagrams
                    .iter()
                    .map(|&i| datagram_message(&capture.datagrams[i]))
                    .collect();
                let connection = g.connection.map(|c| {
                    let conn = &connections[c];
                    messages.extend(connection_messages(conn));
                    (conn.client, conn.server)
                });
                messages.sort_by_key(|m| (m.at, m.number));
                Session {
                    id: 0,
                    discovery: g.discovery,
                    connection,
                    messages,
                }
            })
            .collect();
        sessions.sort_by_key(|s| s.messages.first().map(|m| (m.at, m.number)));
        for (i, s) in sessions.iter_mut().enumerate() {
            s.id = i + 1;
        }
        let discovery = capture
            .datagrams
            .iter()
            .filter(|d| boot::role(d).is_some())
            .count();
        Transcript {
            sessions,
            stats: capture.stats.clone(),
            start: capture.start,
            other_connections: capture.streams.len() - connections.len(),
            other_datagrams: capture.datagrams.len() - discovery,
        }
    }

    /// Every message of every session with its session id, in capture order.
    pub fn messages(&self) -> Vec<(usize, &Message)> {
        let mut all: Vec<(usize, &Message)> = self
            .sessions
            .iter()
            .flat_map(|s| s.messages.iter().map(move |m| (s.id, m)))
            .collect();
        all.sort_by_key(|(id, m)| (m.at, m.number, *id));
        all
    }
}

fn datagram_message(d: &crate::capture::Datagram) -> Message {
    let (direction, body) = match boot::role(d) {
        Some(Role::Answer) => (
            Direction::ToClient,
            Body::Answer {
                from: d.src,
                to: d.dst,
                payload: d.payload.clone(),
                answer: Answer::parse(&d.payload),
            },
        ),
        _ => (
            Direction::ToServer,
            Body::Query {
                from: d.src,
                to: d.dst,
                payload: d.payload.clone(),
                query: Query::parse(&d.payload),
            },
        ),
    };
    Message {
        at: d.at,
        number: d.number,
        direction,
        body,
    }
}

fn connection_messages(conn: &Connection) -> Vec<Message> {
    let message = |mark: Mark, direction: Direction, body: Body| Message {
        at: mark.at,
        number: mark.number,
        direction,
        body,
    };
    let mut out = vec![message(
        conn.opened,
        Direction::ToServer,
        Body::Open {
            client: conn.client,
            server: conn.server,
            handshake: conn.handshake,
        },
    )];
    for stream in [&conn.to_server, &conn.to_client] {
        out.extend(stream_messages(stream));
        let closes = [(stream.fin, Close::Fin), (stream.rst, Close::Rst)];
        for (mark, how) in closes {
            if let Some(mark) = mark {
                out.push(message(mark, stream.direction, Body::Close(how)));
            }
        }
    }
    out
}

fn stream_messages(stream: &ByteStream) -> Vec<Message> {
    let direction = stream.direction;
    let decoder = Decoder::new(Limits::reply());
    framing::frames(stream, &plausible(direction))
        .into_iter()
        .map(|event| {
            let (mark, body) = match event {
                FrameEvent::Frame(frame) => {
                    let term = decoder.decode_prefix(&frame.payload).map(|(t, _)| t);
                    let body = match direction {
                        Direction::ToServer => Body::Request {
                            offset: frame.offset,
                            request: term.as_ref().ok().map(|t| Request::from_term(t.clone())),
                            term,
                            payload: frame.payload,
                        },
                        Direction::ToClient => Body::Reply {
                            offset: frame.offset,
                            reply: term.as_ref().ok().map(|t| Reply::from_term(t.clone())),
                            term,
                            payload: frame.payload,
                        },
                    };
                    (frame.completed, body)
                }
                FrameEvent::Gap(gap) => (gap.seen, Body::Gap(gap)),
                FrameEvent::Unfinished(u) => (u.seen, Body::Unfinished(u)),
            };
            Message {
                at: mark.at,
                number: mark.number,
                direction,
                body,
            }
        })
        .collect()
}
