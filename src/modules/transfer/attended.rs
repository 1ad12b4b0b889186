//! `transfer` with `transfer_type: attended`, step for step as Kazoo's `konami_transfer`:
//!
//! ```text
//!  start: transferee hears `moh`, transferor hears `ringback`, the proxy calls the target
//!  Ringing ──target answers──────────────▶ Talking (transferor ⇄ target; transferee on hold)
//!     │  target fails / `timeout` ────────▶ reconnected, outcome failure (408 for no answer)
//!     │  transferor hangs up ─────────────▶ Partial (transferee hears ringback)
//!     │  transferee hangs up ─────────────▶ the target, when it answers, talks with the
//!     │                                      transferor alone: outcome failure
//!     │  takeback_dtmf ───────────────────▶ target cancelled, reconnected, outcome withdrawn
//!  Talking ──transferor hangs up─────────▶ transferee ⇄ target, outcome success
//!     │  target hangs up ─────────────────▶ reconnected, outcome failure
//!     │  transferee hangs up ─────────────▶ transferor ⇄ target, outcome failure
//!     │  takeback_dtmf ───────────────────▶ target hung up, reconnected, outcome withdrawn
//!  Partial ──target answers──────────────▶ transferee ⇄ target, outcome success
//!     │  target fails / `timeout` ────────▶ the call ends, outcome failure
//! ```
//!
//! The media side is the core's consultation (`CallContext::consult`): the target's call gets
//! its own port pair on the call's audio stream, so nobody is re-INVITEd at any step.

use crate::audio::SoundRef;
use crate::base::{CallEvent, Leg};
use crate::modules::context::{
    CallContext, Destination, Module, PlaceOptions, PlayOptions, Progress, RunInfo,
};

use super::MODULE_NAME;
use super::params::TransferParams;
use super::state::{REFER_TIMEOUT_STATUS, takeback_dialed};
use super::target::refer_target;

/// Where an attended transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The target rings; the transferor hears ringback, the transferee music.
    Ringing,
    /// The transferor talks with the target; the transferee hears music.
    Talking,
    /// The transferor hung up while the target rang; the transferee hears ringback.
    Partial,
    /// The outcome was given.
    Finished,
}

/// One attended transfer on one call.
#[derive(Debug)]
pub(super) struct AttendedRun {
    params: TransferParams,
    /// The leg that dialed the code.
    transferor: Leg,
    phase: Phase,
    /// The target rang past `timeout` and was cancelled (its failure reads as 408).
    timed_out: bool,
    /// The transferee hung up while the target rang: the target takes its place.
    transferee_gone: bool,
    /// The transferor's latest digits, as long as `takeback_dtmf`.
    recent_digits: String,
}

impl AttendedRun {
    pub(super) fn new(params: TransferParams) -> Self {
        Self {
            params,
            transferor: Leg::A,
            phase: Phase::Ringing,
            timed_out: false,
            transferee_gone: false,
            recent_digits: String::new(),
        }
    }

    fn transferee(&self) -> Leg {
        self.transferor.other()
    }

    /// The legs hear each other again (the core already closed the consultation).
    fn reconnect(&mut self, ctx: &mut dyn CallContext) {
        ctx.stop_playback(self.transferee());
        ctx.stop_playback(self.transferor);
    }

    fn finish(
        &mut self,
        ctx: &mut dyn CallContext,
        event: CallEvent,
        outcome: &'static str,
    ) -> Progress {
        self.phase = Phase::Finished;
        tracing::info!(call_id = %ctx.call_id(), outcome, "attended transfer finished");
        ctx.emit(event);
        Progress::Done(outcome)
    }

    fn failed(&mut self, ctx: &mut dyn CallContext, status: Option<u16>, reason: &str) -> Progress {
        let event = CallEvent::TransferFailed {
            status,
            reason: Some(reason.to_owned()),
        };
        self.finish(ctx, event, "failure")
    }
}

/// The sound a transfer's `ringback` names: a Kazoo tone (`%(on,off,freq...)`) or a media id.
pub(super) fn ringback_sound(ringback: &str, account: Option<&str>) -> SoundRef {
    if ringback.starts_with("%(") {
        SoundRef::Tone(format!("tone_stream://{ringback}"))
    } else {
        SoundRef::from_media_id(ringback, account)
    }
}

const LOOPED: PlayOptions = PlayOptions {
    looped: true,
    mix: false,
};

impl Module for AttendedRun {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        self.transferor = run.leg;
        let target = match refer_target(&self.params, &run.captures(), &ctx.upstream_host()) {
            Ok(to) => to,
            Err(err) => return self.failed(ctx, None, &err.to_string()),
        };
        if !ctx.is_confirmed() || ctx.is_running(MODULE_NAME) {
            return self.failed(ctx, None, "call not confirmed or a transfer is under way");
        }
        let options = PlaceOptions {
            reason: "transferred",
            auto_answer: false,
        };
        tracing::info!(call_id = %ctx.call_id(), target = %target, transferor = self.transferor.as_str(), "attended transfer: calling the target");
        if let Err(reason) = ctx.consult(self.transferor, Destination::Pbx(&target), options) {
            return self.failed(ctx, None, &reason);
        }
        // A transfer ends a hold: the transferor must hear the target, and later the
        // transferee (its music now comes from here).
        ctx.set_held(self.transferor, false);
        ctx.set_held(self.transferee(), false);
        let account = ctx.account_id();
        let moh = crate::modules::hold::music(self.params.moh.as_deref(), account.as_deref());
        ctx.play(self.transferee(), moh, LOOPED);
        let ringback = ringback_sound(&self.params.ringback, account.as_deref());
        ctx.play(self.transferor, ringback, LOOPED);
        let timeout = std::time::Duration::from_secs(u64::from(self.params.timeout_s));
        ctx.set_timer(ctx.now() + timeout);
        Progress::Pending
    }

    fn on_originated(&mut self, ctx: &mut dyn CallContext, status: u16) -> Progress {
        let answered = (200..300).contains(&status);
        let status = if self.timed_out && !answered {
            REFER_TIMEOUT_STATUS
        } else {
            status
        };
        match self.phase {
            Phase::Ringing if self.transferee_gone => {
                // The target took the transferee's place (or the call ended with it).
                ctx.stop_playback(self.transferor);
                let reason = if answered {
                    "the transferee hung up; the transferor talks with the target"
                } else {
                    "the transferee hung up and the target did not answer"
                };
                self.failed(ctx, Some(status), reason)
            }
            Phase::Ringing if answered => {
                ctx.stop_playback(self.transferor);
                self.phase = Phase::Talking;
                Progress::Pending
            }
            Phase::Ringing => {
                self.reconnect(ctx);
                self.failed(ctx, Some(status), "the target did not answer")
            }
            Phase::Partial if answered => {
                // The target already took the transferor's place.
                ctx.stop_playback(self.transferee());
                let event = CallEvent::TransferSucceeded {
                    status: Some(status),
                };
                self.finish(ctx, event, "success")
            }
            Phase::Partial => self.failed(ctx, Some(status), "the target did not answer"),
            Phase::Talking | Phase::Finished => Progress::Pending,
        }
    }

    fn on_leg_left(&mut self, ctx: &mut dyn CallContext, leg: Leg) -> Progress {
        let transferor_left = leg == self.transferor;
        match self.phase {
            Phase::Ringing if transferor_left => {
                tracing::info!(call_id = %ctx.call_id(), "transferor hung up while the target rings: partial transfer");
                self.phase = Phase::Partial;
                // The leg the target will take must not go on hearing the ringback.
                ctx.stop_playback(self.transferor);
                let account = ctx.account_id();
                let ringback = ringback_sound(&self.params.ringback, account.as_deref());
                ctx.play(self.transferee(), ringback, LOOPED);
                Progress::Pending
            }
            Phase::Ringing => {
                // The target will take the transferee's leg: its music stops now.
                self.transferee_gone = true;
                ctx.stop_playback(self.transferee());
                Progress::Pending
            }
            Phase::Talking => {
                ctx.complete_consult(leg);
                ctx.stop_playback(self.transferee());
                if transferor_left {
                    let event = CallEvent::TransferSucceeded { status: None };
                    self.finish(ctx, event, "success")
                } else {
                    let reason = "the transferee hung up; the transferor talks with the target";
                    self.failed(ctx, None, reason)
                }
            }
            Phase::Partial | Phase::Finished => Progress::Pending,
        }
    }

    fn on_early_media(&mut self, ctx: &mut dyn CallContext) -> Progress {
        // The target's own progress (the PBX's ringback, an announcement) replaces ours, for
        // whoever waits for the target.
        match self.phase {
            Phase::Ringing => ctx.stop_playback(self.transferor),
            Phase::Partial => ctx.stop_playback(self.transferee()),
            Phase::Talking | Phase::Finished => {}
        }
        Progress::Pending
    }

    fn on_consult_left(&mut self, ctx: &mut dyn CallContext) -> Progress {
        if self.phase != Phase::Talking {
            return Progress::Pending;
        }
        self.reconnect(ctx);
        self.failed(ctx, None, "the target hung up")
    }

    fn on_timer(&mut self, ctx: &mut dyn CallContext) -> Progress {
        match self.phase {
            Phase::Ringing if !self.transferee_gone => {
                // Reconnected now, not when the CANCEL's answer comes (a silent target may
                // never send a provisional, and the CANCEL waits for one).
                tracing::info!(call_id = %ctx.call_id(), "the transfer target did not answer in time");
                ctx.end_consult();
                self.reconnect(ctx);
                self.failed(ctx, Some(REFER_TIMEOUT_STATUS), "the target did not answer")
            }
            Phase::Ringing | Phase::Partial => {
                tracing::info!(call_id = %ctx.call_id(), "the transfer target did not answer in time");
                self.timed_out = true;
                ctx.cancel_origination();
                Progress::Pending
            }
            Phase::Talking | Phase::Finished => Progress::Pending,
        }
    }

    fn on_digit(&mut self, ctx: &mut dyn CallContext, leg: Leg, digit: char) -> Progress {
        // With the transferee gone there is nobody to take the call back to: the transferor
        // waits for the target.
        let live = matches!(self.phase, Phase::Ringing | Phase::Talking) && !self.transferee_gone;
        if leg != self.transferor || !live {
            return Progress::Pending;
        }
        if !takeback_dialed(&mut self.recent_digits, &self.params.takeback_dtmf, digit) {
            return Progress::Pending;
        }
        tracing::info!(call_id = %ctx.call_id(), "attended transfer taken back");
        ctx.end_consult();
        self.reconnect(ctx);
        self.finish(
            ctx,
            CallEvent::TransferWithdrawn { status: None },
            "withdrawn",
        )
    }
}
