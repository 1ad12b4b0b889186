//! The Via header (RFC 3261 §20.42).

use super::error::{ParseError, excerpt};
use super::method::is_token;
use super::params::{Params, find_param, parse_params, write_params};
use super::uri::{parse_hostport, write_host};

/// The RFC 3261 magic cookie that starts every compliant branch.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via hop: transport, sent-by and parameters. The branch is lifted out of
/// `params`; `params` keeps the others (`received`, `rport`, `maddr`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (`UDP`, `TCP`, `TLS`, `WS`...).
    pub transport: String,
    /// Sent-by host (IPv6 without brackets).
    pub host: String,
    /// Sent-by port, if given.
    pub port: Option<u16>,
    /// The branch parameter value, if any (RFC 2543 peers omit it).
    pub branch: Option<String>,
    /// Other parameters in wire order.
    pub params: Params,
}

impl Via {
    /// Parses one Via value such as `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport`.
    /// Whitespace around `/` is tolerated; the protocol must be SIP/2.0.
    pub fn parse(input: &str) -> Result<Via, ParseError> {
        let bad = |why: &str| ParseError::BadVia(format!("{why}: {}", excerpt(input)));
        let mut parts = input.splitn(3, '/');
        let name = parts.next().unwrap_or("").trim();
        let version = parts.next().ok_or_else(|| bad("missing version"))?.trim();
        let rest = parts
            .next()
            .ok_or_else(|| bad("missing transport"))?
            .trim_start();
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(bad("protocol is not SIP/2.0"));
        }
        let transport_end = rest
            .find(|c: char| c.is_whitespace())
            .ok_or_else(|| bad("missing sent-by"))?;
        let (transport, sent) = rest.split_at(transport_end);
        if !is_token(transport) {
            return Err(bad("invalid transport"));
        }
        let sent = sent.trim_start();
        let (hostport, param_text) = match sent.find(';') {
            Some(i) => sent.split_at(i),
            None => (sent, ""),
        };
        let hostport = hostport.trim();
        let (host, port) = parse_hostport(hostport).ok_or_else(|| bad("invalid sent-by"))?;
        let mut params = parse_params(param_text)?;
        let branch = match params
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case("branch"))
        {
            Some(i) => {
                let (_, value) = params.remove(i);
                Some(value.ok_or_else(|| bad("branch without value"))?)
            }
            None => None,
        };
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            branch,
            params,
        })
    }

    /// True if the branch carries the RFC 3261 magic cookie followed by at
    /// least one more character.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .as_deref()
            .and_then(|b| b.strip_prefix(BRANCH_MAGIC_COOKIE))
            .is_some_and(|tail| !tail.is_empty())
    }

    /// Looks up a non-branch parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Sets or replaces a non-branch parameter (e.g. `received`, `rport`).
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIP/2.0/{} ", self.transport)?;
        write_host(f, &self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if let Some(branch) = &self.branch {
            write!(f, ";branch={branch}")?;
        }
        write_params(f, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typical_via() {
        let v = Via::parse("SIP/2.0/udp 10.0.0.1:5060;branch=z9hG4bK776;rport;received=1.2.3.4")
            .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!((v.host.as_str(), v.port), ("10.0.0.1", Some(5060)));
        assert_eq!(v.branch.as_deref(), Some("z9hG4bK776"));
        assert_eq!(v.param("rport"), Some(None));
        assert_eq!(v.param("received"), Some(Some("1.2.3.4")));
        assert!(v.has_rfc3261_branch());
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776;rport;received=1.2.3.4"
        );
    }

    #[test]
    fn tolerates_lws_and_ipv6() {
        let v = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.host, "192.0.2.2");
        assert!(!v.has_rfc3261_branch());
        let v6 = Via::parse("SIP/2.0/TCP [2001:db8::9]:5070 ; branch = z9hG4bKx").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::9", Some(5070)));
        assert_eq!(
            v6.to_string(),
            "SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKx"
        );
    }

    #[test]
    fn set_param_updates_or_appends() {
        let mut v = Via::parse("SIP/2.0/UDP h;rport").unwrap();
        v.set_param("rport", Some("5062"));
        v.set_param("received", Some("10.1.1.1"));
        assert_eq!(v.to_string(), "SIP/2.0/UDP h;rport=5062;received=10.1.1.1");
    }

    #[test]
    fn bare_magic_cookie_is_not_rfc3261() {
        let v = Via::parse("SIP/2.0/UDP h;branch=z9hG4bK").unwrap();
        assert!(!v.has_rfc3261_branch());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/3.0/UDP h",
            "SIP/2.0 h",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP h:x",
            "SIP/2.0/UDP h;branch",
            "//",
            "",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }
}
