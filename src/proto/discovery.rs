//! Discovery datagrams: the client's `EBOOTQ` query and the server's `EBOOTR` answer (UDP 4368).

use thiserror::Error;

/// The UDP port boot servers listen on ("same as epmd but for udp").
pub const PORT: u16 = 4368;
/// What every query starts with; the client's ERTS version follows, with no terminator.
pub const QUERY_PREFIX: &[u8; 6] = b"EBOOTQ";
/// What every answer starts with; priority, TCP port and the server's version follow.
pub const ANSWER_PREFIX: &[u8; 6] = b"EBOOTR";

/// The buffer a discovery socket reads datagrams into: the largest UDP payload, rounded up.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// A datagram that is not the message it was read as.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DiscoveryError {
    /// The datagram does not start with `EBOOTQ`.
    #[error("not an EBOOTQ query")]
    NotQuery,
    /// The datagram does not start with `EBOOTR`, or is shorter than the 9 bytes an answer needs.
    #[error("not an EBOOTR answer")]
    NotAnswer,
}

/// `EBOOTQ` followed by the client's ERTS version (`erlang:system_info(version)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    /// The version bytes as sent, e.g. `b"13.1.5"` from OTP 25.2.3.
    pub version: Vec<u8>,
}

impl Query {
    /// A query for servers of `version`.
    pub fn new(version: impl Into<Vec<u8>>) -> Query {
        Query {
            version: version.into(),
        }
    }

    /// Reads a query. Any bytes after the prefix are the version, as OTP's server sees them.
    pub fn parse(datagram: &[u8]) -> Result<Query, DiscoveryError> {
        datagram
            .strip_prefix(QUERY_PREFIX)
            .map(Query::new)
            .ok_or(DiscoveryError::NotQuery)
    }

    /// The datagram's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        [QUERY_PREFIX.as_slice(), &self.version].concat()
    }
}

/// `EBOOTR`, a priority byte, the server's TCP port (big-endian) and the server's ERTS version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Answer {
    /// Always 0 from OTP; a client stops collecting answers early once it has seen a 0.
    pub priority: u8,
    /// The TCP port the boot server accepts connections on.
    pub port: u16,
    /// The server's version bytes; clients ignore them.
    pub version: Vec<u8>,
}

impl Answer {
    /// Reads an answer the way OTP's client does: `EBOOTR`, priority, port, then anything.
    pub fn parse(datagram: &[u8]) -> Result<Answer, DiscoveryError> {
        match datagram.strip_prefix(ANSWER_PREFIX) {
            Some([priority, hi, lo, version @ ..]) => Ok(Answer {
                priority: *priority,
                port: u16::from_be_bytes([*hi, *lo]),
                version: version.to_vec(),
            }),
            _ => Err(DiscoveryError::NotAnswer),
        }
    }

    /// The datagram's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.version.len());
        out.extend_from_slice(ANSWER_PREFIX);
        out.push(self.priority);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.version);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp25_query_bytes() {
        // PROTOCOL.md §1.1, seen on OTP 25.2.3.
        let bytes = [
            0x45, 0x42, 0x4F, 0x4F, 0x54, 0x51, 0x31, 0x33, 0x2E, 0x31, 0x2E, 0x35,
        ];
        assert_eq!(Query::new("13.1.5").to_bytes(), bytes);
        assert_eq!(Query::parse(&bytes).unwrap().version, b"13.1.5");
    }

    #[test]
    fn otp25_answer_bytes() {
        // PROTOCOL.md §1.2: OTP 25 server on TCP port 48113.
        let bytes = [
            0x45, 0x42, 0x4F, 0x4F, 0x54, 0x52, 0x00, 0xBB, 0xF1, 0x31, 0x33, 0x2E, 0x31, 0x2E,
            0x35,
        ];
        let answer = Answer::parse(&bytes).unwrap();
        assert_eq!(
            answer,
            Answer {
                priority: 0,
                port: 48113,
                version: b"13.1.5".to_vec()
            }
        );
        assert_eq!(answer.to_bytes(), bytes);
    }

    #[test]
    fn answers_need_nine_bytes_and_the_prefix() {
        assert_eq!(
            Answer::parse(b"EBOOTR\0\x01"),
            Err(DiscoveryError::NotAnswer)
        );
        assert_eq!(
            Answer::parse(b"EBOOTQ\0\x01\x02"),
            Err(DiscoveryError::NotAnswer)
        );
        let minimal = Answer::parse(b"EBOOTR\x07\x01\x02").unwrap();
        assert_eq!((minimal.priority, minimal.port), (7, 258));
        assert!(minimal.version.is_empty());
    }

    #[test]
    fn queries_need_the_prefix() {
        assert_eq!(Query::parse(b""), Err(DiscoveryError::NotQuery));
        assert_eq!(Query::parse(b"EBOOT"), Err(DiscoveryError::NotQuery));
        assert_eq!(Query::parse(b"EBOOTQ").unwrap().version, b"");
    }
}
