//! The `resume` metaflow module: reconnects the two legs (Kazoo's Konami picks the other leg
//! back up): whatever plays to either leg stops, both hear each other again, and a `hold`
//! waiting for its unhold key finishes.

use crate::base::Leg;

use super::context::{CallContext, Module, Progress, RunInfo};

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "resume";

super::catalog::parameterless_kind!(MODULE_NAME, Resume);

/// A `resume` on one call.
#[derive(Debug)]
struct Resume;

impl Module for Resume {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, _run: RunInfo<'_>) -> Progress {
        for to in [Leg::A, Leg::B] {
            ctx.set_held(to, false);
            ctx.stop_playback(to);
        }
        Progress::Done("success")
    }
}
