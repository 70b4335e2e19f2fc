//! The ceiling: a server that answers each request with the reply recorded for the same
//! request bytes, from memory. No file system, no policy: what the machine's TCP and the load
//! generator allow, the bound any real server stays under.
//!
//! Its replies are recorded at run time, from one boot served by `erlboot serve` on this very
//! machine (so the ceiling sends what erlboot sends, byte for byte), and handed to the ceiling's
//! process in a file of request and reply frames, one pair after the other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::proto::frame::FrameDecoder;

/// Request frames the ceiling accepts; the boot's largest is well below.
const MAX_REQUEST: u32 = 1 << 20;

/// Request payload (no header) → the whole reply frame.
pub type Replies = HashMap<Bytes, Bytes>;

/// Why the ceiling cannot start.
#[derive(Debug, Error)]
pub enum CeilingError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: a frame at byte {offset} runs past the end of the file")]
    Truncated { path: String, offset: usize },
    #[error("{path}: a request without its reply")]
    Unpaired { path: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// The file the ceiling reads: each request frame followed by its reply frame.
pub fn encode_recording<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (request, reply) in pairs {
        out.extend_from_slice(request);
        out.extend_from_slice(reply);
    }
    out
}

/// Reads a recording back; the first reply recorded for a request wins.
pub fn decode_recording(bytes: &[u8], path: &str) -> Result<Replies, CeilingError> {
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let truncated = || CeilingError::Truncated {
            path: path.to_owned(),
            offset,
        };
        let header: [u8; 4] = bytes
            .get(offset..offset + 4)
            .ok_or_else(truncated)?
            .try_into()
            .expect("four bytes");
        let end = offset + 4 + u32::from_be_bytes(header) as usize;
        let frame = bytes.get(offset..end).ok_or_else(truncated)?;
        frames.push(Bytes::copy_from_slice(frame));
        offset = end;
    }
    if frames.len() % 2 != 0 {
        return Err(CeilingError::Unpaired {
            path: path.to_owned(),
        });
    }
    let mut replies = Replies::new();
    for pair in frames.chunks_exact(2) {
        replies
            .entry(pair[0].slice(4..))
            .or_insert_with(|| pair[1].clone());
    }
    Ok(replies)
}

/// Serves connections on `listener` for ever, one task each. A request it has no reply for
/// closes the connection.
pub async fn serve(listener: TcpListener, replies: Arc<Replies>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let replies = replies.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let frames = FrameDecoder::new(MAX_REQUEST);
            let mut buf = BytesMut::with_capacity(4 << 10);
            loop {
                while let Ok(Some(request)) = frames.decode(&mut buf) {
                    let Some(reply) = replies.get(&request) else {
                        return;
                    };
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
                if buf.remaining() > MAX_REQUEST as usize {
                    return;
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
}

/// The ceiling's process: reads the recording at `path`, listens on 127.0.0.1 on a port of
/// the system's choice, prints `listening tcp=ADDR` and serves until killed.
pub fn run(path: &Path) -> Result<(), CeilingError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CeilingError::Io {
        path: name.clone(),
        source,
    })?;
    let replies = Arc::new(decode_recording(&bytes, &name)?);
    let runtime = tokio::runtime::Runtime::new().map_err(CeilingError::Runtime)?;
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| CeilingError::Listen { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| CeilingError::Listen { addr, source })?;
        println!("listening tcp={local}");
        serve(listener, replies).await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_recording_reads_back_as_request_to_reply() {
        let (q1, r1, q2, r2) = (frame(b"a"), frame(b"reply a"), frame(b"bb"), frame(b""));
        let again = frame(b"other reply for a");
        let bytes = encode_recording([
            (&q1[..], &r1[..]),
            (&q2[..], &r2[..]),
            (&q1[..], &again[..]),
        ]);
        let replies = decode_recording(&bytes, "f").unwrap();
        assert_eq!(replies.len(), 2);
        assert_eq!(&replies[&Bytes::from_static(b"a")][..], &r1[..]);
        assert_eq!(&replies[&Bytes::from_static(b"bb")][..], &r2[..]);
    }

    #[test]
    fn broken_recordings_are_typed_errors() {
        let q = frame(b"abc");
        assert!(matches!(
            decode_recording(&q, "f"),
            Err(CeilingError::Unpaired { .. })
        ));
        assert!(matches!(
            decode_recording(&q[..5], "f"),
            Err(CeilingError::Truncated { offset: 0, .. })
        ));
        let mut two = q.clone();
        two.extend_from_slice(&[0, 0]);
        assert!(matches!(
            decode_recording(&two, "f"),
            Err(CeilingError::Truncated { offset: 7, .. })
        ));
    }
}
