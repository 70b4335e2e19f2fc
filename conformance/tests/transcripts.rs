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

// ---------------------------------------------------------------------------------------
// The scenarios of captures/record.sh beyond a plain boot (see captures/manifest.toml).

/// Per session: where its discovery and connection were, its message counts per kind and
/// direction, then its first and last lines.
fn sessions(t: &Transcript, lines: &[String], first: usize, last: usize) -> String {
    let mut out = String::new();
    for s in &t.sessions {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for m in &s.messages {
            *counts
                .entry(format!("{} {}", m.direction.label(), m.body.kind()))
                .or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        out += &format!(
            "=== s{}: discovery {:?}, connection {:?}\n{}\n",
            s.id,
            s.discovery,
            s.connection,
            counts.join(", ")
        );
        let tag = format!(" s{} ", s.id);
        let own: Vec<&String> = lines.iter().filter(|l| l.contains(&tag)).collect();
        if own.len() <= first + last {
            own.iter().for_each(|l| out += &format!("{l}\n"));
        } else {
            own[..first].iter().for_each(|l| out += &format!("{l}\n"));
            out += &format!("... {} more\n", own.len() - first - last);
            own[own.len() - last..]
                .iter()
                .for_each(|l| out += &format!("{l}\n"));
        }
    }
    out
}

/// The whole transcript, with the summary's counts first.
fn everything(t: &Transcript) -> String {
    let lines = lines(t, Format::Text);
    summary(t, &lines, lines.len(), 0)
}

/// Request kinds as the transcript reads them, to compare with the manifest's counts (which
/// summarise.escript took from tshark and binary_to_term).
fn request_counts(t: &Transcript) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for (_, m) in t.messages() {
        if let Body::Request { term, .. } = &m.body {
            let kind = match term {
                Ok(erlboot::etf::Term::Atom(a)) if a.as_str() == "get_cwd" => "get_cwd",
                Ok(erlboot::etf::Term::Tuple(items)) => match items.first() {
                    Some(erlboot::etf::Term::Atom(a)) => match a.as_str() {
                        "get" => "get",
                        "list_dir" => "list_dir",
                        "read_file_info" => "read_file_info",
                        "read_link_info" => "read_link_info",
                        "get_cwd" => "get_cwd",
                        _ => "other",
                    },
                    _ => "other",
                },
                _ => "other",
            };
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
}

/// The capture's entry in captures/manifest.toml.
fn manifest_entry(name: &str) -> toml::Table {
    let text = std::fs::read_to_string(capture_path("manifest.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest["capture"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_table())
        .find(|c| c["file"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not in captures/manifest.toml"))
        .clone()
}

/// The transcript's message counts agree with the manifest's (computed by summarise.escript
/// with tshark's reassembly and binary_to_term): datagrams, boot connections, frames each
/// way, and requests per kind, except that the requests of the kinds in `unread` were not
/// read by the transcript (their term did not decode), so they count as `other`.
fn check_against_manifest(name: &str, t: &Transcript, unread: &[&str]) {
    let entry = manifest_entry(name);
    let num = |key: &str| -> usize {
        entry[key]
            .as_integer()
            .unwrap_or_else(|| panic!("{name}: {key}"))
            .try_into()
            .unwrap()
    };
    let count = |kind: &str| {
        t.messages()
            .iter()
            .filter(|(_, m)| m.body.kind() == kind)
            .count()
    };
    assert_eq!(count("query"), num("udp_requests"), "{name}: queries");
    assert_eq!(count("answer"), num("udp_replies"), "{name}: answers");
    assert_eq!(count("open"), num("tcp_streams"), "{name}: connections");
    assert_eq!(
        t.other_connections,
        num("other_tcp_streams"),
        "{name}: other connections"
    );
    assert_eq!(count("request"), num("requests"), "{name}: requests");
    assert_eq!(count("reply"), num("replies"), "{name}: replies");
    // A stream ending inside a frame is the only gap: no segment is missing from these.
    assert_eq!(count("gap"), num("partial_frames"), "{name}: gaps");
    let commands = entry["commands"].as_table().unwrap();
    let mut expected: BTreeMap<&str, usize> = commands
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_integer().unwrap() as usize))
        .collect();
    for kind in unread {
        *expected.get_mut(kind).unwrap() -= 1;
        *expected.get_mut("other").unwrap() += 1;
    }
    expected.retain(|_, n| *n > 0);
    assert_eq!(request_counts(t), expected, "{name}: requests per kind");
}

/// Reads the capture, checks it against its manifest entry, and returns it with its lines.
fn scenario(name: &str) -> (Transcript, Vec<String>) {
    scenario_with_unread(name, &[])
}

fn scenario_with_unread(name: &str, unread: &[&str]) -> (Transcript, Vec<String>) {
    let t = transcript(name);
    check_against_manifest(name, &t, unread);
    let lines = lines(&t, Format::Text);
    (t, lines)
}

#[test]
fn otp29_boot() {
    let (t, lines) = scenario("otp29-boot.pcap");
    insta::assert_snapshot!(summary(&t, &lines, 8, 6));
}

/// Every request kind over every kind of name, after the boot: all of them and their replies.
#[test]
fn otp25_files() {
    let (t, lines) = scenario("otp25-files.pcap");
    let start = lines
        .iter()
        .position(|l| l.contains("erlboot-capture-edge"))
        .unwrap();
    let text = summary(&t, &lines, 3, 0) + &lines[start..].join("\n");
    insta::assert_snapshot!(text);
}

#[test]
fn otp25_no_server() {
    let (t, _) = scenario("otp25-no-server.pcap");
    insta::assert_snapshot!(everything(&t));
}

#[test]
fn otp25_not_allowed() {
    let (t, _) = scenario("otp25-not-allowed.pcap");
    insta::assert_snapshot!(everything(&t));
}

#[test]
fn otp25_version_mismatch() {
    let (t, _) = scenario("otp25-version-mismatch.pcap");
    insta::assert_snapshot!(everything(&t));
}

#[test]
fn otp25_malformed() {
    // The compressed {get,...} (ETF tag 80) is read as OTP's server reads it.
    let (t, lines) = scenario("otp25-malformed.pcap");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#"c2s request {get,"/usr/lib/erlang/releases/aaaaaaaa"#)),
        "the compressed request, read"
    );
    insta::assert_snapshot!(everything(&t));
}

#[test]
fn otp25_malformed_as_json() {
    let t = transcript("otp25-malformed.pcap");
    let json = lines(&t, Format::Json);
    for line in &json {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["time", "session", "dir", "kind", "term"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
    }
    insta::assert_snapshot!(json.join("\n"));
}

#[test]
fn otp25_server_restart() {
    let (t, lines) = scenario("otp25-server-restart.pcap");
    let text = summary(&t, &lines, 0, 0) + &sessions(&t, &lines, 6, 16);
    insta::assert_snapshot!(text);
}

#[test]
fn otp25_slave_peer() {
    let (t, lines) = scenario("otp25-slave-peer.pcap");
    assert_eq!(t.sessions.len(), 2);
    let text = summary(&t, &lines, 0, 0) + &sessions(&t, &lines, 6, 4);
    insta::assert_snapshot!(text);
}

#[test]
fn otp25_elixir() {
    let (t, lines) = scenario("otp25-elixir.pcap");
    let elixir: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("request") && l.contains("/elixir"))
        .collect();
    let mut text = summary(&t, &lines, 8, 6);
    text += &format!("--- requests naming elixir: {}\n", elixir.len());
    for l in elixir.iter().take(5) {
        text += &format!("{l}\n");
    }
    text += "...\n";
    for l in &elixir[elixir.len().saturating_sub(3)..] {
        text += &format!("{l}\n");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn otp25_sasl() {
    let (t, lines) = scenario("otp25-sasl.pcap");
    insta::assert_snapshot!(summary(&t, &lines, 8, 6));
}
