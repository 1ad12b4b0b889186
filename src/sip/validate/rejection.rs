//! The one answer every refused request gets: a status, a reason, and what RFC 3261 wants the
//! response to carry with that status.

use crate::sip::header::Header;
use crate::sip::message::SipMessage;
use crate::sip::names::TO;

/// A request that must be refused, with the status a proxy answers it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code to answer with (400, 416, 420, 505...).
    pub code: u16,
    /// Reason phrase explaining the defect.
    pub reason: String,
    /// Headers the response carries beyond the copies of the request's (`Unsupported` on 420,
    /// `Accept` and `Accept-Encoding` on 415), in the order they are written.
    pub headers: Vec<Header>,
    /// Whether the response gets a To tag of the answering side. The proxy's policy refusals
    /// answer as a UAS and are tagged (RFC 3261 §8.2.6.2); the syntax checks answer a request
    /// no UA accepted and leave To as it came.
    pub to_tag: bool,
}

impl Rejection {
    /// A rejection with the given code and reason, no extra headers and no To tag.
    pub fn new(code: u16, reason: impl Into<String>) -> Rejection {
        Rejection {
            code,
            reason: reason.into(),
            headers: Vec::new(),
            to_tag: false,
        }
    }

    /// The same rejection answered with a To tag.
    pub fn tagged(mut self) -> Rejection {
        self.to_tag = true;
        self
    }

    /// The same rejection with one more header in its response.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Rejection {
        self.headers.push(Header::new(name, value));
        self
    }

    /// The response to `req`: copies of its Via, From, To, Call-ID and CSeq, `tag` added to To
    /// when the rejection is [tagged](Rejection::tagged) and To has none, then the extra
    /// headers.
    pub fn response_to(&self, req: &SipMessage, tag: Option<&str>) -> SipMessage {
        let mut resp = SipMessage::response_to(req, self.code, &self.reason);
        if self.to_tag
            && let Some(tag) = tag
            && resp.to_tag().is_none()
            && let Some(to) = resp.header(TO).map(str::to_string)
        {
            resp.set_header(TO, format!("{to};tag={tag}"));
        }
        resp.headers.extend(self.headers.iter().cloned());
        resp
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}
