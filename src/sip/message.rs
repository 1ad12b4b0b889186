//! The SIP message model: start line, ordered headers and a raw body, with
//! typed accessors for the headers a proxy reads on every message.

use bytes::Bytes;

use super::error::ParseError;
use super::header::{Header, canonical_ref, is_list_header, is_named, split_list};
use super::method::Method;
use super::name_addr::NameAddr;
use super::names::{
    CALL_ID, CONTACT, CONTENT_LENGTH, CONTENT_TYPE, CSEQ, FROM, MAX_FORWARDS, RECORD_ROUTE, ROUTE,
    TO, VIA,
};
use super::parse;
use super::via::Via;

/// First line of a message: a request line or a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`
    Request {
        /// Request method.
        method: Method,
        /// Request-URI as received.
        uri: String,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase (may be empty).
        reason: String,
    },
}

/// A parsed SIP request or response. Headers keep their wire order; the body is
/// raw bytes whose length is always rewritten into Content-Length on output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipMessage {
    /// Request line or status line.
    pub start: StartLine,
    /// Headers in wire order, names canonicalised.
    pub headers: Vec<Header>,
    /// Message body, possibly empty.
    pub body: Bytes,
}

impl SipMessage {
    /// Parses one UDP datagram. See [`parse::parse_datagram`] for framing rules.
    pub fn parse(datagram: &[u8]) -> Result<SipMessage, ParseError> {
        parse::parse_datagram(datagram)
    }

    /// Parses one message from the front of a stream buffer; `Ok(None)` means
    /// more bytes are needed. Returns the message and the bytes consumed.
    pub fn parse_stream(buf: &[u8]) -> Result<Option<(SipMessage, usize)>, ParseError> {
        parse::parse_stream(buf)
    }

    /// Serialises with CRLF line ends and a Content-Length equal to the body
    /// length (rewriting existing Content-Length headers, or appending one).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len() + self.headers.len() * 48);
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes());
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
            }
        }
        let length = self.body.len().to_string();
        let mut wrote_length = false;
        for header in &self.headers {
            let value = if is_named(&header.name, CONTENT_LENGTH) {
                wrote_length = true;
                length.as_str()
            } else {
                header.value.as_str()
            };
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_length {
            out.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method (`None` for responses).
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI (`None` for responses).
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code (`None` for requests).
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// Value of the first header with this name (case-insensitive; compact or long).
    pub fn header(&self, name: &str) -> Option<&str> {
        let wanted = canonical_ref(name);
        self.headers
            .iter()
            .find(|h| is_named(&h.name, wanted))
            .map(|h| h.value.as_str())
    }

    /// Every value of every header with this name; comma-separated lists are
    /// split (respecting quotes and `<>`), trimmed, empty elements dropped.
    /// Headers that are not lists (Date, WWW-Authenticate, From...) are not split.
    pub fn header_values<'a>(&'a self, name: &str) -> Vec<&'a str> {
        let wanted = canonical_ref(name);
        let split = is_list_header(wanted);
        let mut values = Vec::new();
        for header in self.headers.iter().filter(|h| is_named(&h.name, wanted)) {
            if split {
                values.extend(
                    split_list(&header.value)
                        .into_iter()
                        .filter(|v| !v.is_empty()),
                );
            } else {
                values.push(header.value.trim());
            }
        }
        values
    }

    /// Number of header lines with this name.
    pub fn header_count(&self, name: &str) -> usize {
        let wanted = canonical_ref(name);
        self.headers
            .iter()
            .filter(|h| is_named(&h.name, wanted))
            .count()
    }

    /// Replaces all headers of this name with one value, at the position of
    /// the first one (or appends when absent).
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let wanted = canonical_ref(name);
        let position = self.headers.iter().position(|h| is_named(&h.name, wanted));
        self.remove_header(name);
        let header = Header::new(name, value);
        match position {
            Some(i) if i <= self.headers.len() => self.headers.insert(i, header),
            _ => self.headers.push(header),
        }
    }

    /// Removes every header of this name.
    pub fn remove_header(&mut self, name: &str) {
        let wanted = canonical_ref(name);
        self.headers.retain(|h| !is_named(&h.name, wanted));
    }

    /// Appends a header after all others.
    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header::new(name, value));
    }

    /// Inserts a header before all others (e.g. a new top Via).
    pub fn prepend_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.insert(0, Header::new(name, value));
    }

    /// The Call-ID value.
    pub fn call_id(&self) -> Option<&str> {
        self.header(CALL_ID)
    }

    /// CSeq number and method, if the header is well formed.
    pub fn cseq(&self) -> Option<(u32, Method)> {
        parse_cseq(self.header(CSEQ)?)
    }

    /// Max-Forwards as a number, if present and numeric.
    pub fn max_forwards(&self) -> Option<u32> {
        let value = self.header(MAX_FORWARDS)?;
        value
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| value.parse().ok())
            .flatten()
    }

    /// The topmost Via hop, if present and well formed.
    pub fn top_via(&self) -> Option<Via> {
        Via::parse(self.header_values(VIA).first()?).ok()
    }

    /// Every Via hop, top first; malformed entries are skipped.
    pub fn vias(&self) -> Vec<Via> {
        self.header_values(VIA)
            .into_iter()
            .filter_map(|v| Via::parse(v).ok())
            .collect()
    }

    /// The From header parsed as an address.
    pub fn from_addr(&self) -> Option<NameAddr> {
        NameAddr::parse(self.header(FROM)?).ok()
    }

    /// The To header parsed as an address.
    pub fn to_addr(&self) -> Option<NameAddr> {
        NameAddr::parse(self.header(TO)?).ok()
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<String> {
        self.from_addr()?.tag().map(str::to_string)
    }

    /// The To tag (absent on out-of-dialog requests).
    pub fn to_tag(&self) -> Option<String> {
        self.to_addr()?.tag().map(str::to_string)
    }

    /// The first Contact parsed as an address (a target refresh names one).
    pub fn contact_addr(&self) -> Option<NameAddr> {
        NameAddr::parse(self.header(CONTACT)?).ok()
    }

    /// Every Contact value, in order (REGISTER may carry several, or `*`).
    pub fn contacts(&self) -> Vec<&str> {
        self.header_values(CONTACT)
    }

    /// Every Record-Route value, top first (a dialog's route set is built from them).
    pub fn record_routes(&self) -> Vec<&str> {
        self.header_values(RECORD_ROUTE)
    }

    /// Every Route value, top first.
    pub fn routes(&self) -> Vec<&str> {
        self.header_values(ROUTE)
    }

    /// The Content-Type value.
    pub fn content_type(&self) -> Option<&str> {
        self.header(CONTENT_TYPE)
    }

    /// Builds a response to `req` carrying copies of its Via, From, To, Call-ID
    /// and CSeq headers only, with an empty body.
    pub fn response_to(req: &SipMessage, code: u16, reason: &str) -> SipMessage {
        let mut headers: Vec<Header> = req
            .headers
            .iter()
            .filter(|h| is_named(&h.name, VIA))
            .cloned()
            .collect();
        for name in [FROM, TO, CALL_ID, CSEQ] {
            headers.extend(
                req.headers
                    .iter()
                    .filter(|h| is_named(&h.name, name))
                    .cloned(),
            );
        }
        SipMessage {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers,
            body: Bytes::new(),
        }
    }

    /// Builds a request with the given start line pieces and no headers.
    pub fn request(method: Method, uri: impl Into<String>) -> SipMessage {
        SipMessage {
            start: StartLine::Request {
                method,
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }
}

/// Parses a CSeq value `number method` (LWS tolerated around both parts).
pub fn parse_cseq(value: &str) -> Option<(u32, Method)> {
    let mut parts = value.split_whitespace();
    let number = parts.next()?;
    let method = parts.next()?;
    if parts.next().is_some() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((number.parse().ok()?, Method::parse(method)))
}
