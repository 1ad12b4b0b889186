//! The `http://` URLs a recording can be uploaded to: parsed once when the module's data is
//! validated and again by the uploader, so a URL that cannot be requested never reaches the spool.

/// An `http://host[:port]/path?query` URL split into what an HTTP/1.1 request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address (IPv6 in brackets, as written).
    pub host: String,
    /// TCP port, 80 when absent.
    pub port: u16,
    /// `host[:port]` as written, for the `Host` header.
    pub authority: String,
    /// Path and query (`/` when absent); the fragment is dropped.
    pub path_and_query: String,
}

impl HttpUrl {
    /// Parses `text`; `None` unless it is an `http://` URL with a host, no user information and
    /// no whitespace or control characters.
    pub fn parse(text: &str) -> Option<Self> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let scheme_end = text.find("://")?;
        if !text[..scheme_end].eq_ignore_ascii_case("http") {
            return None;
        }
        let rest = &text[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = split_host_port(authority)?;
        let tail = &rest[authority_end..];
        let tail = tail.split('#').next().unwrap_or_default();
        let path_and_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Some(Self {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path_and_query,
        })
    }
}

fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let close = inner.find(']')?;
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return None,
        };
        (&authority[..close + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => port.parse().ok().filter(|port| *port > 0)?,
        None => 80,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_split_for_a_request() {
        let url = HttpUrl::parse("http://rec.example:8080/in/a.wav?x=1#frag").unwrap();
        assert_eq!(url.host, "rec.example");
        assert_eq!(url.port, 8080);
        assert_eq!(url.authority, "rec.example:8080");
        assert_eq!(url.path_and_query, "/in/a.wav?x=1");
        let bare = HttpUrl::parse("HTTP://10.0.0.1").unwrap();
        assert_eq!((bare.port, bare.path_and_query.as_str()), (80, "/"));
        let v6 = HttpUrl::parse("http://[::1]:9/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", 9));
    }

    #[test]
    fn what_cannot_be_requested_is_refused() {
        for bad in [
            "https://h/x",
            "http://",
            "http:///x",
            "http://u:p@h/x",
            "http://h:0/",
            "http://h:99999/",
            "http://h/a b",
            "http://[::1/x",
            "h/x",
        ] {
            assert_eq!(HttpUrl::parse(bad), None, "{bad}");
        }
    }
}
