//! Captures of real Erlang/OTP network boots, read back as boot-protocol transcripts.
//!
//! A pcap or pcapng file goes in; out come the UDP datagrams and reassembled TCP streams it
//! holds ([`Capture`](capture::Capture)), and, for the boot traffic among them, a
//! [`Transcript`](transcript::Transcript): per session,
//! the discovery queries and answers, the TCP connection's opening and closing, every
//! `{packet,4}` request and reply decoded to erlboot's typed [`Request`](erlboot::proto::Request)
//! and [`Reply`](erlboot::proto::Reply), and the gaps where the capture missed segments.
//!
//! - [`mod@file`]: pcap and pcapng records, timestamps in any resolution;
//! - [`link`]: link layers (Ethernet, Linux cooked SLL and SLL2, BSD loopback, raw IP);
//! - [`packet`]: IPv4 packets read into UDP datagrams and TCP segments;
//! - [`reassembly`]: TCP byte streams per direction, with the capture's gaps;
//! - [`framing`]: `{packet,4}` frames of a stream, resynchronised after a gap;
//! - [`capture`]: everything a capture file holds;
//! - [`boot`]: which traffic is boot traffic, and how it groups into sessions;
//! - [`transcript`]: the typed messages of each session;
//! - [`render`]: transcripts as Erlang-term text lines or JSON lines;
//! - [`decode`]: the `decode` command (`erlboot decode FILE.pcap`);
//! - [`dissector`]: a Wireshark/tshark dissector for the protocol, in Lua;
//! - [`pairing`]: each session's requests paired with their replies, across gaps;
//! - [`rebuild`]: the file tree a capture carries, as a file source;
//! - [`case`]: conformance cases, their ids, outcomes and verdicts;
//! - [`suite`]: the conformance suite: every capture's cases judged in process;
//! - [`live`]: captured sessions replayed over TCP against a running server;
//! - [`materialise`]: a capture's file tree written out to a directory;
//! - [`spawn`]: OTP's server or erlboot serve started on a capture's tree, in namespaces;
//! - [`report`]: verdicts as a table, JSON, JUnit XML or an HTML page;
//! - `fuzz_checks` (feature `fuzzing`): the properties the `capture` fuzz target checks.

pub mod boot;
pub mod capture;
pub mod case;
pub mod decode;
pub mod dissector;
mod error;
pub mod file;
pub mod framing;
#[cfg(feature = "fuzzing")]
pub mod fuzz_checks;
pub mod link;
pub mod live;
pub mod materialise;
pub mod packet;
pub mod pairing;
pub mod reassembly;
pub mod rebuild;
pub mod render;
pub mod report;
pub mod spawn;
pub mod suite;
pub mod transcript;

pub use error::CaptureError;
