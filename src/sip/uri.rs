//! SIP and SIPS URIs (RFC 3261 §19.1).

use super::error::{ParseError, excerpt};
use super::params::{Params, find_param, parse_params, write_params};

/// A parsed `sip:` or `sips:` URI. The user part is kept in its escaped wire
/// form (see [`SipUri::user_unescaped`]); an IPv6 host is stored without brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sip` or `sips`, lower-cased.
    pub scheme: String,
    /// User part including any `:password`, still %-escaped.
    pub user: Option<String>,
    /// Host name, IPv4 address or IPv6 address (without brackets).
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// Header part after `?` (e.g. `Replaces=...`), verbatim; `None` if absent.
    pub headers: Option<String>,
}

impl SipUri {
    /// Parses a `sip:`/`sips:` URI; other schemes are rejected.
    pub fn parse(input: &str) -> Result<SipUri, ParseError> {
        let bad = |why: &str| ParseError::BadUri(format!("{why}: {}", excerpt(input)));
        let s = input.trim();
        let (scheme, rest) = s.split_once(':').ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return Err(bad("not a sip or sips URI"));
        }
        if rest
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
        {
            return Err(bad("forbidden character"));
        }
        // The user part may itself contain ';' and '?', so it ends at the first '@'.
        let (user, after_user) = match rest.split_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if user.is_some_and(str::is_empty) {
            return Err(bad("empty user part"));
        }
        let (before_headers, headers) = match after_user.split_once('?') {
            Some((b, h)) => (b, Some(h.to_string())),
            None => (after_user, None),
        };
        let (hostport, param_text) = match before_headers.find(';') {
            Some(i) => before_headers.split_at(i),
            None => (before_headers, ""),
        };
        let (host, port) = parse_hostport(hostport).ok_or_else(|| bad("bad host or port"))?;
        let params = parse_params(param_text)?;
        Ok(SipUri {
            scheme,
            user: user.map(str::to_string),
            host,
            port,
            params,
            headers,
        })
    }

    /// The user part with `%XX` escapes decoded (lossy for non-UTF-8 results).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(unescape)
    }

    /// Looks up a URI parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `transport` parameter, lower-cased, if present.
    pub fn transport(&self) -> Option<String> {
        self.param("transport")
            .flatten()
            .map(str::to_ascii_lowercase)
    }
}

impl std::fmt::Display for SipUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write_host(f, &self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)?;
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

/// Writes a host, bracketing IPv6 addresses.
pub fn write_host(f: &mut std::fmt::Formatter<'_>, host: &str) -> std::fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]")
    } else {
        f.write_str(host)
    }
}

/// Parses `host[:port]` or `[v6][:port]`; returns the host without brackets.
pub fn parse_hostport(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port_text) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let valid_host = !host.is_empty()
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !valid_host {
        return None;
    }
    let port = match port_text {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host.to_string(), port))
}

/// Decodes `%XX` escapes; malformed escapes are kept literally.
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True if `s` looks like an absolute URI: `scheme ":" rest` with a valid scheme.
pub fn has_scheme(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_uri() {
        let u = SipUri::parse("sip:alice@example.com:5070;transport=TCP;lr").unwrap();
        assert_eq!(u.scheme, "sip");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.to_string(), "sip:alice@example.com:5070;transport=TCP;lr");
    }

    #[test]
    fn parses_ipv6_and_sips() {
        let u = SipUri::parse("SIPS:bob@[2001:db8::10]:5061").unwrap();
        assert_eq!(u.scheme, "sips");
        assert_eq!(u.host, "2001:db8::10");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.to_string(), "sips:bob@[2001:db8::10]:5061");
        let bare = SipUri::parse("sip:[::1]").unwrap();
        assert_eq!((bare.host.as_str(), bare.port), ("::1", None));
    }

    #[test]
    fn user_with_semicolon_and_escapes() {
        let u = SipUri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        assert_eq!(
            u.user_unescaped().as_deref(),
            Some("user;par=u@example.net")
        );
        let nul = SipUri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(nul.user_unescaped().unwrap().len(), 11);
    }

    #[test]
    fn headers_are_kept() {
        let u = SipUri::parse("sip:bob@b.example?Replaces=abc%40h%3Bto-tag%3D1").unwrap();
        assert_eq!(u.headers.as_deref(), Some("Replaces=abc%40h%3Bto-tag%3D1"));
        assert_eq!(
            u.to_string(),
            "sip:bob@b.example?Replaces=abc%40h%3Bto-tag%3D1"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "tel:+123",
            "sip:",
            "sip:@host",
            "sip:a@",
            "sip:a@host:port",
            "sip:a@host:99999",
            "sip:a@[zz]",
            "sip:a b@host",
            "<sip:a@b>",
            "sip:a@b;;",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scheme_detection() {
        assert!(has_scheme("soap.beep://x"));
        assert!(has_scheme("sip:a@b"));
        assert!(!has_scheme("<sip:a@b>"));
        assert!(!has_scheme("nocolon"));
        assert!(!has_scheme("1x:y"));
    }
}
