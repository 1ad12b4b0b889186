//! Transaction keys: which transaction a message belongs to (RFC 3261 §17.1.3 and §17.2.3).
//!
//! A server transaction is found from what the peer put in its request. RFC 3261 peers mark
//! their top Via branch with the magic cookie, and the branch, the sent-by and the method
//! identify the transaction (an ACK belongs to the INVITE transaction, a CANCEL has its own).
//! RFC 2543 peers have no such branch, so their requests are matched on the dialog and
//! sequence identifiers instead. A client transaction is ours: the branch we chose plus the
//! CSeq method of the response.

use crate::sip::{BRANCH_MAGIC_COOKIE, Method, SipMessage, Via};

/// The sent-by of a Via (host and port as written): the same branch from two hosts names two
/// transactions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SentBy {
    /// Host as written in the Via (IPv6 without brackets).
    pub host: String,
    /// Port, if written.
    pub port: Option<u16>,
}

impl SentBy {
    fn of(via: &Via) -> SentBy {
        SentBy {
            host: via.host.clone(),
            port: via.port,
        }
    }
}

/// The key of a server transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKey {
    /// A request whose top Via branch carries the RFC 3261 magic cookie.
    Rfc3261 {
        /// The top Via branch.
        branch: String,
        /// The top Via sent-by.
        sent_by: SentBy,
        /// The CSeq method, with ACK counted as INVITE.
        method: Method,
    },
    /// A request from an RFC 2543 peer (no cookie in the branch).
    Rfc2543 {
        /// The Call-ID.
        call_id: String,
        /// The From tag (empty when absent).
        from_tag: String,
        /// The top Via sent-by.
        sent_by: SentBy,
        /// The CSeq number.
        cseq: u32,
        /// The CSeq method, with ACK counted as INVITE.
        method: Method,
    },
}

impl ServerKey {
    /// The key of the server transaction a received request belongs to; `None` without a
    /// well-formed CSeq and top Via (or, for RFC 2543 peers, a Call-ID).
    pub fn of_request(msg: &SipMessage) -> Option<ServerKey> {
        let (cseq, method) = msg.cseq()?;
        let method = match method {
            Method::Ack => Method::Invite,
            other => other,
        };
        let via = msg.top_via()?;
        let sent_by = SentBy::of(&via);
        match via.branch {
            Some(branch) if branch.starts_with(BRANCH_MAGIC_COOKIE) => Some(ServerKey::Rfc3261 {
                branch,
                sent_by,
                method,
            }),
            _ => Some(ServerKey::Rfc2543 {
                call_id: msg.call_id()?.to_string(),
                from_tag: msg.from_tag().unwrap_or_default(),
                sent_by,
                cseq,
                method,
            }),
        }
    }

    /// The method of the transaction (INVITE for an ACK's key).
    pub fn method(&self) -> &Method {
        match self {
            ServerKey::Rfc3261 { method, .. } | ServerKey::Rfc2543 { method, .. } => method,
        }
    }

    /// For the key of a CANCEL, the key of the INVITE it cancels (same branch or dialog and
    /// sequence identifiers, RFC 3261 §9.2); `None` for any other key.
    pub fn invite_of_cancel(&self) -> Option<ServerKey> {
        if *self.method() != Method::Cancel {
            return None;
        }
        let mut invite = self.clone();
        match &mut invite {
            ServerKey::Rfc3261 { method, .. } | ServerKey::Rfc2543 { method, .. } => {
                *method = Method::Invite;
            }
        }
        Some(invite)
    }
}

/// The key of a client transaction: the branch we put in our Via and the method we sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    /// Our branch (also the branch of the CANCEL of an INVITE, told apart by the method).
    pub branch: String,
    /// The request's method.
    pub method: Method,
}

impl ClientKey {
    /// The key of a request we are about to send: its top Via branch and its method.
    pub fn of_request(msg: &SipMessage) -> Option<ClientKey> {
        Some(ClientKey {
            branch: msg.top_via()?.branch?,
            method: msg.method()?.clone(),
        })
    }

    /// The key a received response is matched with: its top Via branch and CSeq method.
    pub fn of_response(msg: &SipMessage) -> Option<ClientKey> {
        let (_, method) = msg.cseq()?;
        Some(ClientKey {
            branch: msg.top_via()?.branch?,
            method,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, via: &str, cseq: &str) -> SipMessage {
        let text = format!(
            "{method} sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP {via}\r\nFrom: <sip:a@h>;tag=f1\r\n\
             To: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn ack_and_retransmission_share_the_invite_key_cancel_has_its_own() {
        let invite = request("INVITE", "h:5060;branch=z9hG4bK1", "1 INVITE");
        let ack = request("ACK", "h:5060;branch=z9hG4bK1", "1 ACK");
        let cancel = request("CANCEL", "h:5060;branch=z9hG4bK1", "1 CANCEL");
        let key = ServerKey::of_request(&invite).unwrap();
        assert_eq!(ServerKey::of_request(&ack), Some(key.clone()));
        let cancel_key = ServerKey::of_request(&cancel).unwrap();
        assert_ne!(cancel_key, key);
        assert_eq!(cancel_key.invite_of_cancel(), Some(key.clone()));
        assert_eq!(key.invite_of_cancel(), None);
    }

    #[test]
    fn sent_by_and_branch_tell_transactions_apart() {
        let a = ServerKey::of_request(&request("BYE", "h:5060;branch=z9hG4bK1", "2 BYE"));
        let other_port = ServerKey::of_request(&request("BYE", "h:5070;branch=z9hG4bK1", "2 BYE"));
        let other_branch =
            ServerKey::of_request(&request("BYE", "h:5060;branch=z9hG4bK2", "2 BYE"));
        assert_ne!(a, other_port);
        assert_ne!(a, other_branch);
    }

    #[test]
    fn rfc2543_requests_are_keyed_on_dialog_and_sequence() {
        let invite = request("INVITE", "h:5060", "7 INVITE");
        let key = ServerKey::of_request(&invite).unwrap();
        assert_eq!(
            key,
            ServerKey::Rfc2543 {
                call_id: "c1".into(),
                from_tag: "f1".into(),
                sent_by: SentBy {
                    host: "h".into(),
                    port: Some(5060)
                },
                cseq: 7,
                method: Method::Invite,
            }
        );
        let ack = request("ACK", "h:5060;branch=old", "7 ACK");
        assert_eq!(ServerKey::of_request(&ack), Some(key.clone()));
        let next = request("INVITE", "h:5060", "8 INVITE");
        assert_ne!(ServerKey::of_request(&next), Some(key));
    }

    #[test]
    fn client_keys_match_request_and_response() {
        let bye = request("BYE", "h;branch=z9hG4bK-mfp-1", "3 BYE");
        let resp = SipMessage::response_to(&bye, 200, "OK");
        assert_eq!(ClientKey::of_request(&bye), ClientKey::of_response(&resp));
        let cancel_resp = SipMessage::response_to(
            &request("CANCEL", "h;branch=z9hG4bK-mfp-1", "3 CANCEL"),
            200,
            "OK",
        );
        assert_ne!(
            ClientKey::of_response(&cancel_resp),
            ClientKey::of_request(&bye)
        );
    }
}
