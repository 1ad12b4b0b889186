//! The `break` metaflow module (a Rust keyword, hence the folder's name): stops what plays to
//! the dialing leg, at once (the relay's next packet towards it is relayed audio again). Music
//! on hold the leg hears stops too; the hold itself stays until its unhold key or `resume`.

use serde_json::{Map, Value};

use crate::base::Problem;

use super::catalog::ModuleKind;
use super::context::{CallContext, Module, Progress, RunInfo};

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "break";

/// The catalog entry of `break`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = ();

    fn parse(_data: &Map<String, Value>) -> Result<(), Vec<Problem>> {
        Ok(())
    }

    fn start(_params: &()) -> Box<dyn Module> {
        Box::new(Break)
    }
}

/// A `break` on one call.
#[derive(Debug)]
struct Break;

impl Module for Break {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        ctx.stop_playback(run.leg);
        Progress::Done("success")
    }
}
