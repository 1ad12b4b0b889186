//! Request screening: the checks the B2BUA applies to a parsed, validated request before the
//! call core acts on it (RFC 3261 §8.2 and §16.3, the cases of RFC 4475 that parse cleanly
//! but must not be processed), and the answer to requests that do not parse at all.
//!
//! Extension policy. The proxy copies end-to-end headers from leg to leg and relays the far
//! end's answers, so `Require` is end-to-end: the PBX (or the phone) judges the option-tags
//! of what the proxy relays, and its 420 comes back unchanged. `Proxy-Require` is addressed to
//! the proxy itself, which implements no proxy extension: any tag there is answered 420 with
//! `Unsupported` (RFC 3261 §16.3 step 5; RFC 4475 §3.3.5 "depending on the role"). An OPTIONS
//! whose Request-URI has no user part is answered by the proxy as a UAS, which supports no
//! extension, so its `Require` tags are refused the same way.
//!
//! Bodies. The proxy anchors media by rewriting SDP, so it must read the body of every request
//! that can carry an offer or answer it has to answer: INVITE, UPDATE and PRACK bodies must be
//! plain `application/sdp` (else 415), and an INVITE or UPDATE whose `Accept` excludes SDP
//! cannot get the SDP answer the proxy returns (406).

use crate::sip::{Method, ParseError, SipMessage, SipUri, canonical_name, is_token};

/// Magic cookie that starts every RFC 3261 branch.
const MAGIC_COOKIE: &str = "z9hG4bK";
/// CSeq numbers must stay below 2^31 (RFC 3261 §8.1.1.5); the core increments them per leg.
const MAX_CSEQ: u32 = i32::MAX as u32;
/// Largest UDP payload over IPv4; forwarded requests go upstream over UDP.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// Room kept for the Via and SDP rewriting the proxy adds to a forwarded request.
const FORWARD_HEADROOM: usize = 512;
/// Headers RFC 3261 and its extensions define as single-valued, beyond those
/// [`SipMessage::validate_request`] already counts (Call-ID, CSeq, From, To, Max-Forwards).
const SINGLE_VALUED: &[&str] = &[
    "Content-Type",
    "Date",
    "Event",
    "Expires",
    "Min-Expires",
    "Min-SE",
    "RAck",
    "Refer-To",
    "Replaces",
    "RSeq",
    "Session-Expires",
    "Subscription-State",
];
/// Headers copied from a request into the response to it when it cannot be parsed.
const ECHOED: &[&str] = &["Via", "From", "To", "Call-ID", "CSeq"];

/// Checks a parsed request before the core processes it; Some((code, reason)) means answer with that response and do not process or forward it.
pub fn screen_request(msg: &SipMessage) -> Option<(u16, String)> {
    let method = msg.method()?;
    if wire_size(msg) > MAX_UDP_PAYLOAD - FORWARD_HEADROOM {
        return Some((513, "Message Too Large".into()));
    }
    if let Some(reason) = scalar_defect(msg).or_else(|| duplicate_defect(msg)) {
        return Some((400, reason));
    }
    if msg
        .top_via()
        .and_then(|via| via.branch)
        .is_some_and(|branch| branch == MAGIC_COOKIE)
    {
        return Some((400, "Via branch is the bare magic cookie".into()));
    }
    if matches!(method, Method::Ack | Method::Cancel) {
        return None;
    }
    if !unsupported_tags(msg).is_empty() {
        return Some((420, "Bad Extension".into()));
    }
    body_defect(msg, method)
}

/// Builds the answer to a request [`screen_request`] refused: the usual copies of Via, From,
/// To, Call-ID and CSeq, a To tag, and what RFC 3261 requires with the code (`Unsupported` on
/// 420, `Accept` and `Accept-Encoding` on 415). `to_tag` is the tag written when the request
/// has none (the caller's random source picks it).
pub fn rejection_response(msg: &SipMessage, code: u16, reason: &str, to_tag: &str) -> SipMessage {
    let mut resp = SipMessage::response_to(msg, code, reason);
    add_to_tag(&mut resp, to_tag);
    match code {
        420 => resp.push_header("Unsupported", unsupported_tags(msg).join(", ")),
        415 => {
            resp.push_header("Accept", "application/sdp");
            resp.push_header("Accept-Encoding", "identity");
        }
        _ => {}
    }
    resp
}

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
        request.header_count("Via") >= 1 && ["From", "To", "Call-ID", "CSeq"].into_iter().all(once);
    if !recoverable {
        return None;
    }
    let reason: String = rejection
        .reason
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    Some(rejection_response(
        &request,
        rejection.code,
        &reason,
        to_tag,
    ))
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

/// Size of the request on the wire as the proxy would re-serialise it.
fn wire_size(msg: &SipMessage) -> usize {
    let start = match msg.method() {
        Some(method) => method.as_str().len() + msg.request_uri().unwrap_or_default().len() + 11,
        None => 0,
    };
    let headers: usize = msg
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 4)
        .sum();
    start.saturating_add(headers).saturating_add(msg.body.len())
}

/// Numbers outside their legal range: CSeq ≥ 2^31, an Expires header or Contact `expires`
/// parameter that is not delta-seconds within 32 bits (RFC 4475 §3.1.2.4).
fn scalar_defect(msg: &SipMessage) -> Option<String> {
    if msg.cseq().is_some_and(|(number, _)| number > MAX_CSEQ) {
        return Some("CSeq number out of range".into());
    }
    if msg.header("Expires").is_some_and(|v| !is_delta_seconds(v)) {
        return Some("Invalid Expires".into());
    }
    let contact_expires = msg
        .header_values("Contact")
        .into_iter()
        .filter(|contact| *contact != "*")
        .filter_map(|contact| crate::sip::NameAddr::parse(contact).ok())
        .filter_map(|addr| {
            addr.param("expires")
                .map(|v| v.unwrap_or_default().to_string())
        })
        .any(|value| !is_delta_seconds(&value));
    contact_expires.then(|| "Invalid Contact expires".into())
}

fn is_delta_seconds(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && value.parse::<u32>().is_ok()
}

/// A single-valued header that appears more than once (RFC 4475 §3.3.8).
fn duplicate_defect(msg: &SipMessage) -> Option<String> {
    SINGLE_VALUED
        .iter()
        .find(|name| msg.header_count(name) > 1)
        .map(|name| format!("Duplicate {name}"))
}

/// Option-tags of the request this proxy does not implement: every `Proxy-Require` tag, and
/// the `Require` tags of an OPTIONS the proxy answers itself (see the module docs).
fn unsupported_tags(msg: &SipMessage) -> Vec<String> {
    let mut tags: Vec<String> = msg
        .header_values("Proxy-Require")
        .into_iter()
        .map(str::to_string)
        .collect();
    if answered_locally(msg) {
        tags.extend(msg.header_values("Require").into_iter().map(str::to_string));
    }
    tags.dedup();
    tags
}

/// An out-of-dialog OPTIONS whose Request-URI names no user is for the proxy itself.
fn answered_locally(msg: &SipMessage) -> bool {
    matches!(msg.method(), Some(Method::Options))
        && msg.to_tag().is_none()
        && msg
            .request_uri()
            .and_then(|uri| SipUri::parse(uri).ok())
            .is_some_and(|uri| uri.user.is_none())
}

/// Body checks for the methods whose offer or answer the proxy reads (see the module docs).
fn body_defect(msg: &SipMessage, method: &Method) -> Option<(u16, String)> {
    let carries_sdp = matches!(method, Method::Invite | Method::Update | Method::Prack);
    if !carries_sdp {
        return None;
    }
    if !msg.body.is_empty() {
        let Some(content_type) = msg.content_type() else {
            return Some((400, "Body without Content-Type".into()));
        };
        if !is_media_type(content_type, "application", "sdp") {
            return Some((415, "Unsupported Media Type".into()));
        }
        let encoded = msg
            .header_values("Content-Encoding")
            .into_iter()
            .any(|coding| !coding.eq_ignore_ascii_case("identity"));
        if encoded {
            return Some((415, "Unsupported Content-Encoding".into()));
        }
    }
    let answers_with_sdp = matches!(method, Method::Invite | Method::Update);
    let accepted = msg.header_values("Accept");
    if answers_with_sdp && !accepted.is_empty() && !accepted.iter().any(|a| accepts_sdp(a)) {
        return Some((406, "Not Acceptable".into()));
    }
    None
}

/// Whether a media type (parameters allowed) is `kind/subtype`, case-insensitively.
fn is_media_type(value: &str, kind: &str, subtype: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default();
    match essence.split_once('/') {
        Some((k, s)) => {
            k.trim().eq_ignore_ascii_case(kind) && s.trim().eq_ignore_ascii_case(subtype)
        }
        None => false,
    }
}

/// Whether one `Accept` range admits `application/sdp` (`*/*` and `application/*` do).
fn accepts_sdp(range: &str) -> bool {
    is_media_type(range, "application", "sdp")
        || is_media_type(range, "application", "*")
        || is_media_type(range, "*", "*")
}

fn add_to_tag(resp: &mut SipMessage, tag: &str) {
    if resp.to_tag().is_none()
        && let Some(to) = resp.header("To").map(str::to_string)
    {
        resp.set_header("To", format!("{to};tag={tag}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/data/rfc4475/{name}.dat",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).unwrap()
    }

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

    #[test]
    fn rejection_response_carries_unsupported_and_accept() {
        let bext = SipMessage::parse(&torture("bext01")).unwrap();
        assert_eq!(screen_request(&bext).map(|r| r.0), Some(420));
        let resp = rejection_response(&bext, 420, "Bad Extension", "t");
        assert_eq!(
            resp.header("Unsupported"),
            Some("noProxiesSupportThis, norDoAnyProxiesSupportThis")
        );
        let invut = SipMessage::parse(&torture("invut")).unwrap();
        let resp = rejection_response(&invut, 415, "Unsupported Media Type", "t");
        assert_eq!(resp.header("Accept"), Some("application/sdp"));
    }

    #[test]
    fn local_options_refuses_required_extensions() {
        let text = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                    From: <sip:a@h>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c\r\n\
                    CSeq: 1 OPTIONS\r\nRequire: foo\r\nContent-Length: 0\r\n\r\n";
        let msg = SipMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(screen_request(&msg).map(|r| r.0), Some(420));
        let relayed = text.replace("sip:127.0.0.1:5060", "sip:bob@example.com");
        let msg = SipMessage::parse(relayed.as_bytes()).unwrap();
        assert_eq!(screen_request(&msg), None);
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let base = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                    From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n";
        let cases = [
            ("CSeq: 1 INVITE", "CSeq: 2147483648 INVITE", 400),
            ("To: <sip:b@h>", "Expires: 4294967296\r\nTo: <sip:b@h>", 400),
            (
                "To: <sip:b@h>",
                "Expires: 5\r\nExpires: 6\r\nTo: <sip:b@h>",
                400,
            ),
            ("To: <sip:b@h>", "Accept: text/plain\r\nTo: <sip:b@h>", 406),
            ("To: <sip:b@h>", "Accept: application/*\r\nTo: <sip:b@h>", 0),
        ];
        for (from, to, code) in cases {
            let text = format!("{}\r\n", base.replace(from, to));
            let msg = SipMessage::parse(text.as_bytes()).unwrap();
            assert_eq!(screen_request(&msg).map_or(0, |r| r.0), code, "{to}");
        }
    }
}
