//! `erlboot dissector`'s Lua run by the real tshark over every committed capture: the boot
//! messages it finds, frame by frame and kind by kind, must be those of erlboot's transcript,
//! and the terms it prints must be erlboot's.
//!
//! tshark is required: without it the test fails (CI installs it with `.ci/install-otp`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use erlboot_conformance::render::message_term;
use erlboot_conformance::transcript::{Transcript, TranscriptOptions};

/// The kinds both sides report (the dissector shows no connection opening, closing or gap).
const KINDS: [&str; 4] = ["query", "answer", "request", "reply"];

/// The dissector shows terms up to this many bytes whole (`TEXT_MAX` in the script).
const TEXT_SHOWN: usize = 400;

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    files
}

/// Writes the dissector with the CLI, as a user would.
fn dissector(dir: &Path) -> PathBuf {
    let path = dir.join("eboot.lua");
    let out = Command::new(env!("CARGO_BIN_EXE_erlboot"))
        .args(["dissector", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
    path
}

/// One boot message as tshark showed it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    frame: u64,
    kind: String,
    term: String,
}

/// Runs tshark with the dissector over a capture, in two passes so that a connection is
/// known as boot traffic even where its EBOOTR comes later in the file (as the transcript
/// knows it), with `ports` as boot servers' on any address. The personal configuration is an
/// empty directory beside the script, so that no one's preferences (TCP reassembly off, a
/// protocol disabled) change what it shows.
fn tshark(lua: &Path, capture: &Path, ports: &[u16]) -> Vec<Shown> {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let config = lua.with_file_name("wireshark-config");
    std::fs::create_dir_all(&config).unwrap();
    let out = Command::new("tshark")
        .env("WIRESHARK_CONFIG_DIR", &config)
        .args(["-o", "tcp.desegment_tcp_streams:TRUE"])
        .args(["-o", &format!("eboot.ports:{}", ports.join(","))])
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .arg("-2")
        .arg("-r")
        .arg(capture)
        .args(["-Y", "eboot || _ws.lua.error", "-T", "json"])
        .args(["-e", "frame.number", "-e", "eboot.kind", "-e", "eboot.term"])
        .args(["-e", "_ws.lua.error"])
        .output()
        .unwrap_or_else(|e| {
            panic!("tshark could not be run ({e}): install it (apt-get install tshark)")
        });
    assert!(
        out.status.success(),
        "tshark failed on {} (if it says eboot.kind is not a valid field, the Lua did not \
         load: Lua disabled, e.g. for root by an init.lua with \
         run_user_scripts_when_superuser = false):\n{}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let packets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut shown = Vec::new();
    for packet in packets.as_array().unwrap() {
        let layers = &packet["_source"]["layers"];
        let strings = |field: &str| -> Vec<String> {
            layers[field].as_array().map_or_else(Vec::new, |values| {
                values
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            })
        };
        let frame: u64 = strings("frame.number")[0].parse().unwrap();
        assert!(
            layers.get("_ws.lua.error").is_none(),
            "{}: the dissector failed on frame {frame}: {}",
            capture.display(),
            layers["_ws.lua.error"]
        );
        let (kinds, terms) = (strings("eboot.kind"), strings("eboot.term"));
        assert_eq!(
            kinds.len(),
            terms.len(),
            "a term per message in frame {frame}"
        );
        for (kind, term) in kinds.into_iter().zip(terms) {
            shown.push(Shown { frame, kind, term });
        }
    }
    shown.sort();
    shown
}

/// The transcript's messages of the kinds the dissector shows, and the frame of its first
/// gap, if it has one.
fn transcript(capture: &Path, ports: &[u16]) -> (Vec<Shown>, Option<u64>) {
    let options = TranscriptOptions {
        ports: ports.to_vec(),
    };
    let transcript = Transcript::read(capture, &options).unwrap();
    let messages = transcript.messages();
    let first_gap = messages
        .iter()
        .filter(|(_, m)| m.body.kind() == "gap")
        .map(|(_, m)| m.number)
        .min();
    let mut shown: Vec<Shown> = messages
        .into_iter()
        .filter(|(_, m)| KINDS.contains(&m.body.kind()))
        .map(|(_, m)| Shown {
            frame: m.number,
            kind: m.body.kind().to_string(),
            term: message_term(m),
        })
        .collect();
    shown.sort();
    (shown, first_gap)
}

fn counts(shown: &[Shown]) -> BTreeMap<&'static str, usize> {
    KINDS
        .iter()
        .map(|&k| (k, shown.iter().filter(|s| s.kind == k).count()))
        .collect()
}

/// Compares what tshark shows of a capture with erlboot's transcript of it, and returns the
/// count per kind of each.
///
/// Up to the capture's first gap (segments it missed) they must be the same messages in the
/// same frames with the same terms. After it, tshark shows a part of what the transcript
/// does: Wireshark's reassembly waits for the missing bytes and shows nothing more of that
/// direction, where the transcript marks the cut frame lost and reads on.
fn compare(lua: &Path, capture: &Path, ports: &[u16]) -> [BTreeMap<&'static str, usize>; 2] {
    let name = capture.file_name().unwrap().to_string_lossy().to_string();
    let by_tshark = tshark(lua, capture, ports);
    let (by_erlboot, first_gap) = transcript(capture, ports);
    let (tshark_counts, erlboot_counts) = (counts(&by_tshark), counts(&by_erlboot));
    eprintln!("{name}: tshark {tshark_counts:?}, transcript {erlboot_counts:?}");

    let gap = first_gap.unwrap_or(u64::MAX);
    let (before, after): (Vec<&Shown>, Vec<&Shown>) = by_tshark.iter().partition(|s| s.frame < gap);
    let (expected_before, mut unmatched): (Vec<&Shown>, Vec<&Shown>) =
        by_erlboot.iter().partition(|s| s.frame < gap);
    assert_eq!(
        before.len(),
        expected_before.len(),
        "{name}: messages before frame {gap}"
    );
    let mut whole = 0;
    for (t, e) in before.iter().zip(&expected_before) {
        assert_eq!((t.frame, &t.kind), (e.frame, &e.kind), "{name}");
        whole += same_term(&name, t, e);
    }
    for t in after {
        let at = unmatched
            .iter()
            .position(|e| (e.frame, &e.kind) == (t.frame, &t.kind))
            .unwrap_or_else(|| {
                panic!(
                    "{name}: frame {}: {} not in the transcript",
                    t.frame, t.kind
                )
            });
        whole += same_term(&name, t, unmatched.remove(at));
    }
    let total = by_tshark.len();
    assert!(
        total == 0 || whole * 2 > total,
        "{name}: only {whole} of {total} terms compared whole"
    );
    [tshark_counts, erlboot_counts]
}

/// Checks that tshark shows a message's term as erlboot does (whole, or cut after
/// [`TEXT_SHOWN`] bytes); 1 if it was compared whole.
fn same_term(name: &str, t: &Shown, e: &Shown) -> usize {
    let (shown, expected) = (&t.term, &e.term);
    if expected.len() <= TEXT_SHOWN {
        assert_eq!(shown, expected, "{name}: frame {}", t.frame);
        1
    } else {
        let cut = shown.strip_suffix("...").expect("a cut term ends in ...");
        assert!(cut.len() + 4 > TEXT_SHOWN, "{name}: frame {}", t.frame);
        assert!(expected.starts_with(cut), "{name}: frame {}", t.frame);
        0
    }
}

#[test]
fn tshark_with_the_dissector_finds_the_transcripts_messages() {
    let scratch = scratch("captures");
    let lua = dissector(&scratch);
    for capture in captures() {
        let [by_tshark, by_erlboot] = compare(&lua, &capture, &[]);
        // Every scenario starts with discovery (some get no answer, or no connection).
        assert!(
            by_erlboot["query"] > 0,
            "{}: {by_erlboot:?}",
            capture.display()
        );
        if !has_gap(&capture) {
            assert_eq!(by_tshark, by_erlboot, "{}", capture.display());
        }
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// A boot made up to be awkward: datagrams that are not EBOOTQ/EBOOTR, a port announced by
/// another server, two frames in one segment, a frame (and its length prefix) split across
/// segments, frames that hold no term or more than one, and terms of every type the
/// dissector prints.
#[test]
fn tshark_agrees_with_the_transcript_on_awkward_traffic() {
    let scratch = scratch("awkward");
    let lua = dissector(&scratch);
    let capture = scratch.join("awkward.pcap");
    std::fs::write(&capture, awkward::pcap(awkward::packets(false))).unwrap();
    let [by_tshark, by_erlboot] = compare(&lua, &capture, &[]);
    let expected: BTreeMap<&str, usize> =
        [("query", 2), ("answer", 3), ("request", 7), ("reply", 4)]
            .into_iter()
            .collect();
    assert_eq!(by_tshark, expected);
    assert_eq!(by_erlboot, expected);
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// The same with a segment of the split reply missed: the transcript marks that reply lost
/// and finds the last one again; tshark waits for the missing bytes and shows no more
/// replies.
#[test]
fn after_a_gap_tshark_shows_part_of_the_transcript() {
    let scratch = scratch("gap");
    let lua = dissector(&scratch);
    let capture = scratch.join("gap.pcap");
    std::fs::write(&capture, awkward::pcap(awkward::packets(true))).unwrap();
    assert!(has_gap(&capture));
    let [by_tshark, by_erlboot] = compare(&lua, &capture, &[]);
    assert_eq!((by_tshark["request"], by_erlboot["request"]), (7, 7));
    assert_eq!((by_tshark["reply"], by_erlboot["reply"]), (1, 2));
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// The same without discovery, as a capture started late: the boot server's port is given
/// (`eboot.ports`, and `--port` to the transcript).
#[test]
fn a_port_given_by_hand_stands_for_discovery() {
    let scratch = scratch("late");
    let lua = dissector(&scratch);
    let capture = scratch.join("late.pcap");
    let packets = awkward::packets(false);
    let tcp = packets.into_iter().skip(awkward::DATAGRAMS).collect();
    std::fs::write(&capture, awkward::pcap(tcp)).unwrap();
    let expected: BTreeMap<&str, usize> =
        [("query", 0), ("answer", 0), ("request", 7), ("reply", 4)]
            .into_iter()
            .collect();
    let [by_tshark, by_erlboot] = compare(&lua, &capture, &[awkward::PORT]);
    assert_eq!(by_tshark, expected);
    assert_eq!(by_erlboot, expected);
    // Without the port, neither finds any boot traffic.
    let [by_tshark, by_erlboot] = compare(&lua, &capture, &[]);
    assert_eq!(by_tshark.values().sum::<usize>(), 0);
    assert_eq!(by_erlboot.values().sum::<usize>(), 0);
    std::fs::remove_dir_all(&scratch).unwrap();
}

fn has_gap(capture: &Path) -> bool {
    transcript(capture, &[]).1.is_some()
}

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("erlboot-dissector-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

mod awkward {
    //! The made-up capture: Ethernet, IPv4, one boot connection.

    use std::time::Duration;

    use erlboot::etf::{self, Atom, BigInt, NodeId, Profile, Term};
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

    const CLIENT: [u8; 4] = [127, 0, 0, 1];
    const SERVER: [u8; 4] = [127, 0, 0, 2];
    const OTHER: [u8; 4] = [127, 0, 0, 3];
    pub const PORT: u16 = 45000;
    /// How many datagrams (discovery) come before the TCP packets.
    pub const DATAGRAMS: usize = 5;

    fn frame(payload: &[u8]) -> Vec<u8> {
        [&(payload.len() as u32).to_be_bytes()[..], payload].concat()
    }

    fn term(term: &Term) -> Vec<u8> {
        frame(&etf::encode(term, Profile::Otp25).unwrap())
    }

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut out, data)
            .unwrap();
        out
    }

    /// One TCP connection's packets, with true sequence and acknowledgement numbers.
    struct Connection {
        client: ([u8; 4], u16),
        server: ([u8; 4], u16),
        next: [u32; 2],
    }

    impl Connection {
        fn segment(&mut self, to_server: bool, flags: &str, data: &[u8]) -> Vec<u8> {
            let (from, to, me) = if to_server {
                (self.client, self.server, 0)
            } else {
                (self.server, self.client, 1)
            };
            let mut b = PacketBuilder::ethernet2([0; 6], [0; 6])
                .ipv4(from.0, to.0, 64)
                .tcp(from.1, to.1, self.next[me], 65535);
            if flags.contains('S') {
                b = b.syn();
            }
            if flags != "S" {
                b = b.ack(self.next[1 - me]);
            }
            if flags.contains('P') {
                b = b.psh();
            }
            if flags.contains('F') {
                b = b.fin();
            }
            let mut out = Vec::new();
            b.write(&mut out, data).unwrap();
            self.next[me] = self.next[me].wrapping_add(data.len() as u32);
            if flags.contains('S') || flags.contains('F') {
                self.next[me] = self.next[me].wrapping_add(1);
            }
            out
        }
    }

    fn node() -> NodeId {
        NodeId {
            node: Atom::new("n@h").unwrap(),
            creation: 7,
        }
    }

    /// The capture's packets; `gap`: without the middle one of the three segments of a reply.
    pub fn packets(gap: bool) -> Vec<Vec<u8>> {
        let mut answer = b"EBOOTR\x00".to_vec();
        answer.extend_from_slice(&PORT.to_be_bytes());
        answer.extend_from_slice(b"15.2.7 \"x\"");
        // Another server's answer names a port that, on this server's address, is no boot
        // server: the connection to it is not boot traffic.
        let mut other = b"EBOOTR\x00".to_vec();
        other.extend_from_slice(&4369u16.to_be_bytes());
        let mut packets = vec![
            udp(CLIENT, 33000, SERVER, 4368, b"HELLO\x01"),
            udp(CLIENT, 33000, SERVER, 4368, b"EBOOTQ15.2.7"),
            udp(SERVER, 4368, CLIENT, 33000, b"EBOOTR\x00"),
            udp(SERVER, 4368, CLIENT, 33000, &answer),
            udp(OTHER, 4368, CLIENT, 33000, &other),
        ];
        let mut epmd = Connection {
            client: (CLIENT, 41999),
            server: (SERVER, 4369),
            next: [100, 900],
        };
        packets.push(epmd.segment(true, "S", &[]));
        packets.push(epmd.segment(false, "SA", &[]));
        packets.push(epmd.segment(true, "PA", &term(&Term::atom("not_boot"))));

        let mut boot = Connection {
            client: (CLIENT, 41000),
            server: (SERVER, PORT),
            next: [1000, 5000],
        };
        packets.push(boot.segment(true, "S", &[]));
        packets.push(boot.segment(false, "SA", &[]));
        packets.push(boot.segment(true, "A", &[]));

        // Two requests in one segment.
        let get_cwd = term(&Term::atom("get_cwd"));
        let get = term(&Term::tuple([Term::atom("get"), Term::string("/a")]));
        packets.push(boot.segment(true, "PA", &[get_cwd, get].concat()));

        // The first reply and two bytes of the second's length; the rest in two segments.
        let cwd = term(&Term::tuple([
            Term::atom("get_cwd"),
            Term::tuple([Term::atom("ok"), Term::string("/tmp")]),
        ]));
        let file = term(&Term::tuple([
            Term::atom("get"),
            Term::tuple([Term::atom("ok"), Term::binary(vec![7u8; 100])]),
        ]));
        packets.push(boot.segment(false, "A", &[&cwd[..], &file[..2]].concat()));
        let middle = boot.segment(false, "A", &file[2..52]);
        if !gap {
            packets.push(middle);
        }
        packets.push(boot.segment(false, "PA", &file[52..]));

        // Strings that are and are not printable, in a request and its reply.
        let names = term(&Term::tuple([
            Term::atom("read_file_info"),
            Term::list([
                Term::string("é€\n\"q\\"),
                Term::list([Term::Int(233), Term::Int(8364), Term::Int(127)]),
                Term::string("\u{85}x"),
            ]),
        ]));
        packets.push(boot.segment(true, "PA", &names));
        let info = term(&Term::tuple([
            Term::atom("read_file_info"),
            Term::tuple([
                Term::atom("ok"),
                Term::tuple([
                    Term::atom("file_info"),
                    Term::Int(5_000_000_000),
                    Term::Int(i64::MIN),
                    BigInt::normalize(true, vec![1; 9]),
                    Term::Int(-7),
                    Term::atom("directory"),
                ]),
            ]),
        ]));
        packets.push(boot.segment(false, "PA", &info));
        // A reply a reader can find again after a gap (the one above is no real file info).
        let root = term(&Term::tuple([
            Term::atom("get_cwd"),
            Term::tuple([Term::atom("ok"), Term::string("/")]),
        ]));
        packets.push(boot.segment(false, "PA", &root));

        // Every other kind of term the dissector prints.
        let odd = term(&Term::tuple([
            Term::atom("héllo wörld"),
            Term::atom("end"),
            Term::Pid {
                node: Box::new(node()),
                id: 42,
                serial: 3,
            },
            Term::Port {
                node: Box::new(node()),
                id: 1 << 40,
            },
            Term::Ref {
                node: Box::new(node()),
                words: vec![1, 2, 3],
            },
            Term::Export {
                module: Box::new(Atom::new("lists").unwrap()),
                function: Box::new(Atom::new("map").unwrap()),
                arity: 2,
            },
            Term::Map(vec![(Term::atom("a"), Term::Float(1.5))]),
            Term::improper_list(vec![Term::Int(1)], Term::Int(2)),
            Term::binary(&b"h\xc3\xa9llo"[..]),
            Term::binary(&b"\xff\x00"[..]),
            Term::bits(&b"\xf0"[..], 4),
            Term::list([]),
            Term::binary(&b""[..]),
        ]));
        packets.push(boot.segment(true, "PA", &odd));

        // Frames that hold no term: nothing, a bad tag, a byte after the term.
        packets.push(boot.segment(true, "PA", &frame(&[])));
        packets.push(boot.segment(true, "PA", &frame(&[131, 255, 0])));
        packets.push(boot.segment(true, "PA", &frame(&[131, 97, 1, 0])));
        packets.push(boot.segment(true, "FA", &[]));
        packets.push(boot.segment(false, "FA", &[]));
        packets
    }

    /// Packets as a pcap file (Ethernet), a millisecond apart.
    pub fn pcap(packets: Vec<Vec<u8>>) -> Vec<u8> {
        let mut w = PcapWriter::with_header(Vec::new(), PcapHeader::default()).unwrap();
        for (i, data) in packets.iter().enumerate() {
            let ts = Duration::from_secs(1_700_000_000) + Duration::from_millis(i as u64);
            w.write_packet(&PcapPacket::new(ts, data.len() as u32, data))
                .unwrap();
        }
        w.into_writer()
    }
}

#[test]
fn dissector_prints_the_script_on_standard_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_erlboot"))
        .arg("dissector")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("-- eboot.lua"));
    assert!(text.contains("DissectorTable.get(\"udp.port\"):add(EBOOT_PORT, eboot)"));
}
