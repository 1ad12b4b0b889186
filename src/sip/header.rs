//! Header lines: canonical names, compact forms and comma-list splitting.

use super::names::*;

/// One header line, with the name in canonical long form for known headers
/// (compact forms such as `i` or `v` are expanded) and the value unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical header name (`Call-ID`, `Via`, `WWW-Authenticate`...); unknown
    /// names keep the spelling they arrived with.
    pub name: String,
    /// Header value with line folding replaced by single spaces.
    pub value: String,
}

impl Header {
    /// Builds a header, canonicalising the name.
    pub fn new(name: &str, value: impl Into<String>) -> Header {
        Header {
            name: canonical_name(name),
            value: value.into(),
        }
    }
}

/// Compact header forms of RFC 3261 §7.3.3 and later extensions.
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", REFERRED_BY),
    ("c", CONTENT_TYPE),
    ("d", "Request-Disposition"),
    ("e", CONTENT_ENCODING),
    ("f", FROM),
    ("i", CALL_ID),
    ("j", "Reject-Contact"),
    ("k", SUPPORTED),
    ("l", CONTENT_LENGTH),
    ("m", CONTACT),
    ("n", "Identity-Info"),
    ("o", EVENT),
    ("r", REFER_TO),
    ("s", "Subject"),
    ("t", TO),
    ("u", "Allow-Events"),
    ("v", VIA),
    ("x", SESSION_EXPIRES),
    ("y", "Identity"),
];

/// Known long header names in their canonical spelling.
const KNOWN: &[&str] = &[
    ACCEPT,
    "Accept-Contact",
    ACCEPT_ENCODING,
    "Accept-Language",
    "Alert-Info",
    ALLOW,
    "Allow-Events",
    "Authentication-Info",
    AUTHORIZATION,
    CALL_ID,
    "Call-Info",
    CONTACT,
    "Content-Disposition",
    CONTENT_ENCODING,
    "Content-Language",
    CONTENT_LENGTH,
    CONTENT_TYPE,
    CSEQ,
    DATE,
    "Error-Info",
    EVENT,
    EXPIRES,
    FROM,
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    MAX_FORWARDS,
    "MIME-Version",
    MIN_EXPIRES,
    MIN_SE,
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    PROXY_REQUIRE,
    RACK,
    REASON,
    RECORD_ROUTE,
    "Refer-Sub",
    REFER_TO,
    REFERRED_BY,
    "Reject-Contact",
    REPLACES,
    "Reply-To",
    "Request-Disposition",
    REQUIRE,
    RETRY_AFTER,
    ROUTE,
    RSEQ,
    SERVER,
    "Service-Route",
    SESSION_EXPIRES,
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    SUBSCRIPTION_STATE,
    SUPPORTED,
    "Target-Dialog",
    "Timestamp",
    TO,
    UNSUPPORTED,
    USER_AGENT,
    VIA,
    "Warning",
    WWW_AUTHENTICATE,
];

/// Headers whose values may legitimately contain commas and are never lists.
const NOT_LISTS: &[&str] = &[
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    WWW_AUTHENTICATE,
    PROXY_AUTHENTICATE,
    "Authentication-Info",
    DATE,
    "Subject",
    USER_AGENT,
    SERVER,
    "Organization",
    CALL_ID,
    CSEQ,
    FROM,
    TO,
    RETRY_AFTER,
    "Timestamp",
    CONTENT_TYPE,
    "Content-Disposition",
    REFER_TO,
    REFERRED_BY,
    REPLACES,
    "Identity",
    EVENT,
    SUBSCRIPTION_STATE,
];

/// Canonical spelling of a header name: compact forms are expanded, known names
/// get their standard capitalisation, unknown names are returned unchanged.
pub fn canonical_name(name: &str) -> String {
    canonical_ref(name).to_string()
}

/// Like [`canonical_name`] without allocating: a static canonical spelling
/// for known names, else the trimmed input.
pub fn canonical_ref(name: &str) -> &str {
    let name = name.trim();
    if name.len() == 1
        && let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name))
    {
        return long;
    }
    match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        Some(known) => known,
        None => name,
    }
}

/// True when two header names denote the same header (case-insensitive,
/// compact and long forms equal).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || canonical_name(a).eq_ignore_ascii_case(&canonical_name(b))
}

/// True when a stored header name denotes `wanted`, which must already be in
/// canonical form (see [`canonical_name`]). Cheaper than [`same_name`] for lookups.
pub fn is_named(stored: &str, wanted: &str) -> bool {
    stored.eq_ignore_ascii_case(wanted) || (stored.len() == 1 && same_name(stored, wanted))
}

/// True if values of this header form a comma-separated list.
pub fn is_list_header(name: &str) -> bool {
    let canonical = canonical_ref(name);
    !NOT_LISTS.iter().any(|n| n.eq_ignore_ascii_case(canonical))
}

/// Splits a header value at commas that are outside quoted strings and `<...>`,
/// trimming each element. Empty elements are kept so callers can detect them.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle_depth = 0usize;
    let mut start = 0usize;
    for (i, c) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' => angle_depth = angle_depth.saturating_add(1),
            '>' => angle_depth = angle_depth.saturating_sub(1),
            ',' if angle_depth == 0 => {
                parts.push(value.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value.get(start..).unwrap_or("").trim());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_expand() {
        for (short, long) in COMPACT {
            assert_eq!(canonical_name(short), *long);
            assert_eq!(canonical_name(&short.to_uppercase()), *long);
        }
    }

    #[test]
    fn known_names_get_canonical_case() {
        assert_eq!(canonical_name("call-id"), "Call-ID");
        assert_eq!(canonical_name("CSEQ"), "CSeq");
        assert_eq!(canonical_name("www-authenticate"), "WWW-Authenticate");
        assert_eq!(canonical_name("MaX-fOrWaRdS"), "Max-Forwards");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
    }

    #[test]
    fn same_name_matches_compact_and_long() {
        assert!(same_name("i", "Call-ID"));
        assert!(same_name("VIA", "v"));
        assert!(!same_name("To", "From"));
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts = split_list(r#""Doe, John" <sip:a@b;x=1,2>;q=1 , <sip:c@d>"#);
        assert_eq!(
            parts,
            vec![r#""Doe, John" <sip:a@b;x=1,2>;q=1"#, "<sip:c@d>"]
        );
        assert_eq!(split_list("a,,b"), vec!["a", "", "b"]);
        assert_eq!(split_list(r#""a\",b", c"#), vec![r#""a\",b""#, "c"]);
    }

    #[test]
    fn list_classification() {
        assert!(is_list_header("Via"));
        assert!(is_list_header("m"));
        assert!(!is_list_header("WWW-Authenticate"));
        assert!(!is_list_header("Date"));
    }
}
