//! `{packet,4}` frames of a reassembled stream, and how reading resumes after a hole.
//!
//! Where the capture holds every byte, frames follow one another: a 4-byte big-endian length,
//! then that many bytes. A hole (bytes the capture missed, [`Hole`]) cuts the frame it falls
//! in, which is lost; reading resumes after it in one of two ways:
//!
//! - **exactly**, when the cut frame's 4-byte header was captured: the next frame starts where
//!   the header says the cut one ends, if that is past the hole ([`Resync::Exact`]);
//! - **by search**, when the header itself was missed (or the next frame starts inside the
//!   hole): the bytes after the hole are scanned for the first offset that is *safely* a frame
//!   start ([`Resync::Searched`]), and the bytes passed over are counted as skipped.
//!
//! An offset is taken as a frame start only if all of these hold:
//! 1. its length prefix is at most [`MAX_SEARCH_FRAME`] and the whole frame was captured;
//! 2. the payload is *plausible* for the direction: for the boot protocol, one complete
//!    External Term Format term of exactly that length that reads as a typed request
//!    (client to server) or reply (server to client) — see
//!    [`Transcript`](crate::transcript::Transcript);
//! 3. the frame chains: the bytes right after it are the end of the captured run, or another
//!    length prefix at most [`MAX_SEARCH_FRAME`] whose payload, if captured whole, is
//!    plausible too, and otherwise starts with the ETF version byte 131.
//!
//! Why this is safe enough: random bytes pass 1 and 2 only if four of them happen to equal the
//! length of a well-formed term that follows them exactly and has the shape of a request or
//! reply, and 3 asks the same of the next frame. What does pass 1 and 2 inside a file's
//! contents is an embedded term preceded by its own length: a `.boot` file or another
//! `term_to_binary` output inside a `{get,{ok,Binary}}` reply, preceded by the binary's 4-byte
//! length. Such a term is a boot script, not a request or reply, so 2 rejects it. A file whose
//! contents are themselves a framed boot-protocol exchange (a capture served as a file) could
//! still fool the search; no file of an OTP installation is one.
//!
//! If no offset in the run after a hole passes, the whole run is skipped
//! ([`Resync::NotFound`]) and the search goes on after the next hole. Nothing here panics on
//! any stream.

use crate::reassembly::{ByteStream, Hole, Mark, Piece, Run, StreamStart};

/// The longest frame the search after a hole accepts (256 MiB, above any file OTP serves at
/// boot). Frames read from a known boundary have no such limit.
pub const MAX_SEARCH_FRAME: u32 = 256 << 20;

/// A complete `{packet,4}` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Stream offset of the length prefix.
    pub offset: u64,
    /// The latest packet that supplied the frame's bytes: when it was all there.
    pub completed: Mark,
    /// The bytes after the length prefix.
    pub payload: Vec<u8>,
}

/// How reading resumed after a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resync {
    /// At the end of the cut frame, whose header was captured.
    Exact,
    /// At a frame start found by search (see the module documentation).
    Searched,
    /// No safe frame start was found in the bytes after the gap, up to the next gap or the
    /// end of the stream.
    NotFound,
    /// The stream ended (or the capture did) before anything after the gap.
    EndOfStream,
}

impl Resync {
    /// A lowercase name: `exact`, `searched`, `not_found`, `end_of_stream`.
    pub fn name(self) -> &'static str {
        match self {
            Resync::Exact => "exact",
            Resync::Searched => "searched",
            Resync::NotFound => "not_found",
            Resync::EndOfStream => "end_of_stream",
        }
    }
}

/// A gap in a stream's frames: bytes the capture missed, and what it cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapReport {
    /// Stream offset of the first missing byte.
    pub offset: u64,
    /// How many bytes are missing; `None` for the unknown bytes before the first captured
    /// byte of a connection whose SYN is not in the capture.
    pub missing: Option<u64>,
    /// The packet that showed the gap (the first one after it).
    pub seen: Mark,
    /// The frame the gap cut, now lost: its offset and, when its header was captured, the
    /// payload length the header declared. `None` when the gap fell where no frame boundary
    /// was known.
    pub cut: Option<CutFrame>,
    /// Captured bytes after the gap passed over before reading resumed (the cut frame's tail,
    /// or bytes searched through).
    pub skipped: u64,
    /// How reading resumed.
    pub resync: Resync,
}

/// The frame a gap cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutFrame {
    /// Stream offset of its length prefix.
    pub offset: u64,
    /// The payload length its header declared, when the header was captured.
    pub declared: Option<u32>,
}

/// A frame started but never finished, at the end of a stream with no gap before it: the
/// connection or the capture ended in the middle of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// Stream offset of its length prefix.
    pub offset: u64,
    /// Bytes of it captured, prefix included.
    pub have: u64,
    /// Bytes it needs, prefix included, when the prefix was captured.
    pub want: Option<u64>,
    /// The last packet that supplied bytes of it.
    pub seen: Mark,
}

/// What a stream holds, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameEvent {
    /// A complete frame.
    Frame(Frame),
    /// Bytes the capture missed.
    Gap(GapReport),
    /// A frame the stream ended in.
    Unfinished(Unfinished),
}

/// Splits a stream into frames, gaps and an unfinished tail. `plausible` tells whether a
/// payload found by search after a gap is a real frame (see the module documentation).
pub fn frames(stream: &ByteStream, plausible: &dyn Fn(&[u8]) -> bool) -> Vec<FrameEvent> {
    let mut reader = Reader {
        plausible,
        events: Vec::new(),
        boundary: None,
        partial: None,
        pending: None,
    };
    let pieces = stream.pieces();
    if stream.start == StreamStart::Syn {
        reader.boundary = Some(0);
    } else if let Some(Piece::Data(run)) = pieces.first() {
        reader.pending = Some(GapReport {
            offset: 0,
            missing: None,
            seen: run.chunks[0].from,
            cut: None,
            skipped: 0,
            resync: Resync::NotFound,
        });
    }
    for piece in pieces {
        match piece {
            Piece::Hole(hole) => reader.hole(hole),
            Piece::Data(run) => reader.run(run),
        }
    }
    reader.finish()
}

struct Reader<'p> {
    plausible: &'p dyn Fn(&[u8]) -> bool,
    events: Vec<FrameEvent>,
    /// Offset of the next frame's length prefix, when known.
    boundary: Option<u64>,
    /// The frame the last run ended in: its offset, its declared length if the prefix was
    /// captured, its captured bytes and the last packet supplying them.
    partial: Option<(u64, Option<u32>, u64, Mark)>,
    /// A gap whose resynchronisation is not settled yet.
    pending: Option<GapReport>,
}

impl Reader<'_> {
    fn hole(&mut self, hole: &Hole) {
        if let Some(gap) = self.pending.take() {
            // Nothing was read between the previous gap and this one: either the bytes
            // between were the tail of the frame it cut (whose end was known), or no safe
            // frame start was found in them.
            let resync = if self.boundary.is_some() {
                Resync::Exact
            } else {
                Resync::NotFound
            };
            self.events
                .push(FrameEvent::Gap(GapReport { resync, ..gap }));
        }
        let hole_end = hole.offset + hole.len;
        let cut = match (self.partial.take(), self.boundary) {
            (Some((offset, declared, _, _)), _) => {
                let end = declared.map(|len| offset + 4 + u64::from(len));
                // Known end past the hole: the next frame starts there.
                self.boundary = end.filter(|&end| end >= hole_end);
                Some(CutFrame { offset, declared })
            }
            // The next frame's header is in the hole.
            (None, Some(boundary)) if boundary < hole_end => {
                self.boundary = None;
                Some(CutFrame {
                    offset: boundary,
                    declared: None,
                })
            }
            // A known boundary past the hole (inside a long frame already cut) stays.
            (None, Some(_)) => None,
            (None, None) => None,
        };
        self.pending = Some(GapReport {
            offset: hole.offset,
            missing: Some(hole.len),
            seen: hole.seen,
            cut,
            skipped: 0,
            // Settled when reading resumes, or when the next gap or the end comes first.
            resync: Resync::NotFound,
        });
    }

    fn run(&mut self, run: &Run) {
        let end = run.end();
        let start = match self.boundary {
            Some(boundary) if boundary > end => {
                // Still inside a cut frame: all of this run is its tail.
                self.skip(run.bytes.len() as u64);
                return;
            }
            Some(boundary) => {
                self.skip(boundary.saturating_sub(run.offset));
                self.settle(Resync::Exact);
                boundary.max(run.offset)
            }
            None => match self.search(run) {
                Some(found) => {
                    self.skip(found - run.offset);
                    self.settle(Resync::Searched);
                    found
                }
                None => {
                    self.skip(run.bytes.len() as u64);
                    return;
                }
            },
        };
        let bytes = &run.bytes;
        let mut at = start;
        loop {
            let i = (at - run.offset) as usize;
            let Some(prefix) = bytes.get(i..i + 4) else {
                break;
            };
            let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            let frame_end = at + 4 + u64::from(len);
            if frame_end > end {
                break;
            }
            let completed = run.completed(at, frame_end).unwrap_or(run.chunks[0].from);
            self.events.push(FrameEvent::Frame(Frame {
                offset: at,
                completed,
                payload: bytes[i + 4..(frame_end - run.offset) as usize].to_vec(),
            }));
            at = frame_end;
        }
        self.boundary = Some(at);
        if at < end {
            let i = (at - run.offset) as usize;
            let declared = bytes
                .get(i..i + 4)
                .map(|p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
            let seen = run.completed(at, end).unwrap_or(run.chunks[0].from);
            self.partial = Some((at, declared, end - at, seen));
        }
    }

    fn skip(&mut self, bytes: u64) {
        if let Some(gap) = &mut self.pending {
            gap.skipped += bytes;
        }
    }

    fn settle(&mut self, resync: Resync) {
        if let Some(gap) = self.pending.take() {
            self.events
                .push(FrameEvent::Gap(GapReport { resync, ..gap }));
        }
    }

    /// The first offset of the run that is safely a frame start, if any.
    fn search(&self, run: &Run) -> Option<u64> {
        let bytes = &run.bytes;
        let prefix_at = |i: usize| -> Option<u32> {
            let p = bytes.get(i..i.checked_add(4)?)?;
            Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        };
        let whole = |i: usize| -> Option<&[u8]> {
            let len = prefix_at(i)?;
            if len > MAX_SEARCH_FRAME {
                return None;
            }
            bytes.get(i + 4..i + 4 + len as usize)
        };
        (0..bytes.len().saturating_sub(3))
            .find(|&i| {
                let Some(payload) = whole(i) else {
                    return false;
                };
                if !(self.plausible)(payload) {
                    return false;
                }
                let next = i + 4 + payload.len();
                if next >= bytes.len() {
                    return true;
                }
                match prefix_at(next) {
                    // A run that ends inside the next prefix: nothing more to check.
                    None => true,
                    Some(len) if len > MAX_SEARCH_FRAME => false,
                    Some(_) => match whole(next) {
                        Some(following) => (self.plausible)(following),
                        None => bytes.get(next + 4).map_or(true, |&b| b == 131),
                    },
                }
            })
            .map(|i| run.offset + i as u64)
    }

    fn finish(mut self) -> Vec<FrameEvent> {
        if let Some(gap) = self.pending.take() {
            // A known place to resume, or nothing at all after the gap: the stream ended first.
            let resync = if self.boundary.is_some() || gap.skipped == 0 {
                Resync::EndOfStream
            } else {
                Resync::NotFound
            };
            self.events
                .push(FrameEvent::Gap(GapReport { resync, ..gap }));
        } else if let Some((offset, declared, have, seen)) = self.partial.take() {
            self.events.push(FrameEvent::Unfinished(Unfinished {
                offset,
                have,
                want: declared.map(|len| 4 + u64::from(len)),
                seen,
            }));
        }
        self.events
    }
}
