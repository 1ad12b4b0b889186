//! The PBX side's half of a dialog the proxy opened with an INVITE, kept to answer the proxy's
//! REFER (blind transfer) with 202 Accepted and to report its outcome with a NOTIFY carrying
//! `message/sipfrag` (RFC 3515), built with the crate's own SIP code.

use std::net::SocketAddr;

use bytes::Bytes;
use metaflow_proxy::sip::{Method, NameAddr, SipMessage};

use crate::sip_text::response;

/// Body of the final NOTIFY: the transferee's call to the target succeeded.
pub(crate) const SIPFRAG_OK: &str = "SIP/2.0 200 OK";

/// What the PBX side needs to send requests in a dialog the proxy's INVITE created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PbxDialog {
    /// The dialog's Call-ID.
    call_id: String,
    /// Our side of the dialog: the INVITE's To, with our tag (the From of our requests).
    local: String,
    /// The proxy's side: the INVITE's From, with its tag (the To of our requests).
    remote: String,
    /// Where our requests go: the URI of the INVITE's Contact.
    target: String,
    /// Our SIP socket, for Via and Contact.
    via_host: SocketAddr,
}

impl PbxDialog {
    /// The dialog created by `invite` once we answer it with `local_tag`; `None` when the INVITE
    /// lacks a header the dialog needs (Call-ID, From, To, a parsable Contact).
    pub(crate) fn from_invite(
        invite: &SipMessage,
        local_tag: &str,
        via_host: SocketAddr,
    ) -> Option<Self> {
        let to = invite.header("To")?;
        let local = if invite.to_tag().is_some() {
            to.to_owned()
        } else {
            format!("{to};tag={local_tag}")
        };
        let target = NameAddr::parse(invite.header("Contact")?).ok()?.uri;
        Some(PbxDialog {
            call_id: invite.call_id()?.to_owned(),
            local,
            remote: invite.header("From")?.to_owned(),
            target,
            via_host,
        })
    }

    /// The final NOTIFY of the REFER subscription (`Event: refer`, terminated, sipfrag
    /// `SIP/2.0 200 OK`), with our own CSeq `cseq` and a Via branch built from `branch`.
    pub(crate) fn notify_success(&self, cseq: u32, branch: &str) -> SipMessage {
        let mut msg = SipMessage::request(Method::Notify, self.target.clone());
        msg.push_header(
            "Via",
            format!("SIP/2.0/UDP {};branch=z9hG4bK{branch};rport", self.via_host),
        );
        msg.push_header("Max-Forwards", "70");
        msg.push_header("From", self.local.clone());
        msg.push_header("To", self.remote.clone());
        msg.push_header("Call-ID", self.call_id.clone());
        msg.push_header("CSeq", format!("{cseq} NOTIFY"));
        msg.push_header("Contact", format!("<sip:pbx@{}>", self.via_host));
        msg.push_header("Event", "refer");
        msg.push_header("Subscription-State", "terminated;reason=noresource");
        msg.push_header("Content-Type", "message/sipfrag");
        msg.body = Bytes::from_static(SIPFRAG_OK.as_bytes());
        msg
    }
}

/// The 202 Accepted to a REFER (in-dialog, so To already carries our tag).
pub(crate) fn refer_accepted(refer: &SipMessage) -> SipMessage {
    response(refer, 202, "Accepted", None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaflow_proxy::modules::transfer::parse_sipfrag;

    /// An INVITE as the proxy sends it to the PBX side.
    const PROXY_INVITE: &str = "INVITE sip:load-3@127.0.0.1:5070 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy1\r\n\
        Max-Forwards: 69\r\n\
        From: <sip:caller@127.0.0.1:40000>;tag=mfp-b-1\r\n\
        To: <sip:load-3@127.0.0.1:5060>\r\n\
        Call-ID: b-leg-3@127.0.0.1\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:mfp@127.0.0.1:5060;transport=udp>\r\n\
        Content-Length: 0\r\n\r\n";

    /// The proxy's REFER in the same dialog, towards the PBX side.
    const PROXY_REFER: &str = "REFER sip:pbx@127.0.0.1:5070 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy2\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:caller@127.0.0.1:40000>;tag=mfp-b-1\r\n\
        To: <sip:load-3@127.0.0.1:5060>;tag=uas3\r\n\
        Call-ID: b-leg-3@127.0.0.1\r\n\
        CSeq: 2 REFER\r\n\
        Contact: <sip:mfp@127.0.0.1:5060;transport=udp>\r\n\
        Refer-To: <sip:2000@127.0.0.1>\r\n\
        Referred-By: <sip:caller@127.0.0.1:40000>\r\n\
        Content-Length: 0\r\n\r\n";

    fn pbx() -> SocketAddr {
        "127.0.0.1:5070".parse().unwrap()
    }

    #[test]
    fn refer_is_accepted_with_202_in_its_transaction() {
        let refer = SipMessage::parse(PROXY_REFER.as_bytes()).unwrap();
        let reply = SipMessage::parse(&refer_accepted(&refer).to_bytes()).unwrap();
        assert_eq!(reply.status(), Some(202));
        assert_eq!(reply.cseq(), Some((2, Method::Refer)));
        assert_eq!(reply.call_id(), Some("b-leg-3@127.0.0.1"));
        assert_eq!(reply.to_tag().as_deref(), Some("uas3"));
        assert_eq!(reply.from_tag().as_deref(), Some("mfp-b-1"));
        assert_eq!(
            reply.top_via().unwrap().branch,
            refer.top_via().unwrap().branch
        );
    }

    #[test]
    fn notify_is_sent_in_the_dialog_of_the_invite() {
        let invite = SipMessage::parse(PROXY_INVITE.as_bytes()).unwrap();
        let dialog = PbxDialog::from_invite(&invite, "uas3", pbx()).unwrap();
        let bytes = dialog.notify_success(1, "n3").to_bytes();
        let notify = SipMessage::parse(&bytes).unwrap();
        assert_eq!(notify.method(), Some(&Method::Notify));
        assert_eq!(
            notify.request_uri(),
            Some("sip:mfp@127.0.0.1:5060;transport=udp")
        );
        assert_eq!(notify.from_tag().as_deref(), Some("uas3"));
        assert_eq!(notify.from_addr().unwrap().uri, "sip:load-3@127.0.0.1:5060");
        assert_eq!(notify.to_tag().as_deref(), Some("mfp-b-1"));
        assert_eq!(notify.to_addr().unwrap().uri, "sip:caller@127.0.0.1:40000");
        assert_eq!(notify.call_id(), Some("b-leg-3@127.0.0.1"));
        assert_eq!(notify.cseq(), Some((1, Method::Notify)));
        assert_eq!(notify.header("Event"), Some("refer"));
        assert_eq!(
            notify.header("Subscription-State"),
            Some("terminated;reason=noresource")
        );
        assert_eq!(notify.content_type(), Some("message/sipfrag"));
        assert_eq!(parse_sipfrag(&notify.body), Some((200, "OK".to_owned())));
        assert_eq!(
            notify.top_via().unwrap().branch.as_deref(),
            Some("z9hG4bKn3")
        );
    }

    #[test]
    fn dialog_needs_a_contact_to_send_requests_to() {
        let without_contact =
            PROXY_INVITE.replace("Contact: <sip:mfp@127.0.0.1:5060;transport=udp>\r\n", "");
        let invite = SipMessage::parse(without_contact.as_bytes()).unwrap();
        assert_eq!(PbxDialog::from_invite(&invite, "uas3", pbx()), None);
    }
}
