//! The `callflow` metaflow module (Kazoo's `konami_callflow`, "overlay a callflow onto the
//! caller"): the dialing party leaves its current peer for a new call to a number. Kazoo runs the
//! callflow in its own switch; the proxy sits in front of the PBX, so it places a call to the
//! number through the PBX (which runs its callflow for it) and, once that call is answered,
//! releases the old peer: the dialing party talks to the new call with no re-INVITE.
//!
//! The number is the `id` callflow's first number (a callflow document of the account), else the
//! dialed code's first capture, else what was collected.

use serde_json::{Map, Value};

use crate::base::Problem;
use crate::modules::catalog::ModuleKind;
use crate::modules::context::{CallContext, Destination, Module, PlaceOptions, Progress, RunInfo};
use crate::modules::transfer::{NO_MATCH_CAPTURE, TransferParams, refer_target};

/// The name of this module in a metaflow node (`"module": "callflow"`).
pub const MODULE_NAME: &str = "callflow";

/// Checked `data` of a `callflow` node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallflowParams {
    /// The callflow document whose first number is dialed (`data.id`).
    pub id: Option<String>,
}

/// The catalog entry of `callflow`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = CallflowParams;

    fn parse(data: &Map<String, Value>) -> Result<CallflowParams, Vec<Problem>> {
        let mut problems = Vec::new();
        let id = crate::modules::data::string(data, "id", &mut problems);
        if problems.is_empty() {
            Ok(CallflowParams { id })
        } else {
            Err(problems)
        }
    }

    fn start(params: &CallflowParams) -> Box<dyn Module> {
        Box::new(CallflowRun {
            params: params.clone(),
        })
    }
}

/// One `callflow` on one call.
#[derive(Debug)]
struct CallflowRun {
    params: CallflowParams,
}

impl CallflowRun {
    /// The number to call: the `id` callflow's, else the first capture, else the collected
    /// digits; `Err` says why there is none.
    fn number(&self, ctx: &dyn CallContext, run: &RunInfo<'_>) -> Result<String, String> {
        if let Some(id) = &self.params.id {
            return ctx
                .callflow_number(id)
                .ok_or_else(|| format!("callflow {id} does not exist or has no number"));
        }
        run.captures()
            .into_iter()
            .find(|capture| !capture.is_empty() && capture != NO_MATCH_CAPTURE)
            .or_else(|| Some(run.text("collected").to_owned()).filter(|c| !c.is_empty()))
            .ok_or_else(|| "no callflow id, capture or collected number".to_owned())
    }
}

impl Module for CallflowRun {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        let target = self.number(ctx, &run).and_then(|number| {
            let params = TransferParams {
                target: Some(number),
                ..TransferParams::default()
            };
            refer_target(&params, &[], &ctx.upstream_host()).map_err(|e| e.to_string())
        });
        let placed = target.and_then(|target| {
            if !ctx.is_confirmed() {
                return Err("the call is not established".to_owned());
            }
            let options = PlaceOptions {
                reason: "callflow",
                auto_answer: false,
            };
            ctx.originate(run.leg.other(), &[Destination::Pbx(&target)], options)
        });
        match placed {
            Ok(()) => Progress::Pending,
            Err(reason) => {
                tracing::warn!(call_id = %ctx.call_id(), %reason, "callflow cannot start");
                Progress::Done("failure")
            }
        }
    }

    fn on_originated(&mut self, _ctx: &mut dyn CallContext, status: u16) -> Progress {
        if (200..300).contains(&status) {
            Progress::Done("success")
        } else {
            Progress::Done("failure")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_is_an_optional_string() {
        let parse = |data: Value| Kind::parse(data.as_object().unwrap());
        assert_eq!(parse(json!({})), Ok(CallflowParams { id: None }));
        assert_eq!(
            parse(json!({"id": "cf1"})),
            Ok(CallflowParams {
                id: Some("cf1".into())
            })
        );
        let problems = parse(json!({"id": 5})).unwrap_err();
        assert_eq!(problems[0].path, "data.id");
    }
}
