//! The call core as a host of metaflow modules: it starts the module a node names, offers it the
//! call through [`CallContext`], routes to it the responses to its requests, the requests it
//! claims, the digits and its timer, and continues with the node's children by outcome. The core
//! knows no module by name; the modules know nothing of the core.

use std::time::{Duration, Instant};

use crate::audio::SoundRef;
use crate::base::{CallEvent, CallKey, Gain, Leg, PlaybackEnd, PlaybackId};
use crate::metaflow::ModuleRun;
use crate::modules::context::{Destination, PlaceOptions};
use crate::modules::record::{LegCodecs, RecordingInfo, StopReason};
use crate::modules::{CallContext, Module, PlayOptions, Progress, RunInfo};
use crate::sip::{Method, SipMessage};

use super::B2bua;
use super::call::{CallState, Outcome};
use super::entries::Purpose;
use super::io::Output;
use super::timers::TimerRef;

/// The port a SIP URI without one means (RFC 3261 §19.1.2, UDP and TCP).
const DEFAULT_SIP_PORT: u16 = 5060;

/// Identifies a module instance within the core, so that responses and timers find it.
pub(super) type ModuleId = u64;

/// A module that went on working after it started (or finished after that, and is kept to
/// absorb what still arrives for it, such as a late NOTIFY).
#[derive(Debug)]
pub(super) struct ActiveModule {
    /// Its identity in `Purpose::Module` and `TimerRef::Module`.
    id: ModuleId,
    /// The instance; `None` only while one of its methods runs.
    module: Option<Box<dyn Module>>,
    /// The node run that started it: its children follow the outcome.
    run: ModuleRun,
    /// Whether it reported an outcome; then it gets no digits or timers, only claimed requests.
    finished: bool,
}

/// The modules of `call` still at work.
pub(super) fn unfinished_modules(call: &super::call::Call) -> Vec<ModuleId> {
    call.modules
        .iter()
        .filter(|m| !m.finished)
        .map(|m| m.id)
        .collect()
}

/// One call seen by one module: the [`CallContext`] the core implements.
struct Host<'a> {
    core: &'a mut B2bua,
    key: CallKey,
    id: ModuleId,
    now: Instant,
}

impl CallContext for Host<'_> {
    fn call_id(&self) -> &str {
        self.core.call_id_of(self.key).unwrap_or_default()
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn is_confirmed(&self) -> bool {
        self.core
            .calls
            .get(&self.key)
            .is_some_and(|c| c.state == CallState::Confirmed)
    }

    fn is_ending(&self) -> bool {
        self.core
            .calls
            .get(&self.key)
            .is_none_or(|c| c.state == CallState::Ending)
    }

    fn remote_uri(&self, leg: Leg) -> String {
        self.core
            .calls
            .get(&self.key)
            .map(|c| c.dialog(leg).remote_uri.clone())
            .unwrap_or_default()
    }

    fn account_id(&self) -> Option<String> {
        self.core
            .calls
            .get(&self.key)
            .and_then(|c| c.account_id.clone())
    }

    fn upstream_host(&self) -> String {
        let host = &self.core.cfg.upstream_host;
        match self.core.cfg.upstream.map(|addr| addr.port()) {
            Some(port) if port != DEFAULT_SIP_PORT => {
                if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            _ => host.clone(),
        }
    }

    fn is_running(&self, module: &str) -> bool {
        self.core.calls.get(&self.key).is_some_and(|c| {
            c.modules
                .iter()
                .any(|m| !m.finished && m.module.as_ref().is_some_and(|inst| inst.name() == module))
        })
    }

    fn send_in_dialog(&mut self, leg: Leg, method: Method, headers: Vec<(&'static str, String)>) {
        let purpose = Purpose::Module(self.id);
        let fill = |request: &mut SipMessage| {
            for (name, value) in headers {
                request.push_header(name, value);
            }
        };
        self.core
            .send_in_dialog(self.key, leg, method, purpose, self.now, fill);
    }

    fn hang_up(&mut self, leg: Leg, reason: &str) {
        self.core.send_bye(self.key, leg, reason, self.now);
    }

    fn originate(
        &mut self,
        slot: Leg,
        to: &[Destination<'_>],
        options: PlaceOptions,
    ) -> Result<(), String> {
        self.core
            .originate(self.key, self.id, slot, to, options, false, self.now)
            .map_err(|e| e.to_string())
    }

    fn consult(
        &mut self,
        talker: Leg,
        to: Destination<'_>,
        options: PlaceOptions,
    ) -> Result<(), String> {
        self.core
            .originate(self.key, self.id, talker, &[to], options, true, self.now)
            .map_err(|e| e.to_string())
    }

    fn end_consult(&mut self) {
        self.core.end_consultation(self.key, self.now);
    }

    fn complete_consult(&mut self, leg: Leg) -> bool {
        self.core.complete_consultation(self.key, leg, self.now)
    }

    fn callflow_number(&self, id: &str) -> Option<String> {
        let account = self.core.calls.get(&self.key)?.account_id.as_deref();
        self.core.resolver.callflow_number(account, id)
    }

    fn device_sip_user(&self, device_id: &str) -> Option<String> {
        let account = self.core.calls.get(&self.key)?.account_id.as_deref();
        self.core.resolver.device_sip_user(account, device_id)
    }

    fn owner_sip_users(&self, owner_id: &str) -> Vec<String> {
        let account = self
            .core
            .calls
            .get(&self.key)
            .and_then(|c| c.account_id.as_deref());
        self.core.resolver.owner_sip_users(account, owner_id)
    }

    fn cancel_origination(&mut self) {
        self.core.cancel_origination(self.key, self.now);
    }

    fn is_forked(&self) -> bool {
        self.core.calls.get(&self.key).is_some_and(|c| c.recording)
    }

    fn codecs(&self) -> LegCodecs {
        self.core
            .calls
            .get(&self.key)
            .map(|c| c.sdp_state.codecs.clone())
            .unwrap_or_default()
    }

    fn start_fork(&mut self, info: RecordingInfo, time_limit: Duration) {
        let Some(call) = self.core.calls.get_mut(&self.key) else {
            return;
        };
        call.recording = true;
        self.core.actions.push_back(Output::StartRecording {
            call: self.key,
            info: Box::new(info),
            time_limit,
        });
    }

    fn stop_fork(&mut self, reason: StopReason) {
        let Some(call) = self.core.calls.get_mut(&self.key) else {
            return;
        };
        call.recording = false;
        if call.deferred_recording.take().is_some() {
            // It never started: nothing to stop.
            return;
        }
        self.core.media.set_tap(self.key, None);
        self.core.actions.push_back(Output::StopRecording {
            call: self.key,
            reason,
        });
    }

    fn emit(&mut self, event: CallEvent) {
        if let Some(call_id) = self.core.call_id_of(self.key).map(str::to_string) {
            self.core.event(&call_id, event);
        }
    }

    fn set_timer(&mut self, at: Instant) {
        self.core
            .timers
            .schedule(at, TimerRef::Module(self.key, self.id));
    }

    fn play(&mut self, to: Leg, sound: SoundRef, options: PlayOptions) -> PlaybackId {
        self.core
            .start_playback(self.key, self.id, to, sound, options)
    }

    fn stop_playback(&mut self, to: Leg) {
        self.core.stop_playbacks(self.key, to);
    }

    fn set_held(&mut self, to: Leg, held: bool) {
        self.core.hold_towards(self.key, to, held);
    }

    fn is_held(&self, to: Leg) -> bool {
        self.core.calls.get(&self.key).is_some_and(|c| match to {
            Leg::A => c.held[0],
            Leg::B => c.held[1],
        })
    }

    fn set_gain(&mut self, to: Leg, gain: Gain) {
        self.core.gain_towards(self.key, to, gain);
    }

    fn start_fork_on_answer(&mut self, info: RecordingInfo, time_limit: Duration) -> bool {
        let Some(call) = self.core.calls.get_mut(&self.key) else {
            return false;
        };
        if call.answered.is_some() {
            self.start_fork(info, time_limit);
            return true;
        }
        call.recording = true;
        call.deferred_recording = Some((Box::new(info), time_limit));
        self.emit(CallEvent::RecordingDeferred);
        false
    }

    fn mask_fork(&mut self, leg: Leg, masked: bool) -> bool {
        let Some(call) = self.core.calls.get(&self.key) else {
            return false;
        };
        // A fork waiting for the answer has no recording to mask yet.
        let running = call.recording && call.deferred_recording.is_none();
        if running {
            self.core.actions.push_back(Output::MaskRecording {
                call: self.key,
                leg,
                masked,
            });
        }
        running
    }
}

impl B2bua {
    /// Runs one module node on a call; a module that finishes at once continues with the child
    /// its outcome selects, one that goes on working is kept on the call.
    pub(super) fn run_module(&mut self, key: CallKey, mut run: ModuleRun, now: Instant) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let call_id = call.id.clone();
        // Kazoo's `dtmf_leg` is the dialing leg's Call-ID; `dtmf_side` says which leg it is.
        let dialing = call.dialog(run.leg).call_id.clone();
        run.data.insert("dtmf_leg".into(), dialing.into());
        run.data.insert("dtmf_side".into(), run.leg.as_str().into());
        let event = CallEvent::ModuleRun {
            module: run.node.module.clone(),
            leg: run.leg,
            data: run.data.clone(),
        };
        self.event(&call_id, event);
        let module = run.node.spec.start();
        self.start_module(key, module, run, now);
    }

    /// Starts `module` for the node run `run` on a call and keeps it if it goes on working.
    pub(super) fn start_module(
        &mut self,
        key: CallKey,
        mut module: Box<dyn Module>,
        run: ModuleRun,
        now: Instant,
    ) {
        let id = self.next_module_id;
        self.next_module_id += 1;
        let info = RunInfo {
            leg: run.leg,
            data: &run.data,
        };
        let progress = module.start(&mut self.host(key, id, now), info);
        if progress == Progress::Pending {
            if let Some(call) = self.calls.get_mut(&key) {
                call.modules.push(ActiveModule {
                    id,
                    module: Some(module),
                    run,
                    finished: false,
                });
            }
            return;
        }
        self.after(key, run, progress, now);
    }

    /// A response to a module's request (408 when it timed out).
    pub(super) fn module_response(
        &mut self,
        key: CallKey,
        id: ModuleId,
        status: u16,
        now: Instant,
    ) {
        self.drive(key, id, now, false, |m, ctx| m.on_response(ctx, status));
    }

    /// The module of the call that claims an in-dialog request from `leg`, if any.
    pub(super) fn module_claiming(
        &self,
        key: CallKey,
        leg: Leg,
        msg: &SipMessage,
    ) -> Option<ModuleId> {
        let call = self.calls.get(&key)?;
        call.modules
            .iter()
            .find(|m| m.module.as_ref().is_some_and(|inst| inst.claims(leg, msg)))
            .map(|m| m.id)
    }

    /// Hands a claimed request to its module (the core has answered it already).
    pub(super) fn module_request(
        &mut self,
        key: CallKey,
        id: ModuleId,
        leg: Leg,
        msg: &SipMessage,
        now: Instant,
    ) {
        self.drive(key, id, now, true, |m, ctx| m.on_request(ctx, leg, msg));
    }

    /// A key press on `leg`: the modules `ids` (those unfinished when it arrived) see it.
    pub(super) fn module_digit(
        &mut self,
        key: CallKey,
        ids: &[ModuleId],
        leg: Leg,
        digit: char,
        now: Instant,
    ) {
        for &id in ids {
            self.drive(key, id, now, false, |m, ctx| m.on_digit(ctx, leg, digit));
        }
    }

    /// A sound module `id` asked for ended.
    pub(super) fn module_playback(
        &mut self,
        key: CallKey,
        id: ModuleId,
        playback: PlaybackId,
        end: PlaybackEnd,
        now: Instant,
    ) {
        self.drive(key, id, now, false, |m, ctx| {
            m.on_playback(ctx, playback, end)
        });
    }

    /// The party a call module `id` placed is to replace hung up while it rings.
    pub(super) fn drive_leg_left(&mut self, key: CallKey, id: ModuleId, leg: Leg, now: Instant) {
        self.drive(key, id, now, false, |m, ctx| m.on_leg_left(ctx, leg));
    }

    /// The party module `id` consults sent early media.
    pub(super) fn drive_early_media(&mut self, key: CallKey, id: ModuleId, now: Instant) {
        self.drive(key, id, now, false, |m, ctx| m.on_early_media(ctx));
    }

    /// The party module `id` consults hung up.
    pub(super) fn drive_consult_left(&mut self, key: CallKey, id: ModuleId, now: Instant) {
        self.drive(key, id, now, false, |m, ctx| m.on_consult_left(ctx));
    }

    /// The final response to the call module `id` placed.
    pub(super) fn drive_originated(
        &mut self,
        key: CallKey,
        id: ModuleId,
        status: u16,
        now: Instant,
    ) {
        self.drive(key, id, now, false, |m, ctx| m.on_originated(ctx, status));
    }

    /// A module's deadline passed.
    pub(super) fn module_timer(&mut self, key: CallKey, id: ModuleId, now: Instant) {
        self.drive(key, id, now, false, |m, ctx| m.on_timer(ctx));
    }

    /// Gives module `id` of call `key` one input (finished modules only when `finished_too`),
    /// then acts on its progress.
    fn drive(
        &mut self,
        key: CallKey,
        id: ModuleId,
        now: Instant,
        finished_too: bool,
        input: impl FnOnce(&mut dyn Module, &mut dyn CallContext) -> Progress,
    ) {
        let taken = self.calls.get_mut(&key).and_then(|call| {
            let slot = call.modules.iter_mut().find(|m| m.id == id)?;
            if slot.finished && !finished_too {
                return None;
            }
            Some((slot.module.take()?, slot.run.clone(), slot.finished))
        });
        let Some((mut module, run, was_finished)) = taken else {
            return;
        };
        let progress = input(module.as_mut(), &mut self.host(key, id, now));
        let done = !was_finished && progress != Progress::Pending;
        if let Some(slot) = self
            .calls
            .get_mut(&key)
            .and_then(|call| call.modules.iter_mut().find(|m| m.id == id))
        {
            slot.module = Some(module);
            slot.finished |= done;
        }
        if done {
            self.after(key, run, progress, now);
        }
    }

    /// What follows a module's outcome.
    fn after(&mut self, key: CallKey, run: ModuleRun, progress: Progress, now: Instant) {
        match progress {
            Progress::Pending => {}
            Progress::Done(outcome) => self.module_finished(key, run, outcome, now),
            Progress::DoneCallOver(outcome) => {
                self.module_finished(key, run, outcome, now);
                self.end_call(key, Outcome::Answered, now);
            }
            Progress::EndCall { reason } => {
                // Nothing can follow: record the outcome, then end the call.
                if let Some(call_id) = self.call_id_of(key).map(str::to_string) {
                    let event = CallEvent::ModuleOutcome {
                        module: run.node.module.clone(),
                        outcome: "success".into(),
                    };
                    self.event(&call_id, event);
                }
                self.terminate_call(key, Outcome::Answered, reason, now);
            }
        }
    }

    /// A module ended with `outcome`: log it and continue with the selected child, if any.
    fn module_finished(&mut self, key: CallKey, run: ModuleRun, outcome: &str, now: Instant) {
        let Some(call_id) = self.call_id_of(key).map(str::to_string) else {
            return;
        };
        let event = CallEvent::ModuleOutcome {
            module: run.node.module.clone(),
            outcome: outcome.to_string(),
        };
        self.event(&call_id, event);
        if let Some(next) = run.next(outcome) {
            self.run_module(key, next, now);
        }
    }

    /// The recorder of a call stopped on its own (time limit, write error) or could not start:
    /// the relay stops copying, and a later toggle starts a new recording.
    pub(super) fn recording_ended(&mut self, call: CallKey) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.recording = false;
            self.media.set_tap(call, None);
        }
    }

    /// Starts the recording a `record_on_answer` node deferred, now that the call is answered.
    pub(super) fn start_deferred_recording(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some((mut info, time_limit)) = call.deferred_recording.take() else {
            return;
        };
        // The answer's SDP is known now: decode with the codecs both legs settled on.
        info.codecs = call.sdp_state.codecs.clone();
        self.actions.push_back(Output::StartRecording {
            call: key,
            info,
            time_limit,
        });
    }

    /// Queues the end of a call's recording when the call ends.
    pub(super) fn stop_recording_at_end(&mut self, call: CallKey, recording: bool) {
        if recording {
            let reason = if self.shutting_down {
                StopReason::Shutdown
            } else {
                StopReason::CallEnded
            };
            self.actions
                .push_back(Output::StopRecording { call, reason });
        }
    }

    fn host(&mut self, key: CallKey, id: ModuleId, now: Instant) -> Host<'_> {
        Host {
            core: self,
            key,
            id,
            now,
        }
    }
}
