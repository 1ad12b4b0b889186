//! Syntax: whether a parsed message is well formed enough to act on (RFC 3261 §16.3 "request
//! validation", plus defects from RFC 4475). These answer without a To tag.

use crate::sip::header::{is_named, split_list};
use crate::sip::message::{SipMessage, StartLine, parse_cseq};
use crate::sip::name_addr::NameAddr;
use crate::sip::names::{
    CALL_ID, CONTACT, CONTENT_LENGTH, CSEQ, DATE, FROM, MAX_FORWARDS, TO, VIA,
};
use crate::sip::uri::SipUri;
use crate::sip::via::Via;

use super::Rejection;

/// Headers that must appear exactly once in every request and response.
const SINGLE: &[&str] = &[CALL_ID, CSEQ, FROM, TO];
/// Request-URI schemes this proxy can route.
const ROUTABLE_SCHEMES: &[&str] = &["sip", "sips", "tel"];

fn bad(reason: impl Into<String>) -> Rejection {
    Rejection::new(400, reason)
}

impl SipMessage {
    /// Validates a request before processing: Request-URI usable, mandatory
    /// headers present once and well formed, CSeq method equal to the request
    /// method, Max-Forwards numeric (0..=255), consistent Content-Length, a GMT
    /// Date. The SIP version was already enforced by the parser (see
    /// [`crate::sip::ParseError::rejection`], which yields 505). The proxy's own policy comes
    /// on top in [`super::check_request`].
    pub fn validate_request(&self) -> Result<(), Rejection> {
        let StartLine::Request { method, uri } = &self.start else {
            return Err(bad("Not a request"));
        };
        check_request_uri(uri)?;
        self.validate_common()?;
        let (_, cseq_method) = self
            .header(CSEQ)
            .and_then(parse_cseq)
            .ok_or_else(|| bad("Malformed CSeq"))?;
        if &cseq_method != method {
            return Err(bad("CSeq method mismatch"));
        }
        if self.header_count(MAX_FORWARDS) > 1 {
            return Err(bad("Duplicate Max-Forwards"));
        }
        if let Some(value) = self.header(MAX_FORWARDS) {
            match self.max_forwards() {
                Some(hops) if hops <= 255 => {}
                _ => return Err(bad(format!("Invalid Max-Forwards: {value}"))),
            }
        }
        for contact in self.raw_list(CONTACT) {
            if contact != "*" && NameAddr::parse(contact).is_err() {
                return Err(bad("Malformed Contact"));
            }
        }
        Ok(())
    }

    /// Validates a response before relaying it: the same header checks as for
    /// requests except the Request-URI and Max-Forwards ones.
    pub fn validate_response(&self) -> Result<(), Rejection> {
        if self.is_request() {
            return Err(bad("Not a response"));
        }
        self.validate_common()?;
        Ok(())
    }

    fn validate_common(&self) -> Result<(), Rejection> {
        let vias = self.raw_list(VIA);
        if vias.is_empty() {
            return Err(bad("Missing Via"));
        }
        for via in vias {
            Via::parse(via).map_err(|e| bad(e.to_string()))?;
        }
        for name in SINGLE {
            match self.header_count(name) {
                0 => return Err(bad(format!("Missing {name}"))),
                1 => {}
                _ => return Err(bad(format!("Duplicate {name}"))),
            }
        }
        for name in [FROM, TO] {
            let value = self.header(name).unwrap_or_default();
            NameAddr::parse(value).map_err(|_| bad(format!("Malformed {name}")))?;
        }
        let call_id = self.call_id().unwrap_or_default();
        if call_id.is_empty() || call_id.chars().any(char::is_whitespace) {
            return Err(bad("Malformed Call-ID"));
        }
        if self.header(CSEQ).and_then(parse_cseq).is_none() {
            return Err(bad("Malformed CSeq"));
        }
        let lengths = self.header_values(CONTENT_LENGTH);
        if lengths.windows(2).any(|pair| pair.first() != pair.get(1)) {
            return Err(bad("Conflicting Content-Length"));
        }
        if let Some(date) = self.header(DATE)
            && !date.ends_with(" GMT")
        {
            return Err(bad("Date not in GMT"));
        }
        Ok(())
    }

    /// Raw comma-split elements of a list header, empty elements included.
    fn raw_list(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|h| is_named(&h.name, name))
            .flat_map(|h| split_list(&h.value))
            .collect()
    }
}

/// A Request-URI must use a routable scheme (else 416) and, for SIP URIs,
/// parse and carry no `?headers` (RFC 3261 §19.1.5 forbids them there).
fn check_request_uri(uri: &str) -> Result<(), Rejection> {
    let scheme = uri.split_once(':').map(|(s, _)| s).unwrap_or_default();
    if !ROUTABLE_SCHEMES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(Rejection::new(416, "Unsupported URI Scheme"));
    }
    if scheme.eq_ignore_ascii_case("tel") {
        return Ok(());
    }
    let parsed = SipUri::parse(uri).map_err(|_| bad("Malformed Request-URI"))?;
    if parsed.headers.is_some() {
        return Err(bad("Request-URI must not contain headers"));
    }
    Ok(())
}
