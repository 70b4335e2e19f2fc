//! Which traffic of a capture is boot traffic, and how it groups into sessions.
//!
//! Discovery is UDP to or from port 4368: a datagram to it is a query, one from it an answer.
//! Every answer that parses names a boot server: the answer's source address and the TCP port
//! it announces. A TCP connection is boot traffic when one of its endpoints is such a server,
//! or uses a port the caller names (for captures without discovery); everything else
//! (distribution, epmd, other services) is left out.
//!
//! A session is what one client did in one go: the queries and answers of one discovery
//! socket (OTP's client opens a new one for every search), and the boot connection that
//! followed them. A connection joins the earliest session from the same client address whose
//! answer named its server before it opened and which has no connection yet: when several
//! clients share an address (nodes on one host), connections are matched to discoveries in
//! order. A connection that follows no discovery in the capture is a session of its own.

use std::net::SocketAddrV4;

use erlboot::proto::discovery::{Answer, PORT};

use crate::capture::{Capture, Datagram};
use crate::reassembly::Connection;

/// A datagram's role in discovery, if it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sent to UDP 4368.
    Query,
    /// Sent from UDP 4368.
    Answer,
}

/// Whether a datagram is discovery traffic, and which side of it.
pub fn role(datagram: &Datagram) -> Option<Role> {
    if datagram.dst.port() == PORT {
        Some(Role::Query)
    } else if datagram.src.port() == PORT {
        Some(Role::Answer)
    } else {
        None
    }
}

/// The boot servers a capture's answers name, plus ports given by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Servers {
    announced: Vec<SocketAddrV4>,
    ports: Vec<u16>,
}

impl Servers {
    /// The servers announced by the capture's answers, and `ports` on any address.
    pub fn of(capture: &Capture, ports: &[u16]) -> Servers {
        let mut announced: Vec<SocketAddrV4> = capture
            .datagrams
            .iter()
            .filter(|d| role(d) == Some(Role::Answer))
            .filter_map(|d| {
                Some(SocketAddrV4::new(
                    *d.src.ip(),
                    Answer::parse(&d.payload).ok()?.port,
                ))
            })
            .collect();
        announced.sort_unstable_by_key(|a| (a.ip().octets(), a.port()));
        announced.dedup();
        Servers {
            announced,
            ports: ports.to_vec(),
        }
    }

    /// Whether `endpoint` is a boot server's listening socket.
    pub fn contains(&self, endpoint: SocketAddrV4) -> bool {
        self.announced.contains(&endpoint) || self.ports.contains(&endpoint.port())
    }

    /// The connection oriented with the boot server as server, if it is boot traffic. A
    /// handshake's orientation is kept; a connection without one is turned round when its
    /// first sender is the server.
    pub fn boot_connection(&self, connection: &Connection) -> Option<Connection> {
        if self.contains(connection.server) {
            Some(connection.clone())
        } else if self.contains(connection.client) && !connection.handshake {
            Some(connection.clone().flip())
        } else {
            None
        }
    }
}

/// One discovery socket's datagrams, and the connection matched to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The client's UDP socket, when the session had discovery.
    pub discovery: Option<SocketAddrV4>,
    /// Indices of its datagrams in the capture.
    pub datagrams: Vec<usize>,
    /// Index of its boot connection in the list given to [`group`].
    pub connection: Option<usize>,
}

/// Groups discovery datagrams by client socket and matches boot connections to them (see the
/// module documentation). The groups come in no particular order.
pub fn group(datagrams: &[Datagram], connections: &[Connection]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        let client = match role(d) {
            Some(Role::Query) => d.src,
            Some(Role::Answer) => d.dst,
            None => continue,
        };
        match groups.iter_mut().find(|g| g.discovery == Some(client)) {
            Some(g) => g.datagrams.push(i),
            None => groups.push(Group {
                discovery: Some(client),
                datagrams: vec![i],
                connection: None,
            }),
        }
    }
    let mut order: Vec<usize> = (0..connections.len()).collect();
    order.sort_by_key(|&c| connections[c].opened);
    for c in order {
        let conn = &connections[c];
        let announced = |g: &Group| {
            g.datagrams.iter().any(|&i| {
                let d = &datagrams[i];
                role(d) == Some(Role::Answer)
                    && d.at <= conn.opened.at
                    && *d.src.ip() == *conn.server.ip()
                    && Answer::parse(&d.payload).is_ok_and(|a| a.port == conn.server.port())
            })
        };
        let same_client = |g: &Group| g.discovery.map(|s| *s.ip()) == Some(*conn.client.ip());
        match groups
            .iter_mut()
            .filter(|g| g.connection.is_none() && same_client(g) && announced(g))
            .min_by_key(|g| g.datagrams.first().map(|&i| datagrams[i].number))
        {
            Some(g) => g.connection = Some(c),
            None => groups.push(Group {
                discovery: None,
                datagrams: Vec::new(),
                connection: Some(c),
            }),
        }
    }
    groups
}
