//! The discovery responder, sans-IO: an `EBOOTQ` datagram and its source in, an `EBOOTR`
//! answer (or the reason for silence) out.

use std::net::IpAddr;

use crate::proto::discovery::{Answer, Query};

use super::policy::AllowList;

/// Which client versions get an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Versions {
    /// Exactly these ERTS versions (e.g. `13.1.5`), compared byte for byte as OTP compares.
    Exact(Vec<String>),
    /// Any version: the answer echoes the client's.
    Any,
}

impl Versions {
    fn answers(&self, version: &[u8]) -> bool {
        match self {
            Versions::Exact(list) => list.iter().any(|v| v.as_bytes() == version),
            Versions::Any => true,
        }
    }
}

/// What to do with a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send these bytes back to the datagram's source.
    Answer(Vec<u8>),
    /// The source is not on the allow list.
    Denied,
    /// An `EBOOTQ` for a version not served; the version bytes as sent.
    OtherVersion(Vec<u8>),
    /// Not an `EBOOTQ` at all.
    Unrecognized,
}

/// Answers discovery queries as OTP's `erl_boot_server` does: the allow list first, then an
/// exact version match, then `EBOOTR`, priority 0, the TCP port and the version.
#[derive(Clone, Debug)]
pub struct Responder {
    allow: AllowList,
    versions: Versions,
    tcp_port: u16,
}

impl Responder {
    /// A responder sending clients to `tcp_port`.
    pub fn new(allow: AllowList, versions: Versions, tcp_port: u16) -> Responder {
        Responder {
            allow,
            versions,
            tcp_port,
        }
    }

    /// Replaces the allow list.
    pub fn set_allow(&mut self, allow: AllowList) {
        self.allow = allow;
    }

    /// The verdict on `datagram` from `source`.
    pub fn handle_datagram(&self, source: IpAddr, datagram: &[u8]) -> Verdict {
        if !self.allow.allows(source) {
            return Verdict::Denied;
        }
        let Ok(query) = Query::parse(datagram) else {
            return Verdict::Unrecognized;
        };
        if !self.versions.answers(&query.version) {
            return Verdict::OtherVersion(query.version);
        }
        let answer = Answer {
            priority: 0,
            port: self.tcp_port,
            version: query.version,
        };
        Verdict::Answer(answer.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder(versions: Versions) -> Responder {
        let allow = AllowList::new(["127.0.0.0/8".parse().unwrap()]);
        Responder::new(allow, versions, 48113)
    }

    #[test]
    fn answers_like_otp_25() {
        // PROTOCOL.md §1.2: OTP 25 on port 48113.
        let otp = [
            0x45, 0x42, 0x4F, 0x4F, 0x54, 0x52, 0x00, 0xBB, 0xF1, 0x31, 0x33, 0x2E, 0x31, 0x2E,
            0x35,
        ];
        let r = responder(Versions::Exact(vec!["13.1.5".into()]));
        let local = "127.0.0.1".parse().unwrap();
        assert_eq!(
            r.handle_datagram(local, b"EBOOTQ13.1.5"),
            Verdict::Answer(otp.to_vec())
        );
    }

    #[test]
    fn versions_match_exactly_and_any_echoes() {
        let r = responder(Versions::Exact(vec!["13.1.5".into(), "15.2.7".into()]));
        let local = "127.0.0.1".parse().unwrap();
        for other in [&b"EBOOTQ13.1"[..], b"EBOOTQ13.1.5\n", b"EBOOTQ"] {
            assert!(matches!(
                r.handle_datagram(local, other),
                Verdict::OtherVersion(_)
            ));
        }
        assert!(matches!(
            r.handle_datagram(local, b"EBOOTQ15.2.7"),
            Verdict::Answer(_)
        ));
        assert_eq!(r.handle_datagram(local, b"garbage"), Verdict::Unrecognized);
        assert_eq!(r.handle_datagram(local, b""), Verdict::Unrecognized);
        let any = responder(Versions::Any);
        let Verdict::Answer(bytes) = any.handle_datagram(local, b"EBOOTQ17.1.1") else {
            panic!("any version is answered");
        };
        assert_eq!(Answer::parse(&bytes).unwrap().version, b"17.1.1");
    }

    #[test]
    fn the_allow_list_comes_first() {
        let r = responder(Versions::Any);
        let outside = "10.0.0.1".parse().unwrap();
        assert_eq!(r.handle_datagram(outside, b"EBOOTQ13.1.5"), Verdict::Denied);
        assert_eq!(r.handle_datagram(outside, b"garbage"), Verdict::Denied);
    }
}
