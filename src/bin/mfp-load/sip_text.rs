//! The few SIP messages and SDP bodies the tool's caller and PBX sides exchange, built and read
//! with the crate's own SIP and SDP code.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use metaflow_proxy::sdp::Sdp;
use metaflow_proxy::sip::{Method, SipMessage};

/// Header carrying the call's index end to end, so the PBX side knows which call an INVITE
/// relayed by the proxy belongs to (the proxy copies unknown headers across legs).
pub(crate) const CALL_INDEX_HEADER: &str = "X-Mfp-Load-Call";

/// Identity of one caller-side dialog, enough to build its INVITE, ACK and BYE.
pub(crate) struct CallerDialog<'a> {
    /// Index of the call in this run.
    pub index: u32,
    /// Run-unique Call-ID.
    pub call_id: &'a str,
    /// The UAC's SIP socket address.
    pub local: SocketAddr,
    /// The proxy's SIP address.
    pub proxy: SocketAddr,
}

impl CallerDialog<'_> {
    fn caller_header(&self) -> String {
        format!("<sip:caller@{}>;tag=uac{}", self.local, self.index)
    }

    fn to_uri(&self) -> String {
        format!("sip:load-{}@{}", self.index, self.proxy)
    }

    fn base(&self, method: Method, branch: &str, cseq: u32, to_tag: Option<&str>) -> SipMessage {
        let cseq_text = format!("{cseq} {}", method.as_str());
        let mut msg = SipMessage::request(method, self.to_uri());
        msg.push_header(
            "Via",
            format!("SIP/2.0/UDP {};branch=z9hG4bK{branch};rport", self.local),
        );
        msg.push_header("Max-Forwards", "70");
        msg.push_header("From", self.caller_header());
        let to = match to_tag {
            Some(tag) => format!("<{}>;tag={tag}", self.to_uri()),
            None => format!("<{}>", self.to_uri()),
        };
        msg.push_header("To", to);
        msg.push_header("Call-ID", self.call_id);
        msg.push_header("CSeq", cseq_text);
        msg
    }

    /// The INVITE offering PCMA and telephone-event 101 on `rtp`.
    pub(crate) fn invite(&self, branch: &str, rtp: SocketAddr) -> Vec<u8> {
        let mut msg = self.base(Method::Invite, branch, 1, None);
        msg.push_header("Contact", format!("<sip:caller@{}>", self.local));
        msg.push_header(CALL_INDEX_HEADER, self.index.to_string());
        msg.push_header("Content-Type", "application/sdp");
        msg.body = Bytes::from(audio_sdp(rtp, u64::from(self.index)));
        msg.to_bytes()
    }

    /// The ACK of a final INVITE response (`branch` of the INVITE for non-2xx, a new one for 2xx).
    pub(crate) fn ack(&self, branch: &str, to_tag: Option<&str>) -> Vec<u8> {
        self.base(Method::Ack, branch, 1, to_tag).to_bytes()
    }

    /// The caller's BYE for an established call.
    pub(crate) fn bye(&self, branch: &str, to_tag: &str) -> Vec<u8> {
        self.base(Method::Bye, branch, 2, Some(to_tag)).to_bytes()
    }
}

/// An SDP body offering (or answering) PCMA 8 and telephone-event 101 at `rtp`.
pub(crate) fn audio_sdp(rtp: SocketAddr, session_id: u64) -> String {
    let family = if rtp.is_ipv4() { "IP4" } else { "IP6" };
    let ip = rtp.ip();
    format!(
        "v=0\r\no=mfp-load {session_id} 1 IN {family} {ip}\r\ns=mfp-load\r\nc=IN {family} {ip}\r\n\
         t=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        port = rtp.port()
    )
}

/// Where the SDP of `msg` says its first audio stream receives RTP.
pub(crate) fn media_address(msg: &SipMessage) -> Option<SocketAddr> {
    let sdp = Sdp::parse(&msg.body).ok()?;
    let media = sdp.media().first()?;
    let ip: IpAddr = media.connection?;
    (media.port != 0).then(|| SocketAddr::new(ip, media.port))
}

/// A response to `request` (Via, From, To, Call-ID, CSeq copied), with our tag on To when given.
pub(crate) fn response(
    request: &SipMessage,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> SipMessage {
    let mut msg = SipMessage::response_to(request, code, reason);
    if let (Some(tag), Some(to), None) = (to_tag, request.header("To"), request.to_tag()) {
        msg.set_header("To", format!("{to};tag={tag}"));
    }
    msg
}

/// The PBX side's 200 OK to an INVITE, answering with PCMA and telephone-event at `rtp`.
pub(crate) fn answer(
    invite: &SipMessage,
    to_tag: &str,
    contact: SocketAddr,
    rtp: SocketAddr,
    session_id: u64,
) -> Vec<u8> {
    let mut msg = response(invite, 200, "OK", Some(to_tag));
    msg.push_header("Contact", format!("<sip:pbx@{contact}>"));
    msg.push_header("Content-Type", "application/sdp");
    msg.body = Bytes::from(audio_sdp(rtp, session_id));
    msg.to_bytes()
}

/// The call index an INVITE carries, from our header or else the `load-N` user of its URI.
pub(crate) fn call_index(invite: &SipMessage) -> Option<u32> {
    if let Some(value) = invite.header(CALL_INDEX_HEADER) {
        return value.trim().parse().ok();
    }
    let uri = invite.request_uri()?;
    let user = uri.strip_prefix("sip:load-")?;
    let digits: String = user.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The call a transfer's placed call belongs to: the proxy's INVITE to the target carries the
/// transferee's URI (`sip:load-N@...`) in From.
pub(crate) fn placed_call_index(invite: &SipMessage) -> Option<u32> {
    let from = invite.header("From")?;
    let user = from.split("sip:load-").nth(1)?;
    let digits: String = user.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_round_trips_through_the_parser() {
        let dialog = CallerDialog {
            index: 7,
            call_id: "abc",
            local: "127.0.0.1:5061".parse().unwrap(),
            proxy: "127.0.0.1:5060".parse().unwrap(),
        };
        let rtp: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let parsed = SipMessage::parse(&dialog.invite("x1", rtp)).unwrap();
        assert_eq!(call_index(&parsed), Some(7));
        assert_eq!(media_address(&parsed), Some(rtp));
        assert_eq!(parsed.cseq(), Some((1, Method::Invite)));
        let answer_bytes = answer(&parsed, "t1", rtp, rtp, 1);
        let reply = SipMessage::parse(&answer_bytes).unwrap();
        assert_eq!(reply.status(), Some(200));
        assert_eq!(reply.to_tag().as_deref(), Some("t1"));
        assert_eq!(reply.call_id(), Some("abc"));
    }

    #[test]
    fn a_placed_call_names_its_call_in_from() {
        let invite = SipMessage::parse(
            b"INVITE sip:2000@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n\
              From: <sip:load-42@127.0.0.1:5060>;tag=abc\r\nTo: <sip:2000@127.0.0.1:5070>\r\n\
              Call-ID: placed@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(placed_call_index(&invite), Some(42));
        assert_eq!(call_index(&invite), None);
    }
}
