//! A small pcap reader for tests and benches: UDP datagrams and reassembled TCP streams
//! (IPv4 only), with the `{packet,4}` frames of each TCP direction split out.
//!
//! Supported: classic pcap files (micro- or nanosecond timestamps, either byte order) with
//! link type Ethernet (DLT_EN10MB, what `tcpdump -i lo` writes), Linux cooked (DLT_LINUX_SLL,
//! DLT_LINUX_SLL2), BSD loopback (DLT_NULL, DLT_LOOP) and raw IPv4 (DLT_RAW, DLT_IPV4).
//! Not supported (the reader panics with a message): pcapng, truncated packets (snaplen),
//! IP fragments. IPv6 and non-IP packets are skipped.
//!
//! TCP reassembly: connections are keyed by their 4-tuple and start at a SYN without ACK
//! (the sender of that SYN is the client; a later SYN with another ISN on the same 4-tuple
//! starts a new connection). Each direction is ordered by sequence number relative to its
//! ISN; pure ACKs carry no data and are ignored, and retransmitted or overlapping bytes are
//! taken once (from the first segment in sequence order, then capture order). A hole in
//! the sequence space (a lost capture packet) makes `read` panic.
//! Segments of connections whose SYN is not in the capture are ignored. Streams larger
//! than 2 GiB per direction are not supported (relative sequence numbers are 32-bit).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::{DataLink, Endianness, TsResolution};

/// Everything read from one pcap file.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// UDP datagrams in capture order.
    pub datagrams: Vec<Datagram>,
    /// TCP connections in the order of their SYN.
    pub streams: Vec<TcpStream>,
}

/// One UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Time since the first packet of the capture.
    pub at: Duration,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// One reassembled TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpStream {
    /// The sender of the SYN.
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    /// All bytes sent by the client, in sequence order.
    pub to_server: Vec<u8>,
    /// All bytes sent by the server, in sequence order.
    pub to_client: Vec<u8>,
    /// The complete `{packet,4}` frames of `to_server`. An incomplete trailing frame (a
    /// capture that ends mid-frame, or a stream that is not `{packet,4}` at all) is left
    /// out: compare `frames_len(&to_server_frames)` with `to_server.len()` to detect it.
    pub to_server_frames: Vec<Frame>,
    /// The complete `{packet,4}` frames of `to_client` (same rule).
    pub to_client_frames: Vec<Frame>,
}

/// One `{packet,4}` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Time of the segment that completed the frame (the latest of the segments that
    /// supplied its bytes), since the first packet of the capture.
    pub at: Duration,
    /// The bytes after the 4-byte big-endian length prefix.
    pub payload: Vec<u8>,
}

/// Reads a pcap file. Panics with a message naming the file if it cannot be read or parsed.
pub fn read(path: &Path) -> Capture {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("capture {}: cannot read: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("capture {}: {e}", path.display()))
}

/// Splits bytes into `{packet,4}` frames (payloads without the length prefix).
/// Panics if the bytes end with a partial frame.
pub fn split_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let (frames, used) = complete_frames(bytes);
    if used != bytes.len() {
        let rest = &bytes[used..];
        let want = if rest.len() >= 4 {
            format!(
                "a {}-byte frame",
                u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]])
            )
        } else {
            "a 4-byte length prefix".to_string()
        };
        panic!(
            "split_frames: trailing partial frame at offset {used}: {} bytes left, need {want}",
            rest.len()
        );
    }
    frames.into_iter().map(|r| bytes[r].to_vec()).collect()
}

/// The number of bytes the frames take on the wire (payloads plus 4-byte prefixes).
pub fn frames_len(frames: &[Frame]) -> usize {
    frames.iter().map(|f| f.payload.len() + 4).sum()
}

/// Re-encodes frames with their 4-byte prefixes (the inverse of the splitting).
pub fn join_frames<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Payload ranges of the complete frames, and the number of bytes they cover.
fn complete_frames(bytes: &[u8]) -> (Vec<std::ops::Range<usize>>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= 4 {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        if bytes.len() - pos - 4 < len {
            break;
        }
        out.push(pos + 4..pos + 4 + len);
        pos += 4 + len;
    }
    (out, pos)
}

// ---------------------------------------------------------------------------------------
// pcap and link layer

/// Parses a whole pcap file held in memory.
pub fn parse(bytes: &[u8]) -> Result<Capture, String> {
    if bytes.len() >= 4 && bytes[..4] == [0x0A, 0x0D, 0x0D, 0x0A] {
        return Err("this is a pcapng file; only classic pcap is supported \
                    (record with tcpdump -w, or convert: editcap -F pcap IN OUT)"
            .into());
    }
    let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| format!("not a pcap file: {e}"))?;
    let header = parser.header();
    let link = header.datalink;
    match link {
        DataLink::ETHERNET
        | DataLink::LINUX_SLL
        | DataLink::LINUX_SLL2
        | DataLink::NULL
        | DataLink::LOOP
        | DataLink::RAW
        | DataLink::IPV4 => {}
        other => return Err(format!("unsupported link type {other:?}")),
    }
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    let big = header.endianness == Endianness::Big;

    let mut asm = Assembler::default();
    let mut first: Option<Duration> = None;
    let mut number = 0usize;
    while !rest.is_empty() {
        number += 1;
        let (next, raw) = parser
            .next_raw_packet(rest)
            .map_err(|e| format!("packet {number}: cannot parse the record: {e}"))?;
        rest = next;
        if raw.incl_len < raw.orig_len {
            return Err(format!(
                "packet {number} is truncated: {} of {} bytes captured (snaplen {}); \
                 record with -s 0",
                raw.incl_len, raw.orig_len, header.snaplen
            ));
        }
        let frac = if nanos {
            raw.ts_frac
        } else {
            raw.ts_frac.saturating_mul(1000)
        };
        if frac >= 1_000_000_000 {
            return Err(format!(
                "packet {number}: bad timestamp fraction {}",
                raw.ts_frac
            ));
        }
        let ts = Duration::new(raw.ts_sec as u64, frac);
        let at = ts.saturating_sub(*first.get_or_insert(ts));
        if let Some(ip) =
            ipv4_of(link, &raw.data, big).map_err(|e| format!("packet {number}: {e}"))?
        {
            asm.ipv4(number, at, ip)
                .map_err(|e| format!("packet {number}: {e}"))?;
        }
    }
    asm.finish()
}

/// The IPv4 packet inside a link-layer frame, or None for other protocols.
fn ipv4_of(link: DataLink, data: &[u8], file_big_endian: bool) -> Result<Option<&[u8]>, String> {
    let need = |n: usize| {
        if data.len() < n {
            Err(format!(
                "{}-byte frame is too short for its {link:?} header",
                data.len()
            ))
        } else {
            Ok(())
        }
    };
    match link {
        DataLink::ETHERNET => {
            need(14)?;
            let mut off = 12;
            let mut ethertype = u16::from_be_bytes([data[off], data[off + 1]]);
            while ethertype == 0x8100 || ethertype == 0x88A8 {
                // 802.1Q / 802.1ad tags
                off += 4;
                need(off + 2)?;
                ethertype = u16::from_be_bytes([data[off], data[off + 1]]);
            }
            Ok((ethertype == 0x0800).then(|| &data[off + 2..]))
        }
        DataLink::LINUX_SLL => {
            need(16)?;
            Ok((u16::from_be_bytes([data[14], data[15]]) == 0x0800).then(|| &data[16..]))
        }
        DataLink::LINUX_SLL2 => {
            need(20)?;
            Ok((u16::from_be_bytes([data[0], data[1]]) == 0x0800).then(|| &data[20..]))
        }
        DataLink::NULL | DataLink::LOOP => {
            need(4)?;
            let b = [data[0], data[1], data[2], data[3]];
            // DLT_NULL is in the byte order of the host that wrote the file; DLT_LOOP is
            // always big-endian. AF_INET is 2 everywhere.
            let family = if link == DataLink::LOOP || file_big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
            Ok((family == 2).then(|| &data[4..]))
        }
        DataLink::RAW | DataLink::IPV4 => Ok(data.first().filter(|b| *b >> 4 == 4).map(|_| data)),
        other => Err(format!("unsupported link type {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------
// IPv4, UDP, TCP

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

#[derive(Default)]
struct Assembler {
    datagrams: Vec<Datagram>,
    conns: Vec<Conn>,
    /// (client, server) -> index in `conns` of the newest connection on that 4-tuple.
    by_tuple: HashMap<(SocketAddrV4, SocketAddrV4), usize>,
}

struct Conn {
    client: SocketAddrV4,
    server: SocketAddrV4,
    /// [client -> server, server -> client]
    dirs: [Dir; 2],
}

#[derive(Default)]
struct Dir {
    /// ISN of this direction, from its SYN (or SYN-ACK).
    isn: Option<u32>,
    /// Data segments: (offset relative to ISN + 1, capture order, time, bytes).
    segs: Vec<(u32, usize, Duration, Vec<u8>)>,
}

impl Assembler {
    fn ipv4(&mut self, number: usize, at: Duration, ip: &[u8]) -> Result<(), String> {
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return Err("not an IPv4 header".into());
        }
        let ihl = (ip[0] & 0x0F) as usize * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        if ihl < 20 || total < ihl || ip.len() < total {
            // A TSO/GSO packet captured before segmentation can carry total length 0;
            // loopback captures never do, so treat any mismatch as an error.
            return Err(format!(
                "bad IPv4 lengths: header {ihl}, total {total}, captured {}",
                ip.len()
            ));
        }
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        if frag & 0x3FFF != 0 {
            return Err("IP fragments are not supported".into());
        }
        let proto = ip[9];
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let body = &ip[ihl..total]; // drops link-layer padding
        match proto {
            17 => self.udp(at, src, dst, body),
            6 => self.tcp(number, at, src, dst, body),
            _ => Ok(()),
        }
    }

    fn udp(&mut self, at: Duration, src: Ipv4Addr, dst: Ipv4Addr, u: &[u8]) -> Result<(), String> {
        if u.len() < 8 {
            return Err("UDP header too short".into());
        }
        let len = u16::from_be_bytes([u[4], u[5]]) as usize;
        if len < 8 || len > u.len() {
            return Err(format!("bad UDP length {len} in {} bytes", u.len()));
        }
        self.datagrams.push(Datagram {
            at,
            src: SocketAddrV4::new(src, u16::from_be_bytes([u[0], u[1]])),
            dst: SocketAddrV4::new(dst, u16::from_be_bytes([u[2], u[3]])),
            payload: u[8..len].to_vec(),
        });
        Ok(())
    }

    fn tcp(
        &mut self,
        number: usize,
        at: Duration,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        t: &[u8],
    ) -> Result<(), String> {
        if t.len() < 20 {
            return Err("TCP header too short".into());
        }
        let off = (t[12] >> 4) as usize * 4;
        if off < 20 || off > t.len() {
            return Err(format!("bad TCP data offset {off}"));
        }
        let from = SocketAddrV4::new(src, u16::from_be_bytes([t[0], t[1]]));
        let to = SocketAddrV4::new(dst, u16::from_be_bytes([t[2], t[3]]));
        let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
        let flags = t[13];
        let payload = &t[off..];

        if flags & SYN != 0 && flags & ACK == 0 {
            // A new connection, unless this SYN is a retransmission of the current one.
            let same = self
                .by_tuple
                .get(&(from, to))
                .map(|&i| self.conns[i].dirs[0].isn);
            if same != Some(Some(seq)) {
                self.by_tuple.insert((from, to), self.conns.len());
                self.conns.push(Conn {
                    client: from,
                    server: to,
                    dirs: [
                        Dir {
                            isn: Some(seq),
                            segs: Vec::new(),
                        },
                        Dir::default(),
                    ],
                });
            }
        }
        let (idx, d) = if let Some(&i) = self.by_tuple.get(&(from, to)) {
            (i, 0)
        } else if let Some(&i) = self.by_tuple.get(&(to, from)) {
            (i, 1)
        } else {
            return Ok(()); // no SYN seen for this connection
        };
        let dir = &mut self.conns[idx].dirs[d];
        if flags & SYN != 0 && dir.isn.is_none() {
            dir.isn = Some(seq); // the SYN-ACK
        }
        if payload.is_empty() {
            return Ok(()); // pure ACK, or SYN/FIN/RST without data
        }
        let isn = *dir.isn.get_or_insert(seq.wrapping_sub(1)); // SYN-ACK not captured
                                                               // The SYN itself takes one sequence number; data in a SYN starts after it.
        let rel = if flags & SYN != 0 {
            0
        } else {
            seq.wrapping_sub(isn).wrapping_sub(1) as i32
        };
        let (rel, payload) = if rel >= 0 {
            (rel as u32, payload)
        } else {
            // Bytes before the stream start (e.g. a keepalive probe before any data).
            let skip = rel.unsigned_abs() as usize;
            if skip >= payload.len() {
                return Ok(());
            }
            (0, &payload[skip..])
        };
        dir.segs.push((rel, number, at, payload.to_vec()));
        Ok(())
    }

    fn finish(self) -> Result<Capture, String> {
        let mut streams = Vec::with_capacity(self.conns.len());
        for c in self.conns {
            let [up, down] = c.dirs;
            let name = |arrow: &str| format!("TCP {} {arrow} {}", c.client, c.server);
            let (to_server, up_chunks) = reassemble(up, &name("->"))?;
            let (to_client, down_chunks) = reassemble(down, &name("<-"))?;
            let to_server_frames = timed_frames(&to_server, &up_chunks);
            let to_client_frames = timed_frames(&to_client, &down_chunks);
            streams.push(TcpStream {
                client: c.client,
                server: c.server,
                to_server,
                to_client,
                to_server_frames,
                to_client_frames,
            });
        }
        Ok(Capture {
            datagrams: self.datagrams,
            streams,
        })
    }
}

/// (end offset, time) of the bytes each segment supplied, in offset order.
type Chunks = Vec<(usize, Duration)>;

/// Orders one direction by relative sequence number and concatenates it, taking every byte
/// once. Returns the bytes and, for each contributing segment in offset order, (end offset
/// of the bytes it supplied, its time).
fn reassemble(dir: Dir, name: &str) -> Result<(Vec<u8>, Chunks), String> {
    let mut segs = dir.segs;
    segs.sort_by_key(|&(rel, number, _, _)| (rel, number));
    let mut out = Vec::new();
    let mut chunks: Vec<(usize, Duration)> = Vec::new();
    for (rel, number, at, bytes) in segs {
        let start = rel as usize;
        let end = start + bytes.len();
        if end <= out.len() {
            // Duplicate (retransmission, keepalive probe): every byte was taken already.
            continue;
        }
        if start > out.len() {
            return Err(format!(
                "{name}: bytes {}..{start} are missing (a packet was not captured) before packet {number}",
                out.len()
            ));
        }
        let overlap = out.len() - start; // bytes taken already from an earlier segment
        out.extend_from_slice(&bytes[overlap..]);
        chunks.push((end, at));
    }
    Ok((out, chunks))
}

/// The complete frames of `bytes`, each timed by the latest chunk supplying its bytes.
fn timed_frames(bytes: &[u8], chunks: &[(usize, Duration)]) -> Vec<Frame> {
    let (ranges, _) = complete_frames(bytes);
    let mut frames = Vec::with_capacity(ranges.len());
    let mut first_chunk = 0; // first chunk that may overlap the current frame
    for r in ranges {
        let (start, end) = (r.start - 4, r.end);
        while chunks[first_chunk].0 <= start {
            first_chunk += 1;
        }
        let mut at = Duration::ZERO;
        let mut i = first_chunk;
        let mut chunk_start = if i == 0 { 0 } else { chunks[i - 1].0 };
        while i < chunks.len() && chunk_start < end {
            at = at.max(chunks[i].1);
            chunk_start = chunks[i].0;
            i += 1;
        }
        frames.push(Frame {
            at,
            payload: bytes[r].to_vec(),
        });
    }
    frames
}
