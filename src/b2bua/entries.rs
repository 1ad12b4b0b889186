//! Transaction bookkeeping of the core: what each server and client transaction belongs to.

use crate::sip::SipMessage;
use crate::sip::transport::Peer;
use crate::sip::txn::{ClientTx, ServerTx};

use super::{CallKey, Leg};

/// A request we received and answer (or relay the answer to).
#[derive(Debug)]
pub(super) struct ServerEntry {
    /// The transaction state machine.
    pub tx: ServerTx,
    /// The request, kept to build responses from.
    pub request: SipMessage,
    /// Where it came from; responses go back there.
    pub source: Peer,
    /// The call and leg it belongs to, if any.
    pub call: Option<(CallKey, Leg)>,
}

/// Why we sent a request, i.e. what to do with its responses.
#[derive(Clone, Debug)]
pub(super) enum Purpose {
    /// The b-leg INVITE relayed from the a-leg's initial INVITE.
    InitialInvite {
        /// Key of the a-leg server transaction to answer.
        server_key: String,
    },
    /// An in-dialog request relayed from the other leg.
    Relay {
        /// Key of the server transaction on the other leg to answer.
        server_key: String,
    },
    /// A request of the proxy's own (BYE on teardown, CANCEL): responses are consumed.
    Own,
    /// The REFER of a `transfer` module: responses drive the transfer.
    Refer,
    /// An out-of-dialog request forwarded upstream statelessly (our Via on top).
    Proxied {
        /// Key of the server transaction of the original request.
        server_key: String,
    },
}

/// A request we sent.
#[derive(Debug)]
pub(super) struct ClientEntry {
    /// The transaction state machine.
    pub tx: ClientTx,
    /// The request as sent (CANCEL and non-2xx ACK are built from it).
    pub request: SipMessage,
    /// Its bytes, for retransmissions.
    pub bytes: Vec<u8>,
    /// Where it went.
    pub dest: Peer,
    /// What to do with responses.
    pub purpose: Purpose,
    /// The call and leg it was sent on, if any.
    pub call: Option<(CallKey, Leg)>,
    /// The ACK we sent for a 2xx, re-sent when the 2xx is retransmitted.
    pub ack: Option<Vec<u8>>,
}

/// The key of a server transaction: branch plus method (ACK matches its INVITE).
pub(super) fn server_key(msg: &SipMessage) -> Option<String> {
    let method = msg.cseq().map(|(_, m)| m)?;
    let method = match method.as_str() {
        "ACK" => "INVITE".to_string(),
        other => other.to_string(),
    };
    let via = msg.top_via()?;
    match via.branch {
        Some(b) if b.starts_with("z9hG4bK") => Some(format!("{b}|{}|{method}", via.host)),
        // RFC 2543 peers: fall back to dialog identifiers plus CSeq number.
        _ => {
            let (num, _) = msg.cseq()?;
            Some(format!(
                "{}|{}|{}|{num}|{method}",
                msg.call_id()?,
                msg.from_tag().unwrap_or_default(),
                via.host
            ))
        }
    }
}
