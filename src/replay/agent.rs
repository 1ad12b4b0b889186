//! The two SIP user agents the replay plays: the caller (a UAC sending the INVITE to the proxy)
//! and the PBX (a UAS the proxy sends its INVITE to). Sans-IO: messages in, messages out, so
//! that the dialog rules (tags, CSeq, answers to REFER, BYE, re-INVITE, INFO) are unit-tested.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::sip::{Method, NameAddr, SipMessage, StartLine};

/// What an incoming request meant for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Heard {
    /// The proxy hung this side up.
    Bye,
    /// The proxy asked this side to transfer to the Refer-To.
    Refer(String),
    /// Anything else that needed only an answer (re-INVITE, INFO, NOTIFY, OPTIONS, ACK).
    Other(String),
}

/// One side's dialog with the proxy.
#[derive(Debug)]
pub(super) struct Agent {
    /// Where this agent's SIP socket is bound.
    pub local: SocketAddr,
    /// The proxy's SIP address for this side.
    pub peer: SocketAddr,
    /// The dialog's Call-ID.
    pub call_id: String,
    local_tag: String,
    local_uri: String,
    remote: String,
    remote_target: String,
    cseq: u32,
    /// The SDP body this side offers or answers with.
    sdp: String,
    /// Counter for Via branches.
    branches: u32,
}

fn sip_uri(user: &str, addr: SocketAddr) -> String {
    format!("sip:{user}@{addr}")
}

impl Agent {
    /// The caller: a fresh dialog towards the proxy at `proxy`.
    pub(super) fn caller(local: SocketAddr, proxy: SocketAddr, sdp: String, seed: u64) -> Agent {
        Agent {
            local,
            peer: proxy,
            call_id: format!("replay-{seed:x}@{}", local.ip()),
            local_tag: format!("a{seed:x}"),
            local_uri: format!("<{}>", sip_uri("replay-caller", local)),
            remote: format!("<{}>", sip_uri("replay-callee", proxy)),
            remote_target: sip_uri("replay-callee", proxy),
            cseq: 1,
            sdp,
            branches: 0,
        }
    }

    /// The PBX side of the dialog the proxy's INVITE `invite` (from `src`) opens.
    pub(super) fn callee(
        local: SocketAddr,
        src: SocketAddr,
        invite: &SipMessage,
        sdp: String,
        seed: u64,
    ) -> Agent {
        let remote_target = invite
            .contact_addr()
            .map_or_else(|| sip_uri("proxy", src), |c| c.uri);
        Agent {
            local,
            peer: src,
            call_id: invite.call_id().unwrap_or_default().to_owned(),
            local_tag: format!("b{seed:x}"),
            local_uri: invite
                .header("To")
                .unwrap_or("<sip:replay-callee>")
                .to_owned(),
            remote: invite.header("From").unwrap_or("<sip:proxy>").to_owned(),
            remote_target,
            cseq: 1,
            sdp,
            branches: 0,
        }
    }

    fn our_from(&self) -> String {
        format!("{};tag={}", self.local_uri, self.local_tag)
    }

    fn via(&mut self) -> String {
        self.branches += 1;
        format!(
            "SIP/2.0/UDP {};branch=z9hG4bK-replay-{}-{}",
            self.local, self.local_tag, self.branches
        )
    }

    /// The caller's INVITE with its SDP offer.
    pub(super) fn invite(&mut self) -> SipMessage {
        let mut msg = self.request(Method::Invite, self.remote_target.clone());
        msg.set_header("Content-Type", "application/sdp");
        msg.body = Bytes::from(self.sdp.clone().into_bytes());
        msg
    }

    /// Learns the remote tag and target from the 2xx to the INVITE; returns the ACK to send.
    pub(super) fn answered(&mut self, ok: &SipMessage) -> SipMessage {
        if let Some(to) = ok.header("To") {
            self.remote = to.to_owned();
        }
        if let Some(contact) = ok.contact_addr() {
            self.remote_target = contact.uri;
        }
        let cseq = ok.cseq().map_or(self.cseq, |(n, _)| n);
        let mut ack = self.request_with_cseq(Method::Ack, self.remote_target.clone(), cseq);
        ack.body = Bytes::new();
        ack
    }

    /// A new in-dialog request (`BYE`, `INFO`, `NOTIFY`) with the next CSeq.
    pub(super) fn request(&mut self, method: Method, uri: String) -> SipMessage {
        let cseq = self.cseq;
        self.cseq += 1;
        self.request_with_cseq(method, uri, cseq)
    }

    fn request_with_cseq(&mut self, method: Method, uri: String, cseq: u32) -> SipMessage {
        let mut msg = SipMessage::request(method.clone(), uri);
        msg.push_header("Via", self.via());
        msg.push_header("Max-Forwards", "70");
        msg.push_header("From", self.our_from());
        msg.push_header("To", self.remote.clone());
        msg.push_header("Call-ID", self.call_id.clone());
        msg.push_header("CSeq", format!("{cseq} {method}"));
        msg.push_header("Contact", format!("<sip:replay@{}>", self.local));
        msg.push_header("User-Agent", "metaflow-proxy-replay");
        msg
    }

    /// An in-dialog request towards the proxy.
    pub(super) fn in_dialog(&mut self, method: Method) -> SipMessage {
        let target = self.remote_target.clone();
        self.request(method, target)
    }

    /// A response to `req` with this side's tag and contact, and `body` as SDP when given.
    pub(super) fn respond(
        &self,
        req: &SipMessage,
        code: u16,
        reason: &str,
        sdp: bool,
    ) -> SipMessage {
        let mut msg = SipMessage::response_to(req, code, reason);
        if let Some(to) = req.header("To")
            && req.to_tag().is_none()
        {
            msg.set_header("To", format!("{to};tag={}", self.local_tag));
        }
        msg.push_header("Contact", format!("<sip:replay@{}>", self.local));
        if sdp {
            msg.push_header("Content-Type", "application/sdp");
            msg.body = Bytes::from(self.sdp.clone().into_bytes());
        }
        msg
    }

    /// Answers a request the proxy sent this side: the responses (and NOTIFY) to send and what
    /// the request meant.
    pub(super) fn on_request(&mut self, req: &SipMessage) -> (Vec<SipMessage>, Heard) {
        let Some(method) = req.method().cloned() else {
            return (Vec::new(), Heard::Other("response".into()));
        };
        match method {
            Method::Ack => (Vec::new(), Heard::Other("ACK".into())),
            Method::Bye => (vec![self.respond(req, 200, "OK", false)], Heard::Bye),
            Method::Invite => (
                vec![self.respond(req, 200, "OK", true)],
                Heard::Other("re-INVITE".into()),
            ),
            Method::Refer => {
                let target = req.header("Refer-To").map_or_else(String::new, |v| {
                    NameAddr::parse(v).map_or_else(|_| v.to_owned(), |n| n.uri)
                });
                let accepted = self.respond(req, 202, "Accepted", false);
                let mut notify = self.in_dialog(Method::Notify);
                notify.set_header("Event", "refer");
                notify.set_header("Subscription-State", "terminated;reason=noresource");
                notify.set_header("Content-Type", "message/sipfrag;version=2.0");
                notify.body = Bytes::from_static(b"SIP/2.0 200 OK\r\n");
                (vec![accepted, notify], Heard::Refer(target))
            }
            other => (
                vec![self.respond(req, 200, "OK", false)],
                Heard::Other(other.to_string()),
            ),
        }
    }
}

/// Whether `msg` is a response to this side's request with `method`.
pub(super) fn is_response_to(msg: &SipMessage, method: &Method) -> Option<u16> {
    let StartLine::Response { code, .. } = msg.start else {
        return None;
    };
    msg.cseq().filter(|(_, m)| m == method).map(|_| code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_callee_answers_refer_with_202_then_a_200_sipfrag_notify() {
        let invite = SipMessage::parse(
            b"INVITE sip:x@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
From: <sip:a@p>;tag=p1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:p@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let mut agent = Agent::callee(
            addr("127.0.0.1:5090"),
            addr("127.0.0.1:5060"),
            &invite,
            "v=0\r\n".into(),
            7,
        );
        let ok = agent.respond(&invite, 200, "OK", true);
        assert!(ok.to_tag().is_some());
        let refer = SipMessage::parse(
            b"REFER sip:replay@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2\r\n\
From: <sip:a@p>;tag=p1\r\nTo: <sip:x@127.0.0.1>;tag=b7\r\nCall-ID: c1\r\nCSeq: 2 REFER\r\n\
Refer-To: <sip:2000@pbx>\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let (out, heard) = agent.on_request(&refer);
        assert_eq!(heard, Heard::Refer("sip:2000@pbx".into()));
        assert_eq!(out.first().and_then(SipMessage::status), Some(202));
        let notify = out.get(1).unwrap();
        assert_eq!(notify.method(), Some(&Method::Notify));
        assert_eq!(notify.request_uri(), Some("sip:p@127.0.0.1:5060"));
        assert_eq!(&notify.body[..], b"SIP/2.0 200 OK\r\n");
    }

    #[test]
    fn bye_info_and_re_invite_are_answered_200_the_re_invite_with_the_same_sdp() {
        let mut agent = Agent::caller(
            addr("127.0.0.1:6000"),
            addr("127.0.0.1:5060"),
            "v=0\r\nm=audio 1 RTP/AVP 0\r\n".into(),
            2,
        );
        let request = |method: &str| {
            SipMessage::parse(
                format!(
                    "{method} sip:replay@127.0.0.1:6000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{method}\r\n\
                     From: <sip:p@x>;tag=p\r\nTo: <sip:a@y>;tag=a2\r\nCall-ID: c\r\nCSeq: 5 {method}\r\n\
                     Content-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let (out, heard) = agent.on_request(&request("BYE"));
        assert_eq!(
            (out.len(), out[0].status(), heard),
            (1, Some(200), Heard::Bye)
        );
        let (out, heard) = agent.on_request(&request("INFO"));
        assert_eq!(
            (out[0].status(), heard),
            (Some(200), Heard::Other("INFO".into()))
        );
        let (out, _) = agent.on_request(&request("INVITE"));
        assert_eq!(out[0].status(), Some(200));
        assert_eq!(&out[0].body[..], b"v=0\r\nm=audio 1 RTP/AVP 0\r\n");
        let (out, _) = agent.on_request(&request("ACK"));
        assert!(out.is_empty());
    }

    #[test]
    fn the_caller_acks_the_2xx_towards_its_contact() {
        let mut agent = Agent::caller(
            addr("127.0.0.1:6000"),
            addr("127.0.0.1:5060"),
            "v=0\r\n".into(),
            1,
        );
        let invite = agent.invite();
        assert_eq!(invite.cseq().map(|(n, _)| n), Some(1));
        let mut ok = SipMessage::response_to(&invite, 200, "OK");
        ok.set_header("To", "<sip:replay-callee@127.0.0.1:5060>;tag=z");
        ok.push_header("Contact", "<sip:b2b@127.0.0.1:5060>");
        let ack = agent.answered(&ok);
        assert_eq!(ack.request_uri(), Some("sip:b2b@127.0.0.1:5060"));
        assert_eq!(ack.cseq(), Some((1, Method::Ack)));
        assert_eq!(is_response_to(&ok, &Method::Invite), Some(200));
        let bye = agent.in_dialog(Method::Bye);
        assert_eq!(bye.to_tag().as_deref(), Some("z"));
    }
}
