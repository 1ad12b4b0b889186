//! The answer to a datagram that does not parse at all: a request can still be refused (400,
//! 505, 513) if its start line is a request line and the headers a response needs can be
//! recovered; otherwise it is dropped, since without a Via there is nowhere RFC 3261 lets us
//! send a response.

use crate::sip::names::{CALL_ID, CSEQ, FROM, TO, VIA};
use crate::sip::{Method, ParseError, SipMessage, canonical_name, is_token};

use super::Rejection;

/// Headers copied from a request into the response to it when it cannot be parsed.
const ECHOED: &[&str] = &[VIA, FROM, TO, CALL_ID, CSEQ];

/// The answer to a datagram that failed to parse, when its start line is a request line
/// (not ACK) and its Via, From, To, Call-ID and CSeq lines can be recovered: 505 for a foreign
/// SIP version, 513 when too large, 400 otherwise (RFC 4475 §3.1.2). `None` means drop it.
pub fn answer_unparseable(data: &[u8], to_tag: &str) -> Option<SipMessage> {
    let rejection = match SipMessage::parse(data) {
        Ok(_) => return None,
        Err(err) => ParseError::rejection(&err),
    };
    let head_end = find_subslice(data, b"\r\n\r\n").unwrap_or(data.len());
    let head = String::from_utf8_lossy(data.get(..head_end)?);
    let mut lines = head.trim_start_matches(['\r', '\n']).split("\r\n");
    let method = request_method(lines.next()?)?;
    let mut request = SipMessage::request(method, "sip:invalid");
    for (name, value) in unfolded_headers(lines) {
        if ECHOED.iter().any(|echoed| *echoed == name) {
            request.push_header(&name, value);
        }
    }
    let once = |name: &str| request.header_count(name) == 1;
    let recoverable =
        request.header_count(VIA) >= 1 && [FROM, TO, CALL_ID, CSEQ].into_iter().all(once);
    if !recoverable {
        return None;
    }
    let reason: String = rejection
        .reason
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let rejection = Rejection::new(rejection.code, reason).tagged();
    Some(rejection.response_to(&request, Some(to_tag)))
}

/// The method of a request line (one that ends in a `SIP/` version), unless it is ACK.
fn request_method(line: &str) -> Option<Method> {
    let token = line.split([' ', '\t']).next()?;
    let version = line.trim_end().rsplit([' ', '\t']).next()?;
    if !is_token(token) || line.starts_with("SIP/") || !version.starts_with("SIP/") {
        return None;
    }
    Some(Method::parse(token)).filter(|m| *m != Method::Ack)
}

/// Header lines as (canonical name, unfolded value); lines without a colon are skipped.
fn unfolded_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((canonical_name(name), value.trim().to_string()));
        }
    }
    headers
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::super::torture;
    use super::*;

    #[test]
    fn unparseable_requests_are_answered_per_rfc4475() {
        let expected = [
            ("badvers", 505),
            ("clerr", 400),
            ("ncl", 400),
            ("ltgtruri", 400),
            ("lwsruri", 400),
            ("lwsstart", 400),
            ("trws", 400),
        ];
        for (name, code) in expected {
            let resp = answer_unparseable(&torture(name), "t").unwrap_or_else(|| panic!("{name}"));
            assert_eq!(resp.status(), Some(code), "{name}");
            let again = SipMessage::parse(&resp.to_bytes()).unwrap();
            assert!(again.to_tag().is_some(), "{name}");
            assert_eq!(again.header_count("Via"), 1, "{name}");
        }
    }

    #[test]
    fn unparseable_responses_and_parseable_requests_get_no_answer() {
        assert!(answer_unparseable(&torture("bigcode"), "t").is_none());
        assert!(answer_unparseable(&torture("wsinv"), "t").is_none());
        assert!(answer_unparseable(b"ACK sip:a@b SIP/7.0\r\nVia: x\r\n\r\n", "t").is_none());
        assert!(answer_unparseable(b"INVITE <sip:a@b> SIP/2.0\r\nVia: x\r\n\r\n", "t").is_none());
    }
}
