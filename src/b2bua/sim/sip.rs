//! SIP text for the scripted endpoints: the SDP bodies they offer and answer, the requests that
//! start a call, responses to what they received, and small readers of what arrived. Everything
//! is built as a [`SipMessage`] so that tests change a header with one call.

use std::net::SocketAddr;

use crate::sip::{Method, NameAddr, SipMessage};

/// The phone's offer: PCMA and telephone-event 101, media at 10.0.0.5:6000.
pub(super) const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

/// The PBX's answer: PCMA and telephone-event 96, media at 10.0.0.9:7000.
pub(super) const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n";

/// The standard reason phrase of the codes the endpoints send.
pub(super) fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        403 => "Forbidden",
        407 => "Proxy Authentication Required",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        _ => "Whatever",
    }
}

/// A fresh INVITE from an endpoint at `from` to user 1000 at the proxy `proxy`.
pub(super) fn invite(
    from: SocketAddr,
    proxy: SocketAddr,
    call_id: &str,
    tag: &str,
    branch: &str,
    sdp: Option<&str>,
) -> SipMessage {
    let mut m = SipMessage::request(Method::Invite, format!("sip:1000@{proxy}"));
    m.push_header("Via", format!("SIP/2.0/UDP {from};branch={branch}"));
    m.push_header("Max-Forwards", "70");
    m.push_header("From", format!("\"Alice\" <sip:alice@{from}>;tag={tag}"));
    m.push_header("To", format!("<sip:1000@{proxy}>"));
    m.push_header("Call-ID", call_id);
    m.push_header("CSeq", "1 INVITE");
    m.push_header("Contact", format!("<sip:alice@{from}>"));
    m.push_header("User-Agent", "sim-phone");
    match sdp {
        Some(body) => with_body(m, "application/sdp", body),
        None => m,
    }
}

/// `msg` carrying `body` of type `content_type`.
pub(super) fn with_body(mut msg: SipMessage, content_type: &str, body: &str) -> SipMessage {
    msg.set_header("Content-Type", content_type);
    msg.body = body.as_bytes().to_vec().into();
    msg
}

/// A response to `req` with the To tag `tag` (unless the request had one, or `tag` is None),
/// and `contact` when given.
pub(super) fn response(
    req: &SipMessage,
    code: u16,
    tag: Option<&str>,
    contact: Option<&str>,
) -> SipMessage {
    let mut resp = SipMessage::response_to(req, code, reason(code));
    if let Some(tag) = tag
        && resp.to_tag().is_none()
    {
        let to = resp.header("To").unwrap().to_string();
        resp.set_header("To", format!("{to};tag={tag}"));
    }
    if let Some(contact) = contact {
        resp.push_header("Contact", contact);
    }
    resp
}

/// The CANCEL of an INVITE the endpoint sent (same branch, RFC 3261 §9.1).
pub(super) fn cancel(invite: &SipMessage) -> SipMessage {
    let mut m = SipMessage::request(Method::Cancel, invite.request_uri().unwrap());
    for name in ["Via", "From", "To", "Call-ID"] {
        m.push_header(name, invite.header(name).unwrap());
    }
    m.push_header("Max-Forwards", "70");
    m.push_header("CSeq", format!("{} CANCEL", invite.cseq().unwrap().0));
    m
}

/// The ACK of a non-2xx final response to an INVITE the endpoint sent (same branch, To of the
/// response, RFC 3261 §17.1.1.3).
pub(super) fn ack_non_2xx(invite: &SipMessage, resp: &SipMessage) -> SipMessage {
    let mut m = SipMessage::request(Method::Ack, invite.request_uri().unwrap());
    m.push_header("Via", invite.header("Via").unwrap());
    m.push_header("Max-Forwards", "70");
    m.push_header("From", invite.header("From").unwrap());
    m.push_header("To", resp.header("To").unwrap());
    m.push_header("Call-ID", invite.call_id().unwrap());
    m.push_header("CSeq", format!("{} ACK", invite.cseq().unwrap().0));
    m
}

/// The body as text.
pub(super) fn body(msg: &SipMessage) -> String {
    String::from_utf8(msg.body.to_vec()).unwrap()
}

/// The method name of a request (`""` for a response).
pub(super) fn method(msg: &SipMessage) -> &str {
    msg.method().map(Method::as_str).unwrap_or("")
}

/// The top Via branch.
pub(super) fn branch(msg: &SipMessage) -> String {
    msg.top_via().and_then(|v| v.branch).unwrap()
}

/// The CSeq number.
pub(super) fn cseq(msg: &SipMessage) -> u32 {
    msg.cseq().unwrap().0
}

/// The URI inside a name-addr header such as Contact or Refer-To.
pub(super) fn uri_of(msg: &SipMessage, header: &str) -> String {
    NameAddr::parse(msg.header(header).unwrap()).unwrap().uri
}

/// The method named in CSeq: for a response, the method of the request it answers.
pub(super) fn method_of_cseq(msg: &SipMessage) -> String {
    msg.cseq().unwrap().1.as_str().to_string()
}

/// A REGISTER from an endpoint at `from` for alice at the PBX's domain, with its own `contact`.
pub(super) fn register(from: SocketAddr, branch: &str, contact: &str) -> SipMessage {
    let mut m = SipMessage::request(Method::Register, "sip:pbx.example.com");
    m.push_header("Via", format!("SIP/2.0/UDP {from};branch={branch}"));
    m.push_header("Max-Forwards", "70");
    m.push_header("From", "<sip:alice@pbx.example.com>;tag=reg1");
    m.push_header("To", "<sip:alice@pbx.example.com>");
    m.push_header("Call-ID", format!("{branch}@reg"));
    m.push_header("CSeq", "1 REGISTER");
    m.push_header("Contact", contact);
    m
}

/// `msg` with another Request-URI.
pub(super) fn retarget(mut msg: SipMessage, uri: &str) -> SipMessage {
    if let crate::sip::StartLine::Request { uri: target, .. } = &mut msg.start {
        *target = uri.to_string();
    }
    msg
}
