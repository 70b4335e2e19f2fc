//! IPv4 packets read into UDP datagrams and TCP segments.

use std::net::SocketAddrV4;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// TCP control flags that matter for reassembly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// SYN: the segment's sequence number is the sender's initial sequence number.
    pub syn: bool,
    /// ACK (a SYN with ACK answers a SYN).
    pub ack: bool,
    /// FIN: the sender has no more bytes; it takes one sequence number after the payload.
    pub fin: bool,
    /// RST: the connection is aborted.
    pub rst: bool,
}

/// One TCP segment as captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The packet number in the capture file.
    pub number: u64,
    /// Time since the first packet of the capture.
    pub at: std::time::Duration,
    /// Sender.
    pub src: SocketAddrV4,
    /// Receiver.
    pub dst: SocketAddrV4,
    /// Sequence number of the first byte (of the SYN, for a SYN).
    pub seq: u32,
    /// Control flags.
    pub flags: Flags,
    /// The bytes carried.
    pub payload: Vec<u8>,
}

/// What one IPv4 packet carried.
#[derive(Debug)]
pub enum Transport<'a> {
    /// A UDP datagram: source, destination, payload.
    Udp(SocketAddrV4, SocketAddrV4, &'a [u8]),
    /// A TCP segment: source, destination, sequence number, flags, payload.
    Tcp(SocketAddrV4, SocketAddrV4, u32, Flags, &'a [u8]),
    /// A fragment of a larger IP packet (not reassembled: OTP's boot traffic on one host
    /// never fragments).
    Fragment,
    /// Another IP protocol (ICMP, ...).
    Other,
}

/// Reads the transport layer of a sliced IPv4 packet.
pub fn transport<'a>(packet: &SlicedPacket<'a>) -> Transport<'a> {
    let Some(NetSlice::Ipv4(ip)) = &packet.net else {
        return Transport::Other;
    };
    let header = ip.header();
    if header.is_fragmenting_payload() {
        return Transport::Fragment;
    }
    let (src, dst) = (header.source_addr(), header.destination_addr());
    match &packet.transport {
        Some(TransportSlice::Udp(udp)) => Transport::Udp(
            SocketAddrV4::new(src, udp.source_port()),
            SocketAddrV4::new(dst, udp.destination_port()),
            udp.payload(),
        ),
        Some(TransportSlice::Tcp(tcp)) => Transport::Tcp(
            SocketAddrV4::new(src, tcp.source_port()),
            SocketAddrV4::new(dst, tcp.destination_port()),
            tcp.sequence_number(),
            Flags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            },
            tcp.payload(),
        ),
        _ => Transport::Other,
    }
}
