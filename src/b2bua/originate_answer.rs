//! The answers to a call the proxy placed ([`super::originate`]): provisional responses, the 2xx
//! that swaps the new call in, failures, a CANCEL when the module gives up or the call ends, and
//! the leaving party hanging up while the new call rings (the call then waits for the new call
//! alone, and ends if it fails).

use std::time::Instant;

use crate::base::{CallEvent, CallKey, Leg};
use crate::sip::txn::ClientKey;
use crate::sip::{Method, SipMessage};

use super::B2bua;
use super::call::Outcome;
use super::dialog::Dialog;
use super::entries::Purpose;
use super::host::ModuleId;
use super::originate::Origination;

/// Status the module hears when the answer could not be used (no SDP, or one that cannot be
/// anchored): the new call was hung up again.
const UNUSABLE_ANSWER: u16 = 488;
/// Status the module hears for a call it gave up that answered anyway (the 2xx crossed the
/// CANCEL): the new call was hung up again.
const GIVEN_UP: u16 = 487;

impl B2bua {
    /// The call being placed for call `key`, if any.
    fn origination_mut(&mut self, key: CallKey) -> Option<&mut Origination> {
        self.calls.get_mut(&key)?.origination.as_mut()
    }

    /// Gives up the call being placed for call `key`: CANCEL now, or with the first provisional
    /// response if none came yet (RFC 3261 §9.1). The module still hears its final response (a
    /// 2xx that crosses the CANCEL is hung up and reported as 487).
    pub(super) fn cancel_origination(&mut self, key: CallKey, now: Instant) {
        let Some(origination) = self.origination_mut(key) else {
            return;
        };
        if origination.cancelled {
            return;
        }
        origination.cancelled = true;
        let branches: Vec<ClientKey> = origination.forks.iter().map(|f| f.branch.clone()).collect();
        for branch in &branches {
            self.cancel_client_invite(branch, now);
        }
    }

    /// The call ends while one of its own calls rings: that call is cancelled, now or at its
    /// first provisional response (its transaction stays to take the 487, or to ACK and hang up
    /// a 2xx that crosses the CANCEL).
    pub(super) fn abandon_origination(&mut self, origination: &Origination, now: Instant) {
        for fork in &origination.forks {
            self.cancel_client_invite(&fork.branch, now);
        }
    }

    /// The leaving party of the call being placed hung up (its BYE was answered): the call now
    /// waits for the new call alone, and the module hears it (a transfer plays ringback).
    /// Returns false when no call is being placed for `leg`.
    /// A consultation's transferee hanging up counts too: the new call will take its place and
    /// talk with the transferor.
    pub(super) fn leaving_party_gone(&mut self, key: CallKey, leg: Leg, now: Instant) -> bool {
        let Some(origination) = self.origination_mut(key).filter(|o| {
            !o.cancelled && (o.slot == leg || (o.consult && !o.leaving_gone && o.slot != leg))
        }) else {
            return false;
        };
        origination.slot = leg;
        origination.leaving_gone = true;
        let module = origination.module;
        self.drive_leg_left(key, module, leg, now);
        // Early media already came: the party that stays hears it from now on.
        self.early_media_to_stayer(key, now);
        true
    }

    /// A response to a call the proxy placed: a 2xx is acknowledged and the new call takes its
    /// leg's place (the other forks are given up); a failure ends its fork, and the module
    /// hears the outcome once a fork answered or every fork failed.
    pub(super) fn on_originate_response(
        &mut self,
        key: CallKey,
        id: ModuleId,
        client_key: &ClientKey,
        resp: SipMessage,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(500);
        if matches!(code, 401 | 407) && self.answer_challenge(key, id, (client_key, &resp), now) {
            return;
        }
        if code < 200 {
            self.placed_call_provisional(key, client_key, &resp, now);
            return;
        }
        let answered = (200..300).contains(&code);
        let fork = self.origination_mut(key).and_then(|o| {
            let at = o.forks.iter().position(|f| f.branch == *client_key)?;
            Some((o.forks.remove(at), o.cancelled))
        });
        let Some((mut fork, cancelled)) = fork else {
            // The call ended, or another fork won, while this one rang: an answer is
            // acknowledged and hung up at once.
            if answered {
                self.ack_and_bye_orphan(client_key, &resp, now);
            }
            return;
        };
        if !answered || cancelled {
            let status = if answered {
                self.metrics.record_sip_out_request("ACK");
                self.acknowledge(&mut fork.dialog, client_key, &resp);
                self.bye_dialog(&mut fork.dialog, now);
                GIVEN_UP
            } else {
                code
            };
            self.fork_failed(key, id, status, now);
            return;
        }
        let Some(origination) = self.calls.get_mut(&key).and_then(|c| c.origination.take()) else {
            return;
        };
        // The first answer wins: the other forks are given up (their answers become orphans).
        for other in &origination.forks {
            self.cancel_client_invite(&other.branch, now);
        }
        let (slot, consult) = (origination.slot, origination.consult);
        let leaving_gone = origination.leaving_gone;
        self.metrics.record_sip_out_request("ACK");
        self.acknowledge(&mut fork.dialog, client_key, &resp);
        let status = if consult && !leaving_gone {
            match self.start_consultation(key, (origination.module, slot), fork.dialog, &resp) {
                Ok(()) => code,
                Err(mut dialog) => {
                    self.bye_dialog(&mut dialog, now);
                    UNUSABLE_ANSWER
                }
            }
        } else if let Err(mut dialog) = self.replace_leg(key, &origination, fork.dialog, &resp, now)
        {
            self.bye_dialog(&mut dialog, now);
            UNUSABLE_ANSWER
        } else {
            code
        };
        self.after_placed_call(key, id, (slot, consult), status, leaving_gone, now);
    }

    /// No final response to one INVITE of a call the proxy placed: that fork failed with 408.
    pub(super) fn on_originate_timeout(
        &mut self,
        key: CallKey,
        id: ModuleId,
        client_key: &ClientKey,
        now: Instant,
    ) {
        let removed = self.origination_mut(key).is_some_and(|o| {
            let before = o.forks.len();
            o.forks.retain(|f| f.branch != *client_key);
            o.forks.len() < before
        });
        if removed {
            self.fork_failed(key, id, 408, now);
        }
    }

    /// A fork ended without being used (`status`); once none is left the module hears the
    /// most telling failure.
    fn fork_failed(&mut self, key: CallKey, id: ModuleId, status: u16, now: Instant) {
        let Some(origination) = self.origination_mut(key) else {
            return;
        };
        origination.note_failure(status);
        if !origination.forks.is_empty() {
            return;
        }
        let Some(origination) = self.calls.get_mut(&key).and_then(|c| c.origination.take()) else {
            return;
        };
        let status = origination.failure.unwrap_or(status);
        let placed = (origination.slot, origination.consult);
        self.after_placed_call(key, id, placed, status, origination.leaving_gone, now);
    }

    /// Reports the placed call's end to the module; a failed one is logged (a consultation's
    /// ports close), and ends the call when the leaving party hung up meanwhile (nobody is
    /// left for the stayer to talk to).
    fn after_placed_call(
        &mut self,
        key: CallKey,
        id: ModuleId,
        (slot, consult): (Leg, bool),
        status: u16,
        leaving_gone: bool,
        now: Instant,
    ) {
        let failed = !(200..300).contains(&status);
        if failed && consult {
            self.media.close_consult(key);
        }
        if failed && let Some(log_id) = self.call_id_of(key).map(str::to_owned) {
            self.event(
                &log_id,
                CallEvent::LegOriginationFailed { leg: slot, status },
            );
        }
        self.drive_originated(key, id, status, now);
        if failed && leaving_gone && self.calls.contains_key(&key) {
            self.terminate_call(key, Outcome::Answered, "placed call failed", now);
        }
    }

    /// A provisional response: the new dialog's tag, and a CANCEL that waited for it (also for
    /// a call that ended before any response came).
    fn placed_call_provisional(
        &mut self,
        key: CallKey,
        client_key: &ClientKey,
        resp: &SipMessage,
        now: Instant,
    ) {
        let cancel = match self.origination_mut(key) {
            Some(origination) => {
                let cancelled = origination.cancelled;
                match origination.fork_mut(client_key) {
                    Some(fork) => {
                        let dialog = &mut fork.dialog;
                        dialog.remote_tag = dialog.remote_tag.take().or(resp.to_tag());
                        cancelled
                    }
                    None => true,
                }
            }
            None => true,
        };
        if cancel {
            self.cancel_client_invite(client_key, now);
            return;
        }
        self.placed_call_early_media(key, resp, now);
    }

    /// ACKs the 2xx of our INVITE in `dialog`, learning the callee's tag, target and routes
    /// (the client transaction keeps the ACK for a retransmitted 2xx).
    pub(super) fn acknowledge(
        &mut self,
        dialog: &mut Dialog,
        client_key: &ClientKey,
        resp: &SipMessage,
    ) {
        dialog.remote_tag = resp.to_tag();
        dialog.learn_target(resp, true);
        let (via, _) = self.new_via();
        let contact = self.contact();
        let cseq = dialog.local_cseq;
        let mut ack = dialog.request(Method::Ack, via, &contact, Some(cseq));
        super::headers::adapt_to_transport(&mut ack, dialog.peer.transport);
        let bytes = ack.to_bytes();
        self.send_raw(dialog.peer, bytes.clone());
        self.txns.set_ack(client_key, bytes);
    }

    /// Hangs up a dialog the call does not keep (a placed call that answered but will not be
    /// used, a 2xx for a call that is gone); its response is consumed.
    pub(super) fn bye_dialog(&mut self, dialog: &mut Dialog, now: Instant) {
        let (via, _) = self.new_via();
        let contact = self.contact();
        let bye = dialog.request(Method::Bye, via, &contact, None);
        self.send_request(bye, dialog.peer, Purpose::Own, None, now);
    }

    /// The answered call takes `origination.slot`'s place: its SDP is anchored as that leg's
    /// (first: an answer that cannot be used changes nothing, and its dialog is given back to be
    /// hung up), the leaving
    /// party gets a BYE unless it hung up already, and the new dialog becomes that leg's.
    fn replace_leg(
        &mut self,
        key: CallKey,
        origination: &Origination,
        dialog: Dialog,
        answer: &SipMessage,
        now: Instant,
    ) -> Result<(), Box<Dialog>> {
        let slot = origination.slot;
        let media_ip = self.cfg.media_ip;
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(Box::new(dialog));
        };
        if answer.body.is_empty() {
            tracing::warn!(call_id = %call.id, "a placed call answered without SDP; hung up");
            return Err(Box::new(dialog));
        }
        // The answer is checked before anything changes: anchoring it below cannot fail then.
        if let Err(err) = crate::sdp::Sdp::parse(&answer.body) {
            tracing::warn!(call_id = %call.id, error = %err, "a placed call answered unusable SDP; hung up");
            return Err(Box::new(dialog));
        }
        if !origination.media_taken {
            if origination.consult {
                self.media.consult_takes(key, slot);
            } else {
                self.media.leg_replaced(key, slot);
            }
        }
        if let Err(err) = super::anchor::anchor_sdp(
            self.media.as_mut(),
            media_ip,
            key,
            slot,
            &answer.body,
            &mut call.sdp_state,
        ) {
            tracing::warn!(call_id = %call.id, error = %err, "cannot anchor the answer of a placed call");
        }
        if !origination.leaving_gone {
            self.send_bye(key, slot, origination.reason, now);
        }
        self.install_dialog(key, slot, dialog);
        Ok(())
    }
}
