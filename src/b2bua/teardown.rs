//! Ending calls: the proxy's own hang-ups (metaflow `hangup`, media timeout, shutdown) and the
//! bookkeeping every ended call goes through.

use std::time::Instant;

use crate::base::CallEvent;
use crate::sip::names::{MAX_FORWARDS, REASON};
use crate::sip::transport::Peer;
use crate::sip::{Method, SipMessage};

use super::call::{CallState, Outcome, other};
use super::entries::Purpose;
use super::headers::copy_end_to_end;
use super::{B2bua, CallKey, Leg};

impl B2bua {
    /// Ends a call from the proxy's side: BYE on every confirmed leg, or (before answer) a
    /// final response to the caller and CANCEL upstream.
    pub(super) fn terminate_call(
        &mut self,
        key: CallKey,
        outcome: Outcome,
        reason: &str,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let call_id = call.id.clone();
        let state = call.state;
        let (a_key, a_tag, b_key) = (
            call.a_invite_key.clone(),
            call.a.local_tag.clone(),
            call.b_invite_branch.clone(),
        );
        tracing::info!(call_id = %call_id, reason, "proxy ends call");
        let reason_text = reason.to_string();
        self.event(
            &call_id,
            CallEvent::CallTerminated {
                reason: reason_text,
            },
        );
        match state {
            CallState::Inviting | CallState::Early => {
                let code = if self.shutting_down { 503 } else { 480 };
                self.send_final_to_a(&a_key, code, reason_phrase(code), Some(&a_tag), now);
                self.cancel_client_invite(&b_key, now);
                // Never set up: whatever the caller asked for, it is not an answered call.
                let outcome = if outcome == Outcome::Answered {
                    Outcome::Failed
                } else {
                    outcome
                };
                self.end_call(key, outcome, now);
                return;
            }
            CallState::Answered | CallState::Confirmed | CallState::Ending => {
                self.settle_pending_acks(key, now);
                self.send_bye(key, Leg::A, reason, now);
                self.send_bye(key, Leg::B, reason, now);
            }
        }
        self.end_call(key, outcome, now);
    }

    /// Ends a call the PBX has not answered yet from the proxy's side: `code` to the caller,
    /// CANCEL upstream (sent once the PBX has answered anything, RFC 3261 §9.1), and the call's
    /// state and media released now. The INVITE's client transaction stays only to absorb
    /// the PBX's final response (a 2xx crossing the CANCEL is acknowledged and hung up) and
    /// gives up 64*T1 after the CANCEL.
    pub(super) fn end_unanswered(
        &mut self,
        key: CallKey,
        code: u16,
        phrase: &str,
        reason: &str,
        outcome: Outcome,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let call_id = call.id.clone();
        let (a_key, a_tag, b_key) = (
            call.a_invite_key.clone(),
            call.a.local_tag.clone(),
            call.b_invite_branch.clone(),
        );
        tracing::info!(call_id = %call_id, reason, code, "proxy ends unanswered call");
        self.event(
            &call_id,
            CallEvent::CallTerminated {
                reason: reason.to_string(),
            },
        );
        self.send_final_to_a(&a_key, code, phrase, Some(&a_tag), now);
        self.cancel_client_invite(&b_key, now);
        self.end_call(key, outcome, now);
    }

    /// Sends a BYE of our own on one leg of a call (responses are consumed).
    pub(super) fn send_bye(&mut self, key: CallKey, leg: Leg, reason: &str, now: Instant) {
        let cause = format!("SIP;cause=200;text=\"{reason}\"");
        let fill = |bye: &mut SipMessage| bye.push_header(REASON, cause);
        self.send_in_dialog(key, leg, Method::Bye, Purpose::Own, now, fill);
    }

    /// A BYE from either leg of a call. It is answered 200 at once and the call ends at once
    /// (media released, `call_ended`); the other leg gets a BYE of ours carrying the end-to-end
    /// headers of the one received (`Reason`...), whose client transaction retransmits and
    /// gives up on its own and whose response is consumed. Relaying the BYE and answering with
    /// the other leg's response made the sender wait on a far end that may be dead (a 408
    /// after 32 s of retransmissions, the ports held meanwhile); RFC 3261 §15.1.2 lets a UAS
    /// answer a BYE by itself, and the sender's dialog is over whatever the other leg says.
    pub(super) fn on_bye(
        &mut self,
        from: Peer,
        msg: &SipMessage,
        key: CallKey,
        leg: Leg,
        max_forwards: u32,
        now: Instant,
    ) {
        let ok = SipMessage::response_to(msg, 200, "OK");
        self.answer_out_of_dialog(from, msg, ok, now);
        let Some(state) = self.calls.get(&key).map(|c| c.state) else {
            return;
        };
        match state {
            CallState::Answered | CallState::Confirmed => {}
            // A CANCEL is already taking the set-up down; the PBX's final response ends it.
            CallState::Ending => return,
            // BYE in an early dialog (§15): the caller gives up as with a CANCEL; the PBX may
            // not send one (a UAS has no early dialog to end), so its BYE fails the call.
            CallState::Inviting | CallState::Early => {
                match leg {
                    Leg::A => self.caller_gives_up(key, now),
                    Leg::B => self.terminate_call(key, Outcome::Failed, "BYE before answer", now),
                }
                return;
            }
        }
        self.settle_pending_acks(key, now);
        // A party of an attended transfer's consultation hung up: the module decides (the
        // transferor leaving completes the transfer).
        if self.consult_party_left(key, leg, now) {
            return;
        }
        // The party a placed call is to replace hung up while it rings (a transferor leaving
        // early): the other party stays for the new call.
        if self.leaving_party_gone(key, leg, now) {
            let call_id = self.call_id_of(key).unwrap_or_default();
            tracing::info!(call_id = %call_id, from_leg = ?leg, "the leaving party hung up; the placed call still rings");
            return;
        }
        // The other side already left while a placed call rang: nobody to send a BYE to.
        let other_gone = self.calls.get(&key).is_some_and(|c| {
            c.origination
                .as_ref()
                .is_some_and(|o| o.leaving_gone && o.slot == other(leg))
        });
        if other_gone {
            self.end_call(key, Outcome::Answered, now);
            return;
        }
        let fill = |bye: &mut SipMessage| {
            bye.set_header(MAX_FORWARDS, max_forwards.saturating_sub(1).to_string());
            copy_end_to_end(msg, bye, &[]);
            bye.body = msg.body.clone();
        };
        if self.send_in_dialog(key, other(leg), Method::Bye, Purpose::Own, now, fill) {
            let call_id = self.call_id_of(key).unwrap_or_default();
            tracing::info!(call_id = %call_id, from_leg = ?leg, "BYE answered; hanging up the other leg");
        }
        self.end_call(key, Outcome::Answered, now);
    }

    /// Media stopped flowing for the configured time: hang up both legs.
    pub(super) fn on_media_timeout(&mut self, key: CallKey, now: Instant) {
        self.terminate_call(key, Outcome::MediaTimeout, "media timeout", now);
    }

    /// Hangs up every call (end of the shutdown grace period).
    pub(super) fn terminate_all(&mut self, now: Instant) {
        // Oldest call first: a seeded run must produce the same bytes, whatever the map's order.
        let mut keys: Vec<CallKey> = self.calls.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.terminate_call(key, Outcome::Answered, "shutdown", now);
        }
    }

    /// Forgets a call: releases its media, indexes and counts it.
    pub(super) fn end_call(&mut self, key: CallKey, outcome: Outcome, now: Instant) {
        self.clear_setup_timers(key);
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        self.by_call_id.remove(&call.a.call_id);
        self.by_call_id.remove(&call.b.call_id);
        if let Some(origination) = &call.origination {
            self.abandon_origination(origination, now);
        }
        self.drop_consultation(call.consult, now);
        // A re-INVITE still waiting in the call's dialogs gets 487 now (RFC 3261 §15.1.2): its
        // relay may sit in Proceeding with no timer left to end it. Other requests (an INFO
        // whose digit just ended the call, an UPDATE) keep their relay, whose answer or Timer F
        // still ends them, so the phone hears the far end's real answer.
        for server_key in self
            .txns
            .unanswered_servers(|data| data.is_some_and(|(k, _)| k == key))
        {
            let request = self
                .txns
                .server(&server_key)
                .map(|tx| tx.request().clone())
                .filter(|request| request.method() == Some(&crate::sip::Method::Invite));
            if let Some(request) = request {
                let resp = SipMessage::response_to(&request, 487, "Request Terminated");
                self.send_on_server(&server_key, resp, now);
            }
        }
        self.media.release_call(key);
        // A recording still waiting for the answer (record_on_answer) never started.
        let started = call.recording && call.deferred_recording.is_none();
        self.stop_recording_at_end(key, started);
        // An answered call ended normally whatever ended it, except a media timeout and a
        // failure (a 2xx never acknowledged: the call was never set up on both sides). A call
        // never answered is never counted `answered`, whoever asked (shutdown, a module): it
        // failed, since the proxy ended it before anyone picked up.
        let keep = matches!(outcome, Outcome::MediaTimeout | Outcome::Failed);
        let outcome = match (call.answered.is_some(), outcome) {
            (true, _) if !keep => Outcome::Answered,
            (false, Outcome::Answered) => Outcome::Failed,
            (_, outcome) => outcome,
        };
        self.metrics.call_ended(outcome.as_str());
        tracing::info!(call_id = %call.id, outcome = outcome.as_str(), "call ended");
        let ended = CallEvent::CallEnded {
            outcome: outcome.as_str(),
            answered: call.answered.is_some(),
        };
        self.event(&call.id, ended);
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        503 => "Service Unavailable",
        _ => "Temporarily Unavailable",
    }
}
