//! The transcripts of the committed captures (captures/*.pcap), pinned as insta snapshots,
//! and a committed capture with packets taken out: the gaps are reported and everything else
//! is still read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use erlboot_conformance::capture::Capture;
use erlboot_conformance::render::{self, Format};
use erlboot_conformance::transcript::Body;
use erlboot_conformance::transcript::{Transcript, TranscriptOptions};
use pcap_file::pcap::{PcapParser, PcapWriter};

fn capture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../captures")
        .join(name)
}

fn transcript(name: &str) -> Transcript {
    Transcript::read(&capture_path(name), &TranscriptOptions::default()).unwrap()
}

fn lines(t: &Transcript, format: Format) -> Vec<String> {
    let mut out = Vec::new();
    render::write(t, format, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Message counts per kind and direction, then the chosen lines.
fn summary(t: &Transcript, lines: &[String], first: usize, last: usize) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, m) in t.messages() {
        *counts
            .entry(format!("{} {}", m.direction.label(), m.body.kind()))
            .or_default() += 1;
    }
    let mut out = format!(
        "sessions: {}, other connections: {}, other datagrams: {}, packets: {}\n",
        t.sessions.len(),
        t.other_connections,
        t.other_datagrams,
        t.stats.packets
    );
    for (k, n) in counts {
        out += &format!("{k}: {n}\n");
    }
    out += "--- first lines\n";
    for l in &lines[..first] {
        out += &format!("{l}\n");
    }
    out += "--- last lines\n";
    for l in &lines[lines.len() - last..] {
        out += &format!("{l}\n");
    }
    out
}

#[test]
fn otp25_boot() {
    let t = transcript("otp25-boot.pcap");
    insta::assert_snapshot!(summary(&t, &lines(&t, Format::Text), 8, 6));
}

#[test]
fn otp27_boot() {
    let t = transcript("otp27-boot.pcap");
    insta::assert_snapshot!(summary(&t, &lines(&t, Format::Text), 8, 6));
}

/// The explicit calls at the end of the `*-requests` captures (14 requests, their replies,
/// then what printing the results loaded) in full.
#[test]
fn otp25_requests() {
    let t = transcript("otp25-requests.pcap");
    insta::assert_snapshot!(summary(&t, &lines(&t, Format::Text), 5, 40));
}

#[test]
fn otp27_requests() {
    let t = transcript("otp27-requests.pcap");
    insta::assert_snapshot!(summary(&t, &lines(&t, Format::Text), 5, 40));
}

#[test]
fn otp25_requests_as_json() {
    let t = transcript("otp25-requests.pcap");
    let json = lines(&t, Format::Json);
    for line in &json {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["time", "session", "dir", "kind", "term"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
    }
    insta::assert_snapshot!([&json[..5], &json[json.len() - 3..]].concat().join("\n"));
}

/// The committed capture without the given packet numbers, as a new pcap.
fn without(name: &str, drop: &[u64]) -> Vec<u8> {
    let bytes = std::fs::read(capture_path(name)).unwrap();
    let (mut rest, parser) = PcapParser::new(&bytes).unwrap();
    let mut w = PcapWriter::with_header(Vec::new(), parser.header()).unwrap();
    let mut number = 0;
    while !rest.is_empty() {
        let (next, packet) = parser.next_packet(rest).unwrap();
        rest = next;
        number += 1;
        if !drop.contains(&number) {
            w.write_packet(&packet).unwrap();
        }
    }
    w.into_writer()
}

#[test]
fn packets_missing_from_a_real_capture_are_gaps_and_the_rest_is_read() {
    let name = "otp25-requests.pcap";
    let whole = Capture::read(&capture_path(name)).unwrap();
    let stream = &whole.streams[0];
    // Lose the packets that carry the start of the 3rd and the 200th reply (their headers),
    // and a packet in the middle of the first (the 7037-byte boot script).
    let replies = stream.frames(erlboot_conformance::reassembly::Direction::ToClient);
    let run = &stream.to_client.runs[0];
    let packet_at = |offset: u64| {
        let i = run.chunks.partition_point(|c| c.end <= offset);
        run.chunks[i].from.number
    };
    let drop = [
        packet_at(replies[0].offset + 3000),
        packet_at(replies[2].offset),
        packet_at(replies[199].offset + 1),
    ];
    let cut = Capture::parse(&without(name, &drop)).unwrap();
    let t = Transcript::of(&cut, &TranscriptOptions::default());
    let full = Transcript::of(&whole, &TranscriptOptions::default());
    let count = |t: &Transcript, kind: &str| {
        t.messages()
            .iter()
            .filter(|(_, m)| m.body.kind() == kind)
            .count()
    };
    assert_eq!(count(&t, "gap"), 3);
    assert_eq!(count(&t, "request"), count(&full, "request"));
    // Each gap lost exactly the reply it cut: the others are all there, byte for byte.
    assert_eq!(count(&t, "reply"), count(&full, "reply") - 3);
    let got: Vec<&[u8]> = t
        .messages()
        .iter()
        .filter_map(|(_, m)| match &m.body {
            Body::Reply { payload, .. } => Some(&payload[..]),
            _ => None,
        })
        .collect();
    let expected: Vec<&[u8]> = replies
        .iter()
        .enumerate()
        .filter(|(i, _)| ![0, 2, 199].contains(i))
        .map(|(_, f)| &f.payload[..])
        .collect();
    assert_eq!(got, expected);
    let gaps: Vec<String> = lines(&t, Format::Text)
        .into_iter()
        .filter(|l| l.contains(" gap "))
        .collect();
    insta::assert_snapshot!(gaps.join("\n"));
}
