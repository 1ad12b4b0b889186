//! The `break` metaflow module (a Rust keyword, hence the folder's name): stops what plays to
//! the dialing leg, at once (the relay's next packet towards it is relayed audio again). Music
//! on hold the leg hears stops too; the hold itself stays until its unhold key or `resume`.

use super::context::{CallContext, Module, Progress, RunInfo};

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "break";

super::catalog::parameterless_kind!(MODULE_NAME, Break);

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
