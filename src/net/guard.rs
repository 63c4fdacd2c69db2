//! Which addresses outbound requests may reach (SSRF guard), shared by input fetching, job
//! validation and webhook delivery. Pure: classifies IP addresses and URL hosts; resolving
//! names is `resolve`'s job, so the check happens on the address actually connected to.

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Why an address is not reachable by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    UniqueLocal,
    Multicast,
    Broadcast,
    Documentation,
    CloudMetadata,
    /// Other special-purpose ranges (this-network, benchmarking, reserved, Teredo, ...).
    SpecialPurpose,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::Unspecified => "an unspecified address",
            Reserved::Loopback => "a loopback address",
            Reserved::Private => "a private network address",
            Reserved::LinkLocal => "a link-local address",
            Reserved::SharedCgnat => "a carrier-grade NAT address",
            Reserved::UniqueLocal => "a unique-local address",
            Reserved::Multicast => "a multicast address",
            Reserved::Broadcast => "a broadcast address",
            Reserved::Documentation => "a documentation address",
            Reserved::CloudMetadata => "a cloud metadata address",
            Reserved::SpecialPurpose => "a special-purpose address",
        })
    }
}

/// An address the policy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is {class}")]
pub struct Blocked {
    pub(crate) ip: IpAddr,
    pub class: Reserved,
}

/// Refuses special-purpose addresses except the ranges explicitly allowed
/// (`MERCHGEN_FETCH_ALLOW`, e.g. `127.0.0.0/8` for tests or a private deployment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy opening the given ranges.
    pub fn new(allow: Vec<IpNet>) -> Self {
        AddressPolicy { allow }
    }

    /// Ok when `ip` may be connected to.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = |a: IpAddr| self.allow.iter().any(|net| net.contains(&a));
        if allowed(ip) || embedded.is_some_and(allowed) {
            return Ok(());
        }
        match classify(ip) {
            Some(class) => Err(Blocked { ip, class }),
            None => Ok(()),
        }
    }
}

/// The special-purpose class of an address, `None` for an ordinary public one.
pub(crate) fn classify(ip: IpAddr) -> Option<Reserved> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

const V4_RANGES: &[(u32, u8, Reserved)] = &[
    (0xA9FE_A9FE, 32, Reserved::CloudMetadata), // 169.254.169.254
    (0x0000_0000, 32, Reserved::Unspecified),   // 0.0.0.0
    (0xFFFF_FFFF, 32, Reserved::Broadcast),     // 255.255.255.255
    (0x0000_0000, 8, Reserved::SpecialPurpose), // 0/8 "this network"
    (0x0A00_0000, 8, Reserved::Private),        // 10/8
    (0x6440_0000, 10, Reserved::SharedCgnat),   // 100.64/10
    (0x7F00_0000, 8, Reserved::Loopback),       // 127/8
    (0xA9FE_0000, 16, Reserved::LinkLocal),     // 169.254/16
    (0xAC10_0000, 12, Reserved::Private),       // 172.16/12
    (0xC000_0000, 24, Reserved::SpecialPurpose), // 192.0.0/24 IETF
    (0xC000_0200, 24, Reserved::Documentation), // 192.0.2/24
    (0xC058_6300, 24, Reserved::SpecialPurpose), // 192.88.99/24 6to4 relay
    (0xC0A8_0000, 16, Reserved::Private),       // 192.168/16
    (0xC612_0000, 15, Reserved::SpecialPurpose), // 198.18/15 benchmarking
    (0xC633_6400, 24, Reserved::Documentation), // 198.51.100/24
    (0xCB00_7100, 24, Reserved::Documentation), // 203.0.113/24
    (0xE000_0000, 4, Reserved::Multicast),      // 224/4
    (0xF000_0000, 4, Reserved::SpecialPurpose), // 240/4 reserved
];

const V6_RANGES: &[(u128, u8, Reserved)] = &[
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        Reserved::CloudMetadata,
    ), // fd00:ec2::254
    (0, 128, Reserved::Unspecified),                   // ::
    (1, 128, Reserved::Loopback),                      // ::1
    (0x0064_ff9b_0001 << 80, 48, Reserved::Private),   // 64:ff9b:1::/48 local NAT64
    (0x0100 << 112, 64, Reserved::SpecialPurpose),     // 100::/64 discard
    (0x2001_0000 << 96, 32, Reserved::SpecialPurpose), // 2001::/32 Teredo
    (0x2001_0db8 << 96, 32, Reserved::Documentation),  // 2001:db8::/32
    (0x3fff << 112, 20, Reserved::Documentation),      // 3fff::/20
    (0xfc00 << 112, 7, Reserved::UniqueLocal),         // fc00::/7
    (0xfe80 << 112, 10, Reserved::LinkLocal),          // fe80::/10
    (0xfec0 << 112, 10, Reserved::Private),            // fec0::/10 old site-local
    (0xff00 << 112, 8, Reserved::Multicast),           // ff00::/8
];

fn in_range<T>(addr: T, net: T, len: u8, bits: u32) -> bool
where
    T: Copy + std::ops::Shr<u32, Output = T> + PartialEq,
{
    let shift = bits - u32::from(len);
    // A /0 matches everything (and shifting by the full width would overflow).
    shift >= bits || (addr >> shift) == (net >> shift)
}

fn classify_v4(ip: Ipv4Addr) -> Option<Reserved> {
    let a = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|(net, len, _)| in_range(a, *net, *len, 32))
        .map(|(_, _, class)| *class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Reserved> {
    let a = u128::from(ip);
    if let Some(found) = V6_RANGES
        .iter()
        .find(|(net, len, _)| in_range(a, *net, *len, 128))
    {
        return Some(found.2);
    }
    embedded_v4(ip).and_then(classify_v4)
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`) IPv6 address.
pub(crate) fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let a = u128::from(ip);
    let low = Ipv4Addr::from((a & 0xFFFF_FFFF) as u32);
    if a >> 32 == 0xFFFF || a >> 32 == 0 || a >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(low);
    }
    if a >> 112 == 0x2002 {
        return Some(Ipv4Addr::from(((a >> 80) & 0xFFFF_FFFF) as u32));
    }
    None
}

/// Why a URL is refused before any connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlRefusal {
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("{0}")]
    Address(Blocked),
}

/// Check a URL's scheme and, for a literal IP host (including the decimal, octal and hex forms,
/// which the URL parser normalises to IPv4), the address itself. Names are checked after
/// resolution by `resolve::GuardedResolver`.
pub(crate) fn check_url(url: &Url, policy: &AddressPolicy) -> Result<(), UrlRefusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefusal::Scheme);
    }
    let ip = match url.host() {
        None => return Err(UrlRefusal::NoHost),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(d)) => match d.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(()),
        },
    };
    policy.check(ip).map_err(UrlRefusal::Address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<Reserved> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classify_covers_special_ranges() {
        let cases = [
            ("127.0.0.1", Reserved::Loopback),
            ("10.1.2.3", Reserved::Private),
            ("172.31.255.255", Reserved::Private),
            ("192.168.0.1", Reserved::Private),
            ("100.64.0.1", Reserved::SharedCgnat),
            ("169.254.169.254", Reserved::CloudMetadata),
            ("169.254.1.1", Reserved::LinkLocal),
            ("0.0.0.0", Reserved::Unspecified),
            ("255.255.255.255", Reserved::Broadcast),
            ("224.0.0.1", Reserved::Multicast),
            ("203.0.113.9", Reserved::Documentation),
            ("::1", Reserved::Loopback),
            ("::", Reserved::Unspecified),
            ("::ffff:127.0.0.1", Reserved::Loopback),
            ("::ffff:10.0.0.1", Reserved::Private),
            ("::127.0.0.1", Reserved::Loopback),
            ("64:ff9b::a9fe:a9fe", Reserved::CloudMetadata),
            ("2002:7f00:1::", Reserved::Loopback),
            ("fd00:ec2::254", Reserved::CloudMetadata),
            ("fd12::1", Reserved::UniqueLocal),
            ("fe80::1", Reserved::LinkLocal),
            ("ff02::1", Reserved::Multicast),
            ("2001:db8::1", Reserved::Documentation),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn classify_passes_public_addresses() {
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1",
            "::ffff:1.1.1.1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn allow_list_opens_ranges_including_mapped_forms() {
        let policy = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("10.0.0.1".parse().unwrap()).is_err());
        assert!(policy.check("::1".parse().unwrap()).is_err());
    }

    #[test]
    fn check_url_sees_normalised_literal_hosts() {
        let policy = AddressPolicy::default();
        for u in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::ffff:7f00:1]/",
            "http://0/",
        ] {
            let url = Url::parse(u).unwrap();
            assert!(
                matches!(check_url(&url, &policy), Err(UrlRefusal::Address(_))),
                "{u}"
            );
        }
        let ftp = Url::parse("ftp://example.com/x").unwrap();
        assert_eq!(check_url(&ftp, &policy), Err(UrlRefusal::Scheme));
        let name = Url::parse("https://example.com/x.png").unwrap();
        assert_eq!(check_url(&name, &policy), Ok(()));
    }
}
