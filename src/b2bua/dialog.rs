//! One side of a B2BUA call: the dialog the proxy keeps with one endpoint (RFC 3261 §12).
//!
//! The proxy is UAS towards the a-leg and UAC towards the b-leg; each side has its own Call-ID,
//! tags and CSeq space, so the proxy can send requests of its own (BYE, REFER) in either dialog
//! without colliding with the endpoints' numbering.

use crate::sip::names::{CALL_ID, CONTACT, CSEQ, FROM, MAX_FORWARDS, ROUTE, TO, VIA};
use crate::sip::transport::Peer;
use crate::sip::{Method, NameAddr, SipMessage, StartLine};

/// The dialog state for one leg.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// Call-ID of this leg's dialog.
    pub call_id: String,
    /// Our tag in this dialog (To tag towards the a-leg, From tag towards the b-leg).
    pub local_tag: String,
    /// The endpoint's tag, once known.
    pub remote_tag: Option<String>,
    /// Our name-addr (without tag) as it appears in From of requests we send.
    pub local_uri: String,
    /// The endpoint's name-addr (without tag) as it appears in To of requests we send.
    pub remote_uri: String,
    /// Request-URI for requests we send in this dialog (the endpoint's Contact).
    pub remote_target: String,
    /// Route set learned from Record-Route, in the order to put in Route headers.
    pub route_set: Vec<String>,
    /// Last CSeq number we used in this dialog.
    pub local_cseq: u32,
    /// Where the endpoint's messages come from and where ours go (NAT-safe).
    pub peer: Peer,
}

impl Dialog {
    /// The From header value for requests we send.
    pub fn from_value(&self) -> String {
        format!("{};tag={}", self.local_uri, self.local_tag)
    }

    /// The To header value for requests we send.
    pub fn to_value(&self) -> String {
        match &self.remote_tag {
            Some(tag) => format!("{};tag={tag}", self.remote_uri),
            None => self.remote_uri.clone(),
        }
    }

    /// Builds a request in this dialog. `cseq` None takes the next number (ACK and CANCEL pass
    /// the number of the INVITE they belong to).
    pub fn request(
        &mut self,
        method: Method,
        via: String,
        contact: &str,
        cseq: Option<u32>,
    ) -> SipMessage {
        let number = match cseq {
            Some(n) => n,
            None => {
                self.local_cseq = self.local_cseq.wrapping_add(1);
                self.local_cseq
            }
        };
        let (uri, routes) = self.request_uri_and_routes();
        let mut msg = SipMessage {
            start: StartLine::Request {
                method: method.clone(),
                uri,
            },
            headers: Vec::new(),
            body: bytes::Bytes::new(),
        };
        msg.push_header(VIA, via);
        msg.push_header(MAX_FORWARDS, "70");
        for route in routes {
            msg.push_header(ROUTE, route);
        }
        msg.push_header(FROM, self.from_value());
        msg.push_header(TO, self.to_value());
        msg.push_header(CALL_ID, self.call_id.clone());
        msg.push_header(CSEQ, format!("{number} {}", method.as_str()));
        if !matches!(method, Method::Ack | Method::Cancel | Method::Bye) {
            msg.push_header(CONTACT, contact.to_string());
        }
        msg
    }

    /// The Request-URI and Route values of a request in this dialog (RFC 3261 §12.2.1.1).
    /// With an empty route set, or a first route that is a loose router (`;lr`), the
    /// Request-URI is the remote target and the routes go as they are. A first route without
    /// `;lr` is a strict router (RFC 2543): it becomes the Request-URI (without its header
    /// part), and the remote target goes last in the Route list so the strict router's
    /// successors still reach the endpoint.
    fn request_uri_and_routes(&self) -> (String, Vec<String>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let Ok(first_addr) = NameAddr::parse(first) else {
            return (self.remote_target.clone(), self.route_set.clone());
        };
        let loose = crate::sip::SipUri::parse(&first_addr.uri)
            .map(|uri| uri.param("lr").is_some())
            .unwrap_or(true);
        if loose {
            return (self.remote_target.clone(), self.route_set.clone());
        }
        let uri = first_addr
            .uri
            .split_once('?')
            .map_or(first_addr.uri.as_str(), |(uri, _)| uri)
            .to_string();
        let mut routes: Vec<String> = self.route_set.iter().skip(1).cloned().collect();
        routes.push(format!("<{}>", self.remote_target));
        (uri, routes)
    }

    /// Updates the remote target from a target-refresh request or response (re-INVITE, UPDATE).
    pub fn learn_contact(&mut self, msg: &SipMessage) {
        if let Some(na) = msg.contact_addr() {
            self.remote_target = na.uri;
        }
    }

    /// Learns the remote target and route set from a message of the endpoint that carries them
    /// (the INVITE from the a-leg, a 1xx/2xx from the b-leg). `reverse` is true on the UAC side.
    pub fn learn_target(&mut self, msg: &SipMessage, reverse: bool) {
        self.learn_contact(msg);
        let mut routes: Vec<String> = msg
            .record_routes()
            .into_iter()
            .map(str::to_string)
            .collect();
        if !routes.is_empty() {
            if reverse {
                routes.reverse();
            }
            self.route_set = routes;
        }
    }
}

/// Strips the `tag` parameter from a From/To value, keeping display name, URI and other params.
pub fn without_tag(value: &str) -> String {
    match NameAddr::parse(value) {
        Ok(mut na) => {
            na.params.retain(|(k, _)| !k.eq_ignore_ascii_case("tag"));
            // Always write the angle-bracket form so that URI parameters stay with the URI.
            na.to_string()
        }
        Err(_) => value.to_string(),
    }
}

/// A fresh random token for tags, branches and Call-IDs, drawn from `rng`.
pub fn random_token(rng: &mut fastrand::Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            let i = rng.usize(..ALPHABET.len());
            ALPHABET.get(i).copied().map(char::from).unwrap_or('x')
        })
        .collect()
}
