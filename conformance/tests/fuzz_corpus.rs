//! The `capture` fuzz target's seed corpus (fuzz/corpus/capture/seed-*) run as an ordinary
//! test, through the checks the fuzz target runs. Regenerate the seeds with
//! `cargo test -p erlboot-conformance --test fuzz_corpus -- --ignored write_seed_corpus`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use erlboot_conformance::fuzz_checks;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/capture")
}

/// The committed seeds' contents: a local fuzz run adds (and removes) other files here.
fn seeds() -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
        })
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn seed_corpus_passes_the_checks() {
    let seeds = seeds();
    for seed in &seeds {
        fuzz_checks::capture(seed);
    }
    assert!(seeds.len() >= 8, "only {} seeds", seeds.len());
}

/// The first packets of a committed capture (Ethernet link layer), up to about `budget` bytes.
fn first_packets(name: &str, budget: usize) -> Vec<(Duration, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../captures")
        .join(name);
    let bytes = std::fs::read(path).unwrap();
    let (mut rest, parser) = PcapParser::new(&bytes).unwrap();
    let mut out = Vec::new();
    let mut total = 0;
    while !rest.is_empty() && total < budget {
        let (next, p) = parser.next_packet(rest).unwrap();
        rest = next;
        if p.data.len() > 6000 {
            continue; // keep seeds small: skip the big replies (a gap, for the reader)
        }
        total += p.data.len();
        out.push((p.timestamp, p.data.into_owned()));
    }
    out
}

/// Ethernet frames rewritten to another link type.
fn relink(packets: &[(Duration, Vec<u8>)], link: DataLink) -> Vec<(Duration, Vec<u8>)> {
    packets
        .iter()
        .map(|(t, frame)| {
            let ip = &frame[14..];
            let header: Vec<u8> = match link {
                DataLink::ETHERNET => frame[..14].to_vec(),
                DataLink::LINUX_SLL => vec![0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0],
                DataLink::LINUX_SLL2 => {
                    vec![8, 0, 0, 0, 0, 0, 0, 1, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]
                }
                DataLink::NULL => vec![2, 0, 0, 0],
                DataLink::RAW => vec![],
                _ => unreachable!(),
            };
            (*t, [header, ip.to_vec()].concat())
        })
        .collect()
}

fn pcap(link: DataLink, packets: &[(Duration, Vec<u8>)]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (t, data) in packets {
        w.write_packet(&PcapPacket::new(*t, data.len() as u32, data))
            .unwrap();
    }
    w.into_writer()
}

fn pcapng(link: DataLink, packets: &[(Duration, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: link,
        snaplen: 262144,
        options: vec![],
    })
    .unwrap();
    for (t, data) in packets {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            // microseconds, the default resolution
            timestamp: Duration::from_nanos(t.as_micros() as u64),
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![],
        })
        .unwrap();
    }
    w.into_inner()
}

/// A segment script (see `fuzz_checks::segments`).
fn script(handshake: bool, isn_c: u32, isn_s: u32, ops: &[(u8, u16, u8)]) -> Vec<u8> {
    let mut out = vec![1, u8::from(handshake)];
    out.extend_from_slice(&isn_c.to_be_bytes());
    out.extend_from_slice(&isn_s.to_be_bytes());
    for &(flags, offset, len) in ops {
        out.push(flags);
        out.extend_from_slice(&offset.to_be_bytes());
        out.push(len);
    }
    out
}

#[test]
#[ignore = "writes the seed corpus"]
fn write_seed_corpus() {
    let boot = first_packets("otp25-requests.pcap", 40_000);
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let file = |bytes: Vec<u8>| [vec![0u8], bytes].concat();
    for link in [
        DataLink::ETHERNET,
        DataLink::LINUX_SLL,
        DataLink::NULL,
        DataLink::RAW,
    ] {
        seeds.push(file(pcap(link, &relink(&boot, link))));
    }
    seeds.push(file(pcapng(
        DataLink::LINUX_SLL2,
        &relink(&boot, DataLink::LINUX_SLL2),
    )));
    let twenty_seven = first_packets("otp27-boot.pcap", 20_000);
    seeds.push(file(pcapng(DataLink::ETHERNET, &twenty_seven)));
    // Packets missing from the middle, and a file cut mid-record.
    let holed: Vec<_> = boot
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 5)
        .map(|(_, p)| p.clone())
        .collect();
    seeds.push(file(pcap(DataLink::ETHERNET, &holed)));
    let whole = pcap(DataLink::ETHERNET, &boot[..12]);
    seeds.push(file(whole[..whole.len() - 9].to_vec()));
    // Segment scripts: in order with a handshake; shuffled, duplicated and overlapping
    // without one; holes and FINs across the sequence wrap; resets.
    let in_order: Vec<(u8, u16, u8)> = (0..60u16)
        .map(|i| ((i % 2) as u8 | 8, (i / 2) * 200, 200))
        .collect();
    seeds.push(script(true, 1000, 2000, &in_order));
    let mut shuffled = in_order.clone();
    shuffled.reverse();
    shuffled.extend([(8, 50, 255), (9, 199, 2), (8, 0, 200), (8, 300, 100)]);
    seeds.push(script(false, 77, 99, &shuffled));
    let holes: Vec<(u8, u16, u8)> = in_order
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 3)
        .map(|(_, op)| *op)
        .chain([(10, 6200, 10), (11, 6100, 0)])
        .collect();
    seeds.push(script(true, u32::MAX - 300, u32::MAX - 4000, &holes));
    seeds.push(script(
        false,
        5,
        6,
        &[(8, 0, 40), (4, 40, 0), (9, 0, 80), (13, 80, 0), (8, 40, 40)],
    ));
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
    }
}

/// A few thousand deterministic mutations of the seeds (bytes overwritten, cut, repeated),
/// through the same checks: a cheap stand-in for the fuzzer in every `cargo test`.
#[test]
fn mutated_seeds_pass_the_checks() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut runs = 0;
    for seed in seeds() {
        for _ in 0..60 {
            let mut data = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = 1 + (next() as usize) % (data.len().max(2) - 1);
                match next() % 4 {
                    0 => data.truncate(at),
                    1 => {
                        let piece = data[at.min(data.len())..]
                            .iter()
                            .take(64)
                            .copied()
                            .collect::<Vec<_>>();
                        data.splice(at.min(data.len())..at.min(data.len()), piece);
                    }
                    _ => {
                        if let Some(b) = data.get_mut(at) {
                            *b = next() as u8;
                        }
                    }
                }
            }
            fuzz_checks::capture(&data);
            runs += 1;
        }
    }
    assert!(runs >= 480);
}
