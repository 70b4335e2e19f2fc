//! Link layers: where the IP packet starts in a captured frame.
//!
//! Ethernet (`tcpdump -i lo`) through etherparse; Linux cooked captures v1 (SLL) and v2
//! (SLL2, what `tcpdump -i any` writes) and BSD loopback (`DLT_NULL`, `DLT_LOOP`) by hand:
//! etherparse has no parser for SLL2 or loopback headers, and its SLL parser refuses the
//! loopback device's hardware type (`ARPHRD_LOOPBACK`), which is what loopback traffic
//! captured on `any` carries. The IP packet itself is always sliced by etherparse.

use etherparse::{EtherType, SlicedPacket};
use pcap_file::DataLink;

/// The length of a Linux cooked capture v1 header (protocol in its last two bytes).
pub const SLL_HEADER_LEN: usize = 16;
/// The length of a Linux cooked capture v2 header (protocol in its first two bytes).
pub const SLL2_HEADER_LEN: usize = 20;

/// What a captured frame holds, as far as this crate cares.
#[derive(Debug)]
pub enum Network<'a> {
    /// An IPv4 packet, sliced into its headers and payload.
    Ipv4(Box<SlicedPacket<'a>>),
    /// An IPv6 packet (skipped: OTP's inet loader is IPv4 only).
    Ipv6,
    /// Anything else: ARP, other protocols.
    Other,
    /// A link type this crate does not read.
    UnsupportedLink,
    /// Headers that do not parse (too short, inconsistent lengths).
    Malformed(String),
}

/// Finds the IP packet in a frame of the given link type. `big_endian` is the byte order of
/// the file, which `DLT_NULL` headers follow.
pub fn network(link: DataLink, data: &[u8], big_endian: bool) -> Network<'_> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL | DataLink::LINUX_SLL2 => {
            let (len, at) = if link == DataLink::LINUX_SLL {
                (SLL_HEADER_LEN, 14)
            } else {
                (SLL2_HEADER_LEN, 0)
            };
            if data.len() < len {
                return Network::Malformed(format!(
                    "{}-byte frame is shorter than a Linux cooked capture header",
                    data.len()
                ));
            }
            let protocol = EtherType(u16::from_be_bytes([data[at], data[at + 1]]));
            SlicedPacket::from_ether_type(protocol, &data[len..])
        }
        DataLink::NULL | DataLink::LOOP => {
            let Some(header) = data.get(..4) else {
                return Network::Malformed(format!(
                    "{}-byte frame is shorter than a loopback header",
                    data.len()
                ));
            };
            let header = [header[0], header[1], header[2], header[3]];
            // DLT_LOOP is always big-endian; DLT_NULL is in the writing host's order.
            let family = if link == DataLink::LOOP || big_endian {
                u32::from_be_bytes(header)
            } else {
                u32::from_le_bytes(header)
            };
            match family {
                // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS.
                2 => SlicedPacket::from_ip(&data[4..]),
                10 | 24 | 28 | 30 => return Network::Ipv6,
                _ => return Network::Other,
            }
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
        _ => return Network::UnsupportedLink,
    };
    match sliced {
        Ok(packet) => match &packet.net {
            Some(etherparse::NetSlice::Ipv4(_)) => Network::Ipv4(Box::new(packet)),
            Some(etherparse::NetSlice::Ipv6(_)) => Network::Ipv6,
            _ => Network::Other,
        },
        Err(e) => {
            if is_ipv6(link, data) {
                Network::Ipv6
            } else {
                Network::Malformed(e.to_string())
            }
        }
    }
}

/// Whether an unparseable frame was at least IPv6 (skipped rather than malformed).
fn is_ipv6(link: DataLink, data: &[u8]) -> bool {
    let ether_type = match link {
        DataLink::ETHERNET => data.get(12..14),
        DataLink::LINUX_SLL => data.get(14..16),
        DataLink::LINUX_SLL2 => data.get(..2),
        DataLink::RAW | DataLink::IPV6 => return data.first().is_some_and(|b| b >> 4 == 6),
        _ => None,
    };
    ether_type == Some(&[0x86, 0xDD][..])
}
