//! Deadlines of a call that is not answered yet: Timer C (RFC 3261 §16.6 step 11) and the
//! configurable no-answer limit. Both end the call from the proxy's side before answer: CANCEL
//! upstream (deferred until the PBX's first response, RFC 3261 §9.1), a final response to the
//! caller, media and call state released at once. The INVITE transaction towards the PBX then
//! waits at most 64*T1 for its final response (see [`B2bua::cancel_client_invite`]).
//!
//! Without them a PBX that sent 180 and then nothing held the call, its ports and its two
//! transactions until the process stopped: Timer B stops at the first provisional response.

use std::time::Instant;

use super::call::{CallState, Outcome};
use super::timers::TimerRef;
use super::{B2bua, CallKey};

impl B2bua {
    /// (Re)starts Timer C of call `key`: when the INVITE goes upstream and on each provisional
    /// response from 101 to 199 (RFC 3261 §16.7 step 2: a 100 does not reset it).
    pub(super) fn arm_timer_c(&mut self, key: CallKey, now: Instant) {
        let at = now + self.cfg.timer_c;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(old) = call.timer_c.replace(at) {
            self.timers.cancel(old, TimerRef::TimerC(key));
        }
        self.timers.schedule(at, TimerRef::TimerC(key));
    }

    /// The call got its final response or is over: its set-up deadlines are taken out of the
    /// queue, so an idle core has no timer left.
    pub(super) fn clear_setup_timers(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(at) = call.timer_c.take() {
            self.timers.cancel(at, TimerRef::TimerC(key));
        }
        if let Some(at) = call.no_answer_at.take() {
            self.timers.cancel(at, TimerRef::NoAnswer(key));
        }
    }

    /// A provisional response (101-199) to the call's INVITE: Timer C starts over, and the
    /// no-answer limit, if configured, starts counting at the first one. Ringing is measured
    /// from there, as Kamailio's `fr_inv_timer` does; before it, Timer B and Timer C cover a
    /// PBX that says nothing.
    pub(super) fn on_provisional(&mut self, key: CallKey, now: Instant) {
        self.arm_timer_c(key, now);
        let Some(limit) = self.cfg.no_answer_timeout else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.no_answer_at.is_none() {
            let at = now + limit;
            call.no_answer_at = Some(at);
            self.timers.schedule(at, TimerRef::NoAnswer(key));
        }
    }

    /// Whether call `key` still waits for the PBX's final response and `deadline` of it has
    /// passed. Queue entries are never removed, so each popped one is checked here against the
    /// call's current deadline (a reset Timer C leaves its older entries behind).
    fn unanswered_past(
        &self,
        key: CallKey,
        now: Instant,
        deadline: impl Fn(&super::call::Call) -> Option<Instant>,
    ) -> bool {
        self.calls.get(&key).is_some_and(|call| {
            matches!(call.state, CallState::Inviting | CallState::Early)
                && deadline(call).is_some_and(|at| at <= now)
        })
    }

    /// Timer C of `key` may have run out: no provisional or final response for `timer-c`.
    /// The caller gets 408 Request Timeout (what RFC 3261 §16.7 step 10 has a proxy send
    /// when its client transaction times out), the PBX a CANCEL, and the call ends `failed`:
    /// the PBX, not the callee, let the call down.
    pub(super) fn timer_c_fired(&mut self, key: CallKey, now: Instant) {
        if self.unanswered_past(key, now, |c| c.timer_c) {
            self.end_unanswered(key, 408, "Request Timeout", "timer C", Outcome::Failed, now);
        }
    }

    /// The no-answer limit of `key` may have run out: the callee rang for `no-answer-timeout`.
    /// The caller gets 480 Temporarily Unavailable (what FreeSWITCH sends for its `NO_ANSWER`
    /// cause; 408 would tell the caller the network failed), the PBX a CANCEL, and the call
    /// ends `rejected`: a callee that does not pick up is a refusal, not a fault.
    pub(super) fn no_answer_fired(&mut self, key: CallKey, now: Instant) {
        if self.unanswered_past(key, now, |c| c.no_answer_at) {
            self.end_unanswered(
                key,
                480,
                "Temporarily Unavailable",
                "no answer",
                Outcome::Rejected,
                now,
            );
        }
    }
}
