//! OTP's `-hosts` parsing: which boot-server addresses an `erl -loader inet` node queries.
//!
//! `start_inet` (erl_prim_loader.erl:136) takes the values of the flag only when it is given
//! exactly once (`{ok,[Hosts]}`): no `-hosts` and a repeated `-hosts` both give no address at
//! all, and the node never boots. That rule is the caller's to apply; this module parses the
//! values of one `-hosts` flag, as `ipv4_list/1` and `ipv4_addr/2,3` (erl_prim_loader.erl:1382–1405)
//! do.

use std::net::Ipv4Addr;

/// The addresses among the values of one `-hosts` flag, in order, duplicates kept.
///
/// Each value must be a dotted quad as [`parse_host`] reads it; anything else, a host name
/// included, is dropped without a word, as OTP drops it.
pub fn parse_hosts<S: AsRef<str>>(values: &[S]) -> Vec<Ipv4Addr> {
    values
        .iter()
        .filter_map(|value| parse_host(value.as_ref()))
        .collect()
}

/// One `-hosts` value as OTP's `ipv4_addr/2,3` reads it: exactly four groups of ASCII digits
/// separated by dots, each below 256. Leading zeros are plain decimal (`010` is 10, not octal),
/// and there is nothing else: no spaces, signs, empty groups, or trailing dot.
pub fn parse_host(value: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut groups = value.split('.');
    for octet in &mut octets {
        *octet = parse_octet(groups.next()?)?;
    }
    groups.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// A group of one or more ASCII digits whose value is below 256, however many digits it has.
fn parse_octet(group: &str) -> Option<u8> {
    if group.is_empty() || !group.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // OTP accumulates in a bignum, so "0000000001" is 1; only the value is bounded.
    let value = group.bytes().try_fold(0u32, |n, b| {
        Some(n * 10 + u32::from(b - b'0')).filter(|&n| n < 256)
    })?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quads_are_kept_in_order_with_duplicates() {
        assert_eq!(
            parse_hosts(&["127.0.0.1", "10.255.255.1", "127.0.0.1"]),
            [
                Ipv4Addr::new(127, 0, 0, 1),
                Ipv4Addr::new(10, 255, 255, 1),
                Ipv4Addr::new(127, 0, 0, 1)
            ]
        );
    }

    #[test]
    fn host_names_are_dropped_silently() {
        // PROTOCOL.md §1.5: `-hosts localhost` boots nothing.
        assert!(parse_hosts(&["localhost"]).is_empty());
        assert_eq!(
            parse_hosts(&["localhost", "192.168.1.9", "boot.example"]),
            [Ipv4Addr::new(192, 168, 1, 9)]
        );
    }

    #[test]
    fn no_values_no_addresses() {
        assert!(parse_hosts::<&str>(&[]).is_empty());
    }

    #[test]
    fn broadcast_addresses_are_addresses() {
        assert_eq!(parse_host("255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(parse_host("10.0.0.255"), Some(Ipv4Addr::new(10, 0, 0, 255)));
    }

    #[test]
    fn each_octet_is_below_256() {
        assert_eq!(parse_host("256.0.0.1"), None);
        assert_eq!(parse_host("1.2.3.256"), None);
        assert_eq!(parse_host("1.2.3.99999999999999999999999"), None);
        assert_eq!(parse_host("0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn leading_zeros_are_decimal() {
        assert_eq!(
            parse_host("010.001.0000.0255"),
            Some(Ipv4Addr::new(10, 1, 0, 255))
        );
    }

    #[test]
    fn exactly_four_groups_of_digits() {
        for bad in [
            "",
            "1",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.",
            ".1.2.3",
            "1..2.3",
            "1.2.3.4 ",
            " 1.2.3.4",
            "+1.2.3.4",
            "1.2.3.-4",
            "0x7f.0.0.1",
            "1.2.3.4/8",
            "::1",
            "1.2.3.٤",
        ] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }
}
