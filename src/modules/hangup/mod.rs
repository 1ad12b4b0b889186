//! The `hangup` metaflow module: ends the call, sending BYE on both legs. Nothing can follow it,
//! so its children are never run.

use super::context::{CallContext, Module, Progress, RunInfo};

/// The name of this module in a metaflow node (`"module": "hangup"`).
pub const MODULE_NAME: &str = "hangup";

super::catalog::parameterless_kind!(MODULE_NAME, Hangup);

/// A hang-up on one call.
#[derive(Debug)]
struct Hangup;

impl Module for Hangup {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, _ctx: &mut dyn CallContext, _run: RunInfo<'_>) -> Progress {
        Progress::EndCall {
            reason: "metaflow hangup",
        }
    }
}
