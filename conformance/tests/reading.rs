//! Reading capture files: pcap and pcapng, every supported link type, timestamps in several
//! resolutions, and the packets that are reported rather than read (IPv6, snapshot-truncated,
//! IP fragments), on small files written here.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use erlboot::etf::{self, Profile, Term};
use erlboot_conformance::capture::Capture;
use erlboot_conformance::file::{self, Format};
use erlboot_conformance::transcript::Body;
use erlboot_conformance::transcript::{Transcript, TranscriptOptions};
use erlboot_conformance::CaptureError;
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};

const C: [u8; 4] = [127, 0, 0, 1];
const S: [u8; 4] = [127, 0, 0, 2];
const PORT: u16 = 45000;

fn frame(term: &Term) -> Vec<u8> {
    let payload = etf::encode(term, Profile::Otp25).unwrap();
    [&(payload.len() as u32).to_be_bytes()[..], &payload].concat()
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, data)
        .unwrap();
    out
}

fn tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 65535);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'R' => b.rst(),
            _ => unreachable!(),
        };
    }
    let mut out = Vec::new();
    b.write(&mut out, data).unwrap();
    out
}

/// A whole boot in IPv4 packets, with times in microseconds: discovery, handshake, two
/// requests and replies, FINs; plus an IPv6 packet and an unrelated TCP connection.
fn boot() -> Vec<(u64, Vec<u8>)> {
    let q1 = frame(&Term::tuple([Term::atom("get"), Term::string("/boot")]));
    let r1 = frame(&Term::tuple([
        Term::atom("get"),
        Term::tuple([Term::atom("ok"), Term::binary(vec![7u8; 100])]),
    ]));
    let q2 = frame(&Term::atom("get_cwd"));
    let r2 = frame(&Term::tuple([
        Term::atom("get_cwd"),
        Term::tuple([Term::atom("ok"), Term::string("/tmp")]),
    ]));
    let mut answer = b"EBOOTR\x00".to_vec();
    answer.extend_from_slice(&PORT.to_be_bytes());
    answer.extend_from_slice(b"13.1.5");
    let (cs, ss) = (1000u32, 5000u32);
    let mut up = cs + 1;
    let mut down = ss + 1;
    let mut packets = vec![
        (0, udp(C, 33000, S, 4368, b"EBOOTQ13.1.5")),
        (150, udp(S, 4368, C, 33000, &answer)),
        (500_000, tcp(C, 41000, S, PORT, cs, "S", &[])),
        (500_010, tcp(S, PORT, C, 41000, ss, "SA", &[])),
        (500_020, tcp(C, 41000, S, PORT, up, "A", &[])),
    ];
    // distribution-like traffic on another port, ignored
    packets.push((500_030, tcp(C, 41999, S, 4369, 1, "S", &[])));
    packets.push((500_040, tcp(C, 41999, S, 4369, 2, "A", b"epmd")));
    for (t, q, r) in [(501_000u64, &q1, &r1), (502_000, &q2, &r2)] {
        packets.push((t, tcp(C, 41000, S, PORT, up, "A", q)));
        up += q.len() as u32;
        packets.push((t + 100, tcp(S, PORT, C, 41000, down, "A", r)));
        down += r.len() as u32;
    }
    packets.push((503_000, tcp(C, 41000, S, PORT, up, "FA", &[])));
    packets.push((503_100, tcp(S, PORT, C, 41000, down, "FA", &[])));
    let mut v6 = Vec::new();
    PacketBuilder::ipv6([0; 16], [0; 16], 64)
        .udp(1, 4368)
        .write(&mut v6, b"EBOOTQ13.1.5")
        .unwrap();
    packets.push((503_200, v6));
    packets
}

fn link_header(link: DataLink, ip: &[u8], big_endian: bool) -> Vec<u8> {
    let v6 = ip[0] >> 4 == 6;
    let ether_type: [u8; 2] = if v6 { [0x86, 0xDD] } else { [0x08, 0x00] };
    let mut out = match link {
        DataLink::ETHERNET => [vec![0; 12], ether_type.to_vec()].concat(),
        DataLink::LINUX_SLL => [
            vec![0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0],
            ether_type.to_vec(),
        ]
        .concat(),
        DataLink::LINUX_SLL2 => [
            ether_type.to_vec(),
            vec![0, 0, 0, 0, 0, 1, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat(),
        DataLink::NULL => {
            let family: u32 = if v6 { 10 } else { 2 };
            if big_endian {
                family.to_be_bytes().to_vec()
            } else {
                family.to_le_bytes().to_vec()
            }
        }
        DataLink::RAW => Vec::new(),
        _ => unreachable!(),
    };
    out.extend_from_slice(ip);
    out
}

fn pcap(
    link: DataLink,
    big_endian: bool,
    nanos: bool,
    packets: &[(u64, Vec<u8>)],
    snaplen: usize,
) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        endianness: if big_endian {
            Endianness::Big
        } else {
            Endianness::Little
        },
        ts_resolution: if nanos {
            TsResolution::NanoSecond
        } else {
            TsResolution::MicroSecond
        },
        snaplen: snaplen as u32,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (micros, ip) in packets {
        let data = link_header(link, ip, big_endian);
        let ts = Duration::from_secs(1_700_000_000) + Duration::from_micros(*micros);
        let kept = data.len().min(snaplen);
        w.write_packet(&PcapPacket::new(ts, data.len() as u32, &data[..kept]))
            .unwrap();
    }
    w.into_writer()
}

/// pcapng with two interfaces: packets alternate between an SLL2 interface with nanosecond
/// timestamps and an Ethernet one with the default microseconds.
fn pcapng(big_endian: bool, packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let section = SectionHeaderBlock {
        endianness: if big_endian {
            Endianness::Big
        } else {
            Endianness::Little
        },
        ..SectionHeaderBlock::default()
    };
    let mut w = PcapNgWriter::with_section_header(Vec::new(), section).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::LINUX_SLL2,
        snaplen: 262144,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    })
    .unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 262144,
        options: vec![],
    })
    .unwrap();
    for (i, (micros, ip)) in packets.iter().enumerate() {
        let interface = (i % 2) as u32;
        let link = if interface == 0 {
            DataLink::LINUX_SLL2
        } else {
            DataLink::ETHERNET
        };
        let data = link_header(link, ip, big_endian);
        let since_epoch = 1_700_000_000_000_000 + micros;
        // pcap-file writes the raw count it is given as nanoseconds; the unit is the
        // interface's resolution.
        let raw = if interface == 0 {
            since_epoch * 1000
        } else {
            since_epoch
        };
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: interface,
            timestamp: Duration::from_nanos(raw),
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        })
        .unwrap();
    }
    w.into_inner()
}

fn check_boot(bytes: &[u8], label: &str) {
    let capture = Capture::parse(bytes).unwrap();
    assert_eq!(capture.stats.ipv6, 1, "{label}: {:?}", capture.stats);
    assert_eq!(capture.stats.packets, boot().len() as u64);
    let t = Transcript::of(&capture, &TranscriptOptions::default());
    assert_eq!(
        t.other_connections, 1,
        "the port-4369 connection is left out"
    );
    assert_eq!(t.sessions.len(), 1);
    let s = &t.sessions[0];
    let kinds: Vec<&str> = s.messages.iter().map(|m| m.body.kind()).collect();
    assert_eq!(
        kinds,
        ["query", "answer", "open", "request", "reply", "request", "reply", "close", "close"]
    );
    let times: Vec<u128> = s.messages.iter().map(|m| m.at.as_micros()).collect();
    assert_eq!(
        times,
        [0, 150, 500_000, 501_000, 501_100, 502_000, 502_100, 503_000, 503_100]
    );
    assert_eq!(
        s.connection,
        Some((
            SocketAddrV4::new(Ipv4Addr::from(C), 41000),
            SocketAddrV4::new(Ipv4Addr::from(S), PORT)
        ))
    );
    let Body::Request {
        request: Some(r), ..
    } = &s.messages[5].body
    else {
        panic!("{:?}", s.messages[5])
    };
    assert_eq!(*r, erlboot::proto::Request::GetCwd);
}

#[test]
fn every_link_type_in_classic_pcap() {
    for link in [
        DataLink::ETHERNET,
        DataLink::LINUX_SLL,
        DataLink::LINUX_SLL2,
        DataLink::NULL,
        DataLink::RAW,
    ] {
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let bytes = pcap(link, big_endian, nanos, &boot(), 65535);
                assert_eq!(file::format_of(&bytes), Some(Format::Pcap));
                check_boot(&bytes, &format!("{link:?} big {big_endian} nanos {nanos}"));
            }
        }
    }
}

#[test]
fn pcapng_with_two_interfaces_and_two_timestamp_resolutions() {
    for big_endian in [false, true] {
        let bytes = pcapng(big_endian, &boot());
        assert_eq!(file::format_of(&bytes), Some(Format::PcapNg));
        check_boot(&bytes, "pcapng");
    }
}

#[test]
fn truncated_packets_are_listed_and_their_bytes_become_a_gap() {
    // A 100-byte snapshot length cuts the packet of the first reply (packet 9).
    let bytes = pcap(DataLink::ETHERNET, false, false, &boot(), 100);
    let capture = Capture::parse(&bytes).unwrap();
    assert_eq!(capture.stats.truncated, vec![9]);
    let t = Transcript::of(&capture, &TranscriptOptions::default());
    let kinds: Vec<&str> = t.sessions[0]
        .messages
        .iter()
        .map(|m| m.body.kind())
        .collect();
    assert_eq!(
        kinds,
        ["query", "answer", "open", "request", "request", "gap", "reply", "close", "close"]
    );
    let Body::Gap(gap) = &t.sessions[0].messages[5].body else {
        panic!()
    };
    assert_eq!(gap.missing, Some(125));
    assert_eq!(gap.resync, erlboot_conformance::framing::Resync::Searched);
    let notes = erlboot_conformance::render::notes(&t);
    assert!(notes[0].contains("packets 9"), "{notes:?}");
}

#[test]
fn ip_fragments_are_listed_not_read() {
    let mut packets = boot();
    let mut fragment = packets[6].1.clone();
    fragment[6] |= 0x20; // more fragments
    packets.push((600_000, fragment));
    let capture = Capture::parse(&pcap(DataLink::RAW, false, false, &packets, 65535)).unwrap();
    assert_eq!(capture.stats.fragments, vec![packets.len() as u64]);
}

#[test]
fn a_file_cut_mid_record_keeps_what_it_has() {
    let bytes = pcap(DataLink::ETHERNET, false, false, &boot(), 65535);
    let cut = &bytes[..bytes.len() - 10];
    let capture = Capture::parse(cut).unwrap();
    assert!(capture.stats.partial_tail.is_some());
    assert_eq!(capture.stats.packets, boot().len() as u64 - 1);
}

#[test]
fn files_that_are_not_captures_get_typed_errors() {
    assert!(matches!(
        Capture::parse(b"hello world"),
        Err(CaptureError::NotACapture { magic }) if magic == b"hell"
    ));
    assert!(matches!(
        Capture::parse(b""),
        Err(CaptureError::NotACapture { .. })
    ));
    // A pcap magic and nothing else: the header is incomplete.
    assert!(matches!(
        Capture::parse(&[0xD4, 0xC3, 0xB2, 0xA1, 2, 0]),
        Err(CaptureError::Header(_))
    ));
    let missing = Capture::read(std::path::Path::new("/nonexistent/x.pcap")).unwrap_err();
    assert!(
        missing.to_string().starts_with("/nonexistent/x.pcap: "),
        "{missing}"
    );
}

#[test]
fn a_port_given_by_hand_finds_a_boot_without_discovery() {
    let packets: Vec<_> = boot().into_iter().skip(2).collect();
    let capture = Capture::parse(&pcap(DataLink::ETHERNET, false, false, &packets, 65535)).unwrap();
    let none = Transcript::of(&capture, &TranscriptOptions::default());
    assert!(none.sessions.is_empty());
    let t = Transcript::of(&capture, &TranscriptOptions { ports: vec![PORT] });
    assert_eq!(t.sessions.len(), 1);
    assert_eq!(t.sessions[0].discovery, None);
    assert_eq!(t.sessions[0].messages.len(), 7);
}
