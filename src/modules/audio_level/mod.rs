//! The `audio_level` metaflow module: changes the volume of one direction of the call, as
//! FreeSWITCH's audio level that Kazoo's Konami drives (`action` start/stop, `level` -4..4 on
//! FreeSWITCH's chart, `mode` `read` = what the dialing party says, as the other hears it, or
//! `write` = what the dialing party hears). Beyond Kazoo, `"mute": true` silences the direction.
//! Defaults where Kazoo's schema names none: `action` `start`, `mode` `write`, `level` 0.

use serde_json::{Map, Value};

use crate::base::{Gain, Problem};

use super::catalog::ModuleKind;
use super::context::{CallContext, Module, Progress, RunInfo};
use super::data;

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "audio_level";

/// The catalog entry of `audio_level`.
#[derive(Debug)]
pub struct Kind;

/// `audio_level`'s checked data.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelParams {
    /// `false` for `stop`: back to the original volume.
    pub start: bool,
    /// `true` for `read` (towards the other leg), `false` for `write` (towards the dialing leg).
    pub read: bool,
    /// What to apply on `start`.
    pub gain: Gain,
}

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = LevelParams;

    fn parse(data: &Map<String, Value>) -> Result<LevelParams, Vec<Problem>> {
        let mut problems = Vec::new();
        let action = data::one_of(data, "action", &["start", "stop"], "start", &mut problems);
        let mode = data::one_of(data, "mode", &["read", "write"], "write", &mut problems);
        let level = data::integer(data, "level", -4, 4, &mut problems).unwrap_or(0);
        let mute = data::boolean(data, "mute", &mut problems).unwrap_or(false);
        if !problems.is_empty() {
            return Err(problems);
        }
        let gain = if mute {
            Gain::Mute
        } else {
            Gain::from_level(level as i8)
        };
        Ok(LevelParams {
            start: action == "start",
            read: mode == "read",
            gain,
        })
    }

    fn start(params: &LevelParams) -> Box<dyn Module> {
        Box::new(Level(params.clone()))
    }
}

/// An `audio_level` on one call.
#[derive(Debug)]
struct Level(LevelParams);

impl Module for Level {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        let to = if self.0.read {
            run.leg.other()
        } else {
            run.leg
        };
        let gain = if self.0.start {
            self.0.gain
        } else {
            Gain::Unity
        };
        ctx.set_gain(to, gain);
        Progress::Done("success")
    }
}
