//! Who may boot and how much they may take: the allow list and the connection limits.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

/// An IPv4 block, `10.0.0.0/8` or a single address `10.1.2.3` (a /32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: Ipv4Addr,
    bits: u8,
}

impl Cidr {
    /// The block of `bits` leading bits of `addr`; `None` if `bits` exceeds 32.
    pub fn new(addr: Ipv4Addr, bits: u8) -> Option<Cidr> {
        (bits <= 32).then(|| Cidr {
            network: Ipv4Addr::from(u32::from(addr) & Cidr::mask(bits)),
            bits,
        })
    }

    fn mask(bits: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0)
    }

    /// Whether `addr` is inside the block.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & Cidr::mask(self.bits) == u32::from(self.network)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

/// Why an allow-list entry could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an IPv4 address; the boot protocol is IPv4 only.
    #[error("{0:?} is not an IPv4 address (the boot protocol is IPv4 only)")]
    Address(String),
    /// The prefix length is not a number from 0 to 32.
    #[error("{0:?} is not a prefix length from 0 to 32")]
    Bits(String),
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, bits) = match s.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (s, None),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::Address(addr.into()))?;
        let bits = match bits {
            None => 32,
            Some(b) => b.parse().map_err(|_| CidrError::Bits(b.into()))?,
        };
        Cidr::new(addr, bits).ok_or_else(|| CidrError::Bits(bits.to_string()))
    }
}

/// The addresses that may discover the server and connect to it: checked for every datagram
/// and at every accept, as OTP checks its slave list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    blocks: Vec<Cidr>,
}

impl AllowList {
    /// A list allowing exactly these blocks (none: nobody).
    pub fn new(blocks: impl IntoIterator<Item = Cidr>) -> AllowList {
        AllowList {
            blocks: blocks.into_iter().collect(),
        }
    }

    /// Whether `addr` may boot. IPv6 peers are allowed only as IPv4-mapped addresses.
    pub fn allows(&self, addr: IpAddr) -> bool {
        let v4 = match addr {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return false,
            },
        };
        self.blocks.iter().any(|b| b.contains(v4))
    }

    /// The blocks, in the order given.
    pub fn blocks(&self) -> &[Cidr] {
        &self.blocks
    }
}

/// The largest request frame accepted by default: real requests are file names, well under.
pub const DEFAULT_MAX_REQUEST: u32 = 64 * 1024;

/// Per-connection limits: what one session may send and how long it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// The largest request frame accepted; a larger length prefix closes the connection
    /// before anything is buffered. Real requests are file names: well under 64 KiB.
    pub max_request: u32,
    /// Close a connection that sent nothing for this long. OTP clients close their own
    /// connection after 60 s without a request, so the default leaves them room.
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose request frame is still incomplete after this long (slowloris).
    pub frame_timeout: Option<Duration>,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            max_request: DEFAULT_MAX_REQUEST,
            idle_timeout: Some(Duration::from_secs(120)),
            frame_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// Server-wide limits on connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most; one more is closed on accept.
    pub max_connections: usize,
    /// Open connections from one address at most.
    pub max_per_ip: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 16_384,
            max_per_ip: 256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str]) -> AllowList {
        AllowList::new(list.iter().map(|s| s.parse::<Cidr>().unwrap()))
    }

    #[test]
    fn blocks_match_by_prefix() {
        let list = allow(&["10.0.0.0/8", "192.168.1.7"]);
        assert!(list.allows("10.255.3.4".parse().unwrap()));
        assert!(!list.allows("11.0.0.1".parse().unwrap()));
        assert!(list.allows("192.168.1.7".parse().unwrap()));
        assert!(!list.allows("192.168.1.8".parse().unwrap()));
        assert!(list.allows("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!list.allows("::1".parse().unwrap()));
    }

    #[test]
    fn zero_bits_allow_everyone_and_empty_allows_nobody() {
        assert!(allow(&["0.0.0.0/0"]).allows("203.0.113.9".parse().unwrap()));
        assert!(!AllowList::default().allows("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn host_bits_are_masked_and_bad_entries_are_typed_errors() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "localhost".parse::<Cidr>(),
            Err(CidrError::Address("localhost".into()))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Bits("33".into()))
        );
        assert_eq!(
            "10.0.0.0/x".parse::<Cidr>(),
            Err(CidrError::Bits("x".into()))
        );
        assert!("::1".parse::<Cidr>().is_err());
    }
}
