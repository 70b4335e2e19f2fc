//! TCP reassembly and `{packet,4}` framing: each awkward case a capture can hold, on
//! segments built by hand, and property tests that cut a real boot stream into shuffled,
//! duplicated and overlapping segments.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use erlboot::etf::{self, Profile, Term};
use erlboot_conformance::capture::Capture;
use erlboot_conformance::framing::{self, CutFrame, FrameEvent, Resync};
use erlboot_conformance::packet::{Flags, Segment};
use erlboot_conformance::reassembly::{Connection, Direction, Reassembler, StreamStart};
use erlboot_conformance::transcript::plausible;
use proptest::prelude::*;

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000);
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50000);

const SYN: Flags = Flags {
    syn: true,
    ack: false,
    fin: false,
    rst: false,
};
const SYN_ACK: Flags = Flags {
    syn: true,
    ack: true,
    fin: false,
    rst: false,
};
const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
};
const FIN: Flags = Flags {
    syn: false,
    ack: true,
    fin: true,
    rst: false,
};
const RST: Flags = Flags {
    syn: false,
    ack: false,
    fin: false,
    rst: true,
};

/// Builds segments with increasing packet numbers and times (1 ms apart).
#[derive(Default)]
struct Wire {
    segments: Vec<Segment>,
}

impl Wire {
    fn send(&mut self, src: SocketAddrV4, dst: SocketAddrV4, seq: u32, flags: Flags, data: &[u8]) {
        let number = self.segments.len() as u64 + 1;
        self.segments.push(Segment {
            number,
            at: Duration::from_millis(number),
            src,
            dst,
            seq,
            flags,
            payload: data.to_vec(),
        });
    }

    fn connections(self) -> Vec<Connection> {
        let mut r = Reassembler::new();
        for s in self.segments {
            r.push(s);
        }
        r.finish()
    }

    fn one(self) -> Connection {
        let mut conns = self.connections();
        assert_eq!(conns.len(), 1, "{conns:?}");
        conns.remove(0)
    }
}

fn handshake(wire: &mut Wire, isn_c: u32, isn_s: u32) {
    wire.send(CLIENT, SERVER, isn_c, SYN, &[]);
    wire.send(SERVER, CLIENT, isn_s, SYN_ACK, &[]);
    wire.send(CLIENT, SERVER, isn_c.wrapping_add(1), ACK, &[]);
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn retransmissions_are_taken_once() {
    let data = bytes(30);
    let mut w = Wire::default();
    handshake(&mut w, 100, 900);
    w.send(CLIENT, SERVER, 101, ACK, &data[..10]);
    w.send(CLIENT, SERVER, 101, ACK, &data[..10]);
    w.send(CLIENT, SERVER, 111, ACK, &data[10..]);
    w.send(CLIENT, SERVER, 111, ACK, &data[10..]);
    let c = w.one();
    assert_eq!(c.to_server.bytes(), data);
    assert!(c.to_server.is_complete());
    assert_eq!(c.to_server.duplicate_bytes, 30);
}

#[test]
fn overlapping_segments_keep_the_first_copy_of_each_byte() {
    let data = bytes(30);
    let mut w = Wire::default();
    handshake(&mut w, 100, 900);
    w.send(CLIENT, SERVER, 101, ACK, &data[..12]);
    // Overlaps bytes 8..12 with different contents: the first copy wins.
    let mut other = data[8..20].to_vec();
    other[..4].copy_from_slice(b"XXXX");
    w.send(CLIENT, SERVER, 109, ACK, &other);
    w.send(CLIENT, SERVER, 115, ACK, &data[14..]);
    let c = w.one();
    assert_eq!(c.to_server.bytes(), data);
    assert_eq!(c.to_server.duplicate_bytes, 4 + 6);
}

#[test]
fn out_of_order_segments_are_put_back_in_order() {
    let data = bytes(30);
    let mut w = Wire::default();
    handshake(&mut w, 100, 900);
    w.send(CLIENT, SERVER, 121, ACK, &data[20..]);
    w.send(CLIENT, SERVER, 111, ACK, &data[10..20]);
    w.send(CLIENT, SERVER, 101, ACK, &data[..10]);
    let c = w.one();
    assert_eq!(c.to_server.bytes(), data);
    assert!(c.to_server.is_complete());
}

#[test]
fn interleaved_connections_stay_apart() {
    let other = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40001);
    let (a, b) = (bytes(20), bytes(25).into_iter().rev().collect::<Vec<_>>());
    let mut w = Wire::default();
    w.send(CLIENT, SERVER, 5, SYN, &[]);
    w.send(other, SERVER, 7000, SYN, &[]);
    w.send(SERVER, CLIENT, 1, SYN_ACK, &[]);
    w.send(SERVER, other, 2, SYN_ACK, &[]);
    w.send(other, SERVER, 7001, ACK, &b[..10]);
    w.send(CLIENT, SERVER, 6, ACK, &a[..10]);
    w.send(other, SERVER, 7011, ACK, &b[10..]);
    w.send(CLIENT, SERVER, 16, ACK, &a[10..]);
    w.send(SERVER, other, 3, ACK, b"to other");
    let conns = w.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!((conns[0].client, conns[0].to_server.bytes()), (CLIENT, a));
    assert_eq!((conns[1].client, conns[1].to_server.bytes()), (other, b));
    assert_eq!(conns[1].to_client.bytes(), b"to other");
    assert!(conns[0].to_client.bytes().is_empty());
}

#[test]
fn sequence_numbers_wrap_around() {
    let data = bytes(64);
    let isn = 0xFFFF_FFF0u32;
    let mut w = Wire::default();
    handshake(&mut w, isn, 0xFFFF_FFFF);
    // 15 bytes before the wrap, the rest after it; the server's first byte is at seq 0.
    w.send(CLIENT, SERVER, isn.wrapping_add(33), ACK, &data[32..]);
    w.send(CLIENT, SERVER, isn.wrapping_add(1), ACK, &data[..32]);
    w.send(SERVER, CLIENT, 0, ACK, b"reply");
    let c = w.one();
    assert_eq!(c.to_server.bytes(), data);
    assert!(c.to_server.is_complete());
    assert_eq!(c.to_client.bytes(), b"reply");
}

#[test]
fn positions_keep_growing_past_4_gib_of_sequence_space() {
    // Segments 1.5 GiB apart (the gaps between them never captured): each step is under
    // 2 GiB, so every one lands further on, past 2^32.
    let step = 3u64 << 29;
    let mut w = Wire::default();
    handshake(&mut w, 10, 20);
    for i in 0..4u64 {
        w.send(CLIENT, SERVER, (11 + i * step) as u32, ACK, &[i as u8; 4]);
    }
    let s = w.one().to_server;
    let offsets: Vec<u64> = s.runs.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, step, 2 * step, 3 * step]);
    assert!(3 * step > 1 << 32);
    assert_eq!(s.missing_bytes(), 3 * (step - 4));
}

#[test]
fn a_connection_without_its_syn_is_read_from_its_first_byte() {
    let data = bytes(20);
    let mut w = Wire::default();
    // The server speaks first in the capture; no handshake.
    w.send(SERVER, CLIENT, 5000, ACK, b"late reply");
    w.send(CLIENT, SERVER, 3010, ACK, &data[10..]);
    w.send(CLIENT, SERVER, 3000, ACK, &data[..10]);
    let c = w.one();
    assert!(!c.handshake);
    // Oriented by first sender until told otherwise.
    assert_eq!(c.client, SERVER);
    let c = c.flip();
    assert_eq!((c.client, c.server), (CLIENT, SERVER));
    assert_eq!(c.to_server.start, StreamStart::Unseen);
    assert_eq!(c.to_server.bytes(), data);
    assert_eq!(c.to_client.bytes(), b"late reply");
    assert_eq!(c.to_server.direction, Direction::ToServer);
    assert!(!c.to_server.is_complete());
}

#[test]
fn a_syn_ack_alone_tells_the_client() {
    let mut w = Wire::default();
    w.send(SERVER, CLIENT, 77, SYN_ACK, &[]);
    w.send(CLIENT, SERVER, 12, ACK, b"abc");
    let c = w.one();
    assert!(c.handshake);
    assert_eq!((c.client, c.server), (CLIENT, SERVER));
    assert_eq!(c.to_server.bytes(), b"abc");
}

#[test]
fn half_close_then_reset() {
    let mut w = Wire::default();
    handshake(&mut w, 100, 900);
    w.send(CLIENT, SERVER, 101, ACK, b"request");
    w.send(CLIENT, SERVER, 108, FIN, &[]);
    // The server still answers after the client's FIN, then resets.
    w.send(SERVER, CLIENT, 901, ACK, b"reply");
    w.send(SERVER, CLIENT, 906, RST, &[]);
    let c = w.one();
    assert_eq!(c.to_server.fin.map(|m| m.number), Some(5));
    assert_eq!(c.to_server.rst, None);
    assert_eq!(c.to_client.bytes(), b"reply");
    assert_eq!(c.to_client.rst.map(|m| m.number), Some(7));
    assert!(c.to_server.is_complete() && c.to_client.is_complete());
}

#[test]
fn data_carried_by_a_syn_starts_after_it() {
    // TCP Fast Open: the SYN itself carries the first bytes.
    let mut w = Wire::default();
    w.send(CLIENT, SERVER, 100, SYN, b"early");
    w.send(SERVER, CLIENT, 900, SYN_ACK, &[]);
    w.send(CLIENT, SERVER, 106, ACK, b" data");
    let s = w.one().to_server;
    assert_eq!(s.bytes(), b"early data");
    assert!(s.is_complete());
}

#[test]
fn a_stream_seen_only_in_its_last_segment_with_fin_has_no_hole() {
    let mut w = Wire::default();
    w.send(SERVER, CLIENT, 7000, FIN, b"last reply");
    let c = w.one();
    let s = &c.to_server; // oriented by its first sender, the server
    assert_eq!(s.start, StreamStart::Unseen);
    assert!(s.holes.is_empty(), "{:?}", s.holes);
    assert_eq!(s.runs[0].offset, 0);
    assert_eq!(s.bytes(), b"last reply");
    assert_eq!(s.fin.map(|m| m.number), Some(1));
}

#[test]
fn a_repeated_syn_is_the_same_connection_and_a_new_isn_a_new_one() {
    let mut w = Wire::default();
    w.send(CLIENT, SERVER, 100, SYN, &[]);
    w.send(CLIENT, SERVER, 100, SYN, &[]);
    w.send(SERVER, CLIENT, 900, SYN_ACK, &[]);
    w.send(CLIENT, SERVER, 101, ACK, b"one");
    w.send(CLIENT, SERVER, 104, FIN, &[]);
    w.send(CLIENT, SERVER, 5555, SYN, &[]);
    w.send(CLIENT, SERVER, 5556, ACK, b"two");
    let conns = w.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[0].to_server.bytes(), b"one");
    assert_eq!(conns[1].to_server.bytes(), b"two");
}

#[test]
fn a_gap_is_measured_exactly() {
    let data = bytes(40);
    let mut w = Wire::default();
    handshake(&mut w, 100, 900);
    w.send(CLIENT, SERVER, 101, ACK, &data[..10]);
    // bytes 10..25 never captured
    w.send(CLIENT, SERVER, 126, ACK, &data[25..35]);
    // bytes 35..40 missing before the FIN
    w.send(CLIENT, SERVER, 141, FIN, &[]);
    let c = w.one();
    let s = &c.to_server;
    assert_eq!(s.holes.len(), 2);
    assert_eq!((s.holes[0].offset, s.holes[0].len), (10, 15));
    assert_eq!(s.holes[0].seen.number, 5);
    assert_eq!((s.holes[1].offset, s.holes[1].len), (35, 5));
    assert_eq!(s.holes[1].seen.number, 6);
    assert_eq!(s.runs.len(), 2);
    assert_eq!(s.runs[1].offset, 25);
    assert_eq!(s.runs[1].bytes, &data[25..35]);
    assert_eq!(s.missing_bytes(), 20);
    assert!(!s.is_complete());
}

#[test]
fn a_gap_across_the_wrap_around_is_measured_exactly() {
    let data = bytes(40);
    let isn = u32::MAX - 14;
    let mut w = Wire::default();
    handshake(&mut w, isn, 1);
    w.send(CLIENT, SERVER, isn.wrapping_add(1), ACK, &data[..10]);
    w.send(CLIENT, SERVER, isn.wrapping_add(31), ACK, &data[30..]);
    let s = w.one().to_server;
    assert_eq!((s.holes[0].offset, s.holes[0].len), (10, 20));
    assert_eq!(s.runs[1].bytes, &data[30..]);
}

// ---------------------------------------------------------------------------------------
// Framing across gaps

fn frame(term: &Term) -> Vec<u8> {
    let payload = etf::encode(term, Profile::Otp25).unwrap();
    [&(payload.len() as u32).to_be_bytes()[..], &payload].concat()
}

fn get(name: &str) -> Term {
    Term::tuple([Term::atom("get"), Term::string(name)])
}

fn get_ok(contents: Vec<u8>) -> Term {
    Term::tuple([
        Term::atom("get"),
        Term::tuple([Term::atom("ok"), Term::binary(contents)]),
    ])
}

/// Sends `stream` from the server in `pieces` (byte ranges), leaving out those in `drop`.
fn server_stream(stream: &[u8], cuts: &[usize], drop: &[usize]) -> Connection {
    let mut w = Wire::default();
    handshake(&mut w, 100, 1000);
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(stream.len());
    for (i, pair) in bounds.windows(2).enumerate() {
        if !drop.contains(&i) {
            w.send(
                SERVER,
                CLIENT,
                1001 + pair[0] as u32,
                ACK,
                &stream[pair[0]..pair[1]],
            );
        }
    }
    w.one()
}

fn events(c: &Connection) -> Vec<FrameEvent> {
    framing::frames(&c.to_client, &plausible(Direction::ToClient))
}

fn payloads(events: &[FrameEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            FrameEvent::Frame(f) => Some(f.payload.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_gap_inside_a_frame_whose_header_was_captured_resumes_exactly() {
    let replies = [
        frame(&get_ok(bytes(100))),
        frame(&get_ok(bytes(3000))),
        frame(&get_ok(b"tail".to_vec())),
    ];
    let stream = replies.concat();
    let first = replies[0].len();
    // The middle reply in three segments; its middle segment is lost.
    let c = server_stream(&stream, &[first, first + 1000, first + 2000], &[2]);
    let ev = events(&c);
    assert_eq!(ev.len(), 3, "{ev:?}");
    let FrameEvent::Gap(gap) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(gap.offset, first as u64 + 1000);
    assert_eq!(gap.missing, Some(1000));
    assert_eq!(
        gap.cut,
        Some(CutFrame {
            offset: first as u64,
            declared: Some(replies[1].len() as u32 - 4)
        })
    );
    assert_eq!(gap.resync, Resync::Exact);
    assert_eq!(gap.skipped, replies[1].len() as u64 - 2000);
    assert_eq!(
        payloads(&ev),
        vec![replies[0][4..].to_vec(), replies[2][4..].to_vec()]
    );
}

#[test]
fn a_cut_frame_ending_where_its_run_ends_resumes_exactly_before_the_next_gap() {
    let replies = [
        frame(&get_ok(bytes(2000))),
        frame(&get_ok(b"lost too".to_vec())),
        frame(&get_ok(b"third".to_vec())),
    ];
    let stream = replies.concat();
    let (a, b) = (replies[0].len(), replies[0].len() + replies[1].len());
    // The first reply's middle is lost, its tail is captured up to its very end; the second
    // reply is lost whole.
    let c = server_stream(&stream, &[500, 1500, a, b], &[1, 3]);
    let ev = events(&c);
    let gaps: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            FrameEvent::Gap(g) => Some((g.offset, g.cut, g.skipped, g.resync)),
            _ => None,
        })
        .collect();
    assert_eq!(
        gaps,
        vec![
            (
                500,
                Some(CutFrame {
                    offset: 0,
                    declared: Some(a as u32 - 4)
                }),
                a as u64 - 1500,
                Resync::Exact
            ),
            (
                a as u64,
                Some(CutFrame {
                    offset: a as u64,
                    declared: None
                }),
                0,
                Resync::Searched
            ),
        ]
    );
    assert_eq!(payloads(&ev), vec![replies[2][4..].to_vec()]);
}

#[test]
fn a_gap_that_swallows_a_header_is_resynchronised_by_search_past_an_embedded_term() {
    // The second reply carries a boot script: term_to_binary output preceded by its own
    // 4-byte length inside the binary, which a naive search would take for a frame.
    let script = Term::tuple([
        Term::atom("script"),
        Term::tuple([Term::string("OTP  APN 181 01"), Term::string("25")]),
        Term::list([Term::tuple([Term::atom("preLoaded"), Term::list([])])]),
    ]);
    let script = etf::encode(&script, Profile::Otp25).unwrap();
    let replies = [
        frame(&get_ok(b"first".to_vec())),
        frame(&get_ok(script.clone())),
        frame(&get_ok(b"third".to_vec())),
        frame(&get_ok(b"fourth".to_vec())),
    ];
    let stream = replies.concat();
    let second = replies[0].len();
    // Lose the second reply's first 10 bytes (its header and tuple head); the binary's length
    // and the embedded script follow the gap.
    let c = server_stream(&stream, &[second, second + 10], &[1]);
    let ev = events(&c);
    let FrameEvent::Gap(gap) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(gap.cut.map(|c| c.offset), Some(second as u64));
    assert_eq!(gap.cut.and_then(|c| c.declared), None);
    assert_eq!(gap.resync, Resync::Searched);
    assert_eq!(gap.skipped, replies[1].len() as u64 - 10);
    assert_eq!(
        payloads(&ev),
        vec![
            replies[0][4..].to_vec(),
            replies[2][4..].to_vec(),
            replies[3][4..].to_vec()
        ]
    );
}

fn gaps(ev: &[FrameEvent]) -> Vec<(u64, Option<CutFrame>, u64, Resync)> {
    ev.iter()
        .filter_map(|e| match e {
            FrameEvent::Gap(g) => Some((g.offset, g.cut, g.skipped, g.resync)),
            _ => None,
        })
        .collect()
}

#[test]
fn bytes_missing_at_the_end_are_a_gap_the_stream_ends_in() {
    let replies = [
        frame(&get_ok(b"one".to_vec())),
        frame(&get_ok(b"two".to_vec())),
    ];
    let stream = replies.concat();
    let mut w = Wire::default();
    handshake(&mut w, 100, 1000);
    w.send(SERVER, CLIENT, 1001, ACK, &replies[0]);
    // The second reply was sent (the FIN's sequence number says so) but not captured.
    w.send(SERVER, CLIENT, 1001 + stream.len() as u32, FIN, &[]);
    let ev = events(&w.one());
    let cut = CutFrame {
        offset: replies[0].len() as u64,
        declared: None,
    };
    assert_eq!(
        gaps(&ev),
        vec![(replies[0].len() as u64, Some(cut), 0, Resync::EndOfStream)]
    );
}

#[test]
fn a_long_frame_cut_twice_resumes_at_its_end() {
    let replies = [
        frame(&get_ok(bytes(5000))),
        frame(&get_ok(b"next".to_vec())),
    ];
    let stream = replies.concat();
    let a = replies[0].len();
    // Holes at 1000..2000 and 3000..4000, both inside the first reply.
    let c = server_stream(&stream, &[1000, 2000, 3000, 4000], &[1, 3]);
    let ev = events(&c);
    let cut = CutFrame {
        offset: 0,
        declared: Some(a as u32 - 4),
    };
    assert_eq!(
        gaps(&ev),
        vec![
            (1000, Some(cut), 1000, Resync::Exact),
            (3000, None, a as u64 - 4000, Resync::Exact),
        ]
    );
    assert_eq!(payloads(&ev), vec![replies[1][4..].to_vec()]);
}

#[test]
fn a_second_gap_ending_where_the_cut_frame_ends_resumes_exactly() {
    let replies = [
        frame(&get_ok(bytes(5000))),
        frame(&get_ok(b"next".to_vec())),
    ];
    let stream = replies.concat();
    let a = replies[0].len();
    let c = server_stream(&stream, &[1000, 2000, 3000, a], &[1, 3]);
    let ev = events(&c);
    assert_eq!(gaps(&ev)[1], (3000, None, 0, Resync::Exact));
    assert_eq!(payloads(&ev), vec![replies[1][4..].to_vec()]);
}

#[test]
fn a_cut_frame_whose_tail_ends_the_stream_resumed_exactly() {
    let replies = [
        frame(&get_ok(b"first".to_vec())),
        frame(&get_ok(bytes(3000))),
    ];
    let stream = replies.concat();
    let a = replies[0].len();
    let c = server_stream(&stream, &[a + 100, a + 1000], &[1]);
    let ev = events(&c);
    assert_eq!(
        gaps(&ev),
        vec![(
            a as u64 + 100,
            Some(CutFrame {
                offset: a as u64,
                declared: Some(replies[1].len() as u32 - 4)
            }),
            replies[1].len() as u64 - 1000,
            Resync::Exact
        )]
    );
}

#[test]
fn a_second_gap_over_the_end_of_a_cut_frame_starts_a_search() {
    let replies = [
        frame(&get_ok(bytes(3000))),
        frame(&get_ok(b"lost".to_vec())),
        frame(&get_ok(b"found".to_vec())),
    ];
    let stream = replies.concat();
    let a = replies[0].len();
    // The first hole inside the first reply, the second over its end and the next header.
    let c = server_stream(&stream, &[1000, 2000, a - 10, a + 10], &[1, 3]);
    let ev = events(&c);
    let first = CutFrame {
        offset: 0,
        declared: Some(a as u32 - 4),
    };
    let second = CutFrame {
        offset: a as u64,
        declared: None,
    };
    assert_eq!(
        gaps(&ev),
        vec![
            (1000, Some(first), a as u64 - 10 - 2000, Resync::Exact),
            (
                a as u64 - 10,
                Some(second),
                replies[1].len() as u64 - 10,
                Resync::Searched
            ),
        ]
    );
    assert_eq!(payloads(&ev), vec![replies[2][4..].to_vec()]);
}

#[test]
fn a_frame_unfinished_after_a_gap_is_measured_from_its_own_start() {
    let replies = [
        frame(&get_ok(b"first".to_vec())),
        frame(&get_ok(b"second".to_vec())),
        frame(&get_ok(bytes(300))),
    ];
    let stream = replies.concat();
    let (a, b) = (replies[0].len(), replies[0].len() + replies[1].len());
    // Bytes inside the second reply are lost (its header was captured); the third is
    // captured only in part.
    let c = server_stream(&stream[..b + 100], &[a + 10, a + 15], &[1]);
    let ev = events(&c);
    assert_eq!(payloads(&ev), vec![replies[0][4..].to_vec()]);
    let Some(FrameEvent::Unfinished(u)) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (u.offset, u.have, u.want),
        (b as u64, 100, Some(replies[2].len() as u64))
    );
}

#[test]
fn a_framed_reply_inside_a_file_is_not_taken_for_a_frame_when_no_frame_follows_it() {
    // A file whose contents hold a framed reply followed by bytes that are no frame: a length
    // over the search limit, or a length within it whose first byte is not the ETF version.
    for trailer in [
        &[0xFF, 0xFF, 0xFF, 0xFF, 131, 1, 2, 3][..],
        &[0x00, 0x10, 0x00, 0x00, 7, 7, 7, 7][..],
    ] {
        let inner = frame(&get_ok(b"inside a file".to_vec()));
        let contents = [&inner[..], trailer].concat();
        let replies = [
            frame(&get_ok(b"first".to_vec())),
            frame(&get_ok(contents)),
            frame(&get_ok(b"third".to_vec())),
        ];
        let stream = replies.concat();
        let a = replies[0].len();
        let c = server_stream(&stream, &[a, a + 3], &[1]);
        let ev = events(&c);
        assert_eq!(
            payloads(&ev),
            vec![replies[0][4..].to_vec(), replies[2][4..].to_vec()],
            "{trailer:?}"
        );
        assert_eq!(gaps(&ev)[0].2, replies[1].len() as u64 - 3);
    }
}

#[test]
fn a_frame_found_by_search_may_be_followed_by_the_start_of_one() {
    // After the gap: the tail of a lost reply, one whole reply, then only the first bytes of
    // the next (the capture missed the rest): the ETF version byte after its length is
    // the evidence.
    let replies = [
        frame(&get_ok(b"first".to_vec())),
        frame(&get_ok(b"lost".to_vec())),
        frame(&get_ok(b"found".to_vec())),
        frame(&get_ok(bytes(500))),
    ];
    let stream = replies.concat();
    let (a, c_end) = (
        replies[0].len(),
        replies[0].len() + replies[1].len() + replies[2].len(),
    );
    let c = server_stream(&stream, &[a, a + 6, c_end + 8], &[1, 3]);
    let ev = events(&c);
    assert_eq!(
        payloads(&ev),
        vec![replies[0][4..].to_vec(), replies[2][4..].to_vec()]
    );
    assert_eq!(gaps(&ev)[0].3, Resync::Searched);
}

#[test]
fn garbage_after_a_gap_is_skipped_whole() {
    let good = frame(&get_ok(b"ok".to_vec()));
    let garbage: Vec<u8> = (0..500u32).map(|i| (i * 31 % 251) as u8).collect();
    let stream = [good.clone(), good.clone(), garbage].concat();
    let c = server_stream(&stream, &[good.len(), good.len() + 3], &[1]);
    let ev = events(&c);
    assert_eq!(payloads(&ev), vec![good[4..].to_vec()]);
    let FrameEvent::Gap(gap) = ev.last().unwrap() else {
        panic!("{ev:?}")
    };
    assert_eq!(gap.resync, Resync::NotFound);
    assert_eq!(gap.skipped, stream.len() as u64 - good.len() as u64 - 3);
}

#[test]
fn a_stream_without_its_start_is_read_from_the_first_safe_frame() {
    let requests = [frame(&get("/a")), frame(&get("/bb")), frame(&get("/ccc"))];
    let stream = requests.concat();
    let mut w = Wire::default();
    // No SYN; the capture starts 5 bytes into the first request.
    w.send(CLIENT, SERVER, 9005, ACK, &stream[5..]);
    let c = w.one();
    let ev = framing::frames(&c.to_server, &plausible(Direction::ToServer));
    let FrameEvent::Gap(gap) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(gap.missing, None);
    assert_eq!(gap.resync, Resync::Searched);
    assert_eq!(gap.skipped, requests[0].len() as u64 - 5);
    assert_eq!(
        payloads(&ev),
        vec![requests[1][4..].to_vec(), requests[2][4..].to_vec()]
    );
}

#[test]
fn a_frame_the_stream_ends_in_is_reported_unfinished() {
    let stream = [frame(&get_ok(b"x".to_vec())), vec![0, 0, 1, 0, 131, 104]].concat();
    let c = server_stream(&stream, &[], &[]);
    let ev = events(&c);
    assert_eq!(ev.len(), 2);
    let FrameEvent::Unfinished(u) = ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!((u.have, u.want), (6, Some(260)));
}

// ---------------------------------------------------------------------------------------
// Properties over a real stream

fn real_streams() -> (Vec<u8>, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/otp25-requests.pcap");
    let capture = Capture::read(&path).unwrap();
    let stream = &capture.streams[0];
    assert!(stream.to_server.is_complete() && stream.to_client.is_complete());
    // The client's whole stream, and the server's first 200 kB (the boot script and more).
    let down = stream.to_client.bytes();
    (
        stream.to_server.bytes(),
        down[..200_000.min(down.len())].to_vec(),
    )
}

/// Cuts `data` into segments at the given fractions, then applies the shuffle, duplicates
/// and overlapping copies the strategy chose.
fn mangle(
    data: &[u8],
    cuts: &[usize],
    order: &[usize],
    dups: &[usize],
    overlaps: &[(usize, usize)],
) -> Vec<(usize, Vec<u8>)> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % data.len()).collect();
    bounds.push(0);
    bounds.push(data.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut segs: Vec<(usize, Vec<u8>)> = bounds
        .windows(2)
        .map(|w| (w[0], data[w[0]..w[1]].to_vec()))
        .collect();
    for &d in dups {
        let s = segs[d % segs.len()].clone();
        segs.push(s);
    }
    for &(start, len) in overlaps {
        let start = start % data.len();
        let end = (start + 1 + len % 3000).min(data.len());
        segs.push((start, data[start..end].to_vec()));
    }
    // A permutation from the order keys.
    let mut keyed: Vec<(usize, (usize, Vec<u8>))> = segs
        .into_iter()
        .enumerate()
        .map(|(i, s)| (order.get(i).copied().unwrap_or(i), s))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, s)| s).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn shuffled_duplicated_overlapping_segments_give_the_same_stream(
        isn_c in any::<u32>(),
        isn_s in prop_oneof![any::<u32>(), Just(u32::MAX - 3000)],
        up_cuts in prop::collection::vec(any::<usize>(), 1..60),
        down_cuts in prop::collection::vec(any::<usize>(), 1..120),
        order in prop::collection::vec(any::<usize>(), 0..400),
        dups in prop::collection::vec(any::<usize>(), 0..20),
        overlaps in prop::collection::vec((any::<usize>(), any::<usize>()), 0..20),
    ) {
        let (up, down) = real_streams();
        let mut w = Wire::default();
        handshake(&mut w, isn_c, isn_s);
        let ups = mangle(&up, &up_cuts, &order, &dups, &overlaps);
        let downs = mangle(&down, &down_cuts, &order, &dups, &overlaps);
        // Interleave the two directions.
        let (mut i, mut j) = (0, 0);
        while i < ups.len() || j < downs.len() {
            if i < ups.len() && (j >= downs.len() || i % 3 != 2) {
                let (off, data) = &ups[i];
                w.send(CLIENT, SERVER, isn_c.wrapping_add(1 + *off as u32), ACK, data);
                i += 1;
            } else {
                let (off, data) = &downs[j];
                w.send(SERVER, CLIENT, isn_s.wrapping_add(1 + *off as u32), ACK, data);
                j += 1;
            }
        }
        let c = w.one();
        prop_assert!(c.to_server.is_complete());
        prop_assert!(c.to_client.is_complete());
        prop_assert_eq!(c.to_server.bytes(), up.clone());
        prop_assert_eq!(c.to_client.bytes(), down);
        let frames: Vec<Vec<u8>> = c.frames(Direction::ToServer).into_iter().map(|f| f.payload).collect();
        let (expected, used) = erlboot_conformance::capture::split_frames(&up);
        prop_assert_eq!(used, up.len());
        prop_assert_eq!(frames, expected.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
    }

    #[test]
    fn a_lost_segment_costs_only_the_frames_it_touches(
        cuts in prop::collection::vec(any::<usize>(), 2..80),
        lost in any::<usize>(),
    ) {
        let (up, _) = real_streams();
        let (frames, _) = erlboot_conformance::capture::split_frames(&up);
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % up.len()).collect();
        bounds.extend([0, up.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let lost = lost % (bounds.len() - 1);
        let (lo, hi) = (bounds[lost], bounds[lost + 1]);
        let mut w = Wire::default();
        handshake(&mut w, 7, 9);
        for (k, pair) in bounds.windows(2).enumerate() {
            if k != lost {
                w.send(CLIENT, SERVER, 8 + pair[0] as u32, ACK, &up[pair[0]..pair[1]]);
            }
        }
        w.send(CLIENT, SERVER, 8 + up.len() as u32, FIN, &[]);
        let c = w.one();
        let got = c.frames(Direction::ToServer);
        // Every frame that does not touch the lost range is read; none that does.
        let mut offset = 0usize;
        let mut expected = Vec::new();
        for f in &frames {
            let end = offset + 4 + f.len();
            if end <= lo || offset >= hi {
                expected.push(f.to_vec());
            }
            offset = end;
        }
        let got: Vec<Vec<u8>> = got.into_iter().map(|f| f.payload).collect();
        prop_assert_eq!(got, expected);
    }
}
