//! Address headers (From, To, Contact, Route...): `name-addr` or bare `addr-spec`.

use super::error::{ParseError, excerpt};
use super::method::is_token_byte;
use super::params::{Params, find_param, parse_params, write_params};
use super::uri::has_scheme;

/// An address with optional display name and header parameters, as found in
/// From/To/Contact/Route/Refer-To. The URI is kept as text so any scheme works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped (`None` if absent).
    pub display: Option<String>,
    /// The URI between `<>` (or the bare URI).
    pub uri: String,
    /// Header parameters after the address (`tag`, `expires`, `q`...).
    pub params: Params,
}

impl NameAddr {
    /// Parses `"Name" <uri;p>;tag=x`, `Name <uri>`, `<uri>` or bare `uri;tag=x`
    /// (in the bare form every `;param` belongs to the header, not the URI).
    pub fn parse(input: &str) -> Result<NameAddr, ParseError> {
        let bad = |why: &str| ParseError::BadNameAddr(format!("{why}: {}", excerpt(input)));
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (display, after_display) = if let Some(quoted) = s.strip_prefix('"') {
            let (text, rest) = read_quoted(quoted).ok_or_else(|| bad("unterminated quote"))?;
            let rest = rest.trim_start();
            if !rest.starts_with('<') {
                return Err(bad("quoted display name without <uri>"));
            }
            (Some(text), rest)
        } else if let Some(lt) = s.find('<') {
            let (name, rest) = s.split_at(lt);
            let name = name.trim();
            let words_ok = name
                .bytes()
                .all(|b| is_token_byte(b) || b == b' ' || b == b'\t');
            if !words_ok {
                return Err(bad("invalid unquoted display name"));
            }
            let display = (!name.is_empty()).then(|| name.to_string());
            (display, rest)
        } else {
            return parse_bare(s).ok_or_else(|| bad("invalid addr-spec"))?;
        };
        let inner = after_display
            .strip_prefix('<')
            .ok_or_else(|| bad("missing <"))?;
        let (uri, rest) = inner.split_once('>').ok_or_else(|| bad("missing >"))?;
        if !has_scheme(uri) || uri.chars().any(|c| c.is_whitespace() || c == '<') {
            return Err(bad("invalid URI inside <>"));
        }
        Ok(NameAddr {
            display,
            uri: uri.to_string(),
            params: parse_params(rest)?,
        })
    }

    /// The `tag` parameter, if present with a value.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").flatten()
    }

    /// Looks up a header parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Sets (or replaces) the `tag` parameter.
    pub fn set_tag(&mut self, tag: &str) {
        self.params.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
        self.params.push(("tag".to_string(), Some(tag.to_string())));
    }
}

fn parse_bare(s: &str) -> Option<Result<NameAddr, ParseError>> {
    let (uri, rest) = match s.find(';') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let uri = uri.trim();
    let forbidden = |c: char| c.is_whitespace() || matches!(c, ',' | '?' | '<' | '>' | '"');
    if !has_scheme(uri) || uri.chars().any(forbidden) {
        return None;
    }
    Some(parse_params(rest).map(|params| NameAddr {
        display: None,
        uri: uri.to_string(),
        params,
    }))
}

/// Reads a quoted string body (after the opening quote); returns the unescaped
/// text and the remainder after the closing quote.
fn read_quoted(s: &str) -> Option<(String, &str)> {
    let mut text = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '"' => return Some((text, s.get(i + 1..)?)),
            other => text.push(other),
        }
    }
    None
}

impl std::fmt::Display for NameAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(display) = &self.display {
            f.write_str("\"")?;
            for c in display.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_display_with_uri_params_and_tag() {
        let a =
            NameAddr::parse(r#""Alice \"A\"" <sip:alice@a.example;transport=tcp>;tag=x1"#).unwrap();
        assert_eq!(a.display.as_deref(), Some(r#"Alice "A""#));
        assert_eq!(a.uri, "sip:alice@a.example;transport=tcp");
        assert_eq!(a.tag(), Some("x1"));
        let again = NameAddr::parse(&a.to_string()).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn angle_only_and_token_display() {
        let a = NameAddr::parse("<sip:bob@b>").unwrap();
        assert_eq!(
            (a.display.as_deref(), a.uri.as_str(), a.tag()),
            (None, "sip:bob@b", None)
        );
        let b = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(b.display.as_deref(), Some("caller"));
        assert_eq!(b.tag(), Some("323"));
    }

    #[test]
    fn bare_form_params_belong_to_header() {
        let a =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.uri, "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(a.tag(), Some("1918181833n"));
        let c = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert_eq!(c.param("unknownparam"), Some(None));
    }

    #[test]
    fn set_tag_replaces() {
        let mut a = NameAddr::parse("<sip:a@b>;tag=1").unwrap();
        a.set_tag("2");
        assert_eq!(a.to_string(), "<sip:a@b>;tag=2");
    }

    #[test]
    fn rejects_rfc4475_defects() {
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            r#""Watson, Thomas" < sip:t.watson@example.org >"#,
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            r#""Joe" <sip:joe@example.org>;;;;"#,
            "",
            "<sip:a@b",
            "no-scheme",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
