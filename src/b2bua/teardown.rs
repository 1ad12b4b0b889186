//! Ending calls: the proxy's own hang-ups (metaflow `hangup`, media timeout, shutdown) and the
//! bookkeeping every ended call goes through.

use std::time::Instant;

use serde_json::{Map, json};

use crate::media::MediaControl;
use crate::sip::Method;

use super::call::{CallState, Outcome};
use super::entries::Purpose;
use super::{B2bua, CallKey, Leg};

impl B2bua {
    /// Ends a call from the proxy's side: BYE on every confirmed leg, or (before answer) a
    /// final response to the caller and CANCEL upstream.
    pub fn terminate_call(
        &mut self,
        key: CallKey,
        outcome: Outcome,
        reason: &str,
        now: Instant,
        media: &mut dyn MediaControl,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let call_id = call.a.call_id.clone();
        let state = call.state;
        let (a_key, a_tag, b_key) = (
            call.a_invite_key.clone(),
            call.a.local_tag.clone(),
            call.b_invite_branch.clone(),
        );
        tracing::info!(call_id = %call_id, reason, "proxy ends call");
        let mut fields = Map::new();
        fields.insert("reason".into(), json!(reason));
        self.event("call_terminated", &call_id, fields);
        match state {
            CallState::Inviting | CallState::Early => {
                let code = if self.shutting_down { 503 } else { 480 };
                self.send_final_to_a(&a_key, code, reason_phrase(code), Some(&a_tag), now);
                self.cancel_client_invite(&b_key, now);
            }
            CallState::Answered | CallState::Confirmed | CallState::Ending => {
                self.send_bye(key, Leg::A, reason, now);
                self.send_bye(key, Leg::B, reason, now);
            }
        }
        self.end_call(key, outcome, media);
    }

    /// Sends a BYE of our own on one leg of a call (responses are consumed).
    pub(super) fn send_bye(&mut self, key: CallKey, leg: Leg, reason: &str, now: Instant) {
        let (via, branch) = self.new_via();
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let dialog = call.dialog_mut(leg);
        if dialog.remote_tag.is_none() {
            return;
        }
        let mut bye = dialog.request(Method::Bye, via, &contact, None);
        bye.push_header("Reason", format!("SIP;cause=200;text=\"{reason}\""));
        let dest = dialog.peer;
        self.send_request(format!("{branch}|BYE"), bye, dest, Purpose::Own, None, now);
    }

    /// Media stopped flowing for the configured time: hang up both legs.
    pub fn on_media_timeout(&mut self, key: CallKey, now: Instant, media: &mut dyn MediaControl) {
        self.terminate_call(key, Outcome::MediaTimeout, "media timeout", now, media);
    }

    /// Hangs up every call (end of the shutdown grace period).
    pub fn terminate_all(&mut self, now: Instant, media: &mut dyn MediaControl) {
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.terminate_call(key, Outcome::Answered, "shutdown", now, media);
        }
    }

    /// Forgets a call: releases its media, indexes and counts it.
    pub(super) fn end_call(
        &mut self,
        key: CallKey,
        outcome: Outcome,
        media: &mut dyn MediaControl,
    ) {
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        self.by_call_id.remove(&call.a.call_id);
        self.by_call_id.remove(&call.b.call_id);
        media.release_call(key);
        self.stop_recording_at_end(key, call.recording);
        let outcome = if call.answered.is_some() && outcome != Outcome::MediaTimeout {
            Outcome::Answered
        } else {
            outcome
        };
        self.metrics.call_ended(outcome.as_str());
        tracing::info!(call_id = %call.a.call_id, outcome = outcome.as_str(), "call ended");
        let mut fields = Map::new();
        fields.insert("outcome".into(), json!(outcome.as_str()));
        fields.insert("answered".into(), json!(call.answered.is_some()));
        self.event("call_ended", &call.a.call_id, fields);
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        503 => "Service Unavailable",
        _ => "Temporarily Unavailable",
    }
}
