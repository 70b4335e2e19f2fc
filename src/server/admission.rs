//! Admission: whether a new connection may be served — the allow list at accept and the
//! connection limits — as sans-IO state every driver asks.
//!
//! A driver calls [`Admission::admit`] for each accepted connection, before reading or writing
//! a byte, and [`Admission::release`] when an admitted one closes. A refused connection is
//! closed without a byte, so a client outside the allow list learns nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::policy::{AllowList, ConnectionLimits};

/// Why a connection was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The peer is not on the allow list.
    #[error("not on the allow list")]
    NotAllowed,
    /// The server holds its maximum of connections.
    #[error("connection limit reached ({max} open)")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The peer's address holds its maximum of connections.
    #[error("per-address connection limit reached ({max} open from this address)")]
    TooManyFromAddress {
        /// The limit.
        max: usize,
    },
}

/// Open connections, overall and per address, against the allow list and the limits.
#[derive(Clone, Debug)]
pub struct Admission {
    allow: AllowList,
    limits: ConnectionLimits,
    open: usize,
    per_address: BTreeMap<IpAddr, usize>,
}

impl Admission {
    /// Nothing open yet.
    pub fn new(allow: AllowList, limits: ConnectionLimits) -> Admission {
        Admission {
            allow,
            limits,
            open: 0,
            per_address: BTreeMap::new(),
        }
    }

    /// Admits a connection from `peer`, counting it as open, or says why not.
    pub fn admit(&mut self, peer: IpAddr) -> Result<(), Refusal> {
        if !self.allow.allows(peer) {
            return Err(Refusal::NotAllowed);
        }
        if self.open >= self.limits.max_connections {
            return Err(Refusal::TooMany {
                max: self.limits.max_connections,
            });
        }
        let mine = self.per_address.get(&peer).copied().unwrap_or(0);
        if mine >= self.limits.max_per_ip {
            return Err(Refusal::TooManyFromAddress {
                max: self.limits.max_per_ip,
            });
        }
        self.open += 1;
        self.per_address.insert(peer, mine + 1);
        Ok(())
    }

    /// An admitted connection from `peer` closed. Releasing more than was admitted is ignored.
    pub fn release(&mut self, peer: IpAddr) {
        let Some(mine) = self.per_address.get_mut(&peer) else {
            return;
        };
        *mine -= 1;
        if *mine == 0 {
            self.per_address.remove(&peer);
        }
        self.open -= 1;
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Connections open now from `peer`.
    pub fn open_from(&self, peer: IpAddr) -> usize {
        self.per_address.get(&peer).copied().unwrap_or(0)
    }

    /// Replaces the allow list; connections already admitted stay.
    pub fn set_allow(&mut self, allow: AllowList) {
        self.allow = allow;
    }

    /// The allow list in force.
    pub fn allow(&self) -> &AllowList {
        &self.allow
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Cidr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admission(max_connections: usize, max_per_ip: usize) -> Admission {
        let allow = AllowList::new(["10.0.0.0/8".parse::<Cidr>().unwrap()]);
        Admission::new(
            allow,
            ConnectionLimits {
                max_connections,
                max_per_ip,
            },
        )
    }

    #[test]
    fn the_allow_list_is_checked_first() {
        let mut a = admission(0, 0);
        assert_eq!(a.admit(ip("192.168.0.1")), Err(Refusal::NotAllowed));
        assert_eq!(a.admit(ip("10.0.0.1")), Err(Refusal::TooMany { max: 0 }));
        assert_eq!(a.open(), 0);
    }

    #[test]
    fn limits_count_overall_and_per_address_and_free_on_release() {
        let mut a = admission(3, 2);
        assert_eq!(a.admit(ip("10.0.0.1")), Ok(()));
        assert_eq!(a.admit(ip("10.0.0.1")), Ok(()));
        assert_eq!(
            a.admit(ip("10.0.0.1")),
            Err(Refusal::TooManyFromAddress { max: 2 })
        );
        assert_eq!(a.admit(ip("10.0.0.2")), Ok(()));
        assert_eq!(a.admit(ip("10.0.0.3")), Err(Refusal::TooMany { max: 3 }));
        assert_eq!((a.open(), a.open_from(ip("10.0.0.1"))), (3, 2));
        a.release(ip("10.0.0.1"));
        assert_eq!((a.open(), a.open_from(ip("10.0.0.1"))), (2, 1));
        assert_eq!(a.admit(ip("10.0.0.3")), Ok(()));
        a.release(ip("10.9.9.9"));
        assert_eq!(a.open(), 3, "a release never admitted changes nothing");
        for peer in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            a.release(ip(peer));
        }
        assert_eq!((a.open(), a.open_from(ip("10.0.0.1"))), (0, 0));
    }

    #[test]
    fn a_new_allow_list_applies_to_new_connections_only() {
        let mut a = admission(10, 10);
        a.admit(ip("10.0.0.1")).unwrap();
        a.set_allow(AllowList::new(["192.168.0.0/16".parse::<Cidr>().unwrap()]));
        assert_eq!(a.admit(ip("10.0.0.1")), Err(Refusal::NotAllowed));
        assert_eq!(a.open(), 1);
        assert_eq!(a.admit(ip("192.168.3.4")), Ok(()));
    }
}
