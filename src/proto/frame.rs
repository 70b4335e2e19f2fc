//! `{packet,4}` framing: each message is a 4-byte big-endian length and that many bytes.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use crate::etf::{self, EncodeError, Profile, Term};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// The buffer a frame is first encoded into, in bytes.
const FIRST_CAPACITY: usize = 256;

/// The most the decoder reserves ahead of bytes that have not arrived.
const RESERVE_AHEAD: usize = 64 << 10;

/// A frame the decoder refuses.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The header announces more bytes than the decoder accepts.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
}

/// An incremental frame decoder with a maximum frame size.
///
/// It owns no buffer: the driver appends what it reads to a [`BytesMut`] and calls
/// [`FrameDecoder::decode`] until it returns `Ok(None)`. A header over the limit is refused as
/// soon as its 4 bytes are there, before any of the announced bytes are buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameDecoder {
    max_len: u32,
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_len` payload bytes.
    pub const fn new(max_len: u32) -> FrameDecoder {
        FrameDecoder { max_len }
    }

    /// The largest payload accepted.
    pub fn max_len(&self) -> u32 {
        self.max_len
    }

    /// The next complete frame's payload, removed from `buf`; `None` while it is incomplete.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(header.try_into().expect("4 bytes"));
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        let len = len as usize;
        if buf.len() < HEADER_LEN + len {
            // Make room for the next reads, but never commit memory to a length the peer merely
            // announced: the buffer grows as the bytes arrive.
            buf.reserve((HEADER_LEN + len - buf.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// The payload of `data` when `data` is exactly one frame within the limit (a message
    /// written at once mostly arrives so), without a buffer to split it from; otherwise
    /// `None`, and the bytes are for [`FrameDecoder::decode`].
    pub fn whole<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let (header, payload) = data.split_first_chunk::<HEADER_LEN>()?;
        let len = u32::from_be_bytes(*header);
        (len <= self.max_len && len as usize == payload.len()).then_some(payload)
    }

    /// [`FrameDecoder::whole`] for bytes held in a [`Bytes`]: the payload shares them.
    pub fn decode_whole(&self, mut data: Bytes) -> Result<Bytes, Bytes> {
        if self.whole(&data).is_none() {
            return Err(data);
        }
        data.advance(HEADER_LEN);
        Ok(data)
    }
}

/// Appends a frame carrying `payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let len = u32::try_from(payload.len()).map_err(|_| EncodeError::TooLong {
        what: "frame",
        len: payload.len(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// A whole frame carrying the encoding of `term`, encoded in place (no intermediate copy).
pub fn encode_term_frame(term: &Term, profile: Profile) -> Result<Vec<u8>, EncodeError> {
    frame_of(|out| etf::encode_into(term, profile, out))
}

/// A whole frame whose payload `encode` appends to the buffer it is given, in place.
pub fn frame_of(
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<Vec<u8>, EncodeError> {
    // Room for a request (a command and a path) from the start, rather than growing to it.
    let mut out = Vec::with_capacity(FIRST_CAPACITY);
    frame_into(&mut out, encode)?;
    Ok(out)
}

/// [`frame_of`] in `out`, which is cleared first and keeps its capacity.
pub fn frame_into(
    out: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    out.clear();
    out.resize(HEADER_LEN, 0);
    encode(out)?;
    let len = out.len() - HEADER_LEN;
    write_header(out, len).ok_or(EncodeError::TooLong { what: "frame", len })
}

/// Fills in the header of a frame whose first [`HEADER_LEN`] bytes were left for it, for a
/// payload of `payload_len` bytes (which may go on past `frame`: file contents sent after
/// their head). `None`, and nothing written, when no frame can be that long.
pub fn write_header(frame: &mut [u8], payload_len: usize) -> Option<()> {
    let len = u32::try_from(payload_len).ok()?;
    frame
        .get_mut(..HEADER_LEN)?
        .copy_from_slice(&len.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_frame_is_taken_as_it_is() {
        let decoder = FrameDecoder::new(8);
        let frame = Bytes::from_static(&[0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(decoder.decode_whole(frame.clone()), Ok(frame.slice(4..)));
        let empty = Bytes::from_static(&[0, 0, 0, 0]);
        assert_eq!(decoder.decode_whole(empty), Ok(Bytes::new()));
        let largest = Bytes::from_static(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            decoder.decode_whole(largest.clone()),
            Ok(largest.slice(4..))
        );
        assert_eq!(decoder.whole(&largest), Some(&largest[4..]));
        // Anything else is left to the buffered decoder: part of a frame, more than one, a
        // header alone or cut short, a frame over the limit.
        for other in [
            &frame[..6],
            &[0, 0, 0, 1, b'x', 0, 0, 0, 1, b'y'][..],
            &[0, 0, 0, 2][..],
            &[0, 0, 0][..],
            &[0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9][..],
        ] {
            assert_eq!(decoder.whole(other), None);
            let other = Bytes::copy_from_slice(other);
            assert_eq!(decoder.decode_whole(other.clone()), Err(other));
        }
    }

    #[test]
    fn frames_arrive_byte_by_byte() {
        let mut wire = Vec::new();
        encode_frame(b"one", &mut wire).unwrap();
        encode_frame(b"", &mut wire).unwrap();
        encode_frame(b"three", &mut wire).unwrap();
        let decoder = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, [&b"one"[..], b"", b"three"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_oversized_header_is_refused_before_its_payload() {
        let decoder = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xFF][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLarge {
                len: u32::MAX,
                max: 1 << 20
            })
        );
        assert!(
            buf.capacity() < 1024,
            "nothing reserved for the claimed payload"
        );
    }

    #[test]
    fn an_announced_length_is_not_reserved_ahead_of_its_bytes() {
        let decoder = FrameDecoder::new(1 << 30);
        let mut buf = BytesMut::from(&(1u32 << 29).to_be_bytes()[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= HEADER_LEN + RESERVE_AHEAD);
    }

    #[test]
    fn a_large_frame_grows_its_buffer_by_doubling() {
        let decoder = FrameDecoder::new(1 << 30);
        let len = 4 << 20;
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(len as u32).to_be_bytes());
        let mut moves = 0;
        let mut sent = 0;
        while sent < len {
            let before = buf.capacity();
            assert_eq!(decoder.decode(&mut buf), Ok(None));
            if buf.capacity() != before {
                moves += 1;
            }
            // Room for at most about as many bytes again as came (the allocator may double
            // what was asked for), whatever the header announced.
            assert!(
                buf.capacity() <= 4 * buf.len() + 2 * RESERVE_AHEAD,
                "{} bytes of room for {}",
                buf.capacity(),
                buf.len()
            );
            let chunk = (16 << 10).min(len - sent);
            buf.extend_from_slice(&vec![7; chunk]);
            sent += chunk;
        }
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap().len(), len);
        assert!(moves <= 8, "the buffer was moved {moves} times");
    }

    #[test]
    fn a_partial_header_waits() {
        let decoder = FrameDecoder::new(8);
        let mut buf = BytesMut::from(&[0, 0, 0][..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 3);
    }
}
