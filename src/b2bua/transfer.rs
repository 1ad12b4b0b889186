//! The `transfer` module on a live call: the proxy, as the dialing party's agent, sends a REFER
//! in the other leg's dialog, follows the implicit subscription's NOTIFYs, and ends its side on
//! success. The decisions come from [`crate::modules::transfer::BlindTransfer`]; this file does
//! the SIP.

use std::time::Instant;

use serde_json::Value;

use crate::base::CallEvent;
use crate::metaflow::ModuleRun;
use crate::modules::transfer::{
    BlindTransfer, REFER_TIMEOUT_STATUS, Step, StepSource, parse_params, refer_target,
};
use crate::sip::{Method, SipMessage};

use super::call::{CallState, Outcome};
use super::entries::Purpose;
use super::{B2bua, CallKey, Leg};

/// A transfer started on a call (kept after it ends, to absorb late NOTIFYs).
#[derive(Debug)]
pub(super) struct ActiveTransfer {
    /// The decision state machine.
    pub transfer: BlindTransfer,
    /// The module run that started it (its children follow the outcome).
    pub run: ModuleRun,
    /// The leg that dialed the code (the transferor's side).
    pub dialing: Leg,
}

impl B2bua {
    /// Runs a `transfer` node: sends the REFER to the leg opposite the dialing one.
    pub(super) fn start_transfer(&mut self, key: CallKey, run: ModuleRun, now: Instant) {
        let call_id = self.call_id_of(key).unwrap_or_default().to_string();
        let captures: Vec<String> = run
            .data
            .get("captures")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let refer_to = parse_params(&run.node.data)
            .map_err(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .and_then(|params| {
                refer_target(&params, &captures, &self.cfg.upstream_host)
                    .map(|to| (params, to))
                    .map_err(|e| e.to_string())
            });
        let (params, refer_to) = match refer_to {
            Ok(ok) => ok,
            Err(reason) => {
                tracing::warn!(call_id = %call_id, reason = %reason, "transfer cannot start");
                let event = CallEvent::TransferFailed {
                    status: None,
                    reason: Some(reason),
                };
                self.event(&call_id, event);
                return self.module_finished(key, run, "failure", now);
            }
        };
        let busy = self
            .calls
            .get(&key)
            .map(|c| {
                c.state != CallState::Confirmed
                    || c.transfer
                        .as_ref()
                        .is_some_and(|t| !t.transfer.is_finished())
            })
            .unwrap_or(true);
        if busy {
            tracing::warn!(call_id = %call_id, "transfer refused: call not confirmed or transfer under way");
            return self.module_finished(key, run, "failure", now);
        }
        let dialing = run.leg;
        let transferee = dialing.other();
        let transfer = BlindTransfer::new(params, refer_to.clone());
        let (via, _) = self.new_via();
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let referred_by = call.dialog(dialing).remote_uri.clone();
        let dialog = call.dialog_mut(transferee);
        let mut refer = dialog.request(Method::Refer, via, &contact, None);
        refer.push_header("Refer-To", transfer.refer_to_header());
        refer.push_header("Referred-By", referred_by.clone());
        let dest = dialog.peer;
        call.transfer = Some(ActiveTransfer {
            transfer,
            run,
            dialing,
        });
        tracing::info!(call_id = %call_id, refer_to = %refer_to, dialing = dialing.as_str(), "sending REFER");
        let event = CallEvent::TransferReferSent {
            refer_to,
            referred_by,
            dialing_leg: dialing,
        };
        self.event(&call_id, event);
        self.send_request(refer, dest, Purpose::Refer, Some((key, transferee)), now);
    }

    /// A final (or provisional) response to our REFER, or its timeout (408).
    pub(super) fn on_refer_response(&mut self, key: CallKey, code: u16, now: Instant) {
        let step = match self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) {
            Some(t) => t.transfer.on_refer_response(code),
            None => return,
        };
        self.apply_transfer_step(key, step, StepSource::ReferResponse, code, now);
    }

    /// Whether a NOTIFY from `leg` belongs to the subscription of our REFER: then it is
    /// answered 200 by the proxy and never relayed.
    pub(super) fn is_transfer_notify(&self, key: CallKey, leg: Leg, msg: &SipMessage) -> bool {
        let is_refer_event = msg
            .header("Event")
            .map(|e| e.trim().to_ascii_lowercase().starts_with("refer"))
            .unwrap_or(false);
        is_refer_event
            && self
                .calls
                .get(&key)
                .and_then(|c| c.transfer.as_ref())
                .is_some_and(|t| t.dialing != leg)
    }

    /// Feeds a NOTIFY of our REFER's subscription to the transfer.
    pub(super) fn consume_transfer_notify(&mut self, key: CallKey, msg: &SipMessage, now: Instant) {
        let step = match self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) {
            Some(t) => t
                .transfer
                .on_notify(&msg.body, msg.header("Subscription-State")),
            None => return,
        };
        let status = crate::modules::transfer::parse_sipfrag(&msg.body)
            .map(|(code, _)| code)
            .unwrap_or(0);
        self.apply_transfer_step(key, step, StepSource::Notify, status, now);
    }

    /// A digit from a leg of a call with a transfer: the takeback code withdraws it.
    pub(super) fn transfer_digit(&mut self, key: CallKey, leg: Leg, digit: char, now: Instant) {
        let step = match self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) {
            Some(t) if t.dialing == leg => t.transfer.on_digit(digit),
            _ => return,
        };
        self.apply_transfer_step(key, step, StepSource::Digit, 0, now);
    }

    fn apply_transfer_step(
        &mut self,
        key: CallKey,
        step: Step,
        source: StepSource,
        status: u16,
        now: Instant,
    ) {
        let Some(call_id) = self.call_id_of(key).map(str::to_string) else {
            return;
        };
        for event in step.events(source) {
            let status = (status != 0).then_some(status);
            self.event(&call_id, event.with_status(status));
        }
        let Some(outcome) = step.outcome() else {
            return;
        };
        tracing::info!(call_id = %call_id, outcome, "transfer finished");
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(active) = call.transfer.as_ref() else {
            return;
        };
        let run = active.run.clone();
        let dialing = active.dialing;
        if step == Step::Succeeded {
            // The transferor's side is done: BYE the dialing leg, and the transferee unless it
            // already hung up on us.
            let transferee_gone = call.state == CallState::Ending;
            self.send_bye(key, dialing, "transferred", now);
            if !transferee_gone {
                self.send_bye(key, dialing.other(), "transferred", now);
            }
            self.module_finished(key, run, outcome, now);
            self.end_call(key, Outcome::Answered);
        } else {
            self.module_finished(key, run, outcome, now);
        }
    }

    /// Timeout of our REFER: treated as a 408.
    pub(super) fn on_refer_timeout(&mut self, key: CallKey, now: Instant) {
        self.on_refer_response(key, REFER_TIMEOUT_STATUS, now);
    }
}
