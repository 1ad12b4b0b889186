//! The `record_call` module on a live call. The core decides (start, stop, toggle) and keeps
//! the call's recording flag; the shell owns the recorder task and the relay's tap, driven by
//! the [`Action::StartRecording`] and [`Action::StopRecording`] actions the core queues.

use std::time::Instant;

use crate::base::CallEvent;
use crate::metaflow::ModuleRun;
use crate::modules::record::{
    Codec, LegCodecs, RecordStep, RecordingInfo, StopReason, parse_params,
};
use crate::sdp::Sdp;

use super::io::Output;
use super::{B2bua, CallKey, Leg};

/// The payload types of the first audio stream of an SDP, for the recorder's decoder.
pub(super) fn audio_codecs(sdp: &Sdp) -> Vec<(u8, Codec)> {
    let Some(m) = sdp
        .media()
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
    else {
        return Vec::new();
    };
    m.formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| {
            m.codec(pt)
                .map(|map| (pt, Codec::from_encoding_name(&map.encoding)))
        })
        .collect()
}

/// Records the codecs a leg's SDP declared.
pub(super) fn remember_codecs(codecs: &mut LegCodecs, leg: Leg, sdp: &Sdp) {
    let list = audio_codecs(sdp);
    if list.is_empty() {
        return;
    }
    match leg {
        Leg::A => codecs.a = list,
        Leg::B => codecs.b = list,
    }
}

impl B2bua {
    /// Runs a `record_call` node: start, stop or toggle the call's recording.
    pub(super) fn run_record(&mut self, key: CallKey, run: ModuleRun, now: Instant) {
        let params = match parse_params(&run.node.data) {
            Ok(p) => p,
            Err(errors) => {
                let call_id = self.call_id_of(key).unwrap_or_default().to_string();
                tracing::warn!(call_id = %call_id, ?errors, "record_call data refused");
                return self.module_finished(key, run, "failure", now);
            }
        };
        let collected = run
            .data
            .get("collected")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let by = format!("code {collected:?} by {}-leg", run.leg.as_str());
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let step = params.action.step(call.recording);
        let call_id = call.a.call_id.clone();
        match step {
            RecordStep::Start => {
                call.recording = true;
                let info = RecordingInfo {
                    call_id: call_id.clone(),
                    a_uri: call.a.remote_uri.clone(),
                    b_uri: call.b.remote_uri.clone(),
                    started_by: by,
                    label: params.label.clone(),
                    format: params.format,
                    codecs: call.sdp_state.codecs.clone(),
                };
                tracing::info!(call_id = %call_id, format = params.format.as_str(), "recording starts");
                self.actions.push_back(Output::StartRecording {
                    call: key,
                    info: Box::new(info),
                    time_limit: params.time_limit,
                });
            }
            RecordStep::Stop => {
                call.recording = false;
                tracing::info!(call_id = %call_id, "recording stops");
                self.media.set_tap(key, None);
                self.actions.push_back(Output::StopRecording {
                    call: key,
                    reason: StopReason::Stopped { by },
                });
            }
            RecordStep::Nothing => {
                let action = format!("{:?}", params.action);
                self.event(&call_id, CallEvent::RecordingUnchanged { action });
            }
        }
        self.module_finished(key, run, "success", now);
    }

    /// The recorder of a call stopped on its own (time limit, write error): a later toggle
    /// starts a new recording.
    pub(super) fn recording_ended(&mut self, call: CallKey) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.recording = false;
            self.media.set_tap(call, None);
        }
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
}
