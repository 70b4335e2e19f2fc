//! Everything a capture file holds: its UDP datagrams and its TCP connections, reassembled.
//!
//! Packets that cannot be used are counted, not fatal: IPv6 and non-IP traffic is skipped,
//! snapshot-truncated packets and IP fragments are listed by packet number (their missing
//! TCP bytes show as gaps in the streams), malformed headers are listed with the reason.

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use crate::file::{self, Format};
use crate::framing::{self, Frame, FrameEvent};
use crate::link::{self, Network};
use crate::packet::{self, Segment, Transport};
use crate::reassembly::{Connection, Direction, Reassembler};
use crate::CaptureError;

/// One UDP datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The packet number in the capture file.
    pub number: u64,
    /// Time since the first packet of the capture.
    pub at: Duration,
    /// Sender.
    pub src: SocketAddrV4,
    /// Receiver.
    pub dst: SocketAddrV4,
    /// The bytes carried.
    pub payload: Vec<u8>,
}

/// What reading a capture counted besides the traffic it kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadStats {
    /// pcap or pcapng.
    pub format: Format,
    /// Packet records in the file.
    pub packets: u64,
    /// IPv4 packets carrying UDP or TCP (the traffic kept).
    pub kept: u64,
    /// IPv6 packets (skipped).
    pub ipv6: u64,
    /// Other traffic (non-IP frames, IP protocols other than UDP and TCP), skipped.
    pub other: u64,
    /// Packets of a link type this crate does not read, skipped.
    pub unsupported_link: u64,
    /// Packet numbers of packets cut by the snapshot length (skipped: their TCP bytes show as
    /// gaps).
    pub truncated: Vec<u64>,
    /// Packet numbers of IP fragments (skipped).
    pub fragments: Vec<u64>,
    /// Packet numbers of packets whose headers do not parse, with the reason.
    pub malformed: Vec<(u64, String)>,
    /// Bytes of a record cut short at the end of the file.
    pub partial_tail: Option<usize>,
    /// pcapng packets naming an undescribed interface (skipped).
    pub unknown_interface: u64,
}

/// Everything read from one capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    /// Capture time (since the Unix epoch) of the first packet, which every `at` counts from.
    pub start: Duration,
    /// UDP datagrams in capture order.
    pub datagrams: Vec<Datagram>,
    /// TCP connections in the order of their first captured packet.
    pub streams: Vec<Connection>,
    /// What was skipped and why.
    pub stats: ReadStats,
}

impl Capture {
    /// Reads a pcap or pcapng file.
    pub fn read(path: &Path) -> Result<Capture, CaptureError> {
        let bytes = std::fs::read(path).map_err(|e| CaptureError::io(path, e))?;
        Capture::parse(&bytes)
    }

    /// Reads a pcap or pcapng file held in memory.
    pub fn parse(bytes: &[u8]) -> Result<Capture, CaptureError> {
        let format = file::format_of(bytes).ok_or_else(|| CaptureError::NotACapture {
            magic: bytes[..bytes.len().min(4)].to_vec(),
        })?;
        let mut stats = ReadStats {
            format,
            packets: 0,
            kept: 0,
            ipv6: 0,
            other: 0,
            unsupported_link: 0,
            truncated: Vec::new(),
            fragments: Vec::new(),
            malformed: Vec::new(),
            partial_tail: None,
            unknown_interface: 0,
        };
        let mut start = None;
        let mut datagrams = Vec::new();
        let mut tcp = Reassembler::new();
        let summary = file::for_each_record(bytes, |record| {
            let first = *start.get_or_insert(record.timestamp);
            let at = record.timestamp.saturating_sub(first);
            if (record.data.len() as u64) < u64::from(record.original_len) {
                stats.truncated.push(record.number);
                return;
            }
            let sliced = match link::network(record.link, record.data, record.big_endian) {
                Network::Ipv4(sliced) => sliced,
                Network::Ipv6 => return stats.ipv6 += 1,
                Network::Other => return stats.other += 1,
                Network::UnsupportedLink => return stats.unsupported_link += 1,
                Network::Malformed(why) => return stats.malformed.push((record.number, why)),
            };
            match packet::transport(&sliced) {
                Transport::Udp(src, dst, payload) => {
                    stats.kept += 1;
                    datagrams.push(Datagram {
                        number: record.number,
                        at,
                        src,
                        dst,
                        payload: payload.to_vec(),
                    });
                }
                Transport::Tcp(src, dst, seq, flags, payload) => {
                    stats.kept += 1;
                    tcp.push(Segment {
                        number: record.number,
                        at,
                        src,
                        dst,
                        seq,
                        flags,
                        payload: payload.to_vec(),
                    });
                }
                Transport::Fragment => stats.fragments.push(record.number),
                Transport::Other => stats.other += 1,
            }
        })?;
        stats.packets = summary.records;
        stats.partial_tail = summary.partial_tail;
        stats.unknown_interface = summary.unknown_interface;
        Ok(Capture {
            start: start.unwrap_or_default(),
            datagrams,
            streams: tcp.finish(),
            stats,
        })
    }
}

impl Connection {
    /// The complete `{packet,4}` frames one way, read as boot-protocol frames (gaps and an
    /// unfinished tail left out; see [`framing`] for how reading resumes after a gap).
    pub fn frames(&self, direction: Direction) -> Vec<Frame> {
        let stream = match direction {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        };
        framing::frames(stream, &crate::transcript::plausible(direction))
            .into_iter()
            .filter_map(|event| match event {
                FrameEvent::Frame(frame) => Some(frame),
                _ => None,
            })
            .collect()
    }
}

/// Splits bytes into `{packet,4}` payloads; also returns how many bytes the complete frames
/// take (less than `bytes.len()` when a partial frame ends them).
pub fn split_frames(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(prefix) = bytes.get(at..at + 4) {
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let Some(payload) = bytes.get(at + 4..).and_then(|rest| rest.get(..len)) else {
            break;
        };
        out.push(payload);
        at += 4 + len;
    }
    (out, at)
}

/// Frames payloads with their 4-byte big-endian length prefixes.
pub fn join_frames<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for payload in payloads {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}
