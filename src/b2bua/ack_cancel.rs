//! Ending a set-up and confirming it: CANCEL from the caller, our CANCEL upstream, the ACK that
//! completes a 2xx, and the clean-up of a 2xx that arrives for a call already gone.

use std::time::Instant;

use crate::base::CallEvent;
use crate::sip::names::{FROM, TO};
use crate::sip::transport::Peer;
use crate::sip::txn::{ClientKey, ServerKey, cancel_for};
use crate::sip::{Method, SipMessage};

use super::call::{CallState, PendingAck};
use super::core::request_uri;
use super::dialog::{Dialog, without_tag};
use super::entries::Purpose;
use super::headers::{copy_end_to_end, has_sdp};
use super::{B2bua, CallKey};

impl B2bua {
    /// CANCEL from the caller: 200 to the CANCEL, 487 to the INVITE, CANCEL upstream.
    pub(super) fn on_cancel(&mut self, from: Peer, msg: SipMessage, now: Instant) {
        let invite_key = ServerKey::of_request(&msg).and_then(|k| k.invite_of_cancel());
        let found = invite_key
            .as_ref()
            .and_then(|k| self.txns.server(k))
            .map(|e| (e.has_final(), *e.data()));
        let Some((answered, call)) = found else {
            let resp = SipMessage::response_to(&msg, 481, "Call/Transaction Does Not Exist");
            self.answer_out_of_dialog(from, &msg, resp, now);
            return;
        };
        let ok = SipMessage::response_to(&msg, 200, "OK");
        self.answer_out_of_dialog(from, &msg, ok, now);
        if answered {
            return;
        }
        let Some((key, _)) = call else { return };
        self.caller_gives_up(key, now);
    }

    /// The caller abandons a call not yet answered (CANCEL, or BYE in an early dialog): 487 to
    /// its INVITE, CANCEL upstream; the call ends when the PBX's final response comes.
    pub(super) fn caller_gives_up(&mut self, key: super::CallKey, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.state = CallState::Ending;
        let a_tag = call.a.local_tag.clone();
        let a_key = call.a_invite_key.clone();
        let b_key = call.b_invite_branch.clone();
        let call_id = call.id.clone();
        tracing::info!(call_id = %call_id, "call cancelled by caller");
        self.event(&call_id, CallEvent::CallCancelled);
        self.send_final_to_a(&a_key, 487, "Request Terminated", Some(&a_tag), now);
        self.cancel_client_invite(&b_key, now);
    }

    /// Sends a CANCEL for our pending INVITE whose client transaction is `client_key` (same
    /// branch, so it is a client transaction of its own told apart by its method). Before any
    /// response to the INVITE the CANCEL waits (RFC 3261 §9.1: it could overtake the INVITE);
    /// the first provisional response of a call that is ending sends it.
    pub(super) fn cancel_client_invite(&mut self, client_key: &ClientKey, now: Instant) {
        let Some(entry) = self.txns.client(client_key) else {
            return;
        };
        if entry.has_final() || !entry.has_response() {
            return;
        }
        let cancel_key = ClientKey {
            branch: client_key.branch.clone(),
            method: Method::Cancel,
        };
        if self.txns.client(&cancel_key).is_some() {
            return; // already sent, on an earlier provisional response
        }
        let cancel = cancel_for(entry.request());
        let (dest, call) = (entry.dest(), entry.data().call);
        self.send_request(cancel, dest, Purpose::Own, call, now);
        // A PBX that never answers the INVITE with its 487 must not hold it: 64*T1 from now
        // the transaction gives up (RFC 3261 §9.1) and the call, if still waiting, ends.
        self.txns.cancel_sent(client_key, now);
    }

    /// A 2xx for a call that no longer exists: acknowledge it and hang up that dialog.
    pub(super) fn ack_and_bye_orphan(
        &mut self,
        client_key: &ClientKey,
        resp: &SipMessage,
        now: Instant,
    ) {
        let Some(entry) = self.txns.client(client_key) else {
            return;
        };
        let request = entry.request();
        let mut d = Dialog {
            call_id: resp.call_id().unwrap_or_default().to_string(),
            local_tag: request.from_tag().unwrap_or_default(),
            remote_tag: resp.to_tag(),
            local_uri: without_tag(request.header(FROM).unwrap_or_default()),
            remote_uri: without_tag(resp.header(TO).unwrap_or_default()),
            remote_target: request_uri(request).unwrap_or_default().to_string(),
            route_set: Vec::new(),
            local_cseq: resp.cseq().map(|(n, _)| n).unwrap_or(1),
            peer: entry.dest(),
        };
        self.acknowledge(&mut d, client_key, resp);
        self.bye_dialog(&mut d, now);
    }

    /// An ACK: for a non-2xx it was absorbed earlier; here it acknowledges a 2xx we relayed,
    /// and is relayed to the other leg as that leg's ACK.
    pub(super) fn on_ack(&mut self, _from: Peer, msg: SipMessage, now: Instant) {
        let Some(&(key, leg)) = msg.call_id().and_then(|c| self.by_call_id.get(c)) else {
            return;
        };
        let Some((cseq, _)) = msg.cseq() else { return };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(pos) = call
            .pending_acks
            .iter()
            .position(|p| p.from == leg && p.from_cseq == cseq)
        else {
            return; // a retransmitted ACK
        };
        let pending = call.pending_acks.remove(pos);
        let confirmed = call.state == CallState::Answered;
        if confirmed {
            call.state = CallState::Confirmed;
            // The media timeout counts from here, not from the 2xx: the caller may only start
            // sending once it has the answer, and a call that never gets its ACK ends as failed
            // (RFC 3261 §13.3.1.4), not as silent.
            self.media.arm_timeout(key);
        }
        let call_id = call.id.clone();
        self.txns.ack_server(&pending.server_key, now);
        let body = if has_sdp(&msg) {
            match self.anchor(key, leg, &msg.body) {
                Ok(b) => b,
                Err(err) => {
                    tracing::warn!(call_id = %call_id, error = %err, "cannot anchor ACK SDP");
                    msg.body.to_vec()
                }
            }
        } else {
            msg.body.to_vec()
        };
        self.send_ack_for(key, &pending, Some(&msg), body);
        tracing::debug!(call_id = %call_id, "ACK relayed");
    }

    /// Sends the other leg the ACK its 2xx waits for (`pending` names both), carrying what the
    /// endpoint's own ACK carried (`from`) and `body`, and gives it to the client transaction
    /// so a retransmitted 2xx is acknowledged again.
    fn send_ack_for(
        &mut self,
        key: CallKey,
        pending: &PendingAck,
        from: Option<&SipMessage>,
        body: Vec<u8>,
    ) {
        let (via, _) = self.new_via();
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let dialog = call.dialog_mut(super::call::other(pending.from));
        let mut ack = dialog.request(Method::Ack, via, &contact, Some(pending.to_cseq));
        if let Some(from) = from {
            copy_end_to_end(from, &mut ack, &[]);
        }
        ack.body = body.into();
        let peer = dialog.peer;
        super::headers::adapt_to_transport(&mut ack, peer.transport);
        let bytes = ack.to_bytes();
        self.metrics.record_sip_out_request("ACK");
        self.send_raw(peer, bytes.clone());
        self.txns.set_ack(&pending.to_branch, bytes);
    }

    /// A call is ending while a 2xx still waits for its ACK (a BYE overtook the caller's ACK,
    /// or the proxy hangs up first): the 2xx we sent is retransmitted no more, since the BYE
    /// ends that dialog anyway, and the other leg's 2xx is acknowledged before its BYE goes
    /// out, so neither side retransmits a 2xx into a call that is gone (RFC 3261 §13.3.1.4).
    pub(super) fn settle_pending_acks(&mut self, key: CallKey, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let pending = std::mem::take(&mut call.pending_acks);
        for p in pending {
            self.txns.ack_server(&p.server_key, now);
            self.send_ack_for(key, &p, None, Vec::new());
        }
    }
}
