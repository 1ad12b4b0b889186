//! The `record_call` module on a live call: decides start, stop or toggle from the node's action
//! and whether the call is already recorded, and asks the call for a media fork (or its end). The
//! recorder itself runs in the application shell, fed by the relay's tap.

use serde_json::{Map, Value};

use crate::base::{CallEvent, Leg, Problem};
use crate::modules::catalog::ModuleKind;
use crate::modules::context::{CallContext, Module, Progress, RunInfo};

use super::MODULE_NAME;
use super::params::{RecordParams, RecordStep, parse_params};
use super::types::{RecordingInfo, StopReason};

/// Key the call core adds to a node's data when the API (not a dialed code) runs it.
pub const TRIGGER_KEY: &str = "trigger";
/// Value of [`TRIGGER_KEY`] for a node run by `PUT .../channels/{call_id}`.
pub const TRIGGER_API: &str = "api";

/// The catalog entry of `record_call`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = RecordParams;

    fn parse(data: &Map<String, Value>) -> Result<RecordParams, Vec<Problem>> {
        parse_params(data)
    }

    /// A node with a `url` and no `method` is stored with Kazoo's default, `put`.
    fn normalise(data: &mut Map<String, Value>) {
        if data.get("url").is_some_and(Value::is_string) && !data.contains_key("method") {
            data.insert("method".into(), Value::String("put".into()));
        }
    }

    fn start(params: &RecordParams) -> Box<dyn Module> {
        Box::new(RecordRun(params.clone()))
    }
}

/// One `record_call` node run on one call; it finishes at once.
#[derive(Debug)]
struct RecordRun(RecordParams);

impl Module for RecordRun {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        let params = &self.0;
        // A channel action of the API dialed nothing: say so instead of `code "" by a-leg`.
        let by_api = run.text(TRIGGER_KEY) == TRIGGER_API;
        let by = if by_api {
            TRIGGER_API.to_owned()
        } else {
            format!(
                "code {:?} by {}-leg",
                run.text("collected"),
                run.leg.as_str()
            )
        };
        match params.action.step(ctx.is_forked()) {
            RecordStep::Start => {
                let info = RecordingInfo {
                    call_id: ctx.call_id().to_string(),
                    account_id: ctx.account_id(),
                    a_uri: ctx.remote_uri(Leg::A),
                    b_uri: ctx.remote_uri(Leg::B),
                    started_by: by,
                    leg: (!by_api).then_some(run.leg),
                    label: params.label.clone(),
                    format: params.format,
                    codecs: ctx.codecs(),
                    upload: params.upload.clone(),
                    sample_rate: params.sample_rate,
                    min_sec: params.min_sec,
                };
                if params.on_answer {
                    let now = ctx.start_fork_on_answer(info, params.time_limit);
                    tracing::info!(call_id = %ctx.call_id(), format = params.format.as_str(),
                        at_once = now, "recording starts on answer");
                } else {
                    tracing::info!(call_id = %ctx.call_id(), format = params.format.as_str(), "recording starts");
                    ctx.start_fork(info, params.time_limit);
                }
            }
            // Kazoo masks the dtmf_leg, the leg that dialed the code; without a recording it
            // just goes on.
            RecordStep::Mask(masked) => {
                let recording = ctx.mask_fork(run.leg, masked);
                tracing::info!(call_id = %ctx.call_id(), leg = run.leg.as_str(), masked, recording, "recording mask");
                let leg = run.leg;
                ctx.emit(if masked {
                    CallEvent::RecordingMasked { leg, recording }
                } else {
                    CallEvent::RecordingUnmasked { leg, recording }
                });
            }
            RecordStep::Stop => {
                tracing::info!(call_id = %ctx.call_id(), "recording stops");
                ctx.stop_fork(StopReason::Stopped { by });
            }
            RecordStep::Nothing => {
                let action = format!("{:?}", params.action);
                ctx.emit(CallEvent::RecordingUnchanged { action });
            }
        }
        Progress::Done("success")
    }
}
