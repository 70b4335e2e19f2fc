//! The properties the `capture` fuzz target checks (also run over its seed corpus by
//! `cargo test`). Each function panics when a property fails.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::OnceLock;
use std::time::Duration;

use erlboot::etf::{self, Profile, Term};

use crate::capture::Capture;
use crate::framing::{self, FrameEvent};
use crate::packet::{Flags, Segment};
use crate::reassembly::{ByteStream, Direction, Piece, Reassembler, StreamStart};
use crate::render;
use crate::transcript::{plausible, Transcript, TranscriptOptions};

/// The fuzz target: the first byte chooses what the rest is. Even: a capture file
/// ([`capture_file`]); odd: a segment script ([`segments`]).
pub fn capture(data: &[u8]) {
    match data.split_first() {
        Some((selector, rest)) if selector % 2 == 0 => capture_file(rest),
        Some((_, rest)) => segments(rest),
        None => {}
    }
}

/// Arbitrary bytes read as a capture file: an error or a capture, never a panic; what is read
/// transcribes and renders, and every stream's runs and holes tile it without overlap.
pub fn capture_file(data: &[u8]) {
    let Ok(capture) = Capture::parse(data) else {
        return;
    };
    for stream in &capture.streams {
        check_tiling(&stream.to_server);
        check_tiling(&stream.to_client);
    }
    // Every TCP port counts as a boot port, so every stream is framed and transcribed.
    let ports: Vec<u16> = capture.streams.iter().map(|s| s.server.port()).collect();
    let t = Transcript::of(&capture, &TranscriptOptions { ports });
    for format in [render::Format::Text, render::Format::Json] {
        render::write(&t, format, &mut std::io::sink()).expect("a sink takes anything");
    }
    let _ = render::notes(&t);
}

/// Runs and holes follow one another from offset 0 without overlap or space between, runs are
/// not empty, and each run's chunks end in increasing order at the run's end.
fn check_tiling(stream: &ByteStream) {
    let mut at = 0u64;
    for piece in stream.pieces() {
        match piece {
            Piece::Data(run) => {
                assert_eq!(run.offset, at, "run starts where the last piece ended");
                assert!(!run.bytes.is_empty());
                let ends: Vec<u64> = run.chunks.iter().map(|c| c.end).collect();
                assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
                assert_eq!(ends.last(), Some(&run.end()));
                assert!(ends[0] > run.offset);
                at = run.end();
            }
            Piece::Hole(hole) => {
                assert_eq!(hole.offset, at, "hole starts where the last piece ended");
                assert!(hole.len > 0);
                at = hole.offset + hole.len;
            }
        }
    }
}

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000);
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 45000);

/// What each direction sends: boot-protocol frames, so that framing and its resynchronisation
/// after gaps are exercised too.
fn reference(direction: Direction) -> &'static [u8] {
    static STREAMS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    let streams = STREAMS.get_or_init(|| {
        let mut up = Vec::new();
        let mut down = Vec::new();
        let mut i = 0u32;
        while up.len() < 70_000 || down.len() < 70_000 {
            let name = format!("/usr/lib/erlang/lib/m{i}.beam");
            let request = Term::tuple([Term::atom("get"), Term::string(&name)]);
            let contents: Vec<u8> = (0..(i * 37) % 900).map(|b| (b * i) as u8).collect();
            let reply = Term::tuple([
                Term::atom("get"),
                Term::tuple([Term::atom("ok"), Term::binary(contents)]),
            ]);
            for (term, out) in [(request, &mut up), (reply, &mut down)] {
                let payload = etf::encode(&term, Profile::Otp25).expect("encodes");
                out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                out.extend_from_slice(&payload);
            }
            i += 1;
        }
        [up, down]
    });
    match direction {
        Direction::ToServer => &streams[0],
        Direction::ToClient => &streams[1],
    }
}

/// A segment script fed to the reassembler. Byte 0: bit 0 set for a captured handshake;
/// bytes 1..9: the client's and the server's ISN; then 4 bytes per segment: flags (bit 0 the
/// direction, bit 1 FIN, bit 2 RST, bit 3 ACK), the offset in the stream (16 bits) and the
/// length. Every segment carries the reference bytes of its range.
///
/// Properties: the captured bytes are exactly the union of the ranges sent, each at its own
/// offset with the reference contents; holes are exactly the rest up to the end (or up to
/// the first FIN); frames read from the stream are reference frames.
pub fn segments(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((isns, ops)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let isn_c = u32::from_be_bytes([isns[0], isns[1], isns[2], isns[3]]);
    let isn_s = u32::from_be_bytes([isns[4], isns[5], isns[6], isns[7]]);
    let handshake = mode & 1 == 1;
    let mut number = 0u64;
    let mut segments = Vec::new();
    let mut push = |segments: &mut Vec<Segment>, src, dst, seq, flags, payload: &[u8]| {
        number += 1;
        segments.push(Segment {
            number,
            at: Duration::from_micros(number),
            src,
            dst,
            seq,
            flags,
            payload: payload.to_vec(),
        });
    };
    if handshake {
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        push(&mut segments, CLIENT, SERVER, isn_c, syn, &[]);
        let syn_ack = Flags { ack: true, ..syn };
        push(&mut segments, SERVER, CLIENT, isn_s, syn_ack, &[]);
    }
    // Per direction: the ranges sent and the first FIN's end.
    let mut sent: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
    let mut fin: [Option<u64>; 2] = [None, None];
    for op in ops.chunks_exact(4) {
        let side = usize::from(op[0] & 1);
        let direction = [Direction::ToServer, Direction::ToClient][side];
        let offset = u64::from(u16::from_be_bytes([op[1], op[2]]));
        let end = offset + u64::from(op[3]);
        let flags = Flags {
            syn: false,
            ack: op[0] & 8 != 0,
            fin: op[0] & 2 != 0,
            rst: op[0] & 4 != 0,
        };
        let (src, dst, isn) = match direction {
            Direction::ToServer => (CLIENT, SERVER, isn_c),
            Direction::ToClient => (SERVER, CLIENT, isn_s),
        };
        let payload = &reference(direction)[offset as usize..end as usize];
        let seq = isn.wrapping_add(1).wrapping_add(offset as u32);
        push(&mut segments, src, dst, seq, flags, payload);
        if end > offset {
            sent[side].push((offset, end));
        }
        if flags.fin && fin[side].is_none() {
            fin[side] = Some(end);
        }
    }
    let mut reassembler = Reassembler::new();
    for segment in segments {
        reassembler.push(segment);
    }
    let connections = reassembler.finish();
    if connections.is_empty() {
        assert!(sent.iter().all(Vec::is_empty) && fin.iter().all(Option::is_none));
        return;
    }
    assert_eq!(connections.len(), 1, "one connection between two endpoints");
    let mut connection = connections.into_iter().next().expect("one");
    assert_eq!(connection.handshake, handshake);
    if connection.client != CLIENT {
        connection = connection.flip();
    }
    for (side, stream) in [&connection.to_server, &connection.to_client]
        .into_iter()
        .enumerate()
    {
        check_tiling(stream);
        let reference = reference(stream.direction);
        // Without a SYN, offset 0 is the first byte sent (or the FIN's place).
        let origin = if handshake {
            assert_eq!(stream.start, StreamStart::Syn);
            0
        } else {
            sent[side]
                .iter()
                .map(|r| r.0)
                .chain(fin[side])
                .min()
                .unwrap_or(0)
        };
        let expected = union(&sent[side], origin);
        let runs: Vec<(u64, u64)> = stream.runs.iter().map(|r| (r.offset, r.end())).collect();
        assert_eq!(runs, expected, "captured ranges");
        for run in &stream.runs {
            let at = (run.offset + origin) as usize;
            assert_eq!(run.bytes, reference[at..at + run.bytes.len()], "contents");
        }
        let covered_end = expected.last().map_or(0, |r| r.1);
        let end = fin[side]
            .map(|f| f.saturating_sub(origin))
            .map_or(covered_end, |f| f.max(covered_end));
        let missing = end - expected.iter().map(|r| r.1 - r.0).sum::<u64>();
        assert_eq!(stream.missing_bytes(), missing, "holes");
        for event in framing::frames(stream, &plausible(stream.direction)) {
            if let FrameEvent::Frame(frame) = event {
                let at = (frame.offset + origin) as usize;
                let wire = &reference[at..at + 4 + frame.payload.len()];
                assert_eq!(&wire[4..], &frame.payload[..], "frames are what was sent");
            }
        }
    }
}

/// The union of ranges, shifted by `origin`, as sorted disjoint ranges.
fn union(ranges: &[(u64, u64)], origin: u64) -> Vec<(u64, u64)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, end) in sorted {
        let (start, end) = (start - origin, end - origin);
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}
