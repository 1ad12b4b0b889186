//! The `transfer` module on a live call: the proxy, as the dialing party's agent, sends a REFER
//! in the other leg's dialog, follows the implicit subscription's NOTIFYs, and hangs up its side
//! on success. The decisions come from [`BlindTransfer`]; this file speaks to the call only
//! through its [`CallContext`].

use serde_json::{Map, Value};

use crate::base::{CallEvent, Leg, Problem};
use crate::modules::catalog::ModuleKind;
use crate::modules::context::{
    CallContext, Destination, Module, PlaceOptions, PlayOptions, Progress, RunInfo,
};
use crate::sip::names::{EVENT, REFER_TO, REFERRED_BY, SUBSCRIPTION_STATE};
use crate::sip::{Method, SipMessage};

use super::MODULE_NAME;
use super::attended::{AttendedRun, ringback_sound};
use super::params::{TransferMethod, TransferParams, TransferType, normalise, parse_params};
use super::sipfrag::parse_sipfrag;
use super::state::{BlindTransfer, Step, StepSource};
use super::target::refer_target;

/// The catalog entry of `transfer`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = TransferParams;

    fn parse(data: &Map<String, Value>) -> Result<TransferParams, Vec<Problem>> {
        parse_params(data)
    }

    fn normalise(data: &mut Map<String, Value>) {
        normalise(data);
    }

    fn start(params: &TransferParams) -> Box<dyn Module> {
        if params.transfer_type == TransferType::Attended {
            return Box::new(AttendedRun::new(params.clone()));
        }
        Box::new(TransferRun {
            params: params.clone(),
            active: None,
            bridging: false,
            timed_out: false,
            ringing_to: None,
        })
    }
}

/// One transfer on one call (kept after it ends, to absorb late NOTIFYs).
#[derive(Debug)]
struct TransferRun {
    /// The node's checked parameters.
    params: TransferParams,
    /// The REFER under way, once sent, with the leg that dialed the code.
    active: Option<(BlindTransfer, Leg)>,
    /// Whether the proxy placed the call itself (REFER not taken) and it has not ended.
    bridging: bool,
    /// Whether that call rang past `timeout` and was cancelled (its failure is a 408).
    timed_out: bool,
    /// The leg hearing ringback (the transferee, once the transferor left early).
    ringing_to: Option<Leg>,
}

impl TransferRun {
    /// Logs the events of `step` and says what the core does next.
    fn apply(
        &mut self,
        ctx: &mut dyn CallContext,
        step: Step,
        source: StepSource,
        status: u16,
    ) -> Progress {
        for event in step.events(source) {
            let status = (status != 0).then_some(status);
            ctx.emit(event.with_status(status));
        }
        if let Some(progress) = self.bridge(ctx, step, status) {
            return progress;
        }
        let (Some(outcome), Some((_, dialing))) = (step.outcome(), self.active.as_ref()) else {
            return Progress::Pending;
        };
        let dialing = *dialing;
        tracing::info!(call_id = %ctx.call_id(), outcome, "transfer finished");
        if step != Step::Succeeded {
            // Bridged: the core already replaced the dialing leg; the call goes on.
            return Progress::Done(outcome);
        }
        // The transferor's side is done: BYE the dialing leg, and the transferee unless it
        // already hung up on us.
        let transferee_gone = ctx.is_ending();
        ctx.hang_up(dialing, "transferred");
        if !transferee_gone {
            ctx.hang_up(dialing.other(), "transferred");
        }
        Progress::DoneCallOver(outcome)
    }
}

impl TransferRun {
    /// The steps of the fallback when the far end does not take REFER: place the call, or give
    /// it up when the transfer is taken back meanwhile. `None` for every other step.
    fn bridge(&mut self, ctx: &mut dyn CallContext, step: Step, status: u16) -> Option<Progress> {
        let (transfer, dialing) = self.active.as_mut()?;
        match step {
            Step::Bridge => {
                // A transfer ends a hold: the transferee must hear the target once it answers.
                ctx.set_held(*dialing, false);
                ctx.set_held(dialing.other(), false);
                let target = transfer.refer_to().to_string();
                tracing::info!(call_id = %ctx.call_id(), status, target = %target, "REFER not taken; placing the call");
                let options = PlaceOptions {
                    reason: "transferred",
                    auto_answer: false,
                };
                match ctx.originate(*dialing, &[Destination::Pbx(&target)], options) {
                    Ok(()) => {
                        self.bridging = true;
                        let timeout =
                            std::time::Duration::from_secs(u64::from(self.params.timeout_s));
                        ctx.set_timer(ctx.now() + timeout);
                        Some(Progress::Pending)
                    }
                    Err(reason) => {
                        let step = transfer.on_originated(500);
                        ctx.emit(CallEvent::TransferFailed {
                            status: None,
                            reason: Some(reason),
                        });
                        Some(Progress::Done(step.outcome().unwrap_or("failure")))
                    }
                }
            }
            Step::Withdrawn if self.bridging => {
                self.bridging = false;
                ctx.cancel_origination();
                None
            }
            _ => None,
        }
    }
}

impl Module for TransferRun {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        let refer_to = match refer_target(&self.params, &run.captures(), &ctx.upstream_host()) {
            Ok(to) => to,
            Err(err) => {
                let reason = err.to_string();
                tracing::warn!(call_id = %ctx.call_id(), reason = %reason, "transfer cannot start");
                ctx.emit(CallEvent::TransferFailed {
                    status: None,
                    reason: Some(reason),
                });
                return Progress::Done("failure");
            }
        };
        if !ctx.is_confirmed() || ctx.is_running(MODULE_NAME) {
            tracing::warn!(call_id = %ctx.call_id(), "transfer refused: call not confirmed or transfer under way");
            return Progress::Done("failure");
        }
        let dialing = run.leg;
        let transferee = dialing.other();
        let mut transfer = BlindTransfer::new(self.params.clone(), refer_to.clone());
        if self.params.method == TransferMethod::Bridge {
            // `method: bridge`: no REFER, the proxy's own call at once.
            let step = transfer.bridge_now();
            self.active = Some((transfer, dialing));
            return self.apply(ctx, step, StepSource::ReferResponse, 0);
        }
        let referred_by = ctx.remote_uri(dialing);
        tracing::info!(call_id = %ctx.call_id(), refer_to = %refer_to, dialing = dialing.as_str(), "sending REFER");
        let headers = vec![
            (REFER_TO, transfer.refer_to_header()),
            (REFERRED_BY, referred_by.clone()),
        ];
        self.active = Some((transfer, dialing));
        ctx.emit(CallEvent::TransferReferSent {
            refer_to,
            referred_by,
            dialing_leg: dialing,
        });
        ctx.send_in_dialog(transferee, Method::Refer, headers);
        Progress::Pending
    }

    fn on_response(&mut self, ctx: &mut dyn CallContext, status: u16) -> Progress {
        let Some((transfer, _)) = self.active.as_mut() else {
            return Progress::Pending;
        };
        let step = transfer.on_refer_response(status);
        self.apply(ctx, step, StepSource::ReferResponse, status)
    }

    fn claims(&self, leg: Leg, request: &SipMessage) -> bool {
        let is_refer_event = request
            .header(EVENT)
            .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"));
        is_refer_event
            && request.method() == Some(&Method::Notify)
            && self
                .active
                .as_ref()
                .is_some_and(|(_, dialing)| *dialing != leg)
    }

    fn on_request(
        &mut self,
        ctx: &mut dyn CallContext,
        _leg: Leg,
        request: &SipMessage,
    ) -> Progress {
        let Some((transfer, _)) = self.active.as_mut() else {
            return Progress::Pending;
        };
        let step = transfer.on_notify(&request.body, request.header(SUBSCRIPTION_STATE));
        let status = parse_sipfrag(&request.body)
            .map(|(code, _)| code)
            .unwrap_or(0);
        self.apply(ctx, step, StepSource::Notify, status)
    }

    fn on_leg_left(&mut self, ctx: &mut dyn CallContext, leg: Leg) -> Progress {
        let Some((_, dialing)) = self.active.as_ref() else {
            return Progress::Pending;
        };
        let dialing = *dialing;
        if self.bridging && leg == dialing {
            // The transferor left while the target rings: the transferee hears ringback.
            let sound = ringback_sound(&self.params.ringback, ctx.account_id().as_deref());
            let looped = PlayOptions {
                looped: true,
                mix: false,
            };
            ctx.play(dialing.other(), sound, looped);
            self.ringing_to = Some(dialing.other());
        }
        Progress::Pending
    }

    fn on_early_media(&mut self, ctx: &mut dyn CallContext) -> Progress {
        // The transferee waiting alone hears the target's own progress instead of ours.
        if let Some(leg) = self.ringing_to.take() {
            ctx.stop_playback(leg);
        }
        Progress::Pending
    }

    fn on_timer(&mut self, ctx: &mut dyn CallContext) -> Progress {
        if self.bridging {
            tracing::info!(call_id = %ctx.call_id(), "the transfer target did not answer in time");
            self.timed_out = true;
            ctx.cancel_origination();
        }
        Progress::Pending
    }

    fn on_originated(&mut self, ctx: &mut dyn CallContext, status: u16) -> Progress {
        self.bridging = false;
        if let Some(leg) = self.ringing_to.take() {
            ctx.stop_playback(leg);
        }
        // A call given up at `timeout` ends with the PBX's 487; the transfer failed for no answer.
        let status = if self.timed_out && status >= 300 {
            super::state::REFER_TIMEOUT_STATUS
        } else {
            status
        };
        let Some((transfer, _)) = self.active.as_mut() else {
            return Progress::Pending;
        };
        let step = transfer.on_originated(status);
        self.apply(ctx, step, StepSource::Originated, status)
    }

    fn on_digit(&mut self, ctx: &mut dyn CallContext, leg: Leg, digit: char) -> Progress {
        let step = match self.active.as_mut() {
            Some((transfer, dialing)) if *dialing == leg => transfer.on_digit(digit),
            _ => return Progress::Pending,
        };
        self.apply(ctx, step, StepSource::Digit, 0)
    }
}
