//! A conformance case and its verdict: what one captured exchange was held to, against which
//! target, and how it ended.
//!
//! A case is named `CAPTURE/KIND/NNNN` (`otp25-boot/server/0042`): the capture's name, the
//! kind of check, and the case's number within that capture and kind, counted in capture
//! order from 1 — stable as long as the capture does not change.

use std::fmt;

use erlboot::etf::{Decoder, Limits};

use crate::render::term_text;

/// What a case holds an implementation to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A captured request sent to a server: its reply must be the captured reply's bytes.
    Server,
    /// A captured call made by erlboot's loader: the same request bytes, and every captured
    /// reply read to the value OTP's client reads.
    Client,
    /// A captured EBOOTQ sent to a responder: OTP's EBOOTR bytes, or silence where OTP was
    /// silent.
    Discovery,
    /// A gap in time a real client showed, against erlboot's loader in virtual time.
    Timing,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 4] = [Kind::Server, Kind::Client, Kind::Discovery, Kind::Timing];

    /// `server`, `client`, `discovery` or `timing`: the kind's part of a case id.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Discovery => "discovery",
            Kind::Timing => "timing",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The target did what OTP did, byte for byte.
    Pass,
    /// A documented, deliberate difference from OTP (the verdict's detail names it).
    NonStrict,
    /// The target did something else.
    Fail,
    /// Nothing to judge, only to show (what depends on the machine: file times, cwd).
    Info,
    /// The case cannot be judged from this capture (a frame lost in a capture gap).
    Unsupported,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Pass,
        Outcome::NonStrict,
        Outcome::Fail,
        Outcome::Info,
        Outcome::Unsupported,
    ];

    /// `pass`, `non-strict`, `fail`, `info` or `unsupported`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::NonStrict => "non-strict",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A case's stable name: `otp25-boot/server/0042`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId {
    /// The capture's name (its file name without `.pcap`/`.pcapng`).
    pub capture: String,
    /// The kind of check.
    pub kind: Kind,
    /// 1-based, in capture order within the capture and kind.
    pub number: u32,
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{:04}", self.capture, self.kind, self.number)
    }
}

/// The bytes a case compared: what was sent, what OTP answered, what the target answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// What was sent (a `{packet,4}` payload, or an EBOOTQ datagram).
    pub sent: Vec<u8>,
    /// What the capture shows came back (`None`: nothing did).
    pub expected: Option<Vec<u8>>,
    /// What the target gave back (`None`: nothing).
    pub actual: Option<Vec<u8>>,
}

impl Exchange {
    /// Where `actual` first differs from `expected` (a length difference counts at the shorter
    /// one's end), or `None` if they are the same.
    pub fn first_difference(&self) -> Option<usize> {
        match (&self.expected, &self.actual) {
            (Some(expected), Some(actual)) => first_difference(expected, actual),
            (None, None) => None,
            _ => Some(0),
        }
    }

    /// What was sent, as text: an Erlang term, or the datagram's characters.
    pub fn sent_text(&self) -> String {
        payload_text(&self.sent)
    }

    /// What OTP answered, as text (`none` for silence).
    pub fn expected_text(&self) -> String {
        self.expected
            .as_deref()
            .map_or_else(|| "none".into(), payload_text)
    }

    /// What the target answered, as text (`none` for silence).
    pub fn actual_text(&self) -> String {
        self.actual
            .as_deref()
            .map_or_else(|| "none".into(), payload_text)
    }
}

/// Where two byte strings first differ, or `None` if they are equal.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(at) => Some(at),
        None if a.len() == b.len() => None,
        None => Some(a.len().min(b.len())),
    }
}

/// A payload as text a person reads: its Erlang term (binaries summarised), or, for what is not
/// one term (a discovery datagram), its bytes with the printable ones as characters.
pub fn payload_text(payload: &[u8]) -> String {
    if payload.is_empty() {
        return "<<>>".to_owned();
    }
    match Decoder::new(Limits::reply()).decode_prefix(payload) {
        Ok((term, used)) if used == payload.len() => term_text(&term),
        _ => payload
            .iter()
            .map(|&b| match b {
                b' '..=b'~' if b != b'\\' => (b as char).to_string(),
                _ => format!("\\x{b:02x}"),
            })
            .collect(),
    }
}

/// One case judged against one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Which case.
    pub id: CaseId,
    /// What was held to it: `in-process`, `otp`, `erlboot`, or a `HOST:PORT`.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The case in a few words (the request as an Erlang term, the gap measured, ...).
    pub summary: String,
    /// Why it ended so: the documented difference for Non-strict, what differed for Fail,
    /// what was missing for Unsupported.
    pub detail: String,
    /// The bytes compared, when the case compared bytes.
    pub exchange: Option<Exchange>,
}

impl Verdict {
    /// The case's id as text, `otp25-boot/server/0042`.
    pub fn name(&self) -> String {
        self.id.to_string()
    }
}

/// How many verdicts ended in each outcome, in [`Outcome::ALL`]'s order.
pub fn tally(verdicts: &[Verdict]) -> [(Outcome, usize); 5] {
    Outcome::ALL.map(|o| (o, verdicts.iter().filter(|v| v.outcome == o).count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_padded_and_ordered_by_capture_kind_number() {
        let id = |capture: &str, kind, number| CaseId {
            capture: capture.into(),
            kind,
            number,
        };
        assert_eq!(
            id("otp25-boot", Kind::Server, 42).to_string(),
            "otp25-boot/server/0042"
        );
        let mut ids = [
            id("b", Kind::Server, 1),
            id("a", Kind::Client, 2),
            id("a", Kind::Server, 10),
            id("a", Kind::Server, 9),
        ];
        ids.sort();
        let names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            names,
            [
                "a/server/0009",
                "a/server/0010",
                "a/client/0002",
                "b/server/0001"
            ]
        );
    }

    #[test]
    fn first_difference_finds_the_byte_or_the_shorter_end() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"ab", b"abc"), Some(2));
        assert_eq!(first_difference(b"abc", b"a"), Some(1));
        let exchange = |expected: Option<&[u8]>, actual: Option<&[u8]>| Exchange {
            sent: vec![],
            expected: expected.map(<[u8]>::to_vec),
            actual: actual.map(<[u8]>::to_vec),
        };
        assert_eq!(exchange(None, None).first_difference(), None);
        assert_eq!(exchange(Some(b"x"), None).first_difference(), Some(0));
        assert_eq!(
            exchange(Some(b"xy"), Some(b"xz")).first_difference(),
            Some(1)
        );
    }

    #[test]
    fn payloads_read_as_terms_or_as_escaped_bytes() {
        assert_eq!(payload_text(b"\x83d\x00\x07get_cwd"), "get_cwd");
        assert_eq!(payload_text(b"EBOOTQ13.1\x00"), "EBOOTQ13.1\\x00");
        assert_eq!(payload_text(b""), "<<>>");
    }
}
