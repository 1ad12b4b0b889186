//! Policy: the checks the proxy applies to a well-formed request before the call core acts on
//! it (RFC 3261 §8.2 and §16.3, the cases of RFC 4475 that parse cleanly but must not be
//! processed). These refusals answer as a UAS would, with a To tag.
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

use crate::sip::names::{
    ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, DATE, EVENT, EXPIRES, MIN_EXPIRES,
    MIN_SE, PROXY_REQUIRE, RACK, REFER_TO, REPLACES, REQUIRE, RSEQ, SESSION_EXPIRES,
    SUBSCRIPTION_STATE, UNSUPPORTED,
};
use crate::sip::{BRANCH_MAGIC_COOKIE, Method, NameAddr, SipMessage, SipUri};

use super::Rejection;

/// CSeq numbers must stay below 2^31 (RFC 3261 §8.1.1.5); the core increments them per leg.
const MAX_CSEQ: u32 = i32::MAX as u32;
/// Largest UDP payload over IPv4; forwarded requests go upstream over UDP.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// Room kept for the Via and SDP rewriting the proxy adds to a forwarded request.
const FORWARD_HEADROOM: usize = 512;
/// Headers RFC 3261 and its extensions define as single-valued, beyond those the syntax checks
/// already count (Call-ID, CSeq, From, To, Max-Forwards).
const SINGLE_VALUED: &[&str] = &[
    CONTENT_TYPE,
    DATE,
    EVENT,
    EXPIRES,
    MIN_EXPIRES,
    MIN_SE,
    RACK,
    REFER_TO,
    REPLACES,
    RSEQ,
    SESSION_EXPIRES,
    SUBSCRIPTION_STATE,
];

/// Checks a well-formed request against the proxy's policy (see the module docs).
pub(super) fn check(msg: &SipMessage) -> Result<(), Rejection> {
    let Some(method) = msg.method() else {
        return Ok(());
    };
    if wire_size(msg) > MAX_UDP_PAYLOAD - FORWARD_HEADROOM {
        return Err(refuse(513, "Message Too Large"));
    }
    if let Some(reason) = scalar_defect(msg).or_else(|| duplicate_defect(msg)) {
        return Err(refuse(400, reason));
    }
    if msg
        .top_via()
        .and_then(|via| via.branch)
        .is_some_and(|branch| branch == BRANCH_MAGIC_COOKIE)
    {
        return Err(refuse(400, "Via branch is the bare magic cookie"));
    }
    if matches!(method, Method::Ack | Method::Cancel) {
        return Ok(());
    }
    let unsupported = unsupported_tags(msg);
    if !unsupported.is_empty() {
        return Err(refuse(420, "Bad Extension").with_header(UNSUPPORTED, unsupported.join(", ")));
    }
    body_defect(msg, method).map_or(Ok(()), Err)
}

/// A policy refusal: answered with a To tag.
fn refuse(code: u16, reason: impl Into<String>) -> Rejection {
    Rejection::new(code, reason).tagged()
}

/// A body the proxy cannot read: 415 with what it does accept (RFC 3261 §21.4.13).
fn unsupported_body(reason: &str) -> Rejection {
    refuse(415, reason)
        .with_header(ACCEPT, "application/sdp")
        .with_header(ACCEPT_ENCODING, "identity")
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
    if msg.header(EXPIRES).is_some_and(|v| !is_delta_seconds(v)) {
        return Some("Invalid Expires".into());
    }
    let contact_expires = msg
        .contacts()
        .into_iter()
        .filter(|contact| *contact != "*")
        .filter_map(|contact| NameAddr::parse(contact).ok())
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
        .header_values(PROXY_REQUIRE)
        .into_iter()
        .map(str::to_string)
        .collect();
    if answered_locally(msg) {
        tags.extend(msg.header_values(REQUIRE).into_iter().map(str::to_string));
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
fn body_defect(msg: &SipMessage, method: &Method) -> Option<Rejection> {
    let carries_sdp = matches!(method, Method::Invite | Method::Update | Method::Prack);
    if !carries_sdp {
        return None;
    }
    if !msg.body.is_empty() {
        let Some(content_type) = msg.content_type() else {
            return Some(refuse(400, "Body without Content-Type"));
        };
        if !is_media_type(content_type, "application", "sdp") {
            return Some(unsupported_body("Unsupported Media Type"));
        }
        let encoded = msg
            .header_values(CONTENT_ENCODING)
            .into_iter()
            .any(|coding| !coding.eq_ignore_ascii_case("identity"));
        if encoded {
            return Some(unsupported_body("Unsupported Content-Encoding"));
        }
    }
    let answers_with_sdp = matches!(method, Method::Invite | Method::Update);
    let accepted = msg.header_values(ACCEPT);
    if answers_with_sdp && !accepted.is_empty() && !accepted.iter().any(|a| accepts_sdp(a)) {
        return Some(refuse(406, "Not Acceptable"));
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

#[cfg(test)]
mod tests {
    use super::super::check_request;
    use super::super::torture;
    use crate::sip::SipMessage;

    fn code(msg: &SipMessage) -> u16 {
        check_request(msg).err().map_or(0, |r| r.code)
    }

    #[test]
    fn refusals_carry_unsupported_and_accept() {
        let bext = SipMessage::parse(&torture("bext01")).unwrap();
        let rejection = check_request(&bext).unwrap_err();
        assert_eq!(rejection.code, 420);
        let resp = rejection.response_to(&bext, Some("t"));
        assert_eq!(
            resp.header("Unsupported"),
            Some("noProxiesSupportThis, norDoAnyProxiesSupportThis")
        );
        assert_eq!(resp.to_tag().as_deref(), Some("t"));
        let invut = SipMessage::parse(&torture("invut")).unwrap();
        let rejection = check_request(&invut).unwrap_err();
        assert_eq!(rejection.code, 415);
        let resp = rejection.response_to(&invut, Some("t"));
        assert_eq!(resp.header("Accept"), Some("application/sdp"));
        assert_eq!(resp.header("Accept-Encoding"), Some("identity"));
    }

    #[test]
    fn syntax_refusals_come_first_and_are_not_tagged() {
        let insuf = SipMessage::parse(&torture("insuf")).unwrap();
        let rejection = check_request(&insuf).unwrap_err();
        assert_eq!(
            (rejection.code, rejection.reason.as_str()),
            (400, "Missing Call-ID")
        );
        let resp = rejection.response_to(&insuf, Some("t"));
        assert_eq!(resp.to_tag(), None);
        assert!(resp.header("Unsupported").is_none());
    }

    #[test]
    fn local_options_refuses_required_extensions() {
        let text = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                    From: <sip:a@h>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c\r\n\
                    CSeq: 1 OPTIONS\r\nRequire: foo\r\nContent-Length: 0\r\n\r\n";
        let msg = SipMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(code(&msg), 420);
        let relayed = text.replace("sip:127.0.0.1:5060", "sip:bob@example.com");
        let msg = SipMessage::parse(relayed.as_bytes()).unwrap();
        assert_eq!(check_request(&msg), Ok(()));
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
        for (from, to, expected) in cases {
            let text = format!("{}\r\n", base.replace(from, to));
            let msg = SipMessage::parse(text.as_bytes()).unwrap();
            assert_eq!(code(&msg), expected, "{to}");
        }
    }
}
