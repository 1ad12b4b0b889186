//! The `hangup` metaflow module: ends the call, sending BYE on both legs. Nothing can follow it,
//! so its children are never run.

use serde_json::{Map, Value};

use crate::base::Problem;

use super::catalog::ModuleKind;
use super::context::{CallContext, Module, Progress, RunInfo};

/// The name of this module in a metaflow node (`"module": "hangup"`).
pub const MODULE_NAME: &str = "hangup";

/// The catalog entry of `hangup`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = ();

    fn parse(_data: &Map<String, Value>) -> Result<(), Vec<Problem>> {
        Ok(())
    }

    fn start(_params: &()) -> Box<dyn Module> {
        Box::new(Hangup)
    }
}

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
