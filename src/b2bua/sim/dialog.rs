//! The dialog state a scripted endpoint keeps, so a test can send requests inside a call (BYE,
//! re-INVITE, INFO, PRACK, NOTIFY...) the way a real user agent would: right Call-ID, tags,
//! Request-URI and a CSeq that grows.

use std::net::SocketAddr;

use crate::sip::{Method, NameAddr, SipMessage};

/// One endpoint's view of a dialog with the proxy.
#[derive(Clone, Debug)]
pub(super) struct UaDialog {
    /// Call-ID of this leg: the proxy gives each leg its own.
    pub(super) call_id: String,
    /// Our From value in requests we send (with our tag).
    pub(super) local: String,
    /// Our To value in requests we send (with the proxy's tag).
    pub(super) remote: String,
    /// Request-URI of our requests: the proxy's Contact.
    pub(super) target: String,
    /// Last CSeq number we used; each new request takes the next.
    pub(super) cseq: u32,
    /// Our address, written in Via and Contact.
    pub(super) addr: SocketAddr,
}

impl UaDialog {
    /// The dialog of the endpoint that sent `invite` and got `resp` (1xx with tag or 2xx).
    pub(super) fn uac(invite: &SipMessage, resp: &SipMessage, addr: SocketAddr) -> Self {
        UaDialog {
            call_id: invite.call_id().unwrap().to_string(),
            local: invite.header("From").unwrap().to_string(),
            remote: resp.header("To").unwrap().to_string(),
            target: contact_uri(resp),
            cseq: invite.cseq().unwrap().0,
            addr,
        }
    }

    /// The dialog of the endpoint that received `invite` and answered `resp`; its own requests
    /// start at CSeq 1000 so they never look like the peer's.
    pub(super) fn uas(invite: &SipMessage, resp: &SipMessage, addr: SocketAddr) -> Self {
        UaDialog {
            call_id: invite.call_id().unwrap().to_string(),
            local: resp.header("To").unwrap().to_string(),
            remote: invite.header("From").unwrap().to_string(),
            target: contact_uri(invite),
            cseq: 1000,
            addr,
        }
    }

    /// A new request in the dialog (next CSeq) on transaction `branch`.
    pub(super) fn request(&mut self, method: &str, branch: &str) -> SipMessage {
        self.cseq += 1;
        self.build(method, self.cseq, branch)
    }

    /// The ACK of the 2xx to our INVITE with CSeq `cseq` (a transaction of its own).
    pub(super) fn ack(&self, cseq: u32, branch: &str) -> SipMessage {
        self.build("ACK", cseq, branch)
    }

    /// Our tag in this dialog.
    pub(super) fn local_tag(&self) -> String {
        NameAddr::parse(&self.local)
            .unwrap()
            .tag()
            .unwrap()
            .to_string()
    }

    fn build(&self, method: &str, cseq: u32, branch: &str) -> SipMessage {
        let method = Method::parse(method);
        let mut m = SipMessage::request(method.clone(), self.target.clone());
        m.push_header("Via", format!("SIP/2.0/UDP {};branch={branch}", self.addr));
        m.push_header("Max-Forwards", "70");
        m.push_header("From", self.local.clone());
        m.push_header("To", self.remote.clone());
        m.push_header("Call-ID", self.call_id.clone());
        m.push_header("CSeq", format!("{cseq} {}", method.as_str()));
        if !matches!(method, Method::Ack | Method::Bye | Method::Cancel) {
            m.push_header("Contact", format!("<sip:ua@{}>", self.addr));
        }
        m
    }
}

/// The URI of a message's Contact.
fn contact_uri(msg: &SipMessage) -> String {
    NameAddr::parse(msg.header("Contact").unwrap()).unwrap().uri
}
