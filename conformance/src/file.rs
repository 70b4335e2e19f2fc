//! Capture files, pcap and pcapng: their packet records, each with its link type and time.

use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::CaptureError;

/// The first four bytes of a pcapng file (a section header block).
pub const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

/// The two file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap (`tcpdump -w`), micro- or nanosecond timestamps, either byte order.
    Pcap,
    /// pcapng (`tcpdump -w x.pcapng` on newer libpcap, `dumpcap`, Wireshark).
    PcapNg,
}

/// The format the bytes' magic number names, if any.
pub fn format_of(bytes: &[u8]) -> Option<Format> {
    let magic: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    match magic {
        PCAPNG_MAGIC => Some(Format::PcapNg),
        [0xA1, 0xB2, 0xC3, 0xD4]
        | [0xD4, 0xC3, 0xB2, 0xA1]
        | [0xA1, 0xB2, 0x3C, 0x4D]
        | [0x4D, 0x3C, 0xB2, 0xA1] => Some(Format::Pcap),
        _ => None,
    }
}

/// One packet record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// 1-based position among the file's packet records (what Wireshark calls the frame
    /// number).
    pub number: u64,
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    /// The link layer the data starts with.
    pub link: DataLink,
    /// True when the file (or pcapng section) was written big-endian; BSD loopback headers are
    /// in the writer's byte order.
    pub big_endian: bool,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The packet's length on the wire; more than `data.len()` when the snapshot length cut it.
    pub original_len: u32,
}

/// What reading the records found besides the records themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileSummary {
    /// The number of packet records.
    pub records: u64,
    /// Bytes of a record cut short at the end of the file (tcpdump killed mid-write).
    pub partial_tail: Option<usize>,
    /// pcapng packets naming an interface that was never described (skipped).
    pub unknown_interface: u64,
}

/// Calls `each` for every packet record of a pcap or pcapng file held in memory.
pub fn for_each_record(
    bytes: &[u8],
    mut each: impl FnMut(Record<'_>),
) -> Result<FileSummary, CaptureError> {
    match format_of(bytes) {
        Some(Format::Pcap) => pcap_records(bytes, &mut each),
        Some(Format::PcapNg) => pcapng_records(bytes, &mut each),
        None => Err(CaptureError::NotACapture {
            magic: bytes[..bytes.len().min(4)].to_vec(),
        }),
    }
}

fn pcap_records(
    bytes: &[u8],
    each: &mut dyn FnMut(Record<'_>),
) -> Result<FileSummary, CaptureError> {
    let (mut rest, parser) = PcapParser::new(bytes).map_err(CaptureError::Header)?;
    let header = parser.header();
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    let big_endian = header.endianness == Endianness::Big;
    let mut summary = FileSummary::default();
    while !rest.is_empty() {
        let number = summary.records + 1;
        let (next, raw) = match parser.next_raw_packet(rest) {
            Ok(parsed) => parsed,
            Err(PcapError::IncompleteBuffer) => {
                summary.partial_tail = Some(rest.len());
                break;
            }
            Err(source) => return Err(CaptureError::Record { number, source }),
        };
        rest = next;
        summary.records = number;
        // A fraction past one second is malformed; keep the record, clamp its time.
        let nanos_frac = if nanos {
            u64::from(raw.ts_frac)
        } else {
            u64::from(raw.ts_frac) * 1000
        };
        let timestamp = Duration::from_secs(u64::from(raw.ts_sec))
            + Duration::from_nanos(nanos_frac.min(999_999_999));
        each(Record {
            number,
            timestamp,
            link: header.datalink,
            big_endian,
            data: &raw.data,
            original_len: raw.orig_len,
        });
    }
    Ok(summary)
}

fn pcapng_records(
    bytes: &[u8],
    each: &mut dyn FnMut(Record<'_>),
) -> Result<FileSummary, CaptureError> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(CaptureError::Header)?;
    let mut summary = FileSummary::default();
    let mut blocks = 1u64; // the section header
    let mut last_time = Duration::ZERO;
    while !rest.is_empty() {
        blocks += 1;
        let (next, block) = match parser.next_block(rest) {
            Ok(parsed) => parsed,
            Err(PcapError::IncompleteBuffer) => {
                summary.partial_tail = Some(rest.len());
                break;
            }
            Err(source) => {
                return Err(CaptureError::Record {
                    number: blocks,
                    source,
                })
            }
        };
        rest = next;
        let big_endian = parser.section().endianness == Endianness::Big;
        let (interface, timestamp, data, original_len) = match &block {
            Block::EnhancedPacket(p) => {
                let Some(interface) = parser.packet_interface(p) else {
                    summary.unknown_interface += 1;
                    continue;
                };
                let time = timestamp(interface, p.timestamp);
                (interface, time, &p.data, p.original_len)
            }
            Block::SimplePacket(p) => {
                // No timestamp of its own: it is taken as the previous packet's.
                let Some(interface) = parser.interfaces().first() else {
                    summary.unknown_interface += 1;
                    continue;
                };
                (interface, last_time, &p.data, p.original_len)
            }
            _ => continue,
        };
        summary.records += 1;
        last_time = timestamp;
        each(Record {
            number: summary.records,
            timestamp,
            link: interface.linktype,
            big_endian,
            data,
            original_len,
        });
    }
    Ok(summary)
}

/// The time of an enhanced packet block. pcap-file hands the raw 64-bit timestamp over as
/// nanoseconds; its unit is really the interface's `if_tsresol` (microseconds when absent),
/// and `if_tsoffset` seconds are added to it.
fn timestamp(interface: &InterfaceDescriptionBlock<'_>, raw: Duration) -> Duration {
    let raw = raw.as_nanos();
    let mut per_second: u128 = 1_000_000;
    let mut offset = 0u64;
    for option in &interface.options {
        match option {
            InterfaceDescriptionOption::IfTsResol(r) if r & 0x80 == 0 && *r <= 19 => {
                per_second = 10u128.pow(u32::from(*r));
            }
            InterfaceDescriptionOption::IfTsResol(r) if r & 0x80 != 0 && r & 0x7F <= 64 => {
                per_second = 1u128 << (r & 0x7F);
            }
            InterfaceDescriptionOption::IfTsOffset(s) => offset = *s,
            _ => {}
        }
    }
    let secs = (raw / per_second).min(u128::from(u64::MAX / 2)) as u64;
    let nanos = ((raw % per_second) * 1_000_000_000 / per_second) as u64;
    Duration::from_secs(secs.saturating_add(offset)) + Duration::from_nanos(nanos)
}
