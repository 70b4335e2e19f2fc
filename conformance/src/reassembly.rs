//! TCP reassembly: the bytes each direction of a connection carried, rebuilt from the segments
//! a capture holds, with the ranges the capture missed.
//!
//! Segments are placed by sequence number, not by capture order, so retransmissions,
//! overlapping and out-of-order segments and keepalive probes land where they belong; every
//! byte is taken once, from the first segment in sequence order that carries it (the earliest
//! captured, among segments starting at the same place). Sequence numbers are unwrapped per
//! direction against the furthest one seen so far, so a stream may wrap around 2³² any number
//! of times as long as segments are not reordered by 2 GiB or more.
//!
//! A connection is keyed by its two endpoints. A SYN without ACK starts a new connection on
//! them, unless it repeats the current connection's SYN (same sender, same ISN); its sender is
//! the client. Traffic of a connection whose SYN was not captured still makes a connection,
//! oriented provisionally with its first sender as client (see [`Connection::flip`]); its
//! streams start at their first captured byte ([`StreamStart::Unseen`]).
//!
//! Bytes the capture missed (tcpdump drops packets under load, a snapshot-truncated segment is
//! skipped) leave a [`Hole`] in the stream, with its exact size: between two captured
//! segments, or between the last captured byte and the FIN's sequence number.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use crate::packet::Segment;

/// Which way bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server (`c2s`).
    ToServer,
    /// Server to client (`s2c`).
    ToClient,
}

impl Direction {
    /// `c2s` or `s2c`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::ToServer => "c2s",
            Direction::ToClient => "s2c",
        }
    }

    /// The other way.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// A moment in the capture: a packet and its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    /// Time since the first packet of the capture.
    pub at: Duration,
    /// The packet number in the capture file.
    pub number: u64,
}

/// Where the first byte of a direction's stream is known to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStart {
    /// The SYN was captured: offset 0 is the first byte the sender ever sent.
    Syn,
    /// No SYN in the capture: offset 0 is the first byte captured; earlier bytes are unknown.
    Unseen,
}

/// Bytes that follow one another without a hole, starting at `offset` in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// Stream offset of the first byte.
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Which packet first supplied which bytes: chunk `i` covers the bytes from the end of
    /// chunk `i - 1` (or `offset`) up to `end`, in offset order.
    pub chunks: Vec<Chunk>,
}

/// Bytes of a [`Run`] first supplied by one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Stream offset just past the chunk's last byte.
    pub end: u64,
    /// The segment's packet.
    pub from: Mark,
}

/// Bytes the capture does not hold although the sender sent them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    /// Stream offset of the first missing byte.
    pub offset: u64,
    /// How many bytes are missing.
    pub len: u64,
    /// The first packet after the hole in sequence order (the data or FIN that showed it).
    pub seen: Mark,
}

/// One direction of a connection: the captured bytes, the holes between them, and how the
/// direction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteStream {
    /// Which way the bytes travel.
    pub direction: Direction,
    /// Whether offset 0 is the start of the stream.
    pub start: StreamStart,
    /// The captured bytes, in offset order, separated by the holes.
    pub runs: Vec<Run>,
    /// The missed ranges, in offset order.
    pub holes: Vec<Hole>,
    /// The sender's FIN (half-close), if captured.
    pub fin: Option<Mark>,
    /// The sender's RST, if captured.
    pub rst: Option<Mark>,
    /// Bytes that arrived more than once (retransmissions, overlaps, keepalive probes).
    pub duplicate_bytes: u64,
}

/// A run or a hole, in stream order.
#[derive(Clone, Copy, Debug)]
pub enum Piece<'a> {
    /// Captured bytes.
    Data(&'a Run),
    /// Missed bytes.
    Hole(&'a Hole),
}

impl ByteStream {
    fn empty(direction: Direction, start: StreamStart) -> ByteStream {
        ByteStream {
            direction,
            start,
            runs: Vec::new(),
            holes: Vec::new(),
            fin: None,
            rst: None,
            duplicate_bytes: 0,
        }
    }

    /// Every captured byte in stream order, holes left out (check [`ByteStream::is_complete`]).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.runs.iter().map(|r| r.bytes.len()).sum());
        for run in &self.runs {
            out.extend_from_slice(&run.bytes);
        }
        out
    }

    /// True when the capture holds every byte of the stream from its SYN on.
    pub fn is_complete(&self) -> bool {
        self.holes.is_empty() && self.start == StreamStart::Syn
    }

    /// Bytes missed by the capture, in total.
    pub fn missing_bytes(&self) -> u64 {
        self.holes.iter().map(|h| h.len).sum()
    }

    /// Runs and holes interleaved in offset order.
    pub fn pieces(&self) -> Vec<Piece<'_>> {
        let mut pieces: Vec<(u64, Piece<'_>)> = self
            .runs
            .iter()
            .map(|r| (r.offset, Piece::Data(r)))
            .chain(self.holes.iter().map(|h| (h.offset, Piece::Hole(h))))
            .collect();
        pieces.sort_by_key(|(offset, _)| *offset);
        pieces.into_iter().map(|(_, p)| p).collect()
    }
}

impl Run {
    /// Stream offset just past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }

    /// The latest packet among those that supplied the bytes `start..end` (stream offsets,
    /// inside this run): when those bytes were all there.
    pub fn completed(&self, start: u64, end: u64) -> Option<Mark> {
        let first = self.chunks.partition_point(|c| c.end <= start);
        let mut latest: Option<Mark> = None;
        let mut chunk_start = if first == 0 {
            self.offset
        } else {
            self.chunks[first - 1].end
        };
        for chunk in &self.chunks[first..] {
            if chunk_start >= end {
                break;
            }
            latest = Some(latest.map_or(chunk.from, |l| l.max(chunk.from)));
            chunk_start = chunk.end;
        }
        latest
    }
}

/// A reassembled TCP connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The sender of the SYN (or, without one, see [`Connection::handshake`]).
    pub client: SocketAddrV4,
    /// The other endpoint.
    pub server: SocketAddrV4,
    /// True when a SYN or SYN-ACK told which side is the client; false when the orientation
    /// is a guess (the first sender is taken as the client).
    pub handshake: bool,
    /// The connection's first captured packet.
    pub opened: Mark,
    /// Client to server.
    pub to_server: ByteStream,
    /// Server to client.
    pub to_client: ByteStream,
}

impl Connection {
    /// The same connection seen the other way round (for a connection without handshake
    /// whose server turns out to be the first sender).
    pub fn flip(self) -> Connection {
        let mut to_server = self.to_client;
        let mut to_client = self.to_server;
        to_server.direction = Direction::ToServer;
        to_client.direction = Direction::ToClient;
        Connection {
            client: self.server,
            server: self.client,
            handshake: self.handshake,
            opened: self.opened,
            to_server,
            to_client,
        }
    }
}

/// Collects segments in capture order and rebuilds their connections.
#[derive(Debug, Default)]
pub struct Reassembler {
    conns: Vec<Conn>,
    /// Both endpoints (ordered) -> the newest connection between them.
    current: HashMap<(SocketAddrV4, SocketAddrV4), usize>,
}

#[derive(Debug)]
struct Conn {
    /// `ends[0]` sent the first captured packet; `dirs[i]` is what `ends[i]` sent.
    ends: [SocketAddrV4; 2],
    dirs: [Sender; 2],
    /// Index in `ends` of the client, when a SYN or SYN-ACK said.
    client: Option<usize>,
    opened: Mark,
}

#[derive(Debug, Default)]
struct Sender {
    /// The unwrapped sequence number of the sender's SYN.
    isn: Option<i64>,
    /// The SYN's sequence number as sent.
    isn_sent: Option<u32>,
    /// The furthest sequence number seen and its unwrapped value.
    furthest: Option<(u32, i64)>,
    segments: Vec<Placed>,
    /// Unwrapped sequence number just past the last byte, from the first FIN.
    fin: Option<(i64, Mark)>,
    rst: Option<Mark>,
}

#[derive(Debug)]
struct Placed {
    start: i64,
    from: Mark,
    bytes: Vec<u8>,
}

impl Sender {
    /// The sequence number as a position on an unbounded line, near the furthest one seen.
    fn unwrap(&mut self, seq: u32) -> i64 {
        let Some((reference, at)) = self.furthest else {
            self.furthest = Some((seq, 0));
            return 0;
        };
        let position = at + i64::from(seq.wrapping_sub(reference) as i32);
        if position > at {
            self.furthest = Some((seq, position));
        }
        position
    }
}

fn key(a: SocketAddrV4, b: SocketAddrV4) -> (SocketAddrV4, SocketAddrV4) {
    if (a.ip().octets(), a.port()) <= (b.ip().octets(), b.port()) {
        (a, b)
    } else {
        (b, a)
    }
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Adds a segment; segments must come in capture order.
    pub fn push(&mut self, segment: Segment) {
        let Segment {
            number,
            at,
            src,
            dst,
            seq,
            flags,
            payload,
        } = segment;
        let mark = Mark { at, number };
        let key = key(src, dst);
        let existing = self.current.get(&key).copied();
        let opens = flags.syn && !flags.ack;
        let index = match existing {
            Some(i) if !opens || self.conns[i].repeats_syn(src, seq) => i,
            _ => {
                self.conns.push(Conn {
                    ends: [src, dst],
                    dirs: [Sender::default(), Sender::default()],
                    client: None,
                    opened: mark,
                });
                self.current.insert(key, self.conns.len() - 1);
                self.conns.len() - 1
            }
        };
        let conn = &mut self.conns[index];
        let side = usize::from(conn.ends[0] != src);
        if flags.syn && conn.client.is_none() {
            conn.client = Some(if flags.ack { 1 - side } else { side });
        }
        let sender = &mut conn.dirs[side];
        let position = sender.unwrap(seq);
        if flags.syn && sender.isn.is_none() {
            sender.isn = Some(position);
            sender.isn_sent = Some(seq);
        }
        // A SYN takes one sequence number; data it carries starts after it.
        let start = position + i64::from(flags.syn);
        if flags.fin && sender.fin.is_none() {
            sender.fin = Some((start + payload.len() as i64, mark));
        }
        if flags.rst && sender.rst.is_none() {
            sender.rst = Some(mark);
        }
        if !payload.is_empty() {
            sender.segments.push(Placed {
                start,
                from: mark,
                bytes: payload,
            });
        }
    }

    /// The connections, in the order of their first captured packet.
    pub fn finish(self) -> Vec<Connection> {
        self.conns.into_iter().map(Conn::finish).collect()
    }
}

impl Conn {
    /// Whether a SYN from `src` with this ISN is a retransmission of this connection's own.
    fn repeats_syn(&self, src: SocketAddrV4, seq: u32) -> bool {
        let side = usize::from(self.ends[0] != src);
        self.client == Some(side) && self.dirs[side].isn_sent == Some(seq)
    }

    fn finish(self) -> Connection {
        let client = self.client.unwrap_or(0);
        let [a, b] = self.dirs;
        let (up, down) = if client == 0 { (a, b) } else { (b, a) };
        Connection {
            client: self.ends[client],
            server: self.ends[1 - client],
            handshake: self.client.is_some(),
            opened: self.opened,
            to_server: stream(up, Direction::ToServer),
            to_client: stream(down, Direction::ToClient),
        }
    }
}

/// Lays one sender's segments out by sequence number.
fn stream(sender: Sender, direction: Direction) -> ByteStream {
    let Sender {
        isn,
        mut segments,
        fin,
        rst,
        ..
    } = sender;
    let (start, origin) = match isn {
        Some(isn) => (StreamStart::Syn, isn + 1),
        None => (
            StreamStart::Unseen,
            segments
                .iter()
                .map(|s| s.start)
                .chain(fin.map(|(end, _)| end))
                .min()
                .unwrap_or(0),
        ),
    };
    let mut out = ByteStream::empty(direction, start);
    out.rst = rst;
    out.fin = fin.map(|(_, mark)| mark);
    segments.sort_by_key(|s| (s.start, s.from.number));
    let mut cursor = origin; // unwrapped sequence number of the next byte wanted
    for segment in segments {
        let end = segment.start + segment.bytes.len() as i64;
        if end <= cursor {
            out.duplicate_bytes += segment.bytes.len() as u64;
            continue;
        }
        let offset = |position: i64| (position - origin) as u64;
        if segment.start > cursor {
            out.holes.push(Hole {
                offset: offset(cursor),
                len: (segment.start - cursor) as u64,
                seen: segment.from,
            });
        }
        let skip = (cursor - segment.start).max(0) as usize;
        out.duplicate_bytes += skip as u64;
        let fresh = &segment.bytes[skip..];
        let chunk = Chunk {
            end: offset(end),
            from: segment.from,
        };
        match out.runs.last_mut() {
            Some(run) if segment.start <= cursor && run.end() == offset(cursor) => {
                run.bytes.extend_from_slice(fresh);
                run.chunks.push(chunk);
            }
            _ => out.runs.push(Run {
                offset: offset(cursor.max(segment.start)),
                bytes: fresh.to_vec(),
                chunks: vec![chunk],
            }),
        }
        cursor = end;
    }
    if let Some((end, mark)) = fin {
        if end > cursor {
            out.holes.push(Hole {
                offset: (cursor - origin) as u64,
                len: (end - cursor) as u64,
                seen: mark,
            });
        }
    }
    out
}
