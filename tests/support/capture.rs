//! The committed captures as tests read them: UDP datagrams and whole TCP streams with their
//! `{packet,4}` frames, read by the conformance crate's reader (`erlboot_conformance`).
//!
//! A capture a test relies on must be complete: a stream with a hole, or one that began before
//! the capture, is a panic here (the conformance crate itself reads such captures, gaps and
//! all).

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use erlboot_conformance::reassembly::{ByteStream, Direction};

/// Everything read from one capture file.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// UDP datagrams in capture order.
    pub datagrams: Vec<Datagram>,
    /// TCP connections in the order they opened.
    pub streams: Vec<TcpStream>,
}

/// One UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Time since the first packet of the capture.
    pub at: Duration,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// One reassembled TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpStream {
    /// The sender of the SYN.
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    /// All bytes sent by the client, in sequence order.
    pub to_server: Vec<u8>,
    /// All bytes sent by the server, in sequence order.
    pub to_client: Vec<u8>,
    /// The complete `{packet,4}` frames of `to_server`; an incomplete trailing frame is left
    /// out (compare `frames_len(&to_server_frames)` with `to_server.len()`).
    pub to_server_frames: Vec<Frame>,
    /// The complete `{packet,4}` frames of `to_client` (same rule).
    pub to_client_frames: Vec<Frame>,
}

/// One `{packet,4}` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When the last of its bytes arrived, since the first packet of the capture.
    pub at: Duration,
    /// The bytes after the 4-byte big-endian length prefix.
    pub payload: Vec<u8>,
}

/// Reads a capture file. Panics with a message naming the file if it cannot be read, or if a
/// stream in it is not complete.
pub fn read(path: &Path) -> Capture {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("capture {}: cannot read: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("capture {}: {e}", path.display()))
}

/// Reads a capture held in memory.
pub fn parse(bytes: &[u8]) -> Result<Capture, String> {
    let read = erlboot_conformance::capture::Capture::parse(bytes).map_err(|e| e.to_string())?;
    let datagrams = read
        .datagrams
        .into_iter()
        .map(|d| Datagram {
            at: d.at,
            src: d.src,
            dst: d.dst,
            payload: d.payload,
        })
        .collect();
    let mut streams = Vec::new();
    for connection in read.streams {
        let whole = |stream: &ByteStream, way: &str| -> Result<Vec<u8>, String> {
            match stream.is_complete() {
                true => Ok(stream.bytes()),
                false => Err(format!(
                    "{} -> {}: the {way} stream is not whole ({} bytes missing{})",
                    connection.client,
                    connection.server,
                    stream.missing_bytes(),
                    if connection.handshake {
                        ""
                    } else {
                        ", no handshake"
                    }
                )),
            }
        };
        let frames = |direction| -> Vec<Frame> {
            connection
                .frames(direction)
                .into_iter()
                .map(|f| Frame {
                    at: f.completed.at,
                    payload: f.payload,
                })
                .collect()
        };
        streams.push(TcpStream {
            client: connection.client,
            server: connection.server,
            to_server: whole(&connection.to_server, "client's")?,
            to_client: whole(&connection.to_client, "server's")?,
            to_server_frames: frames(Direction::ToServer),
            to_client_frames: frames(Direction::ToClient),
        });
    }
    Ok(Capture { datagrams, streams })
}

/// Splits bytes into `{packet,4}` frames (payloads without the length prefix).
/// Panics if the bytes end with a partial frame.
pub fn split_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let (frames, used) = erlboot_conformance::capture::split_frames(bytes);
    assert_eq!(
        used,
        bytes.len(),
        "split_frames: trailing partial frame at offset {used}: {} bytes left",
        bytes.len() - used
    );
    frames.into_iter().map(<[u8]>::to_vec).collect()
}

/// The number of bytes the frames take on the wire (payloads plus 4-byte prefixes).
pub fn frames_len(frames: &[Frame]) -> usize {
    frames.iter().map(|f| f.payload.len() + 4).sum()
}

pub use erlboot_conformance::capture::join_frames;
