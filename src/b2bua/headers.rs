//! Which headers cross the B2BUA from one leg to the other, and which are rebuilt per leg.

use crate::sip::SipMessage;
use crate::sip::names::{
    CALL_ID, CONTACT, CONTENT_LENGTH, CSEQ, FROM, MAX_FORWARDS, RECORD_ROUTE, ROUTE, TO, VIA,
};

/// Headers that belong to one hop or one dialog and are never copied to the other leg.
const PER_LEG: &[&str] = &[
    VIA,
    ROUTE,
    RECORD_ROUTE,
    CONTACT,
    CALL_ID,
    CSEQ,
    FROM,
    TO,
    MAX_FORWARDS,
    CONTENT_LENGTH,
];

/// Copies every end-to-end header of `from` (in order) onto `to`, after the headers `to`
/// already has. Dialog and hop headers are skipped; `extra_skip` names more to leave out.
pub(super) fn copy_end_to_end(from: &SipMessage, to: &mut SipMessage, extra_skip: &[&str]) {
    for h in &from.headers {
        let skip = PER_LEG
            .iter()
            .chain(extra_skip.iter())
            .any(|n| n.eq_ignore_ascii_case(&h.name));
        if !skip {
            to.push_header(&h.name, h.value.clone());
        }
    }
}

/// Gives a response the Record-Route of the request it answers (RFC 3261 §12.1.1), values and
/// order unchanged, so every proxy that record-routed the request stays on the dialog's path:
/// without it the caller's ACK and BYE skip a record-routing PBX or load balancer. Only 101 to
/// 299 establish or confirm a dialog; a response that already carries one is left alone.
pub(super) fn copy_record_route(request: &SipMessage, resp: &mut SipMessage) {
    let code = resp.status().unwrap_or(0);
    if !(101..300).contains(&code) || resp.header(RECORD_ROUTE).is_some() {
        return;
    }
    let values: Vec<String> = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(RECORD_ROUTE))
        .map(|h| h.value.clone())
        .collect();
    for value in values {
        resp.push_header(RECORD_ROUTE, value);
    }
}

/// Whether the message body is SDP.
pub(super) fn has_sdp(msg: &SipMessage) -> bool {
    !msg.body.is_empty()
        && msg
            .content_type()
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/sdp")
            })
            .unwrap_or(false)
}

/// Removes the topmost Via value (ours, on a response to a request we forwarded).
pub(super) fn pop_top_via(msg: &mut SipMessage) {
    let Some(pos) = msg
        .headers
        .iter()
        .position(|h| h.name.eq_ignore_ascii_case(VIA))
    else {
        return;
    };
    let rest = msg
        .headers
        .get(pos)
        .and_then(|h| h.value.split_once(','))
        .map(|(_, rest)| rest.trim().to_string());
    match rest {
        Some(rest) if !rest.is_empty() => {
            if let Some(h) = msg.headers.get_mut(pos) {
                h.value = rest;
            }
        }
        _ => {
            msg.headers.remove(pos);
        }
    }
}

/// Makes a message the proxy built fit the transport it leaves on: our top Via names that
/// transport, and our Contact asks for it (`;transport=tcp`), so the peer answers and sends
/// in-dialog requests over the same transport.
pub(super) fn adapt_to_transport(
    msg: &mut SipMessage,
    transport: crate::sip::transport::Transport,
) {
    use crate::sip::transport::Transport;
    if transport == Transport::Udp {
        return;
    }
    let token = transport.via_token();
    let lower = token.to_ascii_lowercase();
    if msg.is_request()
        && let Some(h) = msg
            .headers
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case(VIA))
        && let Some(rest) = h.value.strip_prefix("SIP/2.0/UDP ")
    {
        h.value = format!("SIP/2.0/{token} {rest}");
    }
    if let Some(h) = msg
        .headers
        .iter_mut()
        .find(|h| h.name.eq_ignore_ascii_case(CONTACT))
        && h.value.starts_with("<sip:metaflow-proxy@")
        && !h.value.contains(";transport=")
        && let Some(stripped) = h.value.strip_suffix('>')
    {
        h.value = format!("{stripped};transport={lower}>");
    }
}
