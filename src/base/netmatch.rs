//! Source matching for trusted peers: a configured entry names one socket address, one host or
//! a network, so the PBX is recognised by where it is, not by the port one of its connections
//! happens to come from.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One trusted source: `10.0.0.5:5060` (that address and port), `10.0.0.5` (any port of that
/// host) or `10.0.0.0/24` (any host of that network); IPv6 as `[2001:db8::5]:5060`,
/// `2001:db8::5` or `2001:db8::/64`. IPv4-mapped IPv6 sources match their IPv4 entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedSource {
    /// Exactly this address and port.
    Socket(SocketAddr),
    /// Any port of a network: the address and its prefix length.
    Network(IpAddr, u8),
}

impl TrustedSource {
    /// Whether `addr` is this source.
    pub fn matches(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        match *self {
            TrustedSource::Socket(want) => {
                want.ip().to_canonical() == ip && want.port() == addr.port()
            }
            TrustedSource::Network(net, prefix) => in_network(ip, net.to_canonical(), prefix),
        }
    }
}

/// Whether `ip` is in `net`/`prefix` (both canonical; different families never match).
fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Why an entry is not a source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected an address (10.0.0.5), a network (10.0.0.0/24) or an address and port (10.0.0.5:5060), got \"{0}\""
)]
pub struct TrustedSourceError(String);

impl FromStr for TrustedSource {
    type Err = TrustedSourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || TrustedSourceError(text.to_string());
        if let Ok(socket) = text.parse::<SocketAddr>() {
            return Ok(TrustedSource::Socket(socket));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            let full = if ip.is_ipv4() { 32 } else { 128 };
            return Ok(TrustedSource::Network(ip, full));
        }
        let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let full = if ip.is_ipv4() { 32 } else { 128 };
        if prefix > full {
            return Err(bad());
        }
        Ok(TrustedSource::Network(ip, prefix))
    }
}

impl fmt::Display for TrustedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustedSource::Socket(addr) => write!(f, "{addr}"),
            TrustedSource::Network(ip, prefix) => {
                let full = if ip.is_ipv4() { 32 } else { 128 };
                if *prefix == full {
                    write!(f, "{ip}")
                } else {
                    write!(f, "{ip}/{prefix}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> TrustedSource {
        text.parse().unwrap()
    }

    fn a(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_form_matches_what_it_names() {
        assert!(m("10.0.0.5:5060").matches(a("10.0.0.5:5060")));
        assert!(!m("10.0.0.5:5060").matches(a("10.0.0.5:40000")));
        assert!(m("10.0.0.5").matches(a("10.0.0.5:40000")));
        assert!(!m("10.0.0.5").matches(a("10.0.0.6:5060")));
        assert!(m("10.0.0.0/24").matches(a("10.0.0.200:1")));
        assert!(!m("10.0.0.0/24").matches(a("10.0.1.1:1")));
        assert!(m("0.0.0.0/0").matches(a("192.0.2.1:1")));
        assert!(m("2001:db8::/64").matches(a("[2001:db8::7]:5060")));
        assert!(!m("2001:db8::/64").matches(a("[2001:db9::7]:5060")));
        assert!(m("[2001:db8::5]:5060").matches(a("[2001:db8::5]:5060")));
        assert!(
            !m("2001:db8::/64").matches(a("10.0.0.1:5060")),
            "families differ"
        );
    }

    #[test]
    fn mapped_sources_match_their_ipv4_entries() {
        assert!(m("10.0.0.5").matches(a("[::ffff:10.0.0.5]:4000")));
        assert!(m("10.0.0.5:5060").matches(a("[::ffff:10.0.0.5]:5060")));
        assert!(m("10.0.0.0/8").matches(a("[::ffff:10.9.9.9]:1")));
    }

    #[test]
    fn bad_entries_are_refused_and_good_ones_print_as_written() {
        for bad in [
            "",
            "pbx.example.com",
            "10.0.0.0/33",
            "10.0.0.5:99999",
            "::/129",
            "1.2.3/8",
        ] {
            assert!(bad.parse::<TrustedSource>().is_err(), "{bad}");
        }
        for good in ["10.0.0.5:5060", "10.0.0.5", "10.0.0.0/24", "2001:db8::/64"] {
            assert_eq!(m(good).to_string(), good);
        }
    }
}
